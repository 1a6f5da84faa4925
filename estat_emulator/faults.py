"""Fault injection: rules that make chosen requests fail the ways a real service fails.

Why: retry, resume and consistency logic can only be tested against failures that actually
happen on the wire (HTTP 5xx, 429 + Retry-After, slow responses, dropped connections, broken
JSON, STATUS ≥ 100 bodies, short pages, a table republished while it is being paged).

A rule matches API requests by ``endpoint`` and ``stats_data_id`` (``None`` = any) and keeps its own
count of matching requests. It fires on matching requests ``skip + 1`` onwards, at most ``times``
times (``None`` = unlimited), or exactly on the 1-based request numbers in ``nth`` (which then
overrides ``skip``/``times``). So "the first request fails, then it recovers" is ``times=1`` and
"the 2nd and 3rd getStatsData requests for table X" is ``nth=[2, 3]`` (or ``skip=1, times=2``).

Kinds and their options:

* ``http_error``   ``status`` (default 500; e.g. 503), optional ``retry_after`` (seconds)
* ``rate_limit``   HTTP 429 with ``Retry-After: retry_after`` (default 1 second)
* ``latency``      sleep ``seconds`` before answering (combines with any other fault)
* ``reset``        send headers and ``after_bytes`` of the body (default half), then a TCP reset
* ``truncate``     a complete HTTP response whose body is cut to ``keep_bytes`` (default half)
* ``api_error``    HTTP 200 with ``STATUS status`` (default 200) and ``error_msg``, no payload
* ``short_page``   a getStatsData page with ``drop_rows`` (default 1) fewer VALUE rows than
  FROM/TO_NUMBER claim
* ``republish``    before answering, republish the table (new ``updated_date``, new values, or the
  changes in ``release``, the JSON form of ``release.py``): with ``skip=N`` (alias ``after``) the
  first N data requests see the old release, the rest the new one

JSON form (``--faults FILE``, ``POST /_emulator/faults``): a list of such objects, e.g.
``[{"kind": "rate_limit", "retry_after": 2, "endpoint": "getStatsData", "times": 1}]``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from .release import Release

KINDS = (
    "http_error",
    "rate_limit",
    "latency",
    "reset",
    "truncate",
    "api_error",
    "short_page",
    "republish",
)
REPLACING = ("http_error", "rate_limit", "api_error")  # kinds that replace the whole response
_DATA_ONLY = ("short_page", "republish")  # kinds that only make sense for getStatsData


@dataclass
class FaultRule:
    """One fault rule; counters ``seen``/``hits`` are updated as requests arrive."""

    kind: str
    endpoint: str | None = None
    stats_data_id: str | None = None
    skip: int = 0
    times: int | None = 1
    nth: list[int] | None = None
    status: int | None = None
    error_msg: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    after_bytes: int | None = None
    keep_bytes: int | None = None
    drop_rows: int = 1
    updated_date: str | None = None
    release: dict[str, Any] | None = None
    seen: int = field(default=0, compare=False)
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.kind in _DATA_ONLY and self.endpoint is None:
            self.endpoint = "getStatsData"
        if self.kind == "http_error" and self.status is None:
            self.status = 500
        if self.kind == "api_error" and self.status is None:
            self.status = 200
        if self.kind == "rate_limit" and self.retry_after is None:
            self.retry_after = 1
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 (or None for unlimited)")
        if self.nth is not None:
            self.nth = [int(n) for n in self.nth]
        if self.release is not None:
            Release.from_dict(self.release)  # validated now, so a bad rule fails when added

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """A rule from its JSON form (``after`` is accepted as an alias of ``skip``)."""
        data = dict(data)
        if "after" in data:
            data["skip"] = data.pop("after")
        if "statsDataId" in data:
            data["stats_data_id"] = data.pop("statsDataId")
        allowed = {f.name for f in fields(cls)} - {"seen", "hits"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown fault rule fields {unknown}")
        if data.get("stats_data_id") is not None:
            data["stats_data_id"] = str(data["stats_data_id"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON form including the counters (for ``GET /_emulator/faults``)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def _fires(self) -> bool:
        """Count one matching request; True if this rule hits it."""
        self.seen += 1
        if self.nth is not None:
            hit = self.seen in self.nth  # nth says exactly which requests: skip/times unused
        else:
            hit = self.seen > self.skip and (self.times is None or self.hits < self.times)
        if hit:
            self.hits += 1
        return hit


class FaultSet:
    """The active rules of a server (thread-safe)."""

    def __init__(self, rules: list[FaultRule] | None = None) -> None:
        self._rules: list[FaultRule] = list(rules or [])
        self._lock = threading.Lock()

    def add(self, rule: FaultRule | dict[str, Any] | None = None, **options: Any) -> FaultRule:
        """Add a rule: ``add(FaultRule(...))``, ``add({"kind": ...})`` or ``add(kind=..., ...)``."""
        if rule is None:
            rule = FaultRule.from_dict(options)
        elif isinstance(rule, dict):
            rule = FaultRule.from_dict({**rule, **options})
        with self._lock:
            self._rules.append(rule)
        return rule

    def extend(self, rules: list[FaultRule | dict[str, Any]]) -> list[FaultRule]:
        """Add several rules (validated all first, so a bad list adds nothing)."""
        parsed = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules.extend(parsed)
        return parsed

    def load(self, path: str | Path) -> list[FaultRule]:
        """Add the rules of a JSON file: a list, or ``{"faults": [...]}``."""
        data = orjson.loads(Path(path).read_bytes())
        if isinstance(data, dict):
            data = data.get("faults", [])
        if not isinstance(data, list):
            raise ValueError("a faults file holds a list of rules")
        return self.extend(data)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def fire(self, endpoint: str, stats_data_id: str | None) -> list[FaultRule]:
        """The rules that hit this request (every matching rule counts it, hit or not)."""
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules:
                if rule.endpoint is not None and rule.endpoint != endpoint:
                    continue
                if rule.stats_data_id is not None and rule.stats_data_id != stats_data_id:
                    continue
                if rule._fires():
                    fired.append(rule)
        return fired
