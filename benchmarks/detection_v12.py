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

Lab notebook, session 24 (the judged run: the first and only run on seeds 1200-1219; nothing tuned after it)
-----------------------------------------------------------------------------------------------------
2026-12-06 23:30-23:59 UTC. Generator and runner at commit 0e13cc8 (this branch); detector: main at 7c98b2d,
run from the worktree (PYTHONPATH, no llmtrace code changed). Load 4.4-8.2 (1-min average at each seed's end,
machine shared with another helper). Per seed: ~390-401k spans (356-366k LLM calls, the rest agent roots and
tool spans), all stored (otel_traces and llm_calls counts equal to what was sent, no rejected span, no 4xx/5xx);
client CPU 16-18 s (building protobuf), server CPU 45-53 s for ingest plus both CLI runs (1.5-2 s wall each).
The week ended at each seed's real present (Sunday 23:30 - Monday 00:00 UTC): its last ~48 h are a weekend.

Recall (eligible = >= 10 min, |z| >= 3 against 30 redraws, >= 10 extra events; ttd = detected_at - start).
--by service,model:
kind              eligible recall   all recall   young elig  night/wknd elig  ttd median min (n)
error_burst       76/77 0.99       91/140 0.65  18/19 0.95  39/40 0.97       7 (76)
latency_ramp      13/15 0.87       13/19 0.68   1/3 0.33    6/8 0.75         21 (13)
latency_spike     100/109 0.92     102/140 0.73 30/35 0.86  55/61 0.90       6 (100)
output_shift      13/17 0.76       13/18 0.72   1/3 0.33    7/10 0.70        7 (13)
prompt_bloat      15/18 0.83       15/20 0.75   2/5 0.40    7/10 0.70        8 (15)
provider_outage   17/17 1.00       17/20 0.85   17/17 1.00  6/6 1.00         4 (17)
truncation_burst  13/14 0.93       14/20 0.70   4/4 1.00    7/7 1.00         5 (13)
ttft_spike        38/39 0.97       52/60 0.87   11/11 1.00  16/17 0.94       4 (38)
volume_drop       19/60 0.32       19/79 0.24   5/23 0.22   13/44 0.30       22 (19)
ALL               304/366 0.83     336/516 0.65 89/120 0.74 156/203 0.77     6 (304)
  by size (eligible): latency x<3 13/16, x3-5 36/38, x5-8 51/55; errors <25% 9/10, 25-40% 33/33, 40-60% 34/34;
  TTFT x<4 4/5, x4-7 18/18, x7-10 16/16; output x1.8-2.4 6/9, x2.4-3 7/8; volume -35..-55% 0/13, -82..-90% 19/47
default grouping (auto): the same except output_shift 14/17 and volume_drop 21/60 (-82..-90% 21/47):
ALL 307/366 0.84 eligible, 339/516 all, young 90/120, night/weekend 158/203.

False episodes per service x model series per week (17 series x 20 seeds = 340 series-weeks):
  --by service,model: 366 = 1.08; with >= 48 h of history: 40 = 0.12
     calls: history < 24 h 186, history 24-48 h 110, weekend 13 (+ 14 "other", of which 10 on support-chat|gpt-4o
     at ~23:00 UTC Friday, the start of its UTC+1 weekend); tokens_per_call 18, latency_p95_ms 10,
     truncation_rate 7, cost_per_call_usd 6, error_rate 1, ttft_p95_ms 1
  default: 401 = 1.18; with >= 48 h of history: 59 = 0.17 (adds 22 empty_output_rate on provider=openai,
     18 of them Saturday 01-05 UTC: embeddings, which have no output tokens, outweigh the quiet chat series)
  (causes as relabelled by --rescore: a group's history is its oldest member's; totals unchanged)

Missed eligible incidents, --by service,model (62; the default grouping finds 3 of them: 1202 volume_drop
doc-summarizer, 1209 output_shift code-review|o3-mini, 1211 volume_drop onboarding-bot [9999,10034)).
Week minutes; size = factor (volume: share kept; errors: error rate); z against 30 redraws; extra = events.
    1200 volume_drop legal-drafts|claude-opus-4 [2774,2813) size 0.178 z 5.1 extra 34
    1200 volume_drop onboarding-bot|mistral-small [9603,9653) size 0.127 z 12.6 extra 99 young
    1200 volume_drop translation|gemini-2.0-flash [1463,1497) size 0.486 z 4.7 extra 47 (small)
    1200 latency_ramp support-chat|claude-3-5-haiku [9467,9573) size 3.356 z 11.0 extra 39 young (slow ramp)
    1201 volume_drop legal-drafts|claude-opus-4 [890,980) size 0.138 z 8.2 extra 100
    1201 volume_drop onboarding-bot|mistral-small [9849,9924) size 0.161 z 8.8 extra 73 young
    1201 volume_drop support-chat|gpt-4o [6710,6781) size 0.564 z 10.4 extra 178 (small)
    1202 volume_drop doc-summarizer|claude-3-5-haiku [4832,4887) size 0.159 z 11.2 extra 153
    1202 volume_drop nightly-etl|gpt-4.1-mini [2202,2277) size 0.139 z 19.5 extra 528
    1202 output_shift translation|gemini-2.5-flash-lite [9350,10080) size 2.232 z 16.4 extra 138 young (permanent)
    1203 volume_drop translation|gemini-2.5-flash-lite [9677,9724) size 0.154 z 6.2 extra 41 young
    1204 latency_spike support-chat|claude-3-5-haiku [9166,9200) size 4.723 z 24.2 extra 11 young
    1204 volume_drop onboarding-bot|mistral-small [9630,9684) size 0.102 z 10.1 extra 89 young
    1204 latency_spike onboarding-bot|mistral-small [9612,9663) size 2.054 z 4.4 extra 39 young (small)
    1204 volume_drop research-agent|gpt-4.1 [5770,5840) size 0.589 z 3.4 extra 22 (small)
    1205 volume_drop code-review|o3-mini [4459,4546) size 0.131 z 21.1 extra 273
    1205 volume_drop code-review|o3-mini [5909,5963) size 0.516 z 8.5 extra 124 (small)
    1206 latency_spike support-chat|claude-3-5-haiku [9184,9210) size 6.118 z 13.4 extra 13 young
    1206 volume_drop legal-drafts|claude-opus-4 [4276,4354) size 0.108 z 3.1 extra 14
    1206 output_shift internal-tools|mistral-large [3602,10080) size 2.046 z 12.7 extra 62 (permanent)
    1206 latency_spike internal-tools|mistral-large [4942,4977) size 1.92 z 7.4 extra 27 (small)
    1207 latency_spike research-agent|gpt-4.1 [7169,7199) size 3.659 z 6.8 extra 13
    1207 volume_drop voice-assistant|gemini-2.0-flash [7786,7835) size 0.579 z 5.5 extra 85 (small)
    1208 ttft_spike support-chat|gpt-4o-mini [9319,9333) size 2.188 z 5.1 extra 18 (small)
    1209 output_shift code-review|o3-mini [1683,10080) size 1.832 z 21.6 extra 425 (permanent)
    1209 volume_drop support-chat|claude-3-5-haiku [9526,9607) size 0.161 z 4.5 extra 26 young
    1209 volume_drop onboarding-bot|mistral-small [9858,9926) size 0.494 z 3.6 extra 35 young (small)
    1209 prompt_bloat support-chat|claude-3-5-haiku [9338,9448) size 2.801 z 19.8 extra 26 young
    1210 volume_drop nightly-etl|gpt-4.1-mini [9385,9421) size 0.11 z 27.1 extra 1075
    1210 volume_drop voice-assistant|gemini-2.0-flash [4379,4425) size 0.615 z 6.2 extra 103 (small)
    1211 volume_drop translation|gemini-2.5-flash-lite [9486,9559) size 0.169 z 9.9 extra 102 young
    1211 volume_drop onboarding-bot|mistral-small [9999,10034) size 0.101 z 4.8 extra 26 young
    1211 prompt_bloat translation|gemini-2.5-flash-lite [9442,9487) size 3.276 z 35.8 extra 63 young
    1211 latency_ramp support-chat|claude-3-5-haiku [9507,9583) size 3.379 z 4.6 extra 23 young (slow ramp)
    1212 volume_drop support-chat|gpt-4o-mini [6337,6395) size 0.172 z 30.2 extra 1000
    1212 volume_drop voice-assistant|gemini-2.5-flash [9966,10016) size 0.168 z 11.0 extra 117 young
    1212 truncation_burst legal-drafts|claude-opus-4 [2479,2516) size 0.3 z 6.2 extra 11
    1213 volume_drop internal-tools|mistral-large [5187,5227) size 0.165 z 5.1 extra 24
    1213 volume_drop nightly-etl|gpt-4.1-mini [4709,4791) size 0.625 z 9.5 extra 272 (small)
    1214 volume_drop translation|gemini-2.5-flash-lite [9938,9993) size 0.118 z 6.3 extra 49 young
    1214 volume_drop onboarding-bot|mistral-small [9666,9719) size 0.16 z 10.3 extra 79 young
    1214 volume_drop voice-assistant|gemini-2.5-flash [9974,10034) size 0.129 z 11.2 extra 143 young
    1214 latency_spike translation|gemini-2.0-flash [2065,2082) size 1.558 z 3.3 extra 44 (small)
    1214 volume_drop onboarding-bot|mistral-small [9677,9707) size 0.545 z 6.7 extra 44 young (small)
    1215 volume_drop translation|gemini-2.5-flash-lite [9530,9607) size 0.17 z 8.3 extra 70 young
    1215 volume_drop research-agent|claude-sonnet-4 [8480,8533) size 0.491 z 6.0 extra 72 (small)
    1216 volume_drop internal-tools|mistral-large [4842,4915) size 0.178 z 6.6 extra 36
    1216 volume_drop support-chat|claude-3-5-haiku [9418,9472) size 0.174 z 3.8 extra 16 young
    1216 volume_drop support-chat|gpt-4o-mini [6631,6673) size 0.538 z 11.9 extra 398 (small)
    1216 latency_spike research-agent|gpt-4.1 [3706,3727) size 5.362 z 4.7 extra 13 (overlapping)
    1217 volume_drop nightly-etl|gpt-4.1-mini [3259,3301) size 0.117 z 26.0 extra 697
    1217 volume_drop support-chat|claude-3-5-haiku [9156,9219) size 0.135 z 3.6 extra 20 young
    1217 volume_drop support-chat|claude-3-5-haiku [9435,9490) size 0.107 z 3.9 extra 17 young
    1217 volume_drop code-review|o3-mini [3000,3057) size 0.554 z 6.2 extra 101 (small)
    1218 latency_spike support-chat|claude-3-5-haiku [9306,9347) size 7.962 z 19.1 extra 14 young
    1218 volume_drop legal-drafts|claude-opus-4 [2466,2545) size 0.14 z 7.7 extra 71
    1218 output_shift translation|gemini-2.5-flash-lite [9549,10080) size 2.757 z 23.1 extra 137 young (permanent)
    1218 latency_spike support-chat|claude-3-5-haiku [9229,9272) size 6.187 z 19.7 extra 15 young
    1218 error_burst voice-assistant|gemini-2.5-flash [9967,10006) size 0.097 z 17.0 extra 16 young (small)
    1218 volume_drop legal-drafts|claude-opus-4 [2489,2533) size 0.482 z 5.0 extra 34 (small)
    1219 volume_drop support-chat|claude-3-5-haiku [9183,9257) size 0.164 z 5.2 extra 27 young
    1219 prompt_bloat translation|gemini-2.5-flash-lite [9792,9859) size 3.403 z 34.9 extra 52 young

Fields: everything sent was read (checked per series against llm_calls): gen_ai.system and
gen_ai.provider.name, prompt/completion_tokens and input/output_tokens, gen_ai.response.finish_reasons in
four vocabularies, error.type + status ERROR, TTFT from gen_ai.response.time_to_first_chunk and from OpenLIT's
gen_ai.server.time_to_first_token (with gen_ai.request.stream), service.version (the 4.12.0 -> 4.13.0 switch),
deployment.environment.name, gen_ai.prompt.version; every model priced by the server without a cost attribute.
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
    history = max(m0 - week.first_minute[k] for k in mem)  # a group's history: its oldest member's
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
    p.add_argument("--rescore", help="score again the results in this --out file (weeks rebuilt, saved CLI output)")
    args = p.parse_args()
    work = Path(os.environ.get("LLMTRACE_V12_WORK", "/tmp/llmtrace-v12"))
    work.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        results = json.loads(Path(args.rescore).read_text())
        for r in results:
            week = build(r["seed"], r["end_epoch_min"])
            for name in ("service,model", "default"):
                data = json.loads((work / f"seed{r['seed']}" / f"anomalies_{name.replace(',', '_')}.json").read_text())
                r[name].update(score(week, data))
        print(report(results))
        return 0
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
