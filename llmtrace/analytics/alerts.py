"""``llmtrace watch``: check anomalies and drift on a schedule and send each new finding once.

Every check runs :func:`~llmtrace.analytics.anomalies.detect` over the last ``--since``
and, unless ``--no-drift``, :func:`~llmtrace.analytics.drift.compare` of the last
``--drift-current`` against the ``--drift-baseline`` before it. Each finding becomes an
:class:`Alert` with a stable key. A :class:`SentLog` (a small JSON file) remembers what
was sent, so:

* an anomaly is sent once, including while its episode goes on (and when the sliding
  window cuts its start: an episode adjacent to one already sent is its continuation);
* a drift verdict is sent once per ``--realert`` period (default a day) while it lasts.

With ``--webhook`` each alert is POSTed as JSON: ``{"text": ..., "llmtrace": {...}}``,
``text`` being what Slack (and Mattermost, Discord's /slack endpoint, ...) displays.
Without it, alerts are printed. A delivery fails on anything but a 2xx, redirects included (never
followed), or when the webhook has not answered within ``--webhook-timeout`` in total; a failed
alert stays unsent and is retried at the next check. When the webhook cannot be reached at all,
the check's remaining alerts wait for the next check too rather than each waiting out the timeout.
Messages show the webhook as ``scheme://host/***``: its path and query are its secret
(:mod:`llmtrace.analytics.webhook`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from llmtrace.analytics.groups import label
from llmtrace.analytics.webhook import AlertDeliveryError, check_url, post_json

__all__ = ["Alert", "AlertDeliveryError", "SentLog", "anomaly_alerts", "drift_alerts", "post_webhook", "watch_command"]

DEFAULT_STATE = Path("~/.llmtrace/watch-state.json")
KEEP = timedelta(days=14)
_ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "major": ":rotating_light:", "moderate": ":warning:"}


@dataclass
class Alert:
    """One message: ``key`` identifies it across checks, ``thread`` the finding it continues."""

    key: str
    kind: str  # anomaly | drift
    text: str
    payload: dict[str, Any]
    thread: str = ""
    start: datetime | None = None
    end: datetime | None = None
    gap: timedelta = timedelta(hours=1)  # an anomaly starting within this of a sent one's end continues it


@dataclass
class SentLog:
    """What was sent and when, persisted as JSON: ``{key: {"thread", "end", "sent_at"}}``."""

    path: Path
    entries: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> SentLog:
        path = path.expanduser()
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            entries = {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read watch state {path}: {exc}; delete it to start afresh") from exc
        return cls(path, entries if isinstance(entries, dict) else {})

    def save(self, now: datetime) -> None:
        cutoff = (now - KEEP).isoformat()
        self.entries = {k: v for k, v in self.entries.items() if v.get("sent_at", "") >= cutoff}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)

    def is_new(self, alert: Alert, now: datetime, realert: timedelta) -> bool:
        """False if sent already (or a continuation of an anomaly sent); extends its end."""
        if alert.kind in ("drift", "compare"):  # a verdict lasting: re-sent once per realert period
            sent = self.entries.get(alert.key)
            return sent is None or datetime.fromisoformat(sent["sent_at"]) <= now - realert
        for entry in self.entries.values():
            if entry.get("thread") == alert.thread and _continues(entry, alert):
                if alert.end is not None:
                    entry["end"] = max(entry.get("end", ""), alert.end.isoformat())
                return False
        return True

    def record(self, alert: Alert, now: datetime) -> None:
        self.entries[alert.key] = {
            "thread": alert.thread,
            "end": alert.end.isoformat() if alert.end else "",
            "sent_at": now.isoformat(),
        }


def _continues(entry: dict[str, str], alert: Alert) -> bool:
    if alert.start is None or not entry.get("end"):
        return False
    return datetime.fromisoformat(entry["end"]) >= alert.start - alert.gap


# --------------------------------------------------------------------------- building alerts
def anomaly_alerts(report: Any) -> list[Alert]:
    """One alert per anomaly of an :class:`~llmtrace.analytics.anomalies.AnomalyReport`."""
    alerts = []
    gap = timedelta(seconds=report.step)
    for a, shaped in zip(report.anomalies, report.to_dict()["anomalies"], strict=True):
        traces = f" Example traces: {', '.join(a.trace_ids[:3])}." if a.trace_ids else ""
        text = f"{_ICONS.get(a.severity, '')} llmtrace {a.kind}: {a.summary}.{traces}".strip()
        thread = f"{a.kind}|{a.metric}|{label(a.series)}"
        alerts.append(Alert(a.key, "anomaly", text, {**shaped, "type": "anomaly"}, thread, a.start, a.end, gap))
    return alerts


def drift_alerts(report: Any) -> list[Alert]:
    """One alert per moderate or major verdict of a :class:`~llmtrace.analytics.drift.DriftReport`."""
    alerts = []
    by_result = {id(r): d for r, d in zip(report.results, report.to_dict()["results"], strict=True)}
    for r in report.flagged():  # most severe first
        key = f"drift|{r.metric}|{label(r.group)}|{r.verdict}"
        text = (
            f"{_ICONS.get(r.verdict, '')} llmtrace drift ({r.verdict}): {label(r.group)} {r.metric} — {r.reason}. "
            f"Current {report.comparison.current.label} vs baseline {report.comparison.baseline.label}."
        )
        payload = {**by_result[id(r)], "type": "drift", **report.comparison.describe()}
        alerts.append(Alert(key, "drift", text, payload, thread=key))
    return alerts


def post_webhook(url: str, alert: Alert, timeout: float = 10.0) -> None:
    """POST ``{"text": ..., "llmtrace": {...}}``; raise :class:`AlertDeliveryError` unless a 2xx came
    within ``timeout`` seconds in all (a redirect is a failure, never followed)."""
    body = json.dumps({"text": alert.text, "llmtrace": alert.payload}, default=str).encode("utf-8")
    post_json(url, body, timeout)


# --------------------------------------------------------------------------- the loop
def check_once(client: Any, args: argparse.Namespace, log: SentLog, out: TextIO, now: datetime) -> list[Alert]:
    """Run both checks, send what is new, record it; return the alerts sent."""
    from llmtrace.analytics import compare_watch, drift
    from llmtrace.analytics.commands import detect_from_args, dimension_filter, parse_duration

    alerts = anomaly_alerts(detect_from_args(client, args, now))
    if not args.no_drift:
        comparison = drift.Comparison.previous_period(
            parse_duration(args.drift_current), parse_duration(args.drift_baseline), now=now
        )
        f = dimension_filter(args, comparison.current.start, comparison.current.end)
        alerts += drift_alerts(drift.compare(client, comparison, args.by, f))
    alerts += compare_watch.canary_alerts(client, args, now)
    realert = parse_duration(args.realert)
    timeout = parse_duration(args.webhook_timeout).total_seconds()
    sent: list[Alert] = []
    unreachable = False
    kept = 0
    for alert in alerts:
        if not log.is_new(alert, now, realert):
            continue
        if unreachable:  # don't make every alert wait out the timeout of a webhook that is down
            kept += 1
            continue
        error = _deliver(alert, args.webhook, timeout, out)
        if error is None:
            log.record(alert, now)
            sent.append(alert)
        unreachable = error is not None and error.unreachable
    if kept:
        out.write(f"llmtrace watch: {kept} more alert(s) kept for the next check\n")
    log.save(now)
    return sent


def _deliver(alert: Alert, webhook: str | None, timeout: float, out: TextIO) -> AlertDeliveryError | None:
    """Print or POST one alert; the failure, already reported, if it was not delivered."""
    if not webhook:
        out.write(alert.text + "\n")
        return None
    try:
        post_webhook(webhook, alert, timeout)
    except AlertDeliveryError as exc:
        out.write(f"llmtrace watch: {exc} (will retry at the next check)\n")
        return exc
    return None


def watch_command(args: argparse.Namespace, out: TextIO) -> int:
    """``llmtrace watch``: check now, then every ``--every`` until interrupted (or once)."""
    from llmtrace.analytics.commands import parse_duration
    from llmtrace.store.client import connect

    every = parse_duration(args.every).total_seconds()
    if args.webhook:
        check_url(args.webhook)
    if parse_duration(args.webhook_timeout).total_seconds() <= 0:
        raise ValueError("--webhook-timeout must be positive, e.g. 10s")
    log = SentLog.load(Path(args.state) if args.state else DEFAULT_STATE)
    client = connect(args.url)
    try:
        while True:
            started = time.monotonic()
            sent = check_once(client, args, log, out, datetime.now(timezone.utc))
            out.write(f"llmtrace watch: {len(sent)} new alert(s) at {datetime.now(timezone.utc):%H:%M:%S} UTC\n")
            out.flush()
            if args.once:
                return 0
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    finally:
        client.close()
