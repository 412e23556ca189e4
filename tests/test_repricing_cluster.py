"""Re-pricing on a cluster, checked against the rendered ``migrate --cluster`` DDL in chDB.

As in test_cluster_schema: two shard stand-ins (``node_a``, ``node_b``) run the cluster DDL with
plain engines for Replicated ones and ``Merge`` tables for the Distributed names; the same demo
history goes to a single-node database and, split by the Distributed key, to the shards. A
stand-in client plays the cluster's part for re-pricing's statements: ``ON CLUSTER`` DDL runs on
every node, an INSERT through a Distributed name lands on one shard's local table (any split of
correction rows sums the same), reads see the union. Not proven here: the ON CLUSTER DDL queue
and Distributed insert path of a real cluster (chDB has neither).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from llmtrace.analytics import cost
from llmtrace.analytics.filters import Filter
from llmtrace.store import prices
from llmtrace.store.chdb_client import ChdbClient
from tests.cluster_standins import CLUSTER, NODES, cluster_ddl, created, shard_standins
from tests.test_cluster_schema import END

pytest_plugins = ["tests.conftest_store"]
pytestmark = pytest.mark.usefixtures("engine_overrides")  # tests/conftest.py

OVERRIDES = [
    {"provider": "openai", "model": "gpt-4o", "input_mtok": 1.0, "output_mtok": 2.0},
    {"model": "acme-support-ft", "input_mtok": 0.5, "output_mtok": 1.0},
]
WINDOWS = {"1h": Filter.last(timedelta(hours=1), now=END), "30d": Filter.last(timedelta(days=30), now=END)}


class ClusterStandin:
    """A client on the cluster as re-pricing sees it, over the shard stand-ins."""

    def __init__(self, nodes: dict[str, ChdbClient]) -> None:
        self.nodes = nodes
        self.first = nodes[NODES[0]]
        self.statements: list[str] = []

    def query(self, sql: str, **kwargs: Any) -> Any:
        sql = sql.replace(f"clusterAllReplicas('{CLUSTER}', system.mutations)", "system.mutations")
        return self.first.query(sql, **kwargs)

    def command(self, sql: str, **kwargs: Any) -> Any:
        self.statements.append(sql)
        kwargs.pop("settings", None)  # distributed_foreground_insert: no Distributed engine here
        if f" ON CLUSTER `{CLUSTER}`" in sql:
            for node in self.nodes.values():
                node.command(sql.replace(f" ON CLUSTER `{CLUSTER}`", ""), **kwargs)
            return None
        if m := re.match(r"\s*INSERT INTO (\w+)", sql):
            return self.first.command(sql.replace(m.group(0), f"{m.group(0)}_local", 1), **kwargs)
        return self.first.command(sql, **kwargs)

    def insert(self, table: str, rows: list[Any], column_names: list[str]) -> None:
        self.first.insert(table, rows, column_names=column_names)


@pytest.fixture
def clients(chdb_path: Path) -> Iterator[dict[str, ChdbClient]]:
    """``single`` (single-node schema) and the shard stand-ins, holding the same demo history."""
    with shard_standins(chdb_path, 3000, 10, int(END.timestamp() * 1e9), prefix=f"rc_{uuid.uuid4().hex[:8]}_") as out:
        yield out


def _totals(client: Any) -> dict[str, tuple[float, int, int]]:
    out = {}
    for name, f in WINDOWS.items():
        row = cost.totals(client, f).iloc[0]
        out[name] = (float(row["cost_usd"]), int(row["unpriced_calls"]), int(row["priced_calls"]))
    return out


def test_the_cluster_layout_is_read_from_the_rendered_distributed_llm_calls() -> None:
    engine_full = re.search(r"ENGINE = (Distributed\(.*\))$", created(cluster_ddl())["llm_calls"]).group(1)
    layout = prices.Layout.from_engine(engine_full)
    assert layout == prices.Layout.on_cluster(CLUSTER) and layout.update == f"llm_calls_local ON CLUSTER `{CLUSTER}`"
    assert layout.calls == "llm_calls" and layout.rollups == ("llm_calls_1m", "llm_calls_1h")
    assert prices.Layout.from_engine("MergeTree PARTITION BY toDate(Timestamp)") == prices.Layout()


def test_repricing_a_cluster_updates_every_shard_and_agrees_with_the_single_node(
    clients: dict[str, ChdbClient],
) -> None:
    cluster = ClusterStandin({n: clients[n] for n in NODES})
    single = prices.reprice(clients["single"], OVERRIDES)
    done = prices.reprice(cluster, OVERRIDES, layout=prices.Layout.on_cluster(CLUSTER))
    assert done.calls == single.calls > 300
    assert done.cost_after == pytest.approx(single.cost_after, rel=1e-9)
    update = [s for s in cluster.statements if "UPDATE" in s]
    assert len(update) == 1 and update[0].lstrip().startswith(f"ALTER TABLE llm_calls_local ON CLUSTER `{CLUSTER}`")
    parsed = clients["single"].query("SELECT formatQuery({q:String})", parameters={"q": update[0]}).result_rows[0][0]
    assert parsed.startswith(f"ALTER TABLE llm_calls_local ON CLUSTER {CLUSTER}\n    (UPDATE PrevCostUsd = CostUsd")
    for node in NODES:  # the mutation ran on each shard's local table
        assert clients[node].query("SELECT countIf(PriceVersion = 1) FROM llm_calls_local").result_rows[0][0] > 0
    got, want = _totals(clients[NODES[0]]), _totals(clients["single"])  # reads: the Distributed names
    for name in WINDOWS:
        assert got[name][0] == pytest.approx(want[name][0], rel=1e-9) and got[name][1:] == want[name][1:], name
    assert got["1h"][0] > 0 and want["30d"][1] == 0  # every call priced in every window
