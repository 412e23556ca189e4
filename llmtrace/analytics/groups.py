"""What drift and anomaly reports share: the dimensions results are grouped by, their columns,
the result frame, and JSON-safe values.

Every column here exists both in ``llm_calls`` and in the hourly/minute rollups, so a
grouping works whichever table answers. Names come from users (``--by service,model``);
only these fixed column names ever reach SQL text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["COLUMNS", "GENERATES", "grouped_frame", "json_safe", "label", "parse_by"]

# A call that generates output: embeddings and reranks answer with vectors or scores, never output
# tokens, so they are never an "empty output" (schema 031 says the same in the anomaly rollup)
GENERATES = "Operation NOT IN ('embeddings', 'embedding', 'rerank')"

COLUMNS: dict[str, str] = {
    "service": "ServiceName",
    "provider": "Provider",
    "model": "RequestModel",
    "release": "Release",
    "prompt": "PromptName",
    "prompt_version": "PromptVersion",
    "environment": "Environment",
    "operation": "Operation",
}
_ALIASES = {"services": "service", "models": "model", "version": "prompt_version", "env": "environment"}


def parse_by(by: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"service,model"`` or ``["service", "model"]`` -> ``("service", "model")``, validated."""
    if by is None:
        return ()
    names = by.split(",") if isinstance(by, str) else list(by)
    out: list[str] = []
    for raw in names:
        name = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if not name:
            continue
        if name not in COLUMNS:
            raise ValueError(f"cannot group by {raw!r}; choose from {', '.join(COLUMNS)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def label(group: Mapping[str, str]) -> str:
    """A readable series name: ``service=search-api model=gpt-4o-mini`` (``all`` when ungrouped)."""
    return " ".join(f"{k}={v if v != '' else '(none)'}" for k, v in group.items()) or "all"


def grouped_frame(items: Sequence[Any], item_type: type, group_field: str, by: Sequence[str]) -> pd.DataFrame:
    """Dataclass results as rows: their group's columns first (``by``), then every other field."""
    rows = [{**getattr(i, group_field), **{k: v for k, v in asdict(i).items() if k != group_field}} for i in items]
    columns = [*by, *(f.name for f in fields(item_type) if f.name != group_field)]
    return pd.DataFrame(rows, columns=columns)


def json_safe(value: Any) -> Any:
    """NaN and infinities become None and datetimes ISO text, so the report is standard JSON."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
