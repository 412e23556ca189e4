"""Price overrides for stored calls: keep them in ``model_prices`` and re-price history with them.

One engine prices calls: :mod:`llmtrace.pricing` (genai-prices' table, its provider-name map,
``set_price`` overrides). A call is priced when it happens; this module makes an override apply
to the calls already stored as well:

* :func:`load_model_prices` keeps the overrides in ``model_prices`` (``Source = 'override'``),
  so ``llmtrace migrate --prices-file`` and ``llmtrace server --prices-file`` survive restarts;
* :func:`reprice` installs them in the engine (as ``set_price`` would) and re-prices every
  stored call of an overridden model, plus every call stored without a cost that the engine can
  price now. It rewrites ``llm_calls`` (a synchronous mutation keeping the old cost in
  ``PrevCostUsd``/``PrevCostStatus``, stamped with a new ``PriceVersion``) and then adds to each
  rollup one correction row per bucket with exactly the difference (cost, priced and unpriced
  counts; counts that fall are stored modulo 2^64, which ``sum`` folds back), so a 1-hour window
  (raw calls) and a 30-day one (rollups) agree; the per-user rollup (``llm_users_1h``) gets one
  per hour, filter keys and user, the trace list (``llm_traces``) one per re-priced trace.

Crash safety: the version stamp on ``llm_calls`` is the journal. Correction rows carry their
version (017), so :func:`recover` — run first by every :func:`reprice` and at ``llmtrace server``
start — waits for an interrupted mutation to finish and adds exactly the corrections still
missing; running it again adds nothing.

Cluster (``llm_calls`` Distributed, as ``migrate --cluster`` makes it): the update goes
``ON CLUSTER`` to the shards' ``llm_calls_local``; reads and corrections use the Distributed
names (see :class:`Layout`).

Limits: calls past the raw-span retention keep their old cost in the rollups (their tokens are
gone).

Prices file: a JSON list of ``{"model": "...", "provider": "...", "input_mtok": 1.0,
"output_mtok": 2.0, "cache_read_mtok": 0.1, "cache_write_mtok": 1.25}`` (USD per million
tokens; ``provider`` optional: any provider; cache prices default to the input price).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmtrace import pricing

__all__ = [
    "MODEL_PRICES_COLUMNS",
    "Layout",
    "Repriced",
    "Repricer",
    "apply_prices",
    "load_model_prices",
    "override_rows",
    "read_overrides",
    "recover",
    "reprice",
    "serve_prices",
    "set_price_overrides",
    "stored_overrides",
]

MODEL_PRICES_COLUMNS = (
    "Provider", "Model", "InputPerMTok", "OutputPerMTok", "CacheReadPerMTok", "CacheWritePerMTok", "Source",
    "UpdatedAt",
)  # fmt: skip
Row = tuple[str, str, float, float, float | None, float | None, str, datetime]
Inserter = Callable[..., Any]  # clickhouse-connect's Client.insert(table, rows, column_names=...)
_ROLLUPS = {"llm_calls_1m": "toStartOfMinute", "llm_calls_1h": "toStartOfHour"}
_KEYS = "ServiceName, Environment, Release, Provider, Operation, RequestModel, PromptName, PromptVersion"
_LEVELS = "0.5, 0.9, 0.95, 0.99"  # the rollups' t-digest levels (006/007)
_lock = threading.Lock()  # one re-pricing at a time in a process: versions must not interleave
log = logging.getLogger("llmtrace")


@dataclass(frozen=True)
class Repriced:
    """What one :func:`reprice` run changed."""

    version: int
    calls: int
    cost_before: float
    cost_after: float


# --------------------------------------------------------------------------- the overrides
def read_overrides(source: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read and check an overrides list (a path to JSON, or the list itself)."""
    if isinstance(source, list):
        entries: Any = source
    else:
        path = Path(source)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read prices file {path}: {exc}") from exc
    if not isinstance(entries, list):
        raise ValueError('prices file must hold a JSON list like [{"model": "m", "input_mtok": 1, "output_mtok": 2}]')
    for number, entry in enumerate(entries, start=1):
        missing = [k for k in ("model", "input_mtok", "output_mtok") if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"prices file entry {number} lacks {', '.join(missing)} (USD per million tokens)")
        for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"):
            value = entry.get(key)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                raise ValueError(f"prices file entry {number}: {key} must be a number >= 0 (USD per million tokens)")
    return entries


def override_rows(entries: Iterable[dict[str, Any]], stamp: datetime) -> list[Row]:
    def opt(value: Any) -> float | None:
        return None if value is None else float(value)

    return [
        (str(e.get("provider") or ""), str(e["model"]), float(e["input_mtok"]), float(e["output_mtok"]),
         opt(e.get("cache_read_mtok")), opt(e.get("cache_write_mtok")), "override", stamp)
        for e in entries
    ]  # fmt: skip


def load_model_prices(
    insert: Inserter, overrides: str | Path | list[dict[str, Any]] | None = None, *, now: datetime | None = None
) -> int:
    """Keep the overrides in ``model_prices``; return the number of rows written (0 without any)."""
    if overrides is None:
        return 0
    rows = override_rows(read_overrides(overrides), now or datetime.now(timezone.utc).replace(tzinfo=None))
    if rows:
        insert("model_prices", rows, column_names=list(MODEL_PRICES_COLUMNS))
    return len(rows)


def stored_overrides(client: Any) -> list[dict[str, Any]]:
    """The newest override per (provider, model) in ``model_prices``, as prices-file entries."""
    sql = """
        SELECT Provider, Model, argMax((InputPerMTok, OutputPerMTok, CacheReadPerMTok, CacheWritePerMTok), UpdatedAt)
        FROM model_prices WHERE Source = 'override' GROUP BY Provider, Model ORDER BY Provider, Model"""
    keys = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    return [
        {"provider": provider, "model": model, **dict(zip(keys, price, strict=True))}
        for provider, model, price in client.query(sql).result_rows
    ]


def set_price_overrides() -> list[dict[str, Any]]:
    """What ``llmtrace.set_price`` was given in this process, as prices-file entries:
    ``apply_prices(client, set_price_overrides())`` applies an app's overrides to history too."""
    return [
        {"provider": provider, "model": model, "input_mtok": _per_mtok(p.input), "output_mtok": _per_mtok(p.output),
         "cache_read_mtok": _per_mtok(p.cache_read), "cache_write_mtok": _per_mtok(p.cache_write)}
        for (provider, model), p in pricing.overrides().items()
    ]  # fmt: skip


def _per_mtok(per_token: float) -> float:
    return round(per_token * 1_000_000, 12)


def apply_prices(client: Any, source: str | Path | list[dict[str, Any]] | None = None) -> Repriced:
    """Keep ``source``'s overrides (if any), then re-price the stored calls with every stored override."""
    load_model_prices(client.insert, source)
    return reprice(client, stored_overrides(client))


def serve_prices(data_dir: Path, prices_file: Path | None) -> str:
    """``llmtrace server``'s start (and :class:`Repricer`'s runs): keep the file's overrides, re-price
    stored calls with all stored ones; without any, price the calls stored without a cost that the
    engine prices (another instrumentation's spans carry tokens and models but no cost). Returns what
    to add to the ready line ('' when nothing was done)."""
    from llmtrace.store.chdb_client import ChdbClient

    client = ChdbClient.open(str(data_dir))
    try:
        if prices_file is None and not stored_overrides(client):
            # reprice() first finishes a run that died part-way, even if its overrides are gone since
            done = reprice(client, [])
            return f", {done.calls} stored calls without a cost priced" if done.calls else ""
        done = apply_prices(client, prices_file and str(prices_file))
    finally:
        client.close()
    return f", price overrides applied ({done.calls} stored calls re-priced)"


def overridden_models(data_dir: Path) -> tuple[tuple[str, str], ...]:
    """(provider or "" for any, model) of every stored override: ``llmtrace server``'s decode workers
    leave their calls unpriced at ingest, for the re-pricing pass (which holds the overrides)."""
    from llmtrace.store.chdb_client import ChdbClient

    client = ChdbClient.open(str(data_dir))
    try:
        return tuple((str(o.get("provider") or ""), str(o["model"])) for o in stored_overrides(client))
    finally:
        client.close()


class Repricer:
    """``llmtrace server``'s background re-pricing: every ``every`` seconds, while overrides are
    stored, the calls that arrived since (priced by the app at its own prices) are re-priced too,
    so an override keeps applying to new calls; the calls that arrived without a cost (spans of
    OpenInference, OpenLLMetry, the OTel contrib instrumentations) are priced by the engine, with or
    without overrides. A call that came with a cost keeps it unless an override names its model.
    Failures are logged and retried at the next run."""

    def __init__(self, data_dir: Path, every: float) -> None:
        self.data_dir, self.every = data_dir, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llmtrace-repricer", daemon=True)

    def start(self) -> None:
        if self.every > 0:
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                serve_prices(self.data_dir, None)
            except Exception as exc:  # the server keeps serving; the next run retries
                log.warning("llmtrace server: re-pricing new calls failed (%s); retrying in %.0f s", exc, self.every)


# --------------------------------------------------------------------------- re-pricing
@dataclass(frozen=True)
class Layout:
    """Where re-pricing reads and writes. Single node: the tables themselves. A cluster (``llm_calls``
    Distributed): the update goes ``ON CLUSTER`` to the shards' ``llm_calls_local`` (a mutation is
    per shard) while reads and correction rows go through the Distributed names, inserted
    synchronously so a finished run has its rows on the shards."""

    calls: str = "llm_calls"
    update: str = "llm_calls"  # the ALTER ... UPDATE target, with its ON CLUSTER clause
    rollups: tuple[str, ...] = tuple(_ROLLUPS)
    traces: str = "llm_traces"  # the trace list (016): one correction row per re-priced trace
    users: str = "llm_users_1h"  # spend per user and hour (022): one correction row per hour, keys and user
    anomaly: str = "llm_anomaly_5m"  # anomaly counts per 5 minutes (025): its cost histogram's correction
    cluster: str | None = None

    @classmethod
    def of(cls, client: Any) -> Layout:
        """The layout of the store ``client`` talks to (a Distributed ``llm_calls`` names its cluster)."""
        sql = "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'llm_calls'"
        rows = client.query(sql).result_rows
        return cls.from_engine(str(rows[0][0]) if rows else "")

    @classmethod
    def from_engine(cls, engine_full: str) -> Layout:
        """The layout for an ``llm_calls`` of this engine clause (``system.tables.engine_full``)."""
        found = _DISTRIBUTED.match(engine_full)
        return cls.on_cluster(found.group(1), found.group(2)) if found else cls()

    @classmethod
    def on_cluster(cls, cluster: str, local: str = "llm_calls_local") -> Layout:
        return cls(update=f"{local} ON CLUSTER `{cluster}`", cluster=cluster)

    def insert_settings(self) -> dict[str, Any]:
        return {"distributed_foreground_insert": 1} if self.cluster else {}

    def mutations(self) -> str:
        """SQL counting the unfinished mutations of ``llm_calls`` (every node's, on a cluster)."""
        source = f"clusterAllReplicas('{self.cluster}', system.mutations)" if self.cluster else "system.mutations"
        table = self.update.split(" ", 1)[0]
        return f"SELECT count() FROM {source} WHERE database = currentDatabase() AND table = '{table}' AND NOT is_done"


_DISTRIBUTED = re.compile(r"^Distributed\('([\w.-]+)',\s*'[^']*',\s*'(\w+)'")
MUTATION_WAIT_SECONDS = 600.0


def reprice(client: Any, overrides: list[dict[str, Any]] | None = None, *, layout: Layout | None = None) -> Repriced:
    """Install ``overrides`` (default: the stored ones) in the pricing engine and re-price stored calls.

    Re-priced: calls of an overridden (provider, model) and calls stored without a cost whose
    model the engine prices now; only those whose cost changes. Safe to run again: a second run
    with the same prices changes nothing. A previous run that died part-way is finished first
    (see :func:`recover`).
    """
    overrides = stored_overrides(client) if overrides is None else read_overrides(overrides)
    with _lock:
        layout = layout or Layout.of(client)
        _recover(client, layout)
        plan = _plan(client, overrides, layout)
        version = _next_version(client, layout)
        if not plan["keys"]:
            return Repriced(version - 1, 0, 0.0, 0.0)
        params = {**plan, "version": version}
        sql = _expressions()
        count = f"SELECT count() FROM {layout.calls} WHERE {sql['where']}"
        if not client.query(count, parameters=params).result_rows[0][0]:
            return Repriced(version - 1, 0, 0.0, 0.0)  # nothing to change: no mutation at all
        # The stamp is the journal: once the update lands, the calls carrying `version` say which
        # corrections the rollups need, so a run killed after it is finished by the next one.
        client.command(
            _UPDATE_SQL.format(table=layout.update, **sql), parameters=params, settings={"mutations_sync": 2}
        )
        _correct(client, layout, version)
        row = client.query(_SUMMARY_SQL.format(calls=layout.calls), parameters={"version": version}).result_rows[0]
    return Repriced(version, int(row[0]), float(row[1] or 0.0), float(row[2] or 0.0))


def recover(client: Any, layout: Layout | None = None) -> int:
    """Finish a re-pricing run that died between ``llm_calls``'s update and the rollup corrections
    (a killed process, a lost connection): wait for the update's mutation to complete, then add the
    correction rows still missing. Returns the rollup rows added (0 when nothing was pending).

    Idempotent: a correction row carries its run's ``PriceVersion`` (the rollups keep the max per
    bucket and keys), and only (bucket, keys) groups without one get a row, so running it again,
    or after a run that finished, adds nothing."""
    with _lock:
        return _recover(client, layout or Layout.of(client))


def _recover(client: Any, layout: Layout) -> int:
    _await_mutations(client, layout)
    version = _next_version(client, layout) - 1
    return _correct(client, layout, version) if version > 0 else 0


def _await_mutations(client: Any, layout: Layout) -> None:
    """A mutation interrupted by a crash resumes when the engine reopens the table; the stamps it
    writes must all be there before the corrections are worked out from them."""
    deadline = time.monotonic() + MUTATION_WAIT_SECONDS
    while client.query(layout.mutations()).result_rows[0][0]:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"re-pricing waits for an unfinished mutation of {layout.update} (see system.mutations); "
                "retry once it is done"
            )
        time.sleep(0.2)


def _correct(client: Any, layout: Layout, version: int) -> int:
    """Add the missing correction rows of ``version`` to each rollup and to the trace list; returns
    the rows added."""
    added = 0
    statements = [(table, _correction_sql(table, _ROLLUPS[table], layout.calls)) for table in layout.rollups]
    statements.append((layout.users, _users_correction_sql(layout.users, layout.calls)))
    statements.append((layout.anomaly, _ANOMALY_CORRECTION_SQL.format(anomaly=layout.anomaly, calls=layout.calls)))
    statements.append((layout.traces, _TRACES_CORRECTION_SQL.format(traces=layout.traces, calls=layout.calls)))
    for table, sql in statements:
        before = _version_rows(client, table, version)
        client.command(sql, parameters={"version": version}, settings=layout.insert_settings())
        added += _version_rows(client, table, version) - before
    return added


def _version_rows(client: Any, table: str, version: int) -> int:
    sql = f"SELECT count() FROM {table} WHERE PriceVersion = {{version:UInt32}}"
    return int(client.query(sql, parameters={"version": version}).result_rows[0][0])


def _plan(client: Any, overrides: list[dict[str, Any]], layout: Layout) -> dict[str, Any]:
    """Per (provider, response model, request model) with tokens: whether all its calls are re-priced
    (an override) or only those without a cost, and the engine's price segments for it."""
    # Without overrides only the calls without a cost can change: the scan skips the others.
    unpriced_only = "" if overrides else " AND CostUsd IS NULL"
    sql = f"""
        SELECT toString(Provider), toString(ResponseModel), toString(RequestModel), countIf(CostUsd IS NULL) > 0
        FROM {layout.calls} WHERE TotalTokens > 0{unpriced_only} GROUP BY 1, 2, 3"""
    seen = client.query(sql).result_rows
    _install(overrides, {str(r[0]) for r in seen})
    overridden = {(str(o.get("provider") or ""), str(o["model"])) for o in overrides}
    keys, everything, segments = [], [], []
    for provider, response_model, request_model, has_unpriced in seen:
        override = any((p, m) in overridden for p in ("", provider) for m in (response_model, request_model) if m)
        found = pricing.price_segments(provider, [response_model, request_model])
        if found is None or not (override or has_unpriced) or any(v is None for s in found for v in s):
            continue
        keys.append(f"{provider}\x1f{response_model}\x1f{request_model}")
        everything.append(int(override))
        segments.append([[float(v) for v in s] for s in found])
    names = ("s_start", "s_fee", "s_in", "s_out", "s_read", "s_write")  # a Segment's fields, one array each
    fields = {name: [[seg[i] for seg in segs] for segs in segments] for i, name in enumerate(names)}
    return {"keys": keys, "everything": everything, **fields}


def _install(overrides: list[dict[str, Any]], providers: set[str]) -> None:
    """Each override into the engine, as ``set_price``; one without a provider for every provider seen."""
    for entry in overrides:
        given = str(entry.get("provider") or "")
        for provider in [given] if given else sorted(providers | {""}):
            pricing.set_price(
                provider,
                str(entry["model"]),
                input_per_mtok=float(entry["input_mtok"]),
                output_per_mtok=float(entry["output_mtok"]),
                cache_read_per_mtok=_opt(entry.get("cache_read_mtok")),
                cache_write_per_mtok=_opt(entry.get("cache_write_mtok")),
            )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _next_version(client: Any, layout: Layout) -> int:
    return int(client.query(f"SELECT max(PriceVersion) FROM {layout.calls}").result_rows[0][0] or 0) + 1


def _expressions() -> dict[str, str]:
    """The SQL for a call's key index and its cost under the planned segments (as pricing._segment_cost)."""
    index = "indexOf({keys:Array(String)}, concat(toString(Provider), '\\x1f', toString(ResponseModel), '\\x1f', toString(RequestModel)))"  # noqa: E501
    segment = f"greatest(1, arrayCount(s -> InputTokens > s, {{s_start:Array(Array(Float64))}}[{index}]))"

    def at(name: str) -> str:
        return f"{{{name}:Array(Array(Float64))}}[{index}][{segment}]"

    cost = (
        f"({at('s_fee')} + greatest(toInt64(InputTokens) - toInt64(CacheReadTokens) - toInt64(CacheWriteTokens), 0)"
        f" * {at('s_in')} + OutputTokens * {at('s_out')} + CacheReadTokens * {at('s_read')}"
        f" + CacheWriteTokens * {at('s_write')})"
    )
    where = (
        f"{index} > 0 AND TotalTokens > 0 AND ({{everything:Array(UInt8)}}[{index}] = 1 OR CostUsd IS NULL)"
        f" AND (CostUsd IS NULL OR abs(CostUsd - {cost}) > 1e-12 * greatest(abs(CostUsd), 1e-9))"
    )
    return {"cost": cost, "where": where}


_UPDATE_SQL = """
ALTER TABLE {table} UPDATE
    PrevCostUsd = CostUsd, PrevCostStatus = CostStatus, CostUsd = {cost}, CostStatus = 'priced',
    PriceVersion = {{version:UInt32}}
WHERE {where}
"""


# A re-priced group's differences: cost, unpriced calls, priced calls (counts that fall wrap modulo 2^64).
_DIFFERENCES = """sum(ifNull(c.CostUsd, 0) - ifNull(c.PrevCostUsd, 0)),
    toUInt64(toInt64(countIf(c.CostStatus = 'unpriced')) - toInt64(countIf(c.PrevCostStatus = 'unpriced'))),
    toUInt64(toInt64(countIf(c.CostUsd IS NOT NULL)) - toInt64(countIf(c.PrevCostUsd IS NOT NULL)))"""
_USERS_KEYS = "ServiceName, Environment, Release, Provider, RequestModel, UserId"  # llm_users_1h's (022)
# ... and its counts of calls without a cost by reason, which re-pricing changes as well.
_NO_COST_DIFFERENCES = """
    toUInt64(toInt64(countIf(c.CostUsd IS NULL AND c.CostStatus != 'no_usage'))
        - toInt64(countIf(c.PrevCostUsd IS NULL AND c.PrevCostStatus != 'no_usage'))),
    toUInt64(toInt64(countIf(c.CostUsd IS NULL AND c.CostStatus = 'no_usage'))
        - toInt64(countIf(c.PrevCostUsd IS NULL AND c.PrevCostStatus = 'no_usage')))"""


def _correction_sql(table: str, bucket: str, calls: str = "llm_calls") -> str:
    """One row per rollup bucket and keys of the calls this version re-priced: the differences,
    stamped with the version; groups that already have the version's row are skipped."""
    keys = ", ".join(f"c.{k}" for k in _KEYS.split(", "))
    return f"""
INSERT INTO {table} (Bucket, {_KEYS}, Calls, Errors, InputTokens, OutputTokens, CacheReadTokens,
    CacheWriteTokens, ReasoningTokens, CostUsd, UnpricedCalls, PricedCalls, DurationSumUs, DurationQ, TtftQ,
    PriceVersion)
SELECT {bucket}(c.Timestamp) AS b, {keys}, 0, 0, 0, 0, 0, 0, 0, {_DIFFERENCES}, 0,
    (SELECT quantilesTDigestState({_LEVELS})(number) FROM numbers(0)),
    (SELECT quantilesTDigestState({_LEVELS})(toNullable(number)) FROM numbers(0)),
    {{version:UInt32}}
FROM {calls} AS c WHERE c.PriceVersion = {{version:UInt32}}
    AND (b, {keys}) NOT IN (
        SELECT Bucket, {_KEYS} FROM {table} WHERE PriceVersion >= {{version:UInt32}})
GROUP BY b, {keys}
"""


def _users_correction_sql(users: str, calls: str = "llm_calls") -> str:
    """The per-user rollup's correction rows: the differences per hour, filter keys and user."""
    keys = ", ".join(f"c.{k}" for k in _USERS_KEYS.split(", "))
    return f"""
INSERT INTO {users} (Bucket, {_USERS_KEYS}, Calls, InputTokens, OutputTokens, CostUsd, UnpricedCalls,
    PricedCalls, NoPriceCalls, NoUsageCalls, PriceVersion)
SELECT toStartOfHour(c.Timestamp) AS b, {keys}, 0, 0, 0, {_DIFFERENCES}, {_NO_COST_DIFFERENCES}, {{version:UInt32}}
FROM {calls} AS c WHERE c.PriceVersion = {{version:UInt32}}
    AND (b, {keys}) NOT IN (SELECT Bucket, {_USERS_KEYS} FROM {users} WHERE PriceVersion >= {{version:UInt32}})
GROUP BY b, {keys}
"""


# The anomaly rollup's correction (025): per 5 minutes and keys, the re-priced successful calls move from their
# old cost bin to their new one: +1 in the new bin, 2^64 - 1 (a wrapping -1) in the old; a call without a cost
# before or after has no bin there. The bins are 025's: floor(32 * log2(cost)), -32767 for 0.
_ANOMALY_BIN = "if({v} > 0, toInt16(floor(32 * log2(assumeNotNull({v})))), toInt16(-32767))"
_ANOMALY_CORRECTION_SQL = f"""
INSERT INTO {{anomaly}} (Bucket, ServiceName, Environment, Release, Provider, RequestModel, Calls, Errors, Truncated,
    Empty, Latency, Ttft, Tokens, Cost, PriceVersion)
SELECT toStartOfFiveMinutes(c.Timestamp) AS b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel,
    0, 0, 0, 0, ([], []), ([], []), ([], []),
    sumMapIf(
        arrayConcat(if(c.CostUsd IS NULL, [], [{_ANOMALY_BIN.format(v="c.CostUsd")}]),
                    if(c.PrevCostUsd IS NULL, [], [{_ANOMALY_BIN.format(v="c.PrevCostUsd")}])),
        arrayConcat(if(c.CostUsd IS NULL, [], [toUInt64(1)]), if(c.PrevCostUsd IS NULL, [], [toUInt64(-1)])),
        c.IsError = 0),
    {{{{version:UInt32}}}}
FROM {{calls}} AS c WHERE c.PriceVersion = {{{{version:UInt32}}}}
    AND (b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel) NOT IN (
        SELECT Bucket, ServiceName, Environment, Release, Provider, RequestModel FROM {{anomaly}}
        WHERE PriceVersion >= {{{{version:UInt32}}}})
GROUP BY b, c.ServiceName, c.Environment, c.Release, c.Provider, c.RequestModel
"""

# A trace's correction row changes only its cost and unpriced count: Start/End inside the trace's
# range (min/max keep theirs), Calls 0 (the trace list picks traces by Calls > 0), no names.
_TRACES_CORRECTION_SQL = """
INSERT INTO {traces} (Hour, TraceId, Start, End, UnpricedCalls, CostUsd, PriceVersion)
SELECT toStartOfHour(min(c.Timestamp)), c.TraceId, min(c.Timestamp), min(c.Timestamp),
    toUInt64(toInt64(countIf(c.CostStatus = 'unpriced')) - toInt64(countIf(c.PrevCostStatus = 'unpriced'))),
    sum(ifNull(c.CostUsd, 0) - ifNull(c.PrevCostUsd, 0)), {{version:UInt32}}
FROM {calls} AS c
WHERE c.PriceVersion = {{version:UInt32}} AND c.TraceId != ''
    AND c.TraceId NOT IN (SELECT TraceId FROM {traces} WHERE PriceVersion >= {{version:UInt32}})
GROUP BY c.TraceId
"""

_SUMMARY_SQL = """
SELECT count(), sum(ifNull(PrevCostUsd, 0)), sum(CostUsd) FROM {calls} WHERE PriceVersion = {{version:UInt32}}
"""
