"""The Traces text search through otel_traces_content's 3-gram index (schema 024) answers exactly what
the search it replaced answered (every span's attribute map in otel_traces), on demo history and on
hostile texts, for spans that arrive late and after a server restart; and the index rules rows out.

One real ``llmtrace server`` (its migrations, its embedded ClickHouse) read over HTTP, as the dashboard
reads it. Equality is asserted against the old SQL run on the same store, so it holds at any hour.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llmtrace import semconv as sc
from llmtrace.analytics import traces
from llmtrace.analytics.filters import Filter
from llmtrace.demo import scenarios
from llmtrace.store.client import connect
from llmtrace.store.migrations import schema_files
from llmtrace.store.otlp_rows import OTEL_TRACES_COLUMNS
from tests.server_process import ServerProcess, start_server

END = datetime.now(timezone.utc).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
WINDOW = Filter(start=END - timedelta(days=2), end=END + timedelta(hours=1))
_TIME = "DateTime64(6, 'UTC')"
# The search before 024, verbatim but for the parameter of the keys: the exact test on otel_traces.
LEGACY = f"""
    AND TraceId IN (
        SELECT TraceId FROM otel_traces
        WHERE Timestamp >= {{text_start:{_TIME}}} AND Timestamp < {{end:{_TIME}}}
          AND arrayExists(v -> positionCaseInsensitiveUTF8(v, {{text:String}}) > 0, mapValues(SpanAttributes))
          AND arrayExists(k -> positionCaseInsensitiveUTF8(SpanAttributes[k], {{text:String}}) > 0,
                          {traces.CONTENT_KEYS!r}))%s"""
KELVIN, LONG_S, DOTTED_I, DOTLESS_I = "\u212a", "\u017f", "\u0130", "\u0131"
LONG = "The customer asked twice whether the annual plan can be paused during the summer months"
# trace id -> (input, output, system instructions, request model): one LLM span each.
HOSTILE = {
    "01" * 16: ("Please REFUND my order", "Refunded yesterday.", "", "gpt-4o"),
    "02" * 16: ("re fund and refund-ed", "ok", "", "gpt-4o"),
    "03" * 16: ("100% sure_thing", "", "", "gpt-4o"),
    "04" * 16: ('it\'s "quoted"', "C:\\path\\to\\file", "", "gpt-4o"),
    "05" * 16: ("a.*b (x|y) [z]+ ^$?", "", "", "gpt-4o"),
    "06" * 16: ("", "🎉 party time", "", "gpt-4o"),
    "07" * 16: ("ÉCOLE Straße İstanbul", "", "", "gpt-4o"),
    "08" * 16: (f"300 {KELVIN}ELVIN, {LONG_S}top, {DOTTED_I}stanbul, {DOTLESS_I}ndex, ＡＢＣ", "", "", "gpt-4o"),
    "09" * 16: ("hi", "ahoy", "Speak like a pirate", "gpt-4o"),
    "0a" * 16: ("nothing here", "", "", "gpt-4o-zebra"),
    "0b" * 16: (LONG, "", "", "gpt-4o"),
}
TEXTS = [
    "refund", "REFUND", "Refunded", "refund my", "re fund", "d-e", "fund", "%", "_", "100%", "0% s", "sure_thing",
    "it's", '"quoted"', "'", "\\", "\\path", "C:\\\\path", "a.*b", "(x|y)", "[z]+", "^$?", ".*", "🎉", "🎉 party",
    "PARTY 🎉", "école", "ÉCOLE", "straße", "STRASSE", "kelvin", "300 kelvin", "KELVIN", "stop", "istanbul",
    "İstanbul", "ındex", "index", "ａｂｃ", "abc", "pirate", "PIRATE", "gpt-4o", "zebra", "request", "request 12",
    "answer 3", "REQUEST 7", "ab", "a", " ", "xyzzy-absent", LONG.upper(), LONG + " no", '{"role"', "parts",
]  # fmt: skip


def row(trace_id: str, start: datetime, content: tuple[str, str, str, str]) -> tuple[Any, ...]:
    prompt, reply, system, model = content
    attrs = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: model,
             sc.USAGE_INPUT_TOKENS: "10", sc.USAGE_OUTPUT_TOKENS: "5"}  # fmt: skip
    for key, text in ((sc.INPUT_MESSAGES, prompt), (sc.OUTPUT_MESSAGES, reply)):
        if text:
            role = "user" if key == sc.INPUT_MESSAGES else "assistant"
            attrs[key] = json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}], ensure_ascii=False)
    if system:
        attrs[sc.SYSTEM_INSTRUCTIONS] = json.dumps([{"type": "text", "content": system}], ensure_ascii=False)
    ts = int(start.timestamp() * 1e9)
    return (ts, trace_id, trace_id[:16], "", "", f"chat {model}", "Client", "support-bot",
            {"service.name": "support-bot"}, "test", "", attrs, 200_000_000, "Unset", "",
            [], [], [], [], [], [], [])  # fmt: skip


class Store:
    """The server under test; restart() keeps its data directory."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.server: ServerProcess = start_server(data)
        self.client = connect(self.server.http_url)

    def restart(self) -> None:
        self.client.close()
        assert self.server.stop() == 0, self.server.output
        self.server = start_server(self.data)
        self.client = connect(self.server.http_url)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("text-search") / "data")
    try:
        sql, params = scenarios.history_sql(1_500, 2, int(END.timestamp() * 1e9), seed=5)
        s.client.command(sql, parameters=params)
        rows = [row(tid, END - timedelta(minutes=30 + i), c) for i, (tid, c) in enumerate(HOSTILE.items())]
        s.client.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
        yield s
    finally:
        s.client.close()
        s.server.stop()


def search(client: Any, text: str, limit: int) -> pd.DataFrame:
    """The whole window in one query; with a small ``limit``, the staged search (newest hour, day)."""
    if limit < 1_000:
        return traces.list_traces(client, WINDOW, text=text, limit=limit)
    return traces._list(client, WINDOW, "all", text, limit)


def assert_same(client: Any, text: str, monkeypatch: pytest.MonkeyPatch, limit: int = 5_000) -> pd.DataFrame:
    found = search(client, text, limit)
    with monkeypatch.context() as m:
        m.setattr(traces, "_TEXT_MATCH", LEGACY)
        m.setattr(traces, "search_grams", lambda _text: [])
        pd.testing.assert_frame_equal(found, search(client, text, limit))
    return found


@pytest.mark.parametrize("text", TEXTS)
def test_the_index_search_lists_exactly_what_the_attribute_map_search_listed(
    store: Store, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same(store.client, text, monkeypatch)


@pytest.mark.parametrize("text", ["refund", "request", "REQUEST 7", "🎉", "ab", "xyzzy-absent"])
def test_the_staged_search_newest_hour_then_day_lists_the_same(
    store: Store, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same(store.client, text, monkeypatch, limit=20)


def ids(found: pd.DataFrame) -> set[str]:
    return set(found["trace_id"])


def test_the_equality_is_not_vacuous_matches_and_misses_are_where_a_substring_puts_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def found(text: str) -> set[str]:
        return ids(assert_same(store.client, text, monkeypatch)) & set(HOSTILE)

    assert found("refund") == {"01" * 16, "02" * 16}  # "REFUND", "Refunded", "refund-ed"; not "re fund"
    assert found("fund") == {"01" * 16, "02" * 16}
    assert found("d-e") == {"02" * 16}
    assert found("%") == found("100%") == {"03" * 16}
    assert found("_") >= {"03" * 16}
    assert found("🎉 party") == {"06" * 16}
    assert found("pirate") == {"09" * 16}  # only in the system instructions
    assert found("zebra") == set()  # only in the request model, not content
    assert found(LONG.upper()) == {"0b" * 16}  # longer than the 32 3-grams the index is asked for
    assert found("xyzzy-absent") == set()
    assert len(search(store.client, "request", 5_000)) > 100  # demo prompts


def test_search_grams_come_only_from_ascii_runs_without_letters_that_have_non_ascii_case_partners() -> None:
    assert traces.search_grams("Refund") == ["ref", "efu", "fun", "und"]
    assert traces.search_grams("KELVIN") == ["elv"]  # K (Kelvin sign) and I (dotted, dotless) break runs
    assert traces.search_grams("🎉 party") == [" pa", "par", "art", "rty"]
    assert traces.search_grams("ab") == traces.search_grams("ＡＢＣ") == traces.search_grams("is it") == []
    assert traces.search_grams("100% _x") == ["100", "00%", "0% ", "% _", " _x"]
    assert len(traces.search_grams(LONG)) == 32


def test_the_view_copies_exactly_the_content_keys_the_search_is_defined_on() -> None:
    view = next(p for p in schema_files() if p.name.startswith("024_")).read_text()
    assert sorted(set(re.findall(r"SpanAttributes\['([^']+)'\]", view))) == sorted(traces.CONTENT_KEYS)


def test_the_index_rules_out_every_part_for_a_text_found_nowhere(store: Store) -> None:
    def granules(text: str) -> str:
        plan = store.client.query(
            "EXPLAIN indexes = 1 SELECT TraceId FROM otel_traces_content WHERE hasAllTokens("
            "arrayMap(v -> lower(v), Content), {grams:Array(String)})",
            parameters={"grams": traces.search_grams(text)},
        ).result_rows
        lines = [line for (line,) in plan]
        at = next(i for i, x in enumerate(lines) if x.strip() == "Name: idx_content")
        return next(line.split(":")[1].strip() for line in lines[at:] if "Granules:" in line)

    absent, common = granules("xyzzy-absent"), granules("request")
    assert absent.startswith("0/") and not common.startswith("0/"), (absent, common)


def test_spans_arriving_late_are_found_like_the_old_search_found_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = "0c" * 16
    assert late not in ids(assert_same(store.client, "refund", monkeypatch))
    store.client.insert("otel_traces", [row(late, END - timedelta(hours=20), ("latecomer REFUND", "", "", "gpt-4o"))],
                        column_names=OTEL_TRACES_COLUMNS)  # fmt: skip
    assert late in ids(assert_same(store.client, "refund", monkeypatch))
    assert late in ids(assert_same(store.client, "LATECOMER", monkeypatch))


def test_after_a_server_restart_the_search_still_equals_the_old_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {text: assert_same(store.client, text, monkeypatch) for text in ("refund", "pirate", "request 12")}
    store.restart()
    for text, found in before.items():
        pd.testing.assert_frame_equal(assert_same(store.client, text, monkeypatch), found)
