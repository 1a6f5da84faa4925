"""Releases for revision tests: revised values, periods and cells added or withdrawn, a new date.

Each is triggered over HTTP (``POST /_emulator/republish``) and in-process
(``TableStore.republish``); see ``estat_emulator/release.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, TableStore
from estat_emulator.release import Release
from estat_emulator.store import SAMPLES_DIR
from estat_emulator.wire import Raw

APP_ID = "release-test"
REC = "0000020202"
GEN = "9900020202"
NEW_YEAR = {"@code": "2024100000", "@name": "2024年度", "@level": "1"}
NEW_CELL = {
    "@tab": "00001",
    "@cat01": "B1101",
    "@area": "01100",
    "@time": "2024100000",
    "@unit": "ｈａ",
    "$": "112121",
}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A fresh server per test: releases change its tables."""
    with EmulatorServer(TableStore.default()) as srv:
        yield srv


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_base, timeout=60) as c:
        yield c


def data(client: httpx.Client, table_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(
        "/getStatsData", params={"appId": APP_ID, "statsDataId": table_id, **params}
    )
    assert response.status_code == 200
    return response.json()["GET_STATS_DATA"]


def meta(client: httpx.Client, table_id: str) -> dict[str, Any]:
    response = client.get("/getMetaInfo", params={"appId": APP_ID, "statsDataId": table_id})
    return response.json()["GET_META_INFO"]["METADATA_INF"]


def values(body: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(body["STATISTICAL_DATA"]["DATA_INF"]["VALUE"])


def cells(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], str]:
    return {tuple(v for k, v in r.items() if k not in ("@unit", "$")): r["$"] for r in rows}


def time_codes(node: dict[str, Any]) -> list[str]:
    objs = {o["@id"]: o for o in as_list(node["CLASS_INF"]["CLASS_OBJ"])}
    return [c["@code"] for c in as_list(objs["time"]["CLASS"])]


def republish(server: EmulatorServer, **release: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/_emulator/republish", content=orjson.dumps(release))


def rows_of(value: list | Raw) -> list[dict[str, Any]]:
    return as_list(orjson.loads(value.data)) if isinstance(value, Raw) else value


# -- (a) new values for some cells ------------------------------------------------------------


def test_revise_some_cells_of_a_generated_table_over_http(
    server: EmulatorServer, client: httpx.Client
) -> None:
    params = {"cdCat01": "B1101", "cdArea": "01100,01101,01102", "metaGetFlg": "N"}
    before = cells(values(data(client, GEN, **params)))
    answer = republish(
        server, statsDataId=GEN, updated_date="2025-09-01", revise={"time": ["2020100000"]}
    )
    assert answer.status_code == 200
    assert answer.json()["UPDATED_DATE"] == "2025-09-01" and answer.json()["revision"] == 1
    body = data(client, GEN, **params)
    assert body["STATISTICAL_DATA"]["TABLE_INF"]["UPDATED_DATE"] == "2025-09-01"
    after = cells(values(body))
    assert after.keys() == before.keys()
    changed = {key for key in after if after[key] != before[key]}
    assert changed and all(key[-1] == "2020100000" for key in changed)
    assert len(changed) >= 2  # 3 cells revised; equal by chance at most rarely
    listed = httpx.get(
        f"{server.api_base}/getStatsList", params={"appId": APP_ID, "updatedDate": "20250901"}
    ).json()["GET_STATS_LIST"]
    assert [t["@id"] for t in as_list(listed["DATALIST_INF"]["TABLE_INF"])] == [GEN]


def test_revise_in_process_on_a_recorded_table() -> None:
    store = TableStore.default()
    table = store.get(REC)
    before = table.values({}, 0, 10)
    store.republish(REC, "2025-07-01", revise=[{"time": ["1981100000"]}, {"time": ["1990100000"]}])
    after = table.values({}, 0, 10)
    assert table.table_inf["UPDATED_DATE"] == "2025-07-01"
    changed = [a["@time"] for a, b in zip(after, before, strict=True) if a["$"] != b["$"]]
    assert changed == ["1981100000", "1990100000"]
    assert after[0]["$"] == str(int(before[0]["$"]) + 1)
    store.republish(REC, "2025-07-02", revise={"time": ["1981100000"]})
    assert table.values({}, 0, 1)[0]["$"] == str(int(before[0]["$"]) + 2)  # a later revision
    assert table.values({}, 9, 1)[0]["$"] == after[9]["$"]  # the earlier one still stands


def test_generated_revisions_stack_and_a_full_perturb_supersedes() -> None:
    store = TableStore.default()
    table = store.get("9900000003")
    original = rows_of(table.values({}, 0, 2_508))
    store.republish("9900000003", "2022-12-08", revise={"cat01": ["11"]})
    first = rows_of(table.values({}, 0, 2_508))
    store.republish("9900000003", "2023-03-09", revise={"time": ["2022000406"]})
    second = rows_of(table.values({}, 0, 2_508))
    for old, one, two in zip(original, first, second, strict=True):
        in_first = old["@cat01"] == "11"
        in_second = old["@time"] == "2022000406"
        if not in_first:
            assert one == old
        if not in_second:
            assert two == one
    assert sum(o["$"] != t["$"] for o, t in zip(original, second, strict=True)) > 100
    store.republish("9900000003", "2023-06-08", perturb=True)
    third = rows_of(table.values({}, 0, 2_508))
    assert sum(t["$"] != s["$"] for t, s in zip(third, second, strict=True)) > 2_000


# -- (b) rows added and removed ---------------------------------------------------------------


def test_recorded_table_loses_a_year_and_gains_a_cell_over_http(
    server: EmulatorServer, client: httpx.Client
) -> None:
    before = data(client, REC)
    assert "1981100000" in time_codes(before["STATISTICAL_DATA"])
    answer = republish(
        server,
        statsDataId=REC,
        updated_date="2025-07-01",
        remove_items={"time": ["1981100000"]},
        add_items={"time": [NEW_YEAR]},
        add_cells=[NEW_CELL],
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["OVERALL_TOTAL_NUMBER"] == 10  # one row out, one in
    body = data(client, REC)
    sd = body["STATISTICAL_DATA"]
    times = [r["@time"] for r in values(body)]
    assert "1981100000" not in times and times[-1] == "2024100000"
    assert sd["RESULT_INF"]["TOTAL_NUMBER"] == sd["TABLE_INF"]["OVERALL_TOTAL_NUMBER"] == 10
    assert values(body)[-1] == NEW_CELL
    for node in (sd, meta(client, REC)):  # CLASS_INF follows: the year is gone, 2024 is new
        codes = time_codes(node)
        assert "1981100000" not in codes and codes[-1] == "2024100000"
        assert len(codes) == 44
    narrowed = data(client, REC, cdTime="2024100000")
    assert values(narrowed) == [NEW_CELL]


def test_recorded_cells_removed_without_touching_class_inf() -> None:
    store = TableStore.default()
    table = store.republish(REC, remove_cells={"time": ["1985100000", "1986100000"]})
    assert table.count({}) == 8 == table.table_inf["OVERALL_TOTAL_NUMBER"]
    assert table.table_inf["UPDATED_DATE"] == "2025-06-21"  # the day after, by default
    assert "1985100000" in next(a for a in table.axes if a.id == "time").codes


def test_recorded_totals_kept_move_by_the_rows_added_and_removed() -> None:
    store = TableStore.from_directory(SAMPLES_DIR, keep_recorded_totals=True)
    table = store.republish(REC, remove_items={"time": ["1981100000", "1982100000"]})
    assert table.table_inf["OVERALL_TOTAL_NUMBER"] == 403_227 - 2


def test_generated_table_withdraws_and_adds_a_year_keeping_other_values(
    server: EmulatorServer, client: httpx.Client
) -> None:
    params = {"cdCat01": "B1103", "cdArea": "01100,01101", "metaGetFlg": "N"}
    before = cells(values(data(client, GEN, **params)))
    answer = republish(
        server,
        statsDataId=GEN,
        updated_date="2025-07-01",
        remove_items={"time": ["1980100000"]},
        add_items={"time": [NEW_YEAR]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["OVERALL_TOTAL_NUMBER"] == 757_548  # 44 years still
    after = cells(values(data(client, GEN, **params)))
    gone = {k for k in before if k[-1] == "1980100000"}
    new = {k for k in after if k[-1] == "2024100000"}
    assert len(gone) == len(new) == 2
    assert {k: v for k, v in before.items() if k not in gone} == {
        k: v for k, v in after.items() if k not in new
    }
    meta_times = time_codes(meta(client, GEN))
    assert meta_times[0] == "1981100000" and meta_times[-1] == "2024100000"
    full = data(client, GEN, cntGetFlg="Y", cdTime="2024100000")
    assert full["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"] == 9 * 1913


def test_generated_cells_removed_and_restored_in_process() -> None:
    store = TableStore.default()
    table = store.get(GEN)
    block = {"cat01": ["B1101"], "area": ["01100"], "time": ["1981100000", "1982100000"]}
    whole = rows_of(table.values({}, 0, 88))  # B1101 × areas 01100 and 01101 × 44 years

    def without(times: list[str]) -> list[dict[str, Any]]:
        return [r for r in whole if not (r["@area"] == "01100" and r["@time"] in times)]

    store.republish(GEN, "2025-07-01", remove_cells=block)
    assert table.count({}) == 757_548 - 2 == table.table_inf["OVERALL_TOTAL_NUMBER"]
    assert rows_of(table.values({}, 0, 86)) == without(block["time"])
    area = {"area": np.array([next(a for a in table.axes if a.id == "area").index["01100"]])}
    assert table.count(area) == 9 * 44 - 2
    cell = {"@tab": "00001", "@cat01": "B1101", "@area": "01100", "@time": "1982100000"}
    store.republish(GEN, "2025-07-02", add_cells=[cell])
    assert table.count({}) == 757_548 - 1
    assert rows_of(table.values({}, 0, 87)) == without(["1981100000"])  # same value as before


# -- (c) a new date, nothing else -------------------------------------------------------------


@pytest.mark.parametrize("table_id", [REC, GEN])
def test_new_date_only(server: EmulatorServer, client: httpx.Client, table_id: str) -> None:
    before = data(client, table_id, limit=500)
    answer = republish(server, statsDataId=table_id, updated_date="2025-10-10", perturb=False)
    assert answer.status_code == 200 and answer.json()["revision"] == 0
    after = data(client, table_id, limit=500)
    assert after["STATISTICAL_DATA"]["TABLE_INF"]["UPDATED_DATE"] == "2025-10-10"
    assert values(after) == values(before)
    assert after["STATISTICAL_DATA"]["CLASS_INF"] == before["STATISTICAL_DATA"]["CLASS_INF"]
    same = {k: v for k, v in after["STATISTICAL_DATA"]["TABLE_INF"].items() if k != "UPDATED_DATE"}
    assert same == {
        k: v for k, v in before["STATISTICAL_DATA"]["TABLE_INF"].items() if k != "UPDATED_DATE"
    }


# -- validation, faults ----------------------------------------------------------------------


def test_an_invalid_release_changes_nothing(server: EmulatorServer, client: httpx.Client) -> None:
    before = data(client, REC)
    for release in (
        {"add_items": {"time": [NEW_YEAR]}, "remove_items": {"time": ["1900100000"]}},
        {"add_cells": [NEW_CELL]},  # 2024100000 is not in CLASS_INF
        {"add_items": {"time": [NEW_YEAR]}, "revise": {"area": ["99999"]}},
        {"remove_items": {"cat09": ["1"]}},
        {"surprise": True},
        {"perturb": "yes"},
    ):
        answer = republish(server, statsDataId=REC, updated_date="2030-01-01", **release)
        assert answer.status_code == 400, release
    assert data(client, REC) | {"RESULT": None} == before | {"RESULT": None}
    bad_gen = republish(server, statsDataId=GEN, add_cells=[{**NEW_CELL, "@time": "1981100000"}])
    assert bad_gen.status_code == 400  # generated tables compute their values: no $
    assert republish(server, statsDataId="0999999999").status_code == 404


def test_release_parsing() -> None:
    release = Release.from_dict({"revise": {"time": "2020100000"}, "remove_cells": {"area": ["1"]}})
    assert release.revise == ({"time": ("2020100000",)},)
    assert release.remove_cells == ({"area": ("1",)},)
    assert release.has_changes and not release.whole_table_perturb("generated")
    assert Release().whole_table_perturb("generated")
    assert not Release().whole_table_perturb("recorded")
    with pytest.raises(ValueError, match="unknown release fields"):
        Release.from_dict({"remove": {}})
    with pytest.raises(ValueError, match="non-empty list"):
        Release.from_dict({"remove_items": {"time": []}})


def test_a_listed_only_table_has_only_dates() -> None:
    store = TableStore.default()
    table = store.republish("0003148500", "2025-01-01")
    assert table.table_inf["UPDATED_DATE"] == "2025-01-01"
    with pytest.raises(ValueError, match="only listed"):
        store.republish("0003148500", remove_items={"time": ["x"]})


def test_republish_fault_with_a_release_during_paging(
    server: EmulatorServer, client: httpx.Client
) -> None:
    server.faults.add(
        kind="republish",
        stats_data_id=REC,
        skip=1,
        updated_date="2025-08-01",
        release={"remove_items": {"time": ["1990100000"]}},
    )
    first = data(client, REC, limit=5)
    second = data(client, REC, limit=5, startPosition=6)
    assert first["STATISTICAL_DATA"]["TABLE_INF"]["UPDATED_DATE"] == "2025-06-20"
    assert second["STATISTICAL_DATA"]["TABLE_INF"]["UPDATED_DATE"] == "2025-08-01"
    assert second["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"] == 9
    assert [r["@time"] for r in values(second)][-1] == "1989100000"
    with pytest.raises(ValueError, match="unknown release fields"):
        server.faults.add(kind="republish", release={"nope": 1})
