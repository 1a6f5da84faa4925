"""``lake/storage.py`` and ``lake/layout.py``: no key, tag or file name can leave the lake.

Every path part is a plain name (``check_part``), and every part made from a key is the key's
canonical form (``layout``): ten ASCII digits for a statsDataId, four for a year,
``[a-z][a-z0-9_]*`` for a domain, a Dagster run id for a run. Local writes are all-or-nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from estat_assets.estat.errors import InvalidDatasetIdError, InvalidYearError
from estat_assets.lake import layout
from estat_assets.lake.layout import UnsafePathError
from estat_assets.lake.storage import Storage, check_part

BAD_PARTS = ["", ".", "..", "a/b", "../x", "a\\b", "/abs", "a\x00b", "line\nbreak", "tab\there"]


@pytest.mark.parametrize("part", BAD_PARTS, ids=repr)
def test_check_part_refuses_anything_but_a_plain_name(part) -> None:
    with pytest.raises(ValueError, match="refusing path part"):
        check_part(part)


@pytest.mark.parametrize("part", [None, 1985, b"raw"], ids=repr)
def test_check_part_refuses_what_is_not_a_string(part) -> None:
    with pytest.raises(ValueError, match="refusing path part"):
        check_part(part)


@pytest.mark.parametrize(
    "part",
    ["raw", "dataset_id=0000020202", "year=1985", "page-001-00001.json", ".published", "..a"],
)
def test_plain_names_pass(part) -> None:
    assert check_part(part) == part


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(str(tmp_path / "lake"))


@pytest.mark.parametrize("part", BAD_PARTS, ids=repr)
def test_storage_paths_refuse_bad_parts_before_touching_anything(storage, tmp_path, part) -> None:
    with pytest.raises(ValueError):
        storage.path("population", part, "manifest.json")
    assert not (tmp_path / "lake").exists() and sorted(os.listdir(tmp_path)) == []


def test_local_writes_are_all_or_nothing(storage, tmp_path) -> None:
    path = storage.path("population", "raw", "manifest.json")
    storage.write_bytes(path, b'{"run_id": "r1"}')
    assert storage.read_bytes(path) == b'{"run_id": "r1"}'

    def broken(fh) -> None:
        fh.write(b'{"run_id": "r2", "half')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        storage.write_with(path, broken)
    assert storage.read_bytes(path) == b'{"run_id": "r1"}'  # the old file, whole
    assert [p.name for p in Path(str(path)).parent.iterdir()] == ["manifest.json"]  # no temp left


def test_list_remove_and_uri(storage) -> None:
    for ds in ("0000020202", "0003065345"):
        storage.write_bytes(storage.path("d", "raw", f"dataset_id={ds}", "manifest.json"), b"{}")
    names = sorted(p.name for p in storage.list_dirs(storage.path("d", "raw")))
    assert names == ["dataset_id=0000020202", "dataset_id=0003065345"]
    assert storage.list_dirs(storage.path("d", "nothing")) == []
    storage.remove(storage.path("d", "raw", "dataset_id=0000020202", "manifest.json"))
    storage.remove(storage.path("d", "raw", "dataset_id=0000020202", "manifest.json"))  # again: ok
    storage.remove_tree(storage.path("d"))
    assert not storage.exists(storage.path("d"))
    assert storage.is_local and storage.uri("d", "raw").endswith("/lake/d/raw")
    assert Storage("file:///tmp/x").is_local and not Storage("s3://b/p").is_local


# ----------------------------------------------------------------------------- layout
@pytest.mark.parametrize(
    "dataset",
    [
        "12345",
        "00000202020",
        "０００００２０２０２",
        " 0000020202",
        "0000020202\n",
        "../0000020",
        "",
        20202,
    ],
)
def test_layout_refuses_non_canonical_dataset_ids(dataset) -> None:
    with pytest.raises(InvalidDatasetIdError):
        layout.dataset_dir("population", "raw", dataset)
    with pytest.raises(InvalidDatasetIdError):
        layout.year_dir("population", dataset, "1985")


@pytest.mark.parametrize(
    "year", ["01985", "985", "１９８５", "1985 ", "+985", "19x5", "", "../1", 1985]
)
def test_layout_refuses_non_canonical_years(year) -> None:
    with pytest.raises(InvalidYearError):
        layout.year_dir("population", "0000020202", year)


@pytest.mark.parametrize(
    "domain",
    [
        "Population",
        "1pop",
        "pop-ulation",
        "../population",
        "pop/x",
        "",
        "pop\n",
        "ｐｏｐ",
        "a" * 64,
        None,
    ],
)
def test_layout_refuses_bad_domains(domain) -> None:
    with pytest.raises(UnsafePathError):
        layout.dataset_dir(domain, "raw", "0000020202")
    with pytest.raises(UnsafePathError):
        layout.audit_file(domain, "2026-01-01", "abc")


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", "-leading", "a b", "x" * 129, None])
def test_layout_refuses_bad_run_ids(run_id) -> None:
    with pytest.raises(UnsafePathError):
        layout.raw_run_dir("population", "0000020202", run_id)


@pytest.mark.parametrize("day", ["2026-1-01", "20260101", "../2026-01-01", "2026-01-01\n"])
def test_layout_refuses_bad_days(day) -> None:
    with pytest.raises(UnsafePathError):
        layout.audit_file("population", day, "abc")


def test_layout_of_a_dataset() -> None:
    run = "8f14e45f-ceea-467f-a0e6-5f1d2a3b4c5d"
    assert layout.dataset_dir("population", "conformed", "0000020202") == (
        "population",
        "conformed",
        "dataset_id=0000020202",
    )
    assert layout.year_dir("population", "0000020202", "1985")[-1] == "year=1985"
    assert layout.raw_run_dir("population", "0000020202", run)[-2:] == ("runs", run)
    assert layout.audit_file("population", "2026-12-06", run) == (
        "population",
        "runs",
        "date=2026-12-06",
        f"{run}.json",
    )
    assert layout.page_name(1, 7) == "page-001-00007.json"
    with pytest.raises(UnsafePathError):
        layout.dataset_dir("population", "table", "0000020202")  # only raw and conformed
