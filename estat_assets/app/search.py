"""Search e-Stat's tables (getStatsList) and say which are in the lake already.

Words are e-Stat's ``searchWord`` (``AND``/``OR``/``NOT`` as e-Stat reads them); the language
follows the words unless given: Japanese words search the Japanese texts, ASCII words the
English ones (``lang=E``; e-Stat has English for many tables). Filters: a survey (``statsCode``,
5-digit organisation or 8-digit survey code), survey years (``2020``, ``2010-2013``) and a
statistical field (``statsField``: ``02`` 人口・世帯, or four digits with the sub-field).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from estat_assets import CREDIT_NOTICE, CREDIT_NOTICE_EN
from estat_assets.app.citation import estat_url
from estat_assets.app.context import LakeContext
from estat_assets.app.errors import AppError, app_error
from estat_assets.estat.models import TableInfo
from estat_assets.estat.shape import as_dict, as_list

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass
class SearchHit:
    stats_data_id: str
    title: str | None
    survey: str | None
    survey_code: str | None
    organisation: str | None
    cycle: str | None
    survey_date: str | None
    updated_date: str | None
    rows: int | None  # e-Stat's OVERALL_TOTAL_NUMBER
    field_code: str | None
    field: str | None
    in_lake: str  # loaded | added | no
    domain: str | None
    rows_in_lake: int | None
    synthetic: bool
    url: str
    lang: str


@dataclass
class SearchAnswer:
    words: str
    lang: str
    filters: dict[str, str]
    total: int  # how many tables e-Stat matched
    hits: list[SearchHit] = field(default_factory=list)
    credit: str = CREDIT_NOTICE
    credit_en: str = CREDIT_NOTICE_EN

    @property
    def truncated(self) -> bool:
        return self.total > len(self.hits)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["truncated"] = self.truncated
        out["citation"] = {
            "source": "e-Stat getStatsList",
            "tables": [h.url for h in self.hits],
            "credit": self.credit,
            "credit_en": self.credit_en,
        }
        return out


def pick_lang(words: str, lang: str | None) -> str:
    if lang:
        lang = lang.upper()
        if lang not in ("J", "E"):
            raise AppError("bad_lang", f"lang {lang!r}", "use J (Japanese) or E (English)")
        return lang
    return "E" if words.isascii() and re.search(r"[A-Za-z]", words) else "J"


def survey_years(years: str) -> str:
    """``2020`` / ``2010-2013`` / ``202001-202012`` → getStatsList ``surveyYears``."""
    text = years.strip()
    one = re.fullmatch(r"([0-9]{4}|[0-9]{6})", text)
    if one:
        return text
    span = re.fullmatch(r"([0-9]{4}|[0-9]{6})\s*-\s*([0-9]{4}|[0-9]{6})", text)
    if span:
        low, high = span.groups()
        low = low if len(low) == 6 else low + "01"
        high = high if len(high) == 6 else high + "12"
        return f"{low}-{high}"
    raise AppError(
        "bad_years",
        f"years {years!r} are not a year or a range",
        "write 2020, 2010-2013 or 202001-202012",
        retryable=True,
    )


def search(
    ctx: LakeContext,
    words: str = "",
    *,
    survey: str | None = None,
    years: str | None = None,
    field_code: str | None = None,
    lang: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> SearchAnswer:
    """getStatsList hits (first ``limit``) with whether each table is in the lake."""
    words = " ".join((words or "").split())
    lang = pick_lang(words, lang)
    params: dict[str, Any] = {}
    if words:
        params["searchWord"] = words
    if survey:
        if not re.fullmatch(r"[0-9]{5}|[0-9]{8}", survey.strip()):
            raise AppError(
                "bad_survey",
                f"survey {survey!r} is not a survey code",
                "give an 8-digit survey code (e.g. 00200521 国勢調査) or a 5-digit organisation "
                "code (e.g. 00200 総務省)",
                retryable=True,
            )
        params["statsCode"] = survey.strip()
    if years:
        params["surveyYears"] = survey_years(years)
    if field_code:
        if not re.fullmatch(r"[0-9]{2}|[0-9]{4}", field_code.strip()):
            raise AppError(
                "bad_field",
                f"field {field_code!r} is not a statistical field code",
                "give e-Stat's two-digit field (02 人口・世帯, 03 労働・賃金, 12 教育…) or four "
                "digits with the sub-field",
                retryable=True,
            )
        params["statsField"] = field_code.strip()
    if not params:
        raise AppError(
            "empty_search",
            "nothing to search for",
            "give words (e.g. 人口 or population) or a --survey/--field/--years filter",
            retryable=True,
        )
    limit = max(1, min(int(limit), MAX_LIMIT))
    try:
        with ctx.client() as client:
            response = client.request(
                "getStatsList", {**params, "lang": lang, "limit": limit, "startPosition": 1}
            )
    except AppError:
        raise
    except Exception as exc:
        raise app_error(exc, search=params) from None
    data = as_dict(response.body.get("DATALIST_INF"))
    infos = [TableInfo.parse(n) for n in as_list(data.get("TABLE_INF"))]
    total = int(data.get("NUMBER") or len(infos)) if response.status == 0 else 0
    inventory = ctx.inventory()
    domains = {d: spec.name for spec in ctx.domains() for d in spec.datasets}
    hits = []
    for info in infos[:limit]:
        row = inventory.get(info.id)
        in_lake = (
            "loaded" if row and row.get("rows_stored") else "added" if info.id in domains else "no"
        )
        hits.append(
            SearchHit(
                stats_data_id=info.id,
                title=info.title,
                survey=info.stat_name,
                survey_code=info.stat_code,
                organisation=info.gov_org,
                cycle=info.cycle,
                survey_date=info.survey_date,
                updated_date=info.updated_date,
                rows=info.overall_total_number,
                field_code=info.main_category_code,
                field=info.main_category,
                in_lake=in_lake,
                domain=(row or {}).get("domain") or domains.get(info.id),
                rows_in_lake=(row or {}).get("rows_stored"),
                synthetic=info.synthetic,
                url=estat_url(info.id),
                lang=lang,
            )
        )
    return SearchAnswer(words=words, lang=lang, filters=dict(params), total=total, hits=hits)
