"""Never empty a good slice: transient "no data", withdrawals, aliases and hostile keys.

Each test starts from a lake that holds a good load of the recorded table 0000020202 (one row in
each fiscal year 1981-1990) and then lets e-Stat (the emulator) or a user misbehave. A slice
shrinks only with evidence; otherwise the run fails with a typed error and the Iceberg tables
(domain, quarantine, class codes, inventory) keep their snapshots.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estat_assets.domains import DomainSpec
from estat_assets_tests.harness import make_lake, step_failure, step_retries
from estat_emulator import EmulatorServer, TableStore

RECORDED = "0000020202"
YEARS = [str(y) for y in range(1981, 1991)]


@pytest.fixture
def server():
    """An emulator of our own: these tests republish the table and inject faults."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as s:
        yield s


@pytest.fixture
def loaded(tmp_path, server, instance):
    lake = make_lake(
        tmp_path / "home", server, instance, domain=DomainSpec("population", datasets=(RECORDED,))
    )
    assert lake.run(RECORDED).success
    assert lake.slices(RECORDED) == dict.fromkeys(YEARS, 1)
    return lake


def _message(result) -> str:
    failure = step_failure(result)
    data = failure.step_failure_data.user_failure_data
    return data.description if data else failure.step_failure_data.error.message


def _republish(server: EmulatorServer, **release) -> dict:
    reply = httpx.post(
        f"{server.url}/_emulator/republish", json={"statsDataId": RECORDED, **release}
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_transient_no_data_answer_is_retried_and_the_lake_ends_whole(loaded, server) -> None:
    server.faults.add(
        {
            "kind": "api_error",
            "status": 1,
            "endpoint": "getStatsData",
            "stats_data_id": RECORDED,
            "times": 1,
        }
    )
    result = loaded.run(RECORDED)
    assert result.success
    assert step_retries(result) == 1  # the contradiction was an error, retried by the step
    assert loaded.slices(RECORDED) == dict.fromkeys(YEARS, 1)


def test_a_persistent_no_data_answer_fails_and_changes_nothing(loaded, server) -> None:
    before = loaded.state()
    server.faults.add(
        {
            "kind": "api_error",
            "status": 1,
            "endpoint": "getStatsData",
            "stats_data_id": RECORDED,
            "times": None,
        }
    )
    result = loaded.run(RECORDED)
    assert not result.success
    message = _message(result)
    assert "EStatNoDataAnswerError" in message and "OVERALL_TOTAL_NUMBER 10" in message
    assert loaded.state() == before


def test_no_data_for_the_metadata_fails_and_keeps_the_class_codes(loaded, server) -> None:
    before = loaded.state()
    server.faults.add(
        {
            "kind": "api_error",
            "status": 1,
            "endpoint": "getMetaInfo",
            "stats_data_id": RECORDED,
            "times": None,
        }
    )
    result = loaded.run(RECORDED)
    assert not result.success
    assert "EStatNoDataAnswerError" in _message(result)
    assert loaded.state() == before


def test_no_data_for_a_year_that_a_count_contradicts_is_an_error(loaded, server) -> None:
    # Only the data request of the narrowed load answers "no data"; its count request does not.
    server.faults.add(
        {
            "kind": "api_error",
            "status": 1,
            "endpoint": "getStatsData",
            "stats_data_id": RECORDED,
            "nth": [1],
        }
    )
    result = loaded.run(RECORDED, years="1985")
    assert result.success and step_retries(result) == 1
    assert loaded.slices(RECORDED) == dict.fromkeys(YEARS, 1)


def test_a_year_gone_in_the_same_release_is_refused(loaded, server) -> None:
    """e-Stat answers every request without 1985's row, but says it is the same release."""
    held = loaded.tables_state()
    release = loaded.manifest(RECORDED)["updated_date"]
    _republish(
        server,
        updated_date=release,
        perturb=False,
        remove_cells=[{"time": ["1985100000"]}],
    )
    result = loaded.run(RECORDED)
    assert not result.success
    failure = step_failure(result)
    assert failure.step_key == "population__table"
    message = _message(result)
    assert "SliceShrinkRefusedError" in message and "1985: held 1 rows, offered 0" in message
    assert "same release" in message and "estat/allow_shrink" in message
    assert loaded.tables_state() == held
    assert loaded.slices(RECORDED) == dict.fromkeys(YEARS, 1)
    # an operator who knows better can say so
    forced = loaded.run(RECORDED, allow_shrink=True)
    assert forced.success
    assert "1985" not in loaded.slices(RECORDED) and len(loaded.slices(RECORDED)) == 9


def test_a_year_withdrawn_by_a_new_release_is_removed(loaded, server) -> None:
    """A genuine withdrawal: a new UPDATED_DATE, 1985 gone from CLASS_INF, the count agrees."""
    summary = _republish(
        server, updated_date="2030-01-01", perturb=False, remove_items={"time": ["1985100000"]}
    )
    assert summary["overall_total_number"] == 9 if "overall_total_number" in summary else True
    result = loaded.run(RECORDED)
    assert result.success, _message(result)
    assert loaded.slices(RECORDED) == {y: 1 for y in YEARS if y != "1985"}
    table = next(m for m in result.asset_materializations_for_node("population__table"))
    shrinks = table.metadata["shrinks"].value
    assert shrinks == [
        {
            "year": "1985",
            "held": 1,
            "offered": 0,
            "counted": 9,
            "accepted": True,
            "reason": shrinks[0]["reason"],
        }
    ]
    assert "no longer lists 1985" in shrinks[0]["reason"]
    conformed = loaded.manifest(RECORDED, "conformed")
    assert "1985" not in conformed["years"]
    assert not (loaded.conformed_dir(RECORDED) / "year=1985").exists()


def test_a_new_release_with_more_rows_needs_no_evidence(loaded, server) -> None:
    # 1991100000 is in CLASS_INF already (the recorded table lists 1980-2023); a cell appears
    _republish(
        server,
        updated_date="2030-02-01",
        perturb=False,
        add_cells=[
            {
                "@tab": "00001",
                "@cat01": "B1101",
                "@area": "01100",
                "@time": "1991100000",
                "@unit": "ｈａ",
                "$": "112121",
            }
        ],
    )
    result = loaded.run(RECORDED)
    assert result.success
    assert loaded.slices(RECORDED) == {**dict.fromkeys(YEARS, 1), "1991": 1}


@pytest.mark.parametrize(
    "key",
    [
        " 0000020202",
        "０００００２０２０２",
        "0000020202\n",
        "000020202",
        "../../tmp/x",
        "0000020202|1985",
    ],
)
def test_dataset_keys_that_only_look_right_are_refused(loaded, key) -> None:
    before = loaded.state()
    result = loaded.run(key)
    assert not result.success
    message = _message(result)
    assert "InvalidDatasetIdError" in message
    assert step_retries(result) == 0
    assert loaded.state() == before


@pytest.mark.parametrize("years", ["01985", "１９８５", "1985 ", "abc", "1985-1980", "-1"])
def test_year_tags_that_only_look_right_are_refused(loaded, years) -> None:
    before = loaded.state()
    result = loaded.run(RECORDED, years=years)
    assert not result.success
    assert "InvalidYearError" in _message(result)
    assert loaded.state() == before


KEYS = st.one_of(
    st.text(min_size=1, max_size=16),
    st.sampled_from(["..", ".", "/", "0000020202/..", "0000020202/../..", "%2e%2e", "\x00"]),
    st.from_regex(r"[0-9０-９ ./\\-]{1,14}", fullmatch=True),
)


def _outside_the_home(loaded, tmp_path) -> set:
    """Every path of the session's temporary tree outside the lake's home, except the data of
    the session's own servers (SeaweedFS and moto write there on their own schedule)."""
    servers = tuple(
        str(d) for d in tmp_path.parent.iterdir() if d.name.startswith(("seaweed", "moto"))
    )
    return {
        p
        for p in tmp_path.parent.rglob("*")
        if not str(p).startswith(str(loaded.home)) and not str(p).startswith(servers)
    }


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=KEYS, years=st.one_of(st.none(), st.text(max_size=10)))
def test_no_partition_key_or_tag_writes_outside_the_home_or_shrinks_a_slice(
    loaded, tmp_path, key, years
) -> None:
    outside = _outside_the_home(loaded, tmp_path)
    before = loaded.slices(RECORDED)
    result = loaded.run(key, years=years or None)
    assert _outside_the_home(loaded, tmp_path) == outside
    assert loaded.slices(RECORDED) == before  # whatever happened, the good slices stand
    if result.success:
        assert key == RECORDED or (key.isascii() and key.isdigit() and len(key) == 10)
