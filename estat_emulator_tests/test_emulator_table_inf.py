"""TABLE_INF of generated tables is complete (every real field, e-Stat's order) in all three
endpoints, and the bytes served for tables that existed before stay what they were."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, GeneratedSpec, TableStore, benchmark_spec
from estat_emulator.generate import build_generated
from estat_emulator.table_inf import FIELD_ORDER

APP_ID = "table-inf-test"
GENERATED = [
    "9900020202",
    "9903065345",
    *(f"990000000{i}" for i in range(1, 8)),
]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(TableStore.default()) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_base, timeout=60) as c:
        yield c


def get(client: httpx.Client, endpoint: str, **params: Any) -> httpx.Response:
    response = client.get(f"/{endpoint}", params={"appId": APP_ID, **params})
    assert response.status_code == 200
    return response


def _code_value(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"@code", "$"} and isinstance(node["$"], str)


def assert_complete(inf: dict[str, Any]) -> None:
    """What a strict peer model (estat-api-dlt-helper 0.3.2 ``TableInf``) requires, and more."""
    fields = [k for k in inf if k in FIELD_ORDER]
    assert fields == list(FIELD_ORDER), inf["@id"]  # all of them, in e-Stat's order
    assert re.fullmatch(r"\d{10}", inf["@id"])
    for key in ("STAT_NAME", "GOV_ORG", "MAIN_CATEGORY", "SUB_CATEGORY"):
        assert _code_value(inf[key]), (inf["@id"], key)
    title = inf["TITLE"]
    assert isinstance(title, str) or (isinstance(title, dict) and set(title) == {"@no", "$"})
    for key in ("STATISTICS_NAME", "CYCLE", "OPEN_DATE", "COLLECT_AREA", "UPDATED_DATE"):
        assert isinstance(inf[key], str), (inf["@id"], key)
    assert isinstance(inf["SURVEY_DATE"], int | str)
    assert isinstance(inf["SMALL_AREA"], int | str)
    assert isinstance(inf["OVERALL_TOTAL_NUMBER"], int)
    assert isinstance(inf["STATISTICS_NAME_SPEC"]["TABULATION_CATEGORY"], str)
    assert isinstance(inf["TITLE_SPEC"]["TABLE_NAME"], str)
    assert inf["DESCRIPTION"] == "" or isinstance(inf["DESCRIPTION"], dict)
    assert "SYNTHETIC" in inf


@pytest.mark.parametrize("table_id", GENERATED)
def test_generated_table_inf_is_complete_everywhere(client: httpx.Client, table_id: str) -> None:
    meta = get(client, "getMetaInfo", statsDataId=table_id).json()["GET_META_INFO"]
    data = get(client, "getStatsData", statsDataId=table_id, limit=1).json()["GET_STATS_DATA"]
    listed = get(client, "getStatsList", searchWord="合成データ").json()["GET_STATS_LIST"]
    from_list = {t["@id"]: t for t in as_list(listed["DATALIST_INF"]["TABLE_INF"])}[table_id]
    from_meta = meta["METADATA_INF"]["TABLE_INF"]
    from_data = data["STATISTICAL_DATA"]["TABLE_INF"]
    assert from_meta == from_data == from_list
    assert_complete(from_meta)
    assert (
        from_meta["OVERALL_TOTAL_NUMBER"] == data["STATISTICAL_DATA"]["RESULT_INF"]["TOTAL_NUMBER"]
    )


def test_a_v2_base_gets_the_fields_api_3_added(client: httpx.Client) -> None:
    """9903065345 is built on a v2.1 recording without COLLECT_AREA and DESCRIPTION."""
    base = get(client, "getMetaInfo", statsDataId="0003065345").json()
    base_inf = base["GET_META_INFO"]["METADATA_INF"]["TABLE_INF"]
    assert "COLLECT_AREA" not in base_inf and "DESCRIPTION" not in base_inf  # served as recorded
    inf = get(client, "getMetaInfo", statsDataId="9903065345").json()
    inf = inf["GET_META_INFO"]["METADATA_INF"]["TABLE_INF"]
    assert inf["COLLECT_AREA"] == "該当なし"
    assert inf["DESCRIPTION"] == ""
    assert {k: v for k, v in inf.items() if k not in ("COLLECT_AREA", "DESCRIPTION")} == {
        **base_inf,
        "@id": "9903065345",
        "STATISTICS_NAME": "【合成データ】" + base_inf["STATISTICS_NAME"],
        "TITLE": {**base_inf["TITLE"], "$": "【合成データ】" + base_inf["TITLE"]["$"]},
        "OVERALL_TOTAL_NUMBER": 960_336,
        "UPDATED_DATE": "2016-07-30",
        "SYNTHETIC": inf["SYNTHETIC"],
    }


def test_benchmark_specs_are_complete_too() -> None:
    table = build_generated(GeneratedSpec.from_document(benchmark_spec("9990000001", 10_000)), None)
    assert_complete(table.table_inf)
    assert table.table_inf["TITLE_SPEC"] == {"TABLE_NAME": "ベンチマーク用合成表 10,000 セル"}
    assert table.table_inf["STATISTICS_NAME_SPEC"] == {
        "TABULATION_CATEGORY": "ベンチマーク用合成統計"
    }


# Response bytes (RESULT.DATE masked) recorded before the emulator learnt releases, English and
# complete TABLE_INF: tables that existed must serve the same bytes for the same requests.
BEFORE = [
    ("getStatsData", {"statsDataId": "0000020202"}, "1b1ffb8201652903"),
    (
        "getStatsData",
        {"statsDataId": "0000020202", "lang": "J", "limit": "1000", "startPosition": "5"},
        "3967859ef556cc0e",
    ),
    (
        "getStatsData",
        {"statsDataId": "0000020202", "cdTimeFrom": "1990100000", "limit": "3000"},
        "ec6d7cf51d510c12",
    ),
    ("getMetaInfo", {"statsDataId": "0000020202"}, "ac1e1971de5a0752"),
    ("getStatsData", {"statsDataId": "0003065345"}, "88579e3dee953c1e"),
    (
        "getStatsData",
        {"statsDataId": "0003065345", "metaGetFlg": "N", "startPosition": "100001"},
        "7e7b4ddd3964de5a",
    ),
    ("getMetaInfo", {"statsDataId": "9900020202"}, "3638489c5b22728e"),
    ("getStatsData", {"statsDataId": "9900020202"}, "58c019cd1c203c68"),
    (
        "getStatsData",
        {"statsDataId": "9900020202", "metaGetFlg": "N", "startPosition": "100001"},
        "581b98bcf63ff090",
    ),
    (
        "getStatsData",
        {"statsDataId": "9900020202", "cdTimeFrom": "1990100000", "limit": "3000"},
        "6b63253d700579e7",
    ),
    (
        "getStatsData",
        {"statsDataId": "9900020202", "lvArea": "2", "limit": "5000"},
        "6c1362e9c79d63c0",
    ),
    ("getStatsList", {"statsCode": "00200521"}, "8cc377883616aa51"),
    ("getDataCatalog", {}, "4b5f0b6d2b204066"),
]


def _digest(body: bytes) -> str:
    body = re.sub(rb'"DATE":"[^"]*"', b'"DATE":"-"', body, count=1)
    return hashlib.sha256(body).hexdigest()[:16]


@pytest.mark.parametrize(("endpoint", "params", "digest"), BEFORE)
def test_existing_tables_serve_the_same_bytes(
    client: httpx.Client, endpoint: str, params: dict[str, str], digest: str
) -> None:
    assert _digest(get(client, endpoint, **params).content) == digest


def test_9903065345_differs_only_by_the_two_new_fields(client: httpx.Client) -> None:
    added = (
        b'"COLLECT_AREA":"\\u8A72\\u5F53\\u306A\\u3057",',
        b',"DESCRIPTION":""',
    )
    for params, digest in (
        ({"statsDataId": "9903065345"}, "b2c27d799db889db"),
        (
            {"statsDataId": "9903065345", "metaGetFlg": "N", "startPosition": "100001"},
            "2f2bbf2cf77afb64",
        ),
    ):
        body = get(client, "getStatsData", **params).content
        for part in added:
            assert body.count(part) == 1
            body = body.replace(part, b"")
        assert _digest(body) == digest


def test_lang_j_is_the_default(client: httpx.Client) -> None:
    for table_id in ("0000020202", "9900000003", "9903065345"):
        plain = get(client, "getMetaInfo", statsDataId=table_id).content
        explicit = get(client, "getMetaInfo", statsDataId=table_id, lang="J").content
        assert _digest(plain) == _digest(explicit)
