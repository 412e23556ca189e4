"""ClickHouse JSONCompact values -> the Python values clickhouse-connect returns.

The chDB client reads ``query()`` results as JSONCompact (types in ``meta``) rather than as a
DataFrame because a DataFrame cannot tell a NULL from NaN, nor keep UInt64 exact with NULLs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

__all__ = ["converter"]

Convert = Callable[[Any], Any]


@lru_cache(maxsize=512)
def converter(type_name: str) -> Convert:
    """A function turning one JSON value of ClickHouse type ``type_name`` into Python."""
    name = type_name.strip()
    outer, args = _split_type(name)
    if outer == "Nullable":
        inner = converter(args[0])
        return lambda v: None if v is None else inner(v)
    if outer in ("LowCardinality", "SimpleAggregateFunction"):
        return converter(args[-1])
    if outer == "Array":
        item = converter(args[0])
        return lambda v: [item(x) for x in v]
    if outer == "Map":
        key, value = converter(args[0]), converter(args[1])
        return lambda v: {key(k): value(x) for k, x in v.items()}
    if outer == "Tuple":
        items = [converter(_drop_field_name(a)) for a in args]
        return lambda v: tuple(f(x) for f, x in zip(items, v, strict=False))
    return _SCALARS.get(outer, _identity) if outer else _scalar(name)


def _scalar(name: str) -> Convert:
    if name in _SCALARS:
        return _SCALARS[name]
    if name.startswith(("Float", "BFloat")):
        return _float
    if name.startswith(("UInt", "Int")):
        return lambda v: int(v)
    return _identity


def _identity(value: Any) -> Any:
    return value


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value)
    head, _, frac = text.partition(".")
    parsed = datetime.strptime(head, "%Y-%m-%d %H:%M:%S")
    return parsed.replace(microsecond=int((frac + "000000")[:6])) if frac else parsed


def _date(value: Any) -> date:
    return date.fromisoformat(str(value))


_SCALARS: dict[str, Convert] = {
    "DateTime": _datetime,
    "DateTime64": _datetime,
    "Date": _date,
    "Date32": _date,
    "Decimal": lambda v: Decimal(str(v)),
    "UUID": lambda v: uuid.UUID(str(v)),
}


def _split_type(name: str) -> tuple[str, list[str]]:
    """``Map(String, Array(UInt8))`` -> ``("Map", ["String", "Array(UInt8)"])``; no parens -> ("", [])."""
    if "(" not in name or not name.endswith(")"):
        return "", []
    outer, _, rest = name.partition("(")
    args: list[str] = []
    current: list[str] = []
    depth, quote = 0, False
    for ch in rest[:-1]:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    args.append("".join(current).strip())
    return outer, args


def _drop_field_name(arg: str) -> str:
    """Named tuple fields (``Tuple(a UInt8, b String)``) -> the type part."""
    head, sep, tail = arg.partition(" ")
    return tail if sep and "(" not in head and head[:1].islower() else arg
