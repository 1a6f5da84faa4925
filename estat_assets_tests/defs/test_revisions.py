"""``<domain>/revisions``: every cell a release changed, as rows, a summary and a warning check.

Each test loads a table from its own emulator, lets e-Stat (the emulator) republish it, loads
again, and compares ``estat.<domain>_revisions`` with an oracle computed independently in Python
from the domain table's rows before and after the second load: exactly the changed cells, with
the old and new ``value_raw``/``value``/``annotation``, both UPDATED_DATEs and the loading run.
"""

from __future__ import annotations

import math
from datetime import date

import dagster as dg
import httpx
import pytest

from estat_assets.defs.sensors import sensor_name
from estat_assets.domains import DomainSpec
from estat_assets.estat.releases import today_jst
from estat_assets.lake.releases import releases
from estat_assets_tests.harness import Lake, checks, make_lake
from estat_emulator import EmulatorServer, TableStore

RECORDED = "0000020202"  # 10 rows, one a fiscal year 1981-1990, UPDATED_DATE 2025-06-20
FIRST_RELEASE = "2025-06-20"
SURVEY = "00200502"
WAGES = "9900000004"  # generated: 540 cells, ~1 % of them "-" with the note 該当数値なし
CODES = ("tab_code", "cat01_code", "cat02_code", "cat03_code", "area_code", "time_code")
PAYLOAD = ("value_raw", "value", "annotation")


@pytest.fixture
def server():
    """An emulator of our own: these tests republish tables."""
    with EmulatorServer(TableStore.default(), host="127.0.0.1", port=0) as s:
        yield s


def lake_of(tmp_path, server, instance, domain: str, dataset: str, **env: str) -> Lake:
    spec = DomainSpec(domain, datasets=(dataset,))
    return make_lake(tmp_path / "home", server, instance, domain=spec, **env)


def republish(server: EmulatorServer, dataset: str, **release) -> dict:
    reply = httpx.post(
        f"{server.url}/_emulator/republish", json={"statsDataId": dataset, **release}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def cells(lake: Lake, dataset: str) -> dict[tuple, dict]:
    """The domain table's cells of a dataset by key (every axis code), with their payload."""
    out = {}
    for row in lake.rows(dataset).to_pylist():
        key = tuple(row.get(c) for c in CODES)
        assert key not in out
        out[key] = {"year": row["year"], **{p: row[p] for p in PAYLOAD}}
    return out


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def oracle(before: dict[tuple, dict], after: dict[tuple, dict]) -> dict[tuple, dict]:
    """key → the revisions row expected, computed from the two states."""
    out = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old is None:
            kind = "added"
        elif new is None:
            kind = "removed"
        elif any(not _same(old[p], new[p]) for p in ("value_raw", "annotation")):
            kind = "revised"
        else:
            continue
        row = {"kind": kind, "year": (new or old)["year"]}
        for p in PAYLOAD:
            row[f"old_{p}"] = (old or {}).get(p)
            row[f"new_{p}"] = (new or {}).get(p)
        out[key] = row
    return out


def revisions(lake: Lake, dataset: str, release: str | None = None) -> dict[tuple, dict]:
    table = lake.iceberg(f"{lake.domain}_revisions")
    rows = table.scan().to_arrow().to_pylist() if table is not None else []
    out = {}
    for row in rows:
        if row["dataset_id"] != dataset:
            continue
        if release is not None and row["new_updated_date"] != date.fromisoformat(release):
            continue
        key = (tuple(row.get(c) for c in CODES), row["new_updated_date"])
        assert key not in out, f"duplicated revisions row {key}"
        out[key] = row
    return out


def as_oracle(rows: dict) -> dict[tuple, dict]:
    fields = ("kind", "year", *(f"{s}_{p}" for p in PAYLOAD for s in ("old", "new")))
    return {key: {f: row[f] for f in fields} for (key, _), row in rows.items()}


def materialization(result: dg.ExecuteInProcessResult, domain: str) -> dict:
    (event,) = result.asset_materializations_for_node(f"{domain}__revisions")
    return {k: v.value for k, v in event.metadata.items()}


def tick(lake: Lake, cursor: str | None):
    sensor = lake.defs.resolve_sensor_def(sensor_name(lake.domain))
    with dg.build_sensor_context(
        instance=lake.instance,
        instance_ref=lake.instance.get_ref(),
        cursor=cursor,
        resources=lake.resources,
        definitions=lake.defs,
    ) as ctx:
        return sensor.evaluate_tick(ctx)


def test_the_release_sensors_run_writes_exactly_the_revised_cells(
    tmp_path, server, instance
) -> None:
    spec = DomainSpec("population", datasets=(RECORDED,), surveys=(SURVEY,))
    lake = make_lake(tmp_path / "home", server, instance, domain=spec)
    first = lake.run(RECORDED)
    assert first.success
    assert revisions(lake, RECORDED) == {}  # a first release revises nothing
    meta = materialization(first, "population")
    assert (meta["revised"], meta["added"], meta["removed"]) == (0, 0, 0)
    assert meta["previous_release"] == "none (first release)"
    baseline = tick(lake, None)
    before = cells(lake, RECORDED)

    today = today_jst().isoformat()
    republish(server, RECORDED, updated_date=today, revise={"time": ["1983100000", "1987100000"]})
    data = tick(lake, baseline.cursor)
    (request,) = data.run_requests
    assert request.tags["estat/release"] == "revised"
    result = lake.run(request.partition_key, tags=request.tags)
    assert result.success
    after = cells(lake, RECORDED)

    expected = oracle(before, after)
    assert {k[-1] for k in expected} == {"1983100000", "1987100000"}
    assert {r["kind"] for r in expected.values()} == {"revised"}
    rows = revisions(lake, RECORDED)
    assert as_oracle(rows) == expected
    for row in rows.values():
        assert row["old_updated_date"] == date.fromisoformat(FIRST_RELEASE)
        assert row["new_updated_date"] == date.fromisoformat(today)
        assert row["run_id"] == result.run_id == row["revisions_run_id"]
        assert row["change"] == row["new_value"] - row["old_value"]
        assert row["relative_change"] == pytest.approx(row["change"] / abs(row["old_value"]))
    table = lake.iceberg()
    tags = {r.updated_date: r for r in releases(table, RECORDED)}
    assert sorted(tags) == [FIRST_RELEASE, today]
    assert {r["new_snapshot_id"] for r in rows.values()} == {tags[today].snapshot_id}
    assert {r["old_snapshot_id"] for r in rows.values()} == {tags[FIRST_RELEASE].snapshot_id}

    meta = materialization(result, "population")
    assert (meta["revised"], meta["added"], meta["removed"]) == (2, 0, 0)
    assert meta["release"] == today and meta["previous_release"] == FIRST_RELEASE
    assert meta["revised_share"] == 0.2 and meta["cells"] == meta["previous_cells"] == 10
    summary = meta["summary"]
    assert summary["per_year"] == {
        "1983": {"revised": 1, "added": 0, "removed": 0},
        "1987": {"revised": 1, "added": 0, "removed": 0},
    }
    largest = summary["largest_relative_revisions"]
    assert {r["keys"]["time"] for r in largest} == {"1983100000", "1987100000"}
    magnitudes = [abs(r["relative_change"]) for r in largest]
    assert magnitudes == sorted(magnitudes, reverse=True)
    check = checks(result)["revision_share"]
    assert check.partition == RECORDED
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # 20 % > 10 %

    releases_table = lake.iceberg("population_releases").scan().to_arrow().to_pylist()
    by_day = {r["updated_date"].isoformat(): r for r in releases_table}
    assert sorted(by_day) == [FIRST_RELEASE, today]
    assert (by_day[today]["revised"], by_day[today]["added"], by_day[today]["removed"]) == (2, 0, 0)
    assert by_day[today]["snapshot_id"] == tags[today].snapshot_id
    assert by_day[today]["previous_updated_date"] == date.fromisoformat(FIRST_RELEASE)

    # A rerun of the same release writes the same rows in their place: never a duplicate.
    again = lake.run(RECORDED)
    assert again.success
    assert as_oracle(revisions(lake, RECORDED)) == expected
    assert len(lake.iceberg("population_releases").scan().to_arrow()) == 2


def test_a_release_that_changes_nothing_has_no_revisions(tmp_path, server, instance) -> None:
    lake = lake_of(tmp_path, server, instance, "population", RECORDED)
    assert lake.run(RECORDED).success
    republish(server, RECORDED, updated_date="2030-01-01", perturb=False)
    result = lake.run(RECORDED)
    assert result.success
    assert revisions(lake, RECORDED) == {}
    meta = materialization(result, "population")
    assert (meta["release"], meta["previous_release"]) == ("2030-01-01", FIRST_RELEASE)
    assert (meta["revised"], meta["added"], meta["removed"], meta["revised_share"]) == (0, 0, 0, 0)
    assert meta["summary"]["largest_relative_revisions"] == []
    assert checks(result)["revision_share"].passed
    row = next(
        r
        for r in lake.iceberg("population_releases").scan().to_arrow().to_pylist()
        if r["updated_date"] == date(2030, 1, 1)
    )
    assert (row["revised"], row["added"], row["removed"], row["rows"]) == (0, 0, 0, 10)


def test_rows_added_and_removed_by_a_release_show_those_kinds(tmp_path, server, instance) -> None:
    """0000020202 republished: fiscal 1981 withdrawn (gone from CLASS_INF: the shrink guard
    accepts it), 1991's cell added (its code is in CLASS_INF already), 1985 revised."""
    lake = lake_of(tmp_path, server, instance, "population", RECORDED)
    assert lake.run(RECORDED).success
    before = cells(lake, RECORDED)
    republish(
        server,
        RECORDED,
        updated_date="2030-02-01",
        perturb=False,
        remove_items={"time": ["1981100000"]},
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
        revise={"time": ["1985100000"]},
    )
    result = lake.run(RECORDED)
    assert result.success
    after = cells(lake, RECORDED)
    expected = oracle(before, after)
    kinds = {k[-1]: r["kind"] for k, r in expected.items()}
    assert kinds == {"1981100000": "removed", "1991100000": "added", "1985100000": "revised"}
    rows = revisions(lake, RECORDED, "2030-02-01")
    assert as_oracle(rows) == expected
    removed = next(r for r in rows.values() if r["kind"] == "removed")
    assert (
        removed["new_value_raw"] is None
        and removed["old_value_raw"]
        == before[next(k for k in before if k[-1] == "1981100000")]["value_raw"]
    )
    added = next(r for r in rows.values() if r["kind"] == "added")
    assert (added["old_value_raw"], added["new_value_raw"], added["year"]) == (None, "112121", 1991)
    assert added["change"] is None and added["relative_change"] is None
    meta = materialization(result, "population")
    assert (meta["revised"], meta["added"], meta["removed"]) == (1, 1, 1)
    assert meta["summary"]["per_year"] == {
        "1981": {"revised": 0, "added": 0, "removed": 1},
        "1985": {"revised": 1, "added": 0, "removed": 0},
        "1991": {"revised": 0, "added": 1, "removed": 0},
    }
    assert checks(result)["revision_share"].passed  # 1 of 10 past values: at the threshold


def test_a_perturbed_generated_table_revises_values_and_annotations(
    tmp_path, server, instance
) -> None:
    lake = lake_of(tmp_path, server, instance, "labor", WAGES, ESTAT_REVISION_WARN_SHARE="1")
    assert lake.run(WAGES).success
    before = cells(lake, WAGES)
    assert any(c["annotation"] for c in before.values())  # "-" cells carry 該当数値なし
    server.store.republish(WAGES, "2030-03-01", perturb=True)
    result = lake.run(WAGES)
    assert result.success
    after = cells(lake, WAGES)
    expected = oracle(before, after)
    assert len(expected) > 500
    notes = [r for r in expected.values() if r["old_annotation"] != r["new_annotation"]]
    assert notes  # a value became "-" (or stopped being one): the annotation changed with it
    rows = revisions(lake, WAGES, "2030-03-01")
    assert as_oracle(rows) == expected
    for row in rows.values():
        if row["old_value"] is None or row["new_value"] is None:
            assert row["change"] is None
    assert checks(result)["revision_share"].passed  # ESTAT_REVISION_WARN_SHARE=1: never warns


def test_revisions_is_part_of_the_domain_job_after_the_table(tmp_path, server, instance) -> None:
    lake = lake_of(tmp_path, server, instance, "population", RECORDED)
    job = lake.defs.resolve_job_def("population_job")
    assert "population__revisions" in job.graph.node_dict
    asset = lake.defs.resolve_assets_def(dg.AssetKey(["population", "revisions"]))
    assert dg.AssetKey(["population", "table"]) in asset.dependency_keys
    assert asset.group_names_by_key[asset.key] == "population"
    specs = list(asset.check_specs)
    assert [s.name for s in specs] == ["revision_share"]
    # a refused load writes no revisions: the step is skipped with the table
    result = lake.run(RECORDED, years="abc")
    assert not result.success
    assert lake.iceberg("population_revisions") is None


def test_a_retention_drops_superseded_releases_after_diffing_them(
    tmp_path, server, instance
) -> None:
    """ESTAT_RELEASE_RETENTION_DAYS=30: the release superseded on 2026-01-01 (long ago) goes
    once the new one is diffed; the current release stays however old."""
    lake = lake_of(
        tmp_path, server, instance, "population", RECORDED, ESTAT_RELEASE_RETENTION_DAYS="30"
    )
    assert lake.run(RECORDED).success
    republish(server, RECORDED, updated_date="2026-01-01", revise={"time": ["1990100000"]})
    result = lake.run(RECORDED)
    assert result.success
    assert len(revisions(lake, RECORDED, "2026-01-01")) == 1  # compared before the tag went
    assert [r.updated_date for r in releases(lake.iceberg(), RECORDED)] == ["2026-01-01"]
