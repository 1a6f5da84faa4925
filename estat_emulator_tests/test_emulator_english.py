"""``lang=E``: English TABLE_INF texts and CLASS names from the data files, Japanese where none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, TableStore
from estat_emulator.english import EnglishNames
from estat_emulator.store import SAMPLES_DIR

APP_ID = "english-test"
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(TableStore.default()) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_base, timeout=60) as c:
        yield c


def body(client: httpx.Client, endpoint: str, status: int = 0, **params: Any) -> dict[str, Any]:
    response = client.get(f"/{endpoint}", params={"appId": APP_ID, **params})
    assert response.status_code == 200
    (value,) = response.json().values()
    assert value["RESULT"]["STATUS"] == status
    return value


def meta(client: httpx.Client, table_id: str, lang: str) -> dict[str, Any]:
    return body(client, "getMetaInfo", statsDataId=table_id, lang=lang)["METADATA_INF"]


def axes(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["@id"]: o for o in as_list(node["CLASS_INF"]["CLASS_OBJ"])}


def names(obj: dict[str, Any]) -> dict[str, str]:
    return {c["@code"]: c["@name"] for c in as_list(obj["CLASS"])}


def test_english_table_inf_keeps_shapes_and_codes(client: httpx.Client) -> None:
    ja = meta(client, "0000020202", "J")["TABLE_INF"]
    en = meta(client, "0000020202", "E")["TABLE_INF"]
    assert list(en) == list(ja)  # same fields, same order
    assert en["TITLE"] == {"@no": "0000020202", "$": "B Natural environment"}
    assert en["STAT_NAME"] == {
        "@code": "00200502",
        "$": "System of Social and Demographic Statistics",
    }
    assert en["GOV_ORG"]["$"] == "Ministry of Internal Affairs and Communications"
    assert en["CYCLE"] == "Fiscal year" and en["COLLECT_AREA"] == "Municipalities"
    assert en["MAIN_CATEGORY"] == {"@code": "99", "$": "Others"}
    assert en["STATISTICS_NAME_SPEC"]["TABULATION_CATEGORY"] == "Municipality data"
    assert not JAPANESE.search(orjson.dumps(en).decode())
    for key in ("@id", "SURVEY_DATE", "OPEN_DATE", "OVERALL_TOTAL_NUMBER", "UPDATED_DATE"):
        assert en[key] == ja[key]


def test_english_class_names_and_fallback(client: httpx.Client) -> None:
    ja = axes(meta(client, "0000020202", "J"))
    en = axes(meta(client, "0000020202", "E"))
    assert en["cat01"]["@name"] == "B Natural environment"
    assert names(en["cat01"])["B1103"] == "B1103_Inhabitable area"
    assert en["time"]["@name"] == "Survey year"
    assert names(en["time"])["1980100000"] == "FY1980"  # a vocabulary pattern
    area_en, area_ja = names(en["area"]), names(ja["area"])
    assert area_en["01100"] == "Hokkaido Sapporo-shi"  # part by part
    assert area_en["01101"] == "Hokkaido Sapporo-shi Chuo-ku"
    # a municipality nobody translated keeps its Japanese name (see english.py)
    assert area_en["47382"] == area_ja["47382"] == "沖縄県 与那国町"
    for axis_id, obj in ja.items():  # codes, levels, parents and units are untouched
        strip = [{k: v for k, v in c.items() if k != "@name"} for c in as_list(obj["CLASS"])]
        assert strip == [
            {k: v for k, v in c.items() if k != "@name"} for c in as_list(en[axis_id]["CLASS"])
        ]
    assert names(en["cat01"]) != names(ja["cat01"])
    assert as_list(en["cat01"]["CLASS"])[0]["@unit"] == "ｈａ"  # units stay as e-Stat gives them


def test_generated_tables_use_their_base_names_and_keep_the_label(client: httpx.Client) -> None:
    en = meta(client, "9900020202", "E")
    base = meta(client, "0000020202", "E")
    assert en["TABLE_INF"]["TITLE"]["$"] == "【合成データ】B Natural environment"
    assert en["TABLE_INF"]["STATISTICS_NAME"].startswith("【合成データ】Municipality data")
    assert en["CLASS_INF"] == base["CLASS_INF"]
    quarterly = meta(client, "9900000003", "E")
    assert quarterly["TABLE_INF"]["TITLE"].startswith("【合成データ】Gross domestic product")
    assert (
        quarterly["TABLE_INF"]["MAIN_CATEGORY"]["$"] == "Economy, Business and Household Finances"
    )
    objs = axes(quarterly)
    assert names(objs["time"])["1994000103"] == "Jan.-Mar. 1994"
    assert names(objs["cat01"])["13"].startswith("Private final consumption expenditure_")
    assert objs["tab"]["@description"].startswith("Where the Excel tables")
    # a borrowed axis takes the English of the table it comes from (and the vocabulary)
    area = names(axes(meta(client, "9900000005", "E"))["area"])
    assert area["00000"] == "Japan" and area["13000"] == "Tokyo-to"


def test_get_stats_data_and_list_in_english(client: httpx.Client) -> None:
    data = body(client, "getStatsData", statsDataId="9900000004", lang="E", limit=5)
    sd = data["STATISTICAL_DATA"]
    assert data["PARAMETER"]["LANG"] == "E"
    assert sd["TABLE_INF"]["GOV_ORG"]["$"] == "Ministry of Health, Labour and Welfare"
    assert axes(sd)["cat01"]["@name"] == "Employment type"
    assert sd["DATA_INF"]["NOTE"] == {"@char": "-", "$": "No corresponding figures"}
    ja = body(client, "getStatsData", statsDataId="9900000004", limit=5)["STATISTICAL_DATA"]
    assert sd["DATA_INF"]["VALUE"] == ja["DATA_INF"]["VALUE"]  # values never change with lang
    listing = body(client, "getStatsList", lang="E", searchWord="hospitals")["DATALIST_INF"]
    (hit,) = as_list(listing["TABLE_INF"])
    assert hit["@id"] == "9900000005" and hit["CYCLE"] == "Annual"
    # an English search looks at the English texts, which keep Japanese where none was given
    kept = body(client, "getStatsList", lang="E", searchWord="与那国町")["DATALIST_INF"]
    assert {"0000020202", "9900020202"} <= {t["@id"] for t in as_list(kept["TABLE_INF"])}
    body(client, "getStatsList", status=1, lang="E", searchWord="自然環境")  # translated away


def test_untranslated_tables_fall_back_to_japanese(client: httpx.Client) -> None:
    listing = body(client, "getStatsList", lang="E", statsCode="00200521")["DATALIST_INF"]
    inf = as_list(listing["TABLE_INF"])[0]
    assert inf["STAT_NAME"]["$"] == "Population Census"  # vocabulary by code
    assert inf["TITLE"]["$"].startswith("人口，人口増減")  # no English title anywhere
    assert inf["COLLECT_AREA"] == "Not applicable"


def test_recorded_note_legend_in_english(client: httpx.Client) -> None:
    sd = body(client, "getStatsData", statsDataId="0003065345", lang="E", metaGetFlg="N")
    notes = {n["@char"]: n["$"] for n in sd["STATISTICAL_DATA"]["DATA_INF"]["NOTE"]}
    assert notes["***"] == "Not tabulated for this attribute"
    assert notes["0:00"] == "Time of day"
    assert len(notes) == 1564


def test_english_files_are_found_by_content(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(
        (SAMPLES_DIR / "v3/getStatsData_0000020202_limit10.json").read_bytes()
    )
    (tmp_path / "names.json").write_text(
        '{"ENGLISH_NAMES": {"statsDataId": "0000020202", "TABLE_INF": {"TITLE": "Nature"}}}'
    )
    (tmp_path / "bad.json").write_text('{"ENGLISH_NAMES": {"neither": 1}}')
    store = TableStore.from_directory(tmp_path)
    assert "0000020202" in store.english
    assert store.english.table_inf(store.get("0000020202"))["TITLE"]["$"] == "Nature"
    with pytest.raises(ValueError, match="statsDataId or vocabulary"):
        EnglishNames().add({"ENGLISH_NAMES": {"neither": 1}})


def test_english_follows_a_release(client: httpx.Client) -> None:
    store = TableStore.default()
    table = store.get("0000020202")
    before = store.english.axes(table)
    store.republish("0000020202", "2025-07-01", remove_items={"time": ["1980100000"]})
    after = store.english.axes(table)
    assert len(as_list(after[-1].items)) == len(before[-1].items) - 1
    assert store.english.table_inf(table)["UPDATED_DATE"] == "2025-07-01"
