"""Deployments an episode coincides with: a new release, prompt version or model on its series.

A shift that starts with a new ``release``, prompt version or model is usually that change
(more output tokens from a new prompt, another model's latency), not an outage. It is still
reported, since a regression shipped in a release is exactly what a team wants to see, but the
episode names the change (``release v2.1 first seen 14:05``) so the cause is one glance away.

A value is *new* when its first call in the minute rollup falls after the start of the read
range plus ``SETTLED`` (values already there at the start are old) and within ``BEFORE``
before an episode's start to ``AFTER`` after it, on the episode's service (and model, when
the episode has one; provider and app episodes match any series below them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from llmtrace.analytics import frame
from llmtrace.analytics.filters import sql_time

__all__ = ["Change", "changes", "label", "read_changes"]

BEFORE = timedelta(hours=1)
AFTER = timedelta(minutes=15)
SETTLED = timedelta(hours=1)
_MATCHED = ("service", "model", "provider")

# Each (series, release, prompt) first, then its values unfolded: the minute rollup's rows are
# grouped once by their stored columns instead of unfolded three times each (720k rows at 10M
# calls, 9 days: 0.12 -> 0.04 s of server CPU), and the first of the firsts is the first. Ordered (by
# time, then release, prompt, model), so an episode naming two changes names them in one order: it was
# the hash table's (main named the 10M store's prompt before its release, the tests' release first).
_SQL = """
SELECT service, model, provider, kind, value, min(first) AS first
FROM (
    SELECT ServiceName AS service, RequestModel AS model, Provider AS provider, Release, PromptName, PromptVersion,
           min(Bucket) AS first
    FROM llm_calls_1m
    WHERE Bucket >= {{c_start:DateTime64(6)}} AND Bucket < {{c_end:DateTime64(6)}}{dims}
    GROUP BY service, model, provider, Release, PromptName, PromptVersion
)
ARRAY JOIN ['release', 'prompt', 'model'] AS kind,
           [Release, if(PromptVersion = '', '', concat(PromptName, ' ', PromptVersion)), model] AS value
WHERE value != ''
GROUP BY service, model, provider, kind, value
HAVING first >= {{c_settled:DateTime64(6)}}
ORDER BY first, indexOf(['release', 'prompt', 'model'], kind), value, service, model, provider
"""


@dataclass(frozen=True)
class Change:
    """A value of ``kind`` (release | prompt | model) first seen on a series at ``first``."""

    service: str
    model: str
    provider: str
    kind: str
    value: str
    first: datetime

    @property
    def text(self) -> str:
        return f"{self.kind} {self.value} first seen {self.first:%Y-%m-%d %H:%M} UTC"


def read_changes(client: Any, start: datetime, end: datetime, dims: str, params: dict[str, Any]) -> list[Change]:
    """New values in [start, end): ``dims`` are the filter's ``AND`` conditions on llm_calls_1m."""
    bound = {**params, "c_start": sql_time(start), "c_end": sql_time(end), "c_settled": sql_time(start + SETTLED)}
    df = frame(client, _SQL.format(dims=dims), bound)
    return [
        Change(str(r.service), str(r.model), str(r.provider), str(r.kind), str(r.value), _utc(r.first))
        for r in df.itertuples(index=False)
    ]


def changes(found: list[Change], series: dict[str, str], start: datetime) -> list[Change]:
    """The changes on ``series`` (a service, model, provider or the app) first seen near ``start``."""
    return [
        c
        for c in found
        if start - BEFORE <= c.first <= start + AFTER
        and all(
            getattr(c, key, value) == value for key, value in series.items() if key in ("service", "model", "provider")
        )
    ]


def label(found: list[Change], series: dict[str, str], start: datetime) -> str:
    """``"release v2.1 first seen ..."`` for the changes coinciding with an episode ('' when none);
    a series' own model appearing is named only when nothing else changed with it."""
    near = changes(found, series, start)
    named = [c for c in near if c.kind != "model"] or near
    return "; ".join(dict.fromkeys(c.text for c in named))


def _utc(value: Any) -> datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    result: datetime = ts.to_pydatetime(warn=False)
    return result
