"""The shrink guard's rule, on its own: when may a year lose rows?"""

from __future__ import annotations

from estat_assets.quality.shrink import judge_shrinks, refusal


def _judge(
    held,
    offered,
    *,
    held_release="2025-01-01",
    new_release="2025-02-01",
    in_meta=None,
    year_count=None,
    table_count=None,
):
    asked: list[str] = []

    def count_year(y: str) -> int:
        asked.append(y)
        return (year_count or {}).get(y, 0)

    def count_table() -> int:
        asked.append("table")
        return table_count if table_count is not None else sum(offered.values())

    shrinks = judge_shrinks(
        held,
        offered,
        held_release=dict.fromkeys(held, held_release),
        new_release=new_release,
        years_in_metadata=set(in_meta if in_meta is not None else offered),
        count_year=count_year,
        count_table=count_table,
        offered_total=sum(offered.values()),
    )
    return shrinks, asked


def test_growing_or_equal_years_need_no_evidence() -> None:
    shrinks, asked = _judge({"2020": 5, "2021": 5}, {"2020": 5, "2021": 7})
    assert shrinks == [] and asked == []


def test_same_release_fewer_rows_is_refused_without_asking() -> None:
    shrinks, asked = _judge({"2020": 5}, {"2020": 4}, new_release="2025-01-01")
    assert [s.accepted for s in shrinks] == [False] and asked == []
    error = refusal("0000000001", shrinks, "2025-01-01")
    assert error is not None and "2020: held 5 rows, offered 4" in error.message
    assert error.message.count("0000000001") == 1 and "allow_shrink" in str(error)


def test_unknown_held_release_is_refused() -> None:
    shrinks, _ = _judge({"2020": 5}, {"2020": 4}, held_release=None)
    assert not shrinks[0].accepted


def test_new_release_shrink_is_accepted_when_the_count_agrees() -> None:
    shrinks, asked = _judge({"2020": 5}, {"2020": 4}, year_count={"2020": 4})
    assert shrinks[0].accepted and shrinks[0].counted == 4 and asked == ["2020"]
    assert refusal("0000000001", shrinks, "b") is None


def test_new_release_shrink_is_refused_when_the_count_disagrees() -> None:
    shrinks, _ = _judge({"2020": 5}, {"2020": 0}, year_count={"2020": 5})
    assert not shrinks[0].accepted and "count request says 5" in shrinks[0].reason


def test_a_withdrawn_year_needs_the_table_count_to_agree() -> None:
    ok, asked = _judge({"2019": 3, "2020": 5}, {"2020": 5}, in_meta={"2020"})
    assert ok[0].year == "2019" and ok[0].accepted and asked == ["table"]
    bad, _ = _judge({"2019": 3, "2020": 5}, {"2020": 5}, in_meta={"2020"}, table_count=8)
    assert not bad[0].accepted and "no longer lists 2019" in bad[0].reason


def test_each_year_is_judged_by_the_release_it_holds() -> None:
    """After a load of some years of a new release, the other years still hold the old one."""
    shrinks = judge_shrinks(
        {"2019": 2, "2020": 5},
        {"2019": 1, "2020": 4},
        held_release={"2019": "2025-01-01", "2020": "2025-02-01"},
        new_release="2025-02-01",
        years_in_metadata={"2019", "2020"},
        count_year=lambda y: {"2019": 1, "2020": 5}[y],
        count_table=lambda: 0,
        offered_total=5,
    )
    verdict = {s.year: (s.accepted, s.reason) for s in shrinks}
    assert verdict["2019"][0] is True  # a new release for 2019, and the count agrees
    assert verdict["2020"][0] is False and "same release" in verdict["2020"][1]
