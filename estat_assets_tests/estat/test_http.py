"""One request: classification, retries with backoff (on a fake sleep), base URL and secrets."""

from __future__ import annotations

import logging
import socket

import httpx
import orjson
import pytest

from estat_assets.estat.errors import (
    EStatConfigError,
    EStatError,
    EStatHttpError,
    EStatNoDataAnswerError,
    EStatRequestError,
    EStatServerError,
    EStatUnexpectedStatusError,
)
from estat_assets.estat.http import EStatHttp, RateLimiter, RetryConfig, check_base_url

APP_ID = "test-app-id-0123456789abcdef"
BASE = "https://api.example.test/rest/3.0/app/json"


def document(status: int, message: str = "", root: str = "GET_META_INFO") -> bytes:
    return orjson.dumps({root: {"RESULT": {"STATUS": status, "ERROR_MSG": message}}})


class Script:
    """A MockTransport handler that answers from a list and records the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def http(script: Script, slept: list[float] | None = None, **kw) -> EStatHttp:
    slept = [] if slept is None else slept
    return EStatHttp(
        APP_ID,
        kw.pop("base_url", BASE),
        transport=httpx.MockTransport(script),
        sleep=slept.append,
        **kw,
    )


def test_retries_exhausted_raise_the_last_real_cause_with_the_attempts() -> None:
    script = Script(httpx.Response(503, text="Service Unavailable"))
    slept: list[float] = []
    with pytest.raises(EStatHttpError) as caught:
        http(script, slept).request("getStatsData", {"statsDataId": "0000020202"})
    error = caught.value
    assert error.message == "0000020202: getStatsData: HTTP 503 after 5 attempts"
    assert error.attempts == 5 and error.retryable and error.stats_data_id == "0000020202"
    assert str(error).count("0000020202") == 1 and "retried" in error.hint
    assert len(script.requests) == 5 and len(slept) == 4  # backoff between attempts, not after


def test_backoff_is_jittered_and_capped_and_retry_after_wins() -> None:
    retry = RetryConfig(attempts=4, base_delay=1.0, max_delay=3.0)
    script = Script(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(502),
        httpx.Response(500, headers={"Retry-After": "120"}),
        httpx.Response(200, content=document(0)),
    )
    slept: list[float] = []
    resp = http(script, slept, retry=retry).request("getMetaInfo", {})
    assert resp.status == 0 and len(script.requests) == 4
    assert slept[0] == 2.0 and 0 <= slept[1] <= 2.0 and slept[2] == 3.0  # capped at max_delay


def test_a_server_status_recovers_and_a_request_status_is_never_retried() -> None:
    script = Script(httpx.Response(200, content=document(201, "内部エラー")), document_ok())
    assert http(script).request("getMetaInfo", {}).status == 0
    script = Script(httpx.Response(200, content=document(100, "認証に失敗しました。")))
    with pytest.raises(EStatRequestError, match="認証に失敗") as caught:
        http(script).request("getMetaInfo", {"statsDataId": "0000020202"})
    assert len(script.requests) == 1 and caught.value.attempts == 1
    assert "after" not in caught.value.message and "ESTAT_APP_ID" in caught.value.hint


def document_ok() -> httpx.Response:
    return httpx.Response(200, content=document(0))


def test_persistent_server_status_keeps_estats_words() -> None:
    script = Script(httpx.Response(200, content=document(201, "内部エラー")))
    with pytest.raises(EStatServerError, match="STATUS 201: 内部エラー after 5 attempts"):
        http(script).request("getMetaInfo", {})


@pytest.mark.parametrize("status", [3, 99, 300, -1])
def test_an_unknown_status_fails_loudly(status) -> None:
    script = Script(httpx.Response(200, content=document(status)))
    with pytest.raises(EStatUnexpectedStatusError, match=f"STATUS {status}"):
        http(script).request("getMetaInfo", {})
    assert len(script.requests) == 1


@pytest.mark.parametrize("status", [1, 2])
def test_no_data_is_an_answer_unless_the_request_must_have_data(status) -> None:
    script = Script(httpx.Response(200, content=document(status, "該当データはありません")))
    resp = http(script).request("getMetaInfo", {})
    assert resp.status == status and resp.no_data
    slept: list[float] = []
    with pytest.raises(EStatNoDataAnswerError) as caught:
        http(script, slept).request("getMetaInfo", {"statsDataId": "0000020202"}, no_data_ok=False)
    error = caught.value
    assert error.status == status and error.endpoint == "getMetaInfo" and error.retryable
    assert f"STATUS {status}" in error.message and "after 5 attempts" in error.message
    assert len(slept) == 4  # retried like a server hiccup


def test_a_damaged_body_is_a_retryable_response_error() -> None:
    script = Script(httpx.Response(200, content=document(0)[:-3]), document_ok())
    assert http(script).request("getMetaInfo", {}).status == 0 and len(script.requests) == 2


def test_a_client_error_is_not_retried() -> None:
    script = Script(httpx.Response(404))
    with pytest.raises(EStatHttpError, match="HTTP 404") as caught:
        http(script).request("getMetaInfo", {})
    assert not caught.value.retryable and "ESTAT_API_URL" in caught.value.hint
    assert len(script.requests) == 1


def test_lang_and_app_id_are_sent_and_a_request_may_override_lang() -> None:
    script = Script(document_ok())
    api = http(script)
    api.request("getMetaInfo", {"statsDataId": "0000020202"})
    api.request("getMetaInfo", {"statsDataId": "0000020202", "lang": "E"})
    first, second = (dict(r.url.params) for r in script.requests)
    assert first["lang"] == "J" and second["lang"] == "E" and first["appId"] == APP_ID
    assert api.requests_made == 2
    with pytest.raises(ValueError, match="lang"):
        http(script, lang="en")


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1",  # httpx.InvalidURL
        "api.e-stat.go.jp/rest/3.0/app/json",  # no scheme
        "localhost:18800/rest",  # "localhost" read as the scheme
        "ftp://api.e-stat.go.jp/rest",
        "http://",
        "http:///path",
        "http://exa mple.com/",
        "http://127.0.0.1:99999/",
        "",
        " https://api.e-stat.go.jp/rest/3.0/app/json",
    ],
)
def test_a_malformed_base_url_is_a_config_error_at_construction(url) -> None:
    with pytest.raises(EStatConfigError) as caught:
        EStatHttp(APP_ID, url)
    error = caught.value
    assert isinstance(error, EStatError) and not error.retryable
    assert "ESTAT_API_URL" in str(error) and repr(url) in str(error)


def test_the_base_url_is_normalised_and_its_secrets_redacted() -> None:
    assert check_base_url("http://127.0.0.1:18800/rest/") == "http://127.0.0.1:18800/rest"
    with pytest.raises(EStatConfigError) as caught:
        EStatHttp(APP_ID, f"ftp://host/?appId={APP_ID}")
    assert APP_ID not in str(caught.value)


@pytest.mark.parametrize(
    "failure", [httpx.UnsupportedProtocol("no"), httpx.InvalidURL("Invalid non-printable")]
)
def test_a_url_httpx_refuses_at_request_time_is_a_config_error_not_retried(failure) -> None:
    script = Script(failure)
    with pytest.raises(EStatConfigError, match="ESTAT_API_URL") as caught:
        http(script).request("getMetaInfo", {"statsDataId": "0000020202"})
    assert len(script.requests) == 1 and caught.value.stats_data_id == "0000020202"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retryable_and_names_host_and_port(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there any more
    slept: list[float] = []
    api = EStatHttp(
        APP_ID, f"http://127.0.0.1:{port}/rest/3.0/app/json", sleep=slept.append, timeout=5
    )
    with api, pytest.raises(EStatHttpError) as caught:
        api.request("getMetaInfo", {"statsDataId": "0000020202"})
    error = caught.value
    assert error.retryable and f"127.0.0.1:{port}" in error.message
    assert "after 5 attempts" in error.message and len(slept) == 4
    assert APP_ID not in str(error) and APP_ID not in caplog.text


def test_a_timeout_names_the_host() -> None:
    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(EStatHttpError, match=r"api\.example\.test:443 timed out"):
        http(script, retry=RetryConfig(attempts=2)).request("getMetaInfo", {})


def test_app_id_in_a_transport_message_is_redacted() -> None:
    script = Script(httpx.ConnectError(f"boom at /getMetaInfo?appId={APP_ID}&x=1"))
    with pytest.raises(EStatHttpError) as caught:
        http(script, retry=RetryConfig(attempts=1)).request("getMetaInfo", {})
    assert APP_ID not in str(caught.value) and "appId=***" in str(caught.value)


def test_no_app_id_is_refused() -> None:
    with pytest.raises(EStatError, match="appId") as caught:
        EStatHttp("", BASE)
    assert "ESTAT_APP_ID" in caught.value.hint


def test_rate_limiter_spaces_request_starts_on_one_clock() -> None:
    """Starts are reserved 1/rate apart for all threads; checked on a fake clock, not timed."""
    now = [100.0]
    slept: list[float] = []

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=slept.append)
    starts = [limiter.wait() for _ in range(5)]
    assert starts == [100.0, 100.25, 100.5, 100.75, 101.0]
    assert slept == [0.25, 0.5, 0.75, 1.0]
    now[0] = 200.0  # after a quiet spell no one waits
    assert limiter.wait() == 200.0 and len(slept) == 4
    assert RateLimiter(None).wait() > 0  # no limit: never sleeps
