"""Every error says what to do; a table's id is named once; retries show how many attempts."""

from __future__ import annotations

import inspect
import pickle

import pytest

from estat_assets.estat import errors
from estat_assets.estat.errors import (
    EStatApiError,
    EStatError,
    EStatHttpError,
    EStatNoDataAnswerError,
    EStatRequestError,
    EStatServerError,
    EStatUnexpectedStatusError,
    PageMismatchError,
    error_for_status,
)

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, EStatError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_has_a_hint(cls) -> None:
    assert cls.hint.strip(), cls
    assert cls.__doc__


@pytest.mark.parametrize("retryable", [True, False])
def test_http_errors_have_a_hint_either_way(retryable) -> None:
    error = EStatHttpError("getStatsData: HTTP 503", retryable=retryable)
    assert error.hint and error.hint in str(error) and "ESTAT_API_URL" in error.hint


def test_the_table_id_is_named_once_at_the_start() -> None:
    error = PageMismatchError("stored 3 rows but TOTAL_NUMBER is 4", stats_data_id="0000020202")
    assert error.message == "0000020202: stored 3 rows but TOTAL_NUMBER is 4"
    assert str(error).count("0000020202") == 1 and error.stats_data_id == "0000020202"
    # a message that already names it (e-Stat's own words) is not prefixed again
    api = error_for_status(102, "統計表IDが存在しません。(statsDataId=0000099999)", endpoint="x")
    api.with_context(stats_data_id="0000099999")
    assert str(api).count("0000099999") == 1


def test_attempts_are_added_to_the_last_real_cause() -> None:
    error = EStatHttpError("getStatsData: HTTP 503", retryable=True)
    assert error.with_context(stats_data_id="0000020202", attempts=5) is error
    assert error.message == "0000020202: getStatsData: HTTP 503 after 5 attempts"
    assert str(error).startswith(error.message + " — ") and error.args == (str(error),)
    assert EStatHttpError("x", retryable=False).with_context(attempts=1).message == "x"


def test_status_mapping() -> None:
    assert isinstance(error_for_status(100, "", endpoint="e"), EStatRequestError)
    assert "ESTAT_APP_ID" in error_for_status(100, "", endpoint="e").hint
    assert isinstance(error_for_status(250, "", endpoint="e"), EStatServerError)
    assert error_for_status(250, "", endpoint="e").retryable
    for status in (3, 99, 300, -1):
        error = error_for_status(status, "?", endpoint="getStatsData")
        assert isinstance(error, EStatUnexpectedStatusError) and not error.retryable


def test_no_data_answer_is_retryable_and_says_nothing_changed() -> None:
    error = EStatNoDataAnswerError(
        "e-Stat getMetaInfo answered STATUS 1 (no data): 該当データはありません",
        status=1,
        endpoint="getMetaInfo",
        stats_data_id="0000020202",
    )
    assert error.retryable and error.status == 1 and not isinstance(error, EStatApiError)
    assert "no data" in error.hint and "nothing was changed" in error.hint
    assert "rerun later" in error.hint


def test_errors_survive_pickling_with_their_context() -> None:
    error = error_for_status(201, "内部エラー", endpoint="getStatsData")
    error.with_context(stats_data_id="0000020202", attempts=3)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert (copy.status, copy.attempts, copy.stats_data_id) == (201, 3, "0000020202")
