"""Held-out judge 12, end to end: OTLP/HTTP protobuf into ``llmtrace server``, then the CLI.

    PYTHONPATH=. nice -n 5 python benchmarks/detection_v12.py --seeds 1200-1219 --out /work/s24-judge12/v12.json

Per seed: a fresh data dir and free ports, ``llmtrace server`` in its own process, the week of
``benchmarks/detection_scenarios_v12.py`` (ending now, rounded down to the minute) posted to
``/v1/traces`` in batches of ~3000 spans, a wait until ``otel_traces`` and ``llm_calls`` hold them
all (ClickHouse HTTP port, clickhouse-connect), then ``llmtrace anomalies --since 8d --by
service,model --format json`` and the same with the default grouping. Work dir:
``$LLMTRACE_V12_WORK`` (default /tmp/llmtrace-v12); ``--keep`` keeps the data dirs.

Scoring (the judge's own, written blind): an episode finds an incident when its metric family
matches the kind, its time overlaps [start - 5 min, end + 30 min] ([start - 5 min, start + 6 h] for
a permanent shift) and its series is the incident's, or one containing it (service, provider,
app), or for a provider-wide incident any member. An episode that finds nothing and is not
explained (same family on a touched series, or a labelled consequence) is false. Eligible: >= 10
min, |z| >= 3 of the window statistic against 30 redraws of the base traffic, >= 10 extra events.

Results: see the notebook entry at the end of this docstring (filled after the judged run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.detection_scenarios_v12 import WEEK_MIN, Week, build, otlp_requests

# kind -> metric families that find it; consequences: families explained (not false) on touched series
FINDS = {
    "latency_spike": {"latency"},
    "latency_ramp": {"latency"},
    "error_burst": {"errors"},
    "provider_outage": {"errors"},
    "volume_drop": {"volume"},
    "ttft_spike": {"ttft"},
    "output_shift": {"output"},
    "prompt_bloat": {"cost", "input"},
    "truncation_burst": {"truncation"},
}
CONSEQUENCES = {
    "latency_spike": {"ttft", "throughput"},
    "latency_ramp": {"throughput"},
    "error_burst": {"latency", "volume", "output", "cost", "input", "ttft", "throughput", "truncation"},
    "provider_outage": {"latency", "volume", "output", "cost", "input", "ttft", "throughput", "truncation"},
    "volume_drop": {"cost", "input", "output"},
    "ttft_spike": {"latency", "throughput"},
    "output_shift": {"latency", "cost", "throughput", "truncation", "ratio"},
    "prompt_bloat": {"latency", "ttft", "ratio"},
    "truncation_burst": {"output", "latency", "cost", "ratio", "throughput"},
}


def family(metric: str) -> str:
    m = metric.lower()
    if "ttft" in m or "first" in m:
        return "ttft"
    if "per_s" in m or "throughput" in m:
        return "throughput"
    if "latency" in m or "duration" in m:
        return "latency"
    if "error" in m:
        return "errors"
    if "trunc" in m or "finish" in m or "length" in m:
        return "truncation"
    if "ratio" in m:
        return "ratio"
    if "cost" in m:
        return "cost"
    if "input" in m or "prompt" in m:
        return "input"
    if "output" in m or "completion" in m:
        return "output"
    if "call" in m or "volume" in m or "count" in m or "rate" in m:
        return "volume"
    return m


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.otlp, self.http = free_port(), free_port()
        self.log = open(log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmtrace.cli",
                "server",
                "--data-dir",
                str(data_dir),
                "--otlp-port",
                str(self.otlp),
                "--http-port",
                str(self.http),
                "--ttl-days",
                "60",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        self.url = f"http://127.0.0.1:{self.http}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        import clickhouse_connect

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}")
            try:
                c = clickhouse_connect.get_client(host="127.0.0.1", port=self.http)
                c.query("SELECT count() FROM llm_calls")
                with socket.create_connection(("127.0.0.1", self.otlp), timeout=1):
                    return
            except Exception:
                time.sleep(0.5)
        raise RuntimeError("server not ready")

    def cpu_seconds(self) -> float:
        total = 0.0
        pids = [self.proc.pid]
        try:
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
            ).stdout
            pids += [int(p) for p in out.split()]
        except Exception:
            pass
        for pid in pids:
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def send(server: Server, week: Week) -> tuple[int, int, list[str]]:
    """Post every batch; returns (spans sent, llm calls sent, problems seen)."""
    problems: list[str] = []
    spans = calls = 0
    conn = http.client.HTTPConnection("127.0.0.1", server.otlp, timeout=120)
    for body, n_spans, n_calls in otlp_requests(week):
        for _attempt in range(60):
            try:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.otlp, timeout=120)
                problems.append(f"send error {exc!r}")
                time.sleep(1)
                continue
            if resp.status in (429, 503):
                time.sleep(float(resp.getheader("Retry-After") or 1))
                continue
            if resp.status != 200:
                problems.append(f"HTTP {resp.status}: {data[:300]!r}")
                break
            if data:
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

                r = ExportTraceServiceResponse.FromString(data)
                if r.partial_success.rejected_spans:
                    problems.append(f"rejected {r.partial_success.rejected_spans}: {r.partial_success.error_message}")
            break
        spans += n_spans
        calls += n_calls
    conn.close()
    return spans, calls, problems


def wait_stored(server: Server, spans: int, calls: int, timeout: float = 600.0) -> tuple[int, int]:
    import clickhouse_connect

    c = clickhouse_connect.get_client(host="127.0.0.1", port=server.http)
    deadline = time.monotonic() + timeout
    last = (-1, -1)
    stable = 0
    while time.monotonic() < deadline:
        got = (
            int(c.query("SELECT count() FROM otel_traces").result_rows[0][0]),
            int(c.query("SELECT count() FROM llm_calls").result_rows[0][0]),
        )
        if got[0] >= spans and got[1] >= calls:
            return got
        stable = stable + 1 if got == last else 0
        if stable >= 30:  # a minute without progress
            return got
        last = got
        time.sleep(2)
    return last


def anomalies(server: Server, by: str | None) -> tuple[list[dict[str, Any]], float, str]:
    cmd = [sys.executable, "-m", "llmtrace.cli", "anomalies", "--url", server.url, "--since", "8d", "--format", "json"]
    if by:
        cmd += ["--by", by]
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t
    if r.returncode not in (0, 1, 2, 3):
        return [], wall, f"exit {r.returncode}: {r.stderr[-500:]}"
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError:
        return [], wall, f"not JSON (exit {r.returncode}): {r.stdout[:300]!r} {r.stderr[-300:]!r}"
    return data, wall, r.stderr[-300:] if r.returncode else ""


# ----- fields: what the server stored against what was sent -----

FIELD_SQL = """
SELECT ServiceName, RequestModel, any(Provider), count(), sum(IsError), countIf(TtftUs IS NOT NULL), sum(IsStream),
       avgIf(InputTokens, IsError = 0), avgIf(OutputTokens, IsError = 0), countIf(FinishReason != ''),
       countIf(CostUsd IS NOT NULL),
       groupUniqArray(Release), groupUniqArray(ErrorType), countIf(PromptVersion != ''), countIf(Environment != '')
FROM llm_calls GROUP BY ServiceName, RequestModel
"""


def field_check(server: Server, week: Week) -> list[str]:
    """Per series: what the generator sent against what llm_calls holds; one line per difference."""
    import clickhouse_connect
    import numpy as np

    c = clickhouse_connect.get_client(host="127.0.0.1", port=server.http)
    rows = {(r[0], r[1]): r for r in c.query(FIELD_SQL).result_rows}
    out = []
    for s in week.series:
        calls = week.calls[s.key]
        r = rows.get((s.service, s.model))
        if r is None:
            out.append(f"{s.key}: no llm_calls rows ({len(calls)} sent)")
            continue
        ok = calls.err == 0
        sent = {
            "count": len(calls),
            "errors": int((calls.err > 0).sum()),
            "ttft": int((ok & ~np.isnan(calls.ttft)).sum()),
            "stream": int((~np.isnan(calls.ttft)).sum()),
            "finish": 0 if s.embeddings else int(ok.sum()),
            "prompt_version": len(calls) if s.service == "support-chat" else 0,
        }
        got = {"count": r[3], "errors": r[4], "ttft": r[5], "stream": r[6], "finish": r[9], "prompt_version": r[13]}
        for k, v in sent.items():
            if int(got[k]) != v:
                out.append(f"{s.key}: {k} sent {v}, stored {got[k]}")
        if r[2] != s.provider:
            out.append(f"{s.key}: provider sent {s.provider}, stored {r[2]!r}")
        if abs(float(r[7]) - float(calls.inp[ok].mean())) > 1:  # failed calls carry no usage
            out.append(f"{s.key}: mean input tokens sent {calls.inp[ok].mean():.1f}, stored {r[7]:.1f}")
        if not s.embeddings and abs(float(r[8]) - float(calls.out[ok].mean())) > 1:
            out.append(f"{s.key}: mean output tokens sent {calls.out[ok].mean():.1f}, stored {r[8]:.1f}")
        if r[10] < 0.99 * (r[3] - r[4]):
            out.append(f"{s.key}: priced {r[10]}/{r[3]} calls (no cost attribute was sent)")
        if not r[14]:
            out.append(f"{s.key}: environment empty (resource deployment.environment.name sent)")
    return out


# ----- scoring -----


def _epoch_min(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() / 60.0


def members(series: dict[str, str], week: Week) -> set[str]:
    """The service x model series an episode's series contains."""
    got = set()
    for s in week.series:
        if series.get("service", s.service) != s.service:
            continue
        if series.get("model", s.model) != s.model:
            continue
        if series.get("provider", s.provider) != s.provider:
            continue
        got.add(s.key)
    return got


def episode_family(a: dict[str, Any]) -> str:
    m = a["metric"]
    return {
        "calls": "volume",
        "latency_p95_ms": "latency",
        "error_rate": "errors",
        "ttft_p95_ms": "ttft",
        "tokens_per_call": "output",
        "truncation_rate": "truncation",
        "cost_per_call_usd": "cost",
        "empty_output_rate": "empty",
        "retries": "retries",
    }.get(m, family(m))


CONSEQUENCES["error_burst"] |= {"empty", "retries"}
CONSEQUENCES["provider_outage"] |= {"empty", "retries"}
CONSEQUENCES["truncation_burst"] |= {"empty"}
FINDS["prompt_bloat"] = {"cost", "input"}


def _window(inc: Any) -> tuple[int, int]:
    if inc.end >= WEEK_MIN and inc.kind == "output_shift":
        return inc.start - 5, inc.start + 360
    return inc.start - 5, inc.end + 30


def false_cause(a: dict[str, Any], mem: set[str], m0: float, week: Week) -> str:
    by_key = {s.key: s for s in week.series}
    for b in week.benign:
        if b.kind in ("planned_release", "router_shift") and mem & set(b.series) and b.start - 5 <= m0 < b.start + 360:
            return b.kind
    utc = week.end_epoch_min - WEEK_MIN + m0
    hod = (utc % 1440) / 60
    if "translation|gemini-2.0-flash" in mem and len(mem) <= 3 and 12.5 <= hod < 15.5:
        return "daily_peak"
    history = min(m0 - week.first_minute[k] for k in mem)  # the least history among its members
    if history < 24 * 60:
        return "history <24h"
    if history < 48 * 60:
        return "history 24-48h"
    if len(mem) == 1 and by_key[next(iter(mem))].shape in ("hourly_cron", "six_hourly"):
        return "cron batch"
    if (((utc // 1440) + 3) % 7) >= 5:
        return "weekend"
    return "other"


def score(week: Week, data: dict[str, Any]) -> dict[str, Any]:
    t0 = week.end_epoch_min - WEEK_MIN
    eps = []
    for a in data.get("anomalies", []):
        if a.get("kind") not in ("episode", "retry_storm"):
            continue
        m0, m1 = _epoch_min(a["start"]) - t0, _epoch_min(a["end"]) - t0
        det = _epoch_min(a["detected_at"]) - t0 if a.get("detected_at") else m0
        eps.append(
            {
                "a": a,
                "fam": episode_family(a),
                "m0": m0,
                "m1": max(m1, m0 + 1),
                "det": det,
                "mem": members(a["series"], week),
                "found": [],
                "explained": False,
            }
        )
    per_inc = []
    for i, inc in enumerate(week.incidents):
        w0, w1 = _window(inc)
        hit = None
        for e in eps:
            if not (e["m0"] < w1 and e["m1"] > w0) or not (e["mem"] & set(inc.series)):
                continue
            if e["fam"] in FINDS[inc.kind]:
                e["found"].append(i)
                if hit is None or e["det"] < hit["det"]:
                    hit = e
            elif e["fam"] in CONSEQUENCES[inc.kind]:
                e["explained"] = True
        per_inc.append(
            {
                "found": hit is not None,
                "ttd": (hit["det"] - inc.start) if hit else None,
                "level": hit["a"].get("level") if hit else None,
            }
        )
    false = [e for e in eps if not e["found"] and not e["explained"]]
    return {
        "incidents": per_inc,
        "false": [
            {
                "metric": e["a"]["metric"],
                "level": e["a"].get("level"),
                "series": e["a"]["series"],
                "m0": round(e["m0"]),
                "m1": round(e["m1"]),
                "cause": false_cause(e["a"], e["mem"], e["m0"], week),
            }
            for e in false
        ],
        "episodes": len(eps),
    }


def size_bin(inc: Any) -> str:
    f = inc.factor
    edges = {
        "latency_spike": [(0, 3, "x<3"), (3, 5, "x3-5"), (5, 99, "x5-8")],
        "latency_ramp": [(0, 99, "ramp x3-5")],
        "error_burst": [(0, 0.25, "<25%"), (0.25, 0.4, "25-40%"), (0.4, 1, "40-60%")],
        "provider_outage": [(0, 1, "70-95%")],
        "volume_drop": [(0.3, 1, "-35..-55%"), (0, 0.3, "-82..-90%")],
        "ttft_spike": [(0, 4, "x<4"), (4, 7, "x4-7"), (7, 99, "x7-10")],
        "output_shift": [(0, 2.4, "x1.8-2.4"), (2.4, 99, "x2.4-3")],
        "prompt_bloat": [(0, 99, "x2.5-4")],
        "truncation_burst": [(0, 99, "30-60%")],
    }[inc.kind]
    return next(name for lo, hi, name in edges if lo <= f < hi)


# ----- runner -----


def run_seed(seed: int, work: Path, keep: bool) -> dict[str, Any]:
    d = work / f"seed{seed}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    cpu0 = time.process_time()
    end = int(time.time() // 60)
    week = build(seed, end)
    gen_cpu = time.process_time() - cpu0
    server = Server(d / "data", d / "server.log")
    out: dict[str, Any] = {"seed": seed, "end_epoch_min": end, "gen_cpu": round(gen_cpu, 1)}
    try:
        server.wait_ready()
        cpu1 = time.process_time()
        spans, calls, problems = send(server, week)
        out["send_cpu"] = round(time.process_time() - cpu1, 1)
        out.update(spans=spans, calls=calls, problems=problems)
        out["stored"] = wait_stored(server, spans, calls)
        out["fields"] = field_check(server, week)
        out["server_cpu_ingest"] = round(server.cpu_seconds(), 1)
        for name, by in (("service,model", "service,model"), ("default", None)):
            data, wall, err = anomalies(server, by)
            out[name] = score(week, data) if isinstance(data, dict) else {"error": "bad output"}
            out[name]["cli_wall"] = round(wall, 1)
            out[name]["cli_error"] = err
            warming = data.get("warming_up", []) if isinstance(data, dict) else []
            out[name]["warming_up"] = [w.get("series") for w in warming]
            (d / f"anomalies_{name.replace(',', '_')}.json").write_text(json.dumps(data, default=str))
        out["server_cpu"] = round(server.cpu_seconds(), 1)
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(d / "data", ignore_errors=True)
    out["incidents"] = [
        {
            "kind": i.kind,
            "series": i.series,
            "scope": i.scope,
            "start": i.start,
            "end": i.end,
            "factor": round(i.factor, 3),
            "note": i.note,
            "z": None if math.isnan(i.z) else round(min(i.z, 1e6), 2),
            "extra": round(i.extra, 1),
            "young": i.young,
            "night": i.night,
            "weekend": i.weekend,
            "eligible": i.eligible,
            "bin": size_bin(i),
        }
        for i in week.incidents
    ]
    out["benign"] = [dataclass_dict(b) for b in week.benign]
    out["n_series"] = len(week.series)
    return out


def dataclass_dict(b: Any) -> dict[str, Any]:
    return {
        "kind": b.kind,
        "series": b.series if len(b.series) < 5 else ["(all)"],
        "start": b.start,
        "end": b.end,
        "note": b.note,
    }


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for name in ("service,model", "default"):
        lines.append(f"== grouping: {name} ==")
        agg: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        ttd: dict[str, list[float]] = defaultdict(list)
        missed = []
        false_by: dict[tuple[str, str], int] = defaultdict(int)
        n_false = 0
        series_weeks = 0
        for r in results:
            if "incidents" not in r.get(name, {}):
                continue
            series_weeks += r["n_series"]
            for inc, res in zip(r["incidents"], r[name]["incidents"], strict=True):
                k = inc["kind"]
                cells = ["all"]
                if inc["eligible"]:
                    cells += ["eligible", "bin " + inc["bin"]]
                    if inc["young"]:
                        cells.append("young eligible")
                    if inc["night"] or inc["weekend"]:
                        cells.append("night/weekend eligible")
                for cell in cells:
                    agg[k][cell][1] += 1
                    agg[k][cell][0] += int(res["found"])
                for cell in [c for c in cells if not c.startswith("bin")]:
                    agg["ALL"][cell][1] += 1
                    agg["ALL"][cell][0] += int(res["found"])
                if res["found"] and inc["eligible"]:
                    ttd[k].append(res["ttd"])
                if inc["eligible"] and not res["found"]:
                    missed.append(
                        f"  seed {r['seed']} {k} {'+'.join(inc['series']) if len(inc['series']) < 3 else inc['note']}"
                        f" [{inc['start']},{inc['end']}) size {inc['factor']} z {inc['z']} extra {inc['extra']}"
                        f" young {inc['young']}{' ' + inc['note'] if inc['note'] else ''}"
                    )
            for f in r[name]["false"]:
                false_by[(f["metric"], f["cause"])] += 1
                n_false += 1
        lines.append("kind              eligible recall   all recall   young elig  night/wknd elig  ttd median min (n)")
        for k in sorted(agg, key=lambda x: (x == "ALL", x)):
            a = agg[k]

            def frac(cell: str, a: dict[str, list[int]] = a) -> str:
                f, n = a.get(cell, (0, 0))
                return f"{f}/{n}" + (f" {f / n:.2f}" if n else "")

            t = sorted(ttd[k]) if k != "ALL" else sorted(x for v in ttd.values() for x in v)
            med = f"{t[len(t) // 2]:.0f} ({len(t)})" if t else "-"
            lines.append(
                f"{k:17s} {frac('eligible'):16s} {frac('all'):12s} {frac('young eligible'):11s} "
                f"{frac('night/weekend eligible'):16s} {med}"
            )
            bins = sorted(c for c in a if c.startswith("bin "))
            if bins:
                lines.append("    by size (eligible): " + ", ".join(f"{c[4:]} {frac(c)}" for c in bins))
        weeks = series_weeks or 1
        lines.append(
            f"false episodes: {n_false} over {series_weeks} series-weeks = {n_false / weeks:.2f} per series per week"
        )
        late = sum(n for (_, cause), n in false_by.items() if not cause.startswith("history"))
        lines.append(f"    of which with >= 48 h of history: {late} = {late / weeks:.2f} per series per week")
        for (metric, cause), n in sorted(false_by.items(), key=lambda x: -x[1]):
            lines.append(f"    {metric:20s} {cause:16s} {n} ({n / weeks:.3f}/series/week)")
        lines.append(f"missed eligible incidents ({len(missed)}):")
        lines += missed
    fields = defaultdict(int)
    for r in results:
        for f in r.get("fields", []):
            fields[f.split(":", 1)[0] + ":" + f.split(":", 1)[1].split(" sent")[0].split(" stored")[0]] += 1
        for p in r.get("problems", []):
            fields["ingest problem: " + p[:120]] += 1
        if tuple(r.get("stored", (0, 0))) != (r.get("spans"), r.get("calls")):
            fields[f"stored {r.get('stored')} != sent {(r.get('spans'), r.get('calls'))}"] += 1
    lines.append("fields / ingest (seeds with the difference):")
    lines += [f"    {k} ({v})" for k, v in sorted(fields.items())]
    return "\n".join(lines)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="1200-1219")
    p.add_argument("--out", default=None)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    work = Path(os.environ.get("LLMTRACE_V12_WORK", "/tmp/llmtrace-v12"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in _seeds(args.seeds):
        t = time.monotonic()
        r = run_seed(seed, work, args.keep)
        load = os.getloadavg()[0]
        results.append(r)
        print(
            f"seed {seed}: {r.get('spans')} spans, {r.get('calls')} calls, stored {r.get('stored')}, "
            f"gen+send cpu {r.get('gen_cpu')}+{r.get('send_cpu')} s, server cpu {r.get('server_cpu')} s, "
            f"wall {time.monotonic() - t:.0f} s, load {load:.1f}",
            flush=True,
        )
        if args.out:
            Path(args.out).write_text(json.dumps(results, default=str))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
