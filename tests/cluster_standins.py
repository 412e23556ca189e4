"""A two-shard cluster stood in for by chDB databases, shared by the cluster schema and re-pricing tests.

chDB has no clusters, Keeper or ``Distributed`` engine. So each shard is a database that runs the
rendered ``migrate --cluster`` DDL minus what chDB lacks (see :func:`standin`): plain engines for
Replicated ones and a ``Merge`` table over every shard's ``_local`` for a Distributed one (what a
Distributed read returns: the union). :func:`shard_standins` builds a single-node database with
demo history and the shards holding the same spans split by the Distributed key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmtrace.demo import scenarios
from llmtrace.store.chdb_client import ChdbClient
from llmtrace.store.migrations import apply_migrations, client_runner, render, schema_files, split_statements
from llmtrace.store.prices import load_model_prices

CLUSTER = "llmtrace"
NODES = ("node_a", "node_b")  # two shards, one replica each (replicas hold the same rows)

_CREATE = re.compile(r"^CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS (\w+)")
_DROP = re.compile(r"^DROP (?:TABLE|VIEW) IF EXISTS (\w+)")


def cluster_ddl(database: str = "default") -> list[str]:
    texts = [render(p.read_text(), cluster=CLUSTER, database=database) for p in schema_files()]
    return [s for text in texts for s in split_statements(text)]


def created(statements: list[str]) -> dict[str, str]:
    """Name -> CREATE statement, for what is still there after the DROPs that follow."""
    out: dict[str, str] = {}
    for statement in statements:
        if m := _CREATE.match(statement):
            out[m.group(2)] = statement
        elif m := _DROP.match(statement):
            out.pop(m.group(1), None)
    return out


def standin(statement: str, database: str, prefix: str = "") -> str:
    """The cluster statement as one shard's node runs it, minus what chDB lacks: no ON CLUSTER,
    plain engines for Replicated ones (same table, no Keeper), and a Merge table over every
    node's ``_local`` for a Distributed one (what a Distributed read returns: the union).
    ``prefix``: the shard databases are named ``{prefix}node_a`` and so on."""
    text = statement.replace(f" ON CLUSTER `{CLUSTER}`", "")
    text = re.sub(r"ENGINE = Replicated(\w*MergeTree)\('[^']*', '[^']*'(?:, )?", r"ENGINE = \1(", text)
    text = re.sub(r"ENGINE = Replicated(\w*MergeTree)", r"ENGINE = \1", text)
    nodes = "|".join(NODES)
    return re.sub(
        rf"ENGINE = Distributed\('{CLUSTER}', '{database}', '(\w+)', .*\)$",
        rf"ENGINE = Merge(REGEXP('^{prefix}({nodes})$'), '^\1$')",
        text,
    )


@contextmanager
def shard_standins(
    path: Path, rows: int, days: float, end_ns: int, *, seed: int = 7, prefix: str = "", model_prices: bool = False
) -> Iterator[dict[str, ChdbClient]]:
    """``single``: the single-node schema with ``rows`` spans of demo history ending at ``end_ns``;
    one client per shard in :data:`NODES`: the cluster DDL, fed the same spans split by the
    Distributed key (cityHash64(TraceId) % 2). ``model_prices``: the price table on every node too.
    The databases (named ``{prefix}single`` ...) are dropped afterwards."""
    admin = ChdbClient.open(str(path))
    clients: dict[str, ChdbClient] = {}
    try:
        for name in ("single", *NODES):
            admin.command(f"CREATE DATABASE IF NOT EXISTS {prefix}{name}")
            clients[name] = ChdbClient.open(str(path), database=f"{prefix}{name}")
        apply_migrations(client_runner(clients["single"]))
        if model_prices:
            load_model_prices(clients["single"].insert)
        sql, params = scenarios.history_sql(rows, days, end_ns, seed=seed)
        clients["single"].command(sql, parameters=params)
        for shard, node in enumerate(NODES):
            for statement in cluster_ddl():
                if not statement.startswith("INSERT INTO"):  # backfills: the stand-ins start empty
                    clients[node].command(standin(statement, "default", prefix))
            if model_prices:
                clients[node].command(
                    f"INSERT INTO {prefix}{node}.model_prices SELECT * FROM {prefix}single.model_prices"
                )
            clients[node].command(
                f"INSERT INTO {prefix}{node}.otel_traces_local SELECT * FROM {prefix}single.otel_traces "
                f"WHERE cityHash64(TraceId) % {len(NODES)} = {shard}"
            )
        yield clients
    finally:
        for name, client in clients.items():
            client.close()
            admin.command(f"DROP DATABASE IF EXISTS {prefix}{name} SYNC")
        admin.close()
