"""Never empty a good slice: when may a load replace a year with fewer rows (or none)?

A transient e-Stat answer ("no data", a short page set that still agrees with itself) must not
erase what the lake holds. A year slice that held rows is replaced by fewer only when independent
evidence agrees that e-Stat really publishes fewer now:

1. it is a **new release**: the table's ``UPDATED_DATE`` differs from the release the slice came
   from (the same release answering with fewer rows is e-Stat contradicting itself), and
2. a **separate count request** agrees: ``cntGetFlg=Y`` narrowed to the year's time codes gives
   exactly the new number; for a year the new metadata no longer lists at all (withdrawn), the
   count of the whole table must equal what the load received.

Otherwise the load is refused with :class:`SliceShrinkRefusedError`, naming each year, the rows
held and offered, both releases and what the count said; the slices, quarantine, class codes and
inventory stay as they were. An operator who knows better sets the run tag
``estat/allow_shrink=true``. Rows count clean + quarantined, so a stricter check that quarantines
more rows is not a shrink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from estat_assets.estat.errors import EStatError


class SliceShrinkRefusedError(EStatError):
    """A load would replace year slices with fewer rows without evidence that e-Stat did."""

    retryable = False
    hint = (
        "nothing was changed; rerun later (a transient e-Stat answer), or, if e-Stat really "
        "withdrew these rows, rerun with the tag estat/allow_shrink=true (CLI: --allow-shrink)"
    )


@dataclass(frozen=True)
class Shrink:
    year: str
    held: int
    offered: int
    counted: int | None  # what the count request said (None: not asked)
    accepted: bool
    reason: str


def judge_shrinks(
    held: Mapping[str, int],
    offered: Mapping[str, int],
    *,
    held_release: Mapping[str, str | None],
    new_release: str | None,
    years_in_metadata: set[str],
    count_year: Callable[[str], int],
    count_table: Callable[[], int],
    offered_total: int,
) -> list[Shrink]:
    """Every year whose rows would go down, with the verdict and its evidence.

    ``held``/``offered`` are rows per year (clean + quarantined) before and after; only years in
    ``offered`` or (for a whole-table load) in ``held`` are judged by the caller's choice of keys.
    ``held_release`` is the release each held year came from (years of one dataset can hold
    different releases after a load of some years). The count functions are called only for
    shrinking years of a new release.
    """
    out: list[Shrink] = []
    for year in sorted(held):
        before, after = held[year], offered.get(year, 0)
        if after >= before:
            continue
        release = held_release.get(year)
        if not release or new_release == release:
            why = (
                f"the same release ({new_release}) now answers with fewer rows"
                if release
                else "the release it came from is unknown"
            )
            out.append(Shrink(year, before, after, None, False, why))
            continue
        if year in years_in_metadata:
            counted = count_year(year)
            ok = counted == after
            why = f"count request says {counted:,}"
        else:
            counted = count_table()
            ok = counted == offered_total
            why = (
                f"the new metadata no longer lists {year}; the table count says {counted:,}, "
                f"the load received {offered_total:,}"
            )
        out.append(Shrink(year, before, after, counted, ok, why))
    return out


def refusal(
    dataset_id: str, shrinks: list[Shrink], new_release: str | None
) -> SliceShrinkRefusedError | None:
    refused = [s for s in shrinks if not s.accepted]
    if not refused:
        return None
    shown = "; ".join(
        f"{s.year}: held {s.held:,} rows, offered {s.offered:,} ({s.reason})" for s in refused[:5]
    )
    more = f"; and {len(refused) - 5} more years" if len(refused) > 5 else ""
    return SliceShrinkRefusedError(
        f"refusing to replace {len(refused)} year slice(s) with fewer rows without evidence "
        f"(release offered {new_release or 'unknown'}): {shown}{more}",
        stats_data_id=dataset_id,
    )
