"""Does ``llmtrace up --demo``'s live traffic look like the week of history it follows?

Loads the week (``scenarios.history_sql``) ending at a fixed hour into a real ``llmtrace server``,
plays ``--minutes`` of the live generator's requests after it through the real SDKs (re-timed to
their planned times, as ``llmtrace demo`` does), then prints per series (service x model x
environment) the live calls per hour and shapes next to the history's at the same time of day
over its 7 days, and every anomaly ``anomalies.detect`` reports at the end of the live window.
``--generator old`` plays the generator before session 15 (0.2 requests/s, the demo plan's request).

    python benchmarks/demo_live_match.py --hour 15 --minutes 45 --generator new
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmtrace.analytics import anomalies  # noqa: E402
from llmtrace.analytics.filters import Filter  # noqa: E402
from llmtrace.demo import live_shape, scenarios  # noqa: E402
from llmtrace.demo.command import sdk_pipeline  # noqa: E402
from llmtrace.demo.live import load_history  # noqa: E402
from llmtrace.demo.scenarios import Request  # noqa: E402
from llmtrace.store.client import connect  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

OLD_RATE = 0.2  # requests/s: the floor live traffic had before

STATS = """
SELECT ServiceName, RequestModel, Environment, count() / {per:Float64} AS calls_h,
    round(avgIf(InputTokens, IsError = 0)) AS input_avg,
    arrayMap(x -> round(x), quantilesIf(0.1, 0.5, 0.9)(OutputTokens, IsError = 0)) AS output_p10_50_90,
    round(avg(IsError), 3) AS errors, round(avg(IsStream), 2) AS stream,
    round(quantileIf(0.9)(TtftUs / 1000, IsStream AND IsError = 0)) AS ttft_p90_ms,
    round(quantileIf(0.9)(DurationUs / 1000, IsError = 0)) AS latency_p90_ms,
    round(quantileIf(0.9)(CostUsd * 1e6, IsError = 0)) AS cost_p90_uusd,
    groupUniqArray(FinishReason) AS finish, round(avg(HasToolCalls), 2) AS tools
FROM llm_calls WHERE {where:String} = {where:String} AND ({cond})
GROUP BY ServiceName, RequestModel, Environment ORDER BY ServiceName, RequestModel, Environment
"""


def requests(generator: str, start_ns: int, end_ns: int, calls: int) -> list[Request]:
    if generator == "new":
        times = live_shape.schedule(start_ns, live_shape.mean_rate(calls), end_ns)
        return [live_shape.request_at(t, f"live:7:{i}") for i, t in enumerate(times)]
    times = range(start_ns, end_ns, int(1e9 / OLD_RATE))
    return [scenarios._request(random.Random(f"live:7:{i}"), t, t, 7) for i, t in enumerate(times)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hour", type=int, default=15, help="UTC hour the history ends at (yesterday)")
    parser.add_argument("--minutes", type=int, default=45)
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--generator", choices=("old", "new"), default="new")
    args = parser.parse_args()
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    end = today - timedelta(days=1) + timedelta(hours=args.hour)
    stop = end + timedelta(minutes=args.minutes)
    end_ns, stop_ns = int(end.timestamp() * 1e9), int(stop.timestamp() * 1e9)
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="live-match-")) / "data").wait_ready()
    try:
        load_history(server.http_url, args.calls, end_ns=end_ns)
        planned = requests(args.generator, end_ns, stop_ns, args.calls)
        calls = sum(len(r.calls) for r in planned)
        started = time.process_time()
        with sdk_pipeline(server.otlp_url) as player:
            for request in planned:
                player.play(request)
        print(f"played {len(planned)} requests, {calls} calls ({time.process_time() - started:.1f} s CPU)")
        client = connect(server.http_url)
        deadline = time.monotonic() + 60
        total = args.calls + args.calls % 2 + calls
        while client.query("SELECT count() FROM llm_calls").result_rows[0][0] < total:
            if time.monotonic() > deadline:
                raise RuntimeError("the live calls did not arrive within 60 s")
            time.sleep(0.2)  # polling the store until the server has written them
        start_s, span_s = end.timestamp() % 86400, args.minutes * 60
        history = (
            f"Timestamp < toDateTime64({end.timestamp()}, 9) "
            f"AND (toUnixTimestamp(Timestamp) - {start_s:.0f} + 86400) % 86400 < {span_s}"
        )
        live = f"Timestamp >= toDateTime64({end.timestamp()}, 9)"
        for name, cond, per in (("history (same time of day, 7 days)", history, 7 * span_s / 3600),
                                ("live", live, span_s / 3600)):  # fmt: skip
            result = client.query(STATS.replace("{cond}", cond), parameters={"per": per, "where": "1"})
            print(f"\n{name}: " + " | ".join(result.column_names))
            for row in result.result_rows:
                print("  " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
        report = anomalies.detect(client, Filter.last(timedelta(days=7), now=stop), now=stop)
        print(f"\nanomalies at {stop:%Y-%m-%d %H:%M} UTC (history ends {end:%H:%M}):")
        for a in report.anomalies:
            print(f"  {a.kind} {a.severity} {a.series} {a.metric} {a.direction} {a.start:%m-%d %H:%M}-{a.end:%H:%M}")
        client.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
