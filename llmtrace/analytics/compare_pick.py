"""Which two values to compare when nobody said: a pair within one service.

Releases, prompt versions and models are a service's own: ``v2.1.0`` of one service is no
candidate for ``v1.4.0`` of another, and mixing services makes a "difference" out of two
different workloads. So the default pair is taken *within one service*: the service where that
pair has the most traffic on its smaller side. In a service, the pair is the newest launch: the
values first seen within :data:`LAUNCH` of the newest one went out together (a canary's releases),
and the first two of them by name are compared (``v2.0.0`` against ``v2.1.0``); a value launched
alone is compared with the one before it. Comparing services themselves has no service to stay
within: the same rule over all services.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.drift import values_oldest_first
from llmtrace.analytics.filters import Filter
from llmtrace.analytics.groups import COLUMNS, parse_by

__all__ = ["LAUNCH", "Pair", "default_pair", "values_in_service", "within"]

LAUNCH = timedelta(hours=1)  # values first seen this close to the newest one were launched together


@dataclass(frozen=True)
class Pair:
    """A default comparison: ``baseline`` against ``candidate`` within ``service`` (``None``: all)."""

    service: str | None
    baseline: str
    candidate: str
    calls: int  # the smaller side's calls


def default_pair(client: Any, f: Filter, dimension: str) -> Pair | None:
    """The pair to open a Compare view on (``None`` if no service has two values in ``f``)."""
    column = COLUMNS[parse_by(dimension)[0]]
    service = "''" if column == "ServiceName" else "toString(ServiceName)"
    sql = f"""
        SELECT {service} AS service, toString({column}) AS value, count() AS calls, min(Timestamp) AS first
        FROM llm_calls WHERE {f.where()} AND value != ''
        GROUP BY service, value ORDER BY service, first, value"""
    best: Pair | None = None
    for name, rows in frame(client, sql, f.params()).groupby("service", sort=True):
        if len(rows) < 2:
            continue
        older, newer = _newest_launch(rows)
        pair = Pair(
            str(name) or None, str(older["value"]), str(newer["value"]), int(min(older["calls"], newer["calls"]))
        )
        if best is None or pair.calls > best.calls:
            best = pair
    return best


def _newest_launch(rows: pd.DataFrame) -> tuple[Any, Any]:
    """(baseline, candidate) rows of one service's values, ``rows`` ordered by first seen."""
    first = pd.to_datetime(rows["first"])
    launched = rows[first >= first.iloc[-1] - LAUNCH]
    if len(launched) >= 2:
        ordered = sorted(launched.itertuples(index=False), key=lambda r: _natural(str(r.value)))
        return ordered[0]._asdict(), ordered[1]._asdict()
    return rows.iloc[-2], rows.iloc[-1]


def _natural(text: str) -> list[Any]:
    """Sort key that puts v2.9.0 before v2.10.0."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def values_in_service(client: Any, f: Filter, dimension: str, service: str | None, limit: int = 50) -> list[str]:
    """Values of ``dimension`` within ``service`` (all services if ``None``), oldest first."""
    return values_oldest_first(client, within(f, service), dimension, limit)


def within(f: Filter, service: str | None) -> Filter:
    """``f`` narrowed to ``service`` (unchanged for ``None``)."""
    return f if service is None else dataclasses.replace(f, services=(service,))
