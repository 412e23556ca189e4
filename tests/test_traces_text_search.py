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
from llmtrace.store.migrations import apply_migrations, client_runner, schema_files
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
    # Letters whose case partners are non-ASCII: "kiss" may match them (the Kelvin sign does, on chDB).
    "0d" * 16: (f"{KELVIN}iss the cook", "", "", "gpt-4o"),
    "0e" * 16: (f"KI{LONG_S}{LONG_S} and {DOTTED_I}SS", "", "", "gpt-4o"),
    "0f" * 16: ("a Kiss for luck", "🎊 done", "", "gpt-4o"),
    "10" * 16: (f"K{DOTLESS_I}SS {KELVIN}{DOTTED_I}{LONG_S}{LONG_S}", "", "", "gpt-4o"),
    "11" * 16: ("漢字かな交じり文と日本語", "", "", "gpt-4o"),
    "12" * 16: ("Привет, Σοφία! ΟΔΟΣ", "", "", "gpt-4o"),
}
# Content values of one or two characters (not JSON: another producer's spans), searched for whole.
SHORT = "13" * 16, "qz", "Ж"
TEXTS = [
    "refund", "REFUND", "Refunded", "refund my", "re fund", "d-e", "fund", "%", "_", "100%", "0% s", "sure_thing",
    "it's", '"quoted"', "'", "\\", "\\path", "C:\\\\path", "a.*b", "(x|y)", "[z]+", "^$?", ".*", "🎉", "🎉 party",
    "PARTY 🎉", "école", "ÉCOLE", "straße", "STRASSE", "kelvin", "300 kelvin", "KELVIN", "stop", "istanbul",
    "İstanbul", "ındex", "index", "ａｂｃ", "abc", "pirate", "PIRATE", "gpt-4o", "zebra", "request", "request 12",
    "answer 3", "REQUEST 7", "ab", "a", " ", "xyzzy-absent", LONG.upper(), LONG + " no", '{"role"', "parts",
    "kiss", "KISS", "Kiss", f"{KELVIN}ISS", f"k{DOTTED_I}ss", f"K{DOTLESS_I}SS", f"ki{LONG_S}s", "iss", "ask",
    "this is", "cook", "the cook", "漢字か", "日本語", "日本", "字", "🎊", "🎊 done", "🎉🎊", "DONE", "kissxyzzy",
    "zq", "qz", "QZ", "q", "Z", "ж", "Ж", "жq", "при", "ПРИВЕТ", "привет,", "Σοφία", "σοφ", "ΟΔΟΣ", "οδος", "ς", "σ",
    "é", "É", "école x", "k", KELVIN, DOTTED_I, DOTLESS_I, LONG_S, "ok", "?", "\n", '"', "🎉 p", "日本x",
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


def short_row(start: datetime) -> tuple[Any, ...]:
    trace_id, prompt, reply = SHORT
    made = list(row(trace_id, start, ("x", "y", "", "gpt-4o")))
    made[11] = {**made[11], sc.INPUT_MESSAGES: prompt, sc.OUTPUT_MESSAGES: reply}
    return tuple(made)


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
        s.client.insert(
            "otel_traces", [*rows, short_row(END - timedelta(minutes=20))], column_names=OTEL_TRACES_COLUMNS
        )
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
        m.setattr(traces, "_index_condition", lambda _client, _text: ("", {}))
        pd.testing.assert_frame_equal(found, search(client, text, limit))
    return found


@pytest.mark.parametrize("text", TEXTS)
def test_the_index_search_lists_exactly_what_the_attribute_map_search_listed(
    store: Store, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same(store.client, text, monkeypatch)


@pytest.mark.parametrize("text", ["refund", "request", "REQUEST 7", "🎉", "ab", "xyzzy-absent", "zq", "a", "при"])
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
        return ids(assert_same(store.client, text, monkeypatch)) & {*HOSTILE, SHORT[0]}

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
    # chDB's matcher takes a first character byte for byte (k or K), later ones by lower case (the Kelvin
    # sign is k there): "kiss" misses the Kelvin sign's "Kiss", which its own spelling finds; long s, İ
    # and ı are no k, s or i.
    assert found("kiss") == found("KISS") == {"0f" * 16}
    assert found(f"{KELVIN}iss") == {"0d" * 16}
    assert found(f"{KELVIN}ISS THE COOK") == {"0d" * 16}
    assert found("漢字か") == found("日本語") == {"11" * 16}
    assert found("🎊 done") == found("🎊") == {"0f" * 16}
    assert (found("qz"), found("Ж"), found("ж")) == ({SHORT[0]},) * 3  # whole values of 1-2 characters
    assert found("ПРИВЕТ") == found("σοφ") == found("ΟΔΟΣ") == {"12" * 16}
    assert found("zq") == set()
    assert len(search(store.client, "request", 5_000)) > 100  # demo prompts


def test_search_grams_come_from_runs_of_characters_written_one_way_in_the_folded_content() -> None:
    assert traces.search_grams("Refund") == ["ref", "efu", "fun", "und"]
    assert traces.search_grams("KISS") == traces.search_grams(f"{KELVIN}i{LONG_S}s") == ["kis", "iss"]
    assert (
        traces.search_grams(f"{DOTTED_I}stanbul")[:2] == traces.search_grams(f"{DOTLESS_I}STAN")[:2] == ["ist", "sta"]
    )
    assert traces.search_grams("🎉 party") == ["🎉 p", " pa", "par", "art", "rty"]
    assert traces.search_grams("漢字か") == ["漢字か"]  # the tokenizer counts code points
    assert traces.search_grams("école") == traces.search_grams("ÉCOLE") == ["col", "ole"]  # É, é break runs
    assert traces.search_grams("is it") == ["is ", "s i", " it"]
    for text in ("ab", "🎉", "日本", "ＡＢＣ", "Straße"[4:], "σς x"):
        assert traces.search_grams(text) == [], text
    assert traces.search_grams("100% _x") == ["100", "00%", "0% ", "% _", " _x"]
    assert len(traces.search_grams(LONG)) == 32


def sql_fold(char: str) -> str:
    """The index's folding of one character (schemas/029's expression), in Python."""
    return traces._FOLD.get(char, char.lower() if char < "\x80" else char)


def test_no_character_a_gram_may_hold_has_a_case_partner_folded_otherwise() -> None:
    """Unicode's case pairs (Python's tables, newer than the engine's: pairs are never removed), each
    way: wherever one side may stand in a gram, both sides fold to the same character. Python gives
    full mappings; where the simple one (the engine's, code point for code point) differs, it maps a
    cased letter or İ to i (SpecialCasing.txt), which the fold writes as i."""
    checked = 0
    for code in range(0x110000):
        char = chr(code)
        for partner in {char.lower(), char.upper(), char.casefold(), char.title()} - {char}:
            if len(partner) == 1 and (traces._folded(char) is not None or traces._folded(partner) is not None):
                assert sql_fold(char) == sql_fold(partner), (hex(code), partner)
                checked += 1
    assert checked > 50 and sql_fold(DOTTED_I) == "i"


# Every code point but the surrogates, as UTF-8, from its number.
CODE_POINTS = """
    SELECT multiIf(
               n < 0x800, char(0xC0 + intDiv(n, 64), 0x80 + n % 64),
               n < 0x10000, char(0xE0 + intDiv(n, 4096), 0x80 + intDiv(n, 64) % 64, 0x80 + n % 64),
               char(0xF0 + intDiv(n, 262144), 0x80 + intDiv(n, 4096) % 64, 0x80 + intDiv(n, 64) % 64, 0x80 + n % 64)
           ) AS c, n
    FROM (SELECT number AS n FROM numbers(128, 0x110000 - 128)) WHERE n NOT BETWEEN 0xD800 AND 0xDFFF"""
FOLDED = traces._fold_sql("lower(c)")


def test_the_engine_matches_an_ascii_character_only_to_code_points_folded_to_it(store: Store) -> None:
    """positionCaseInsensitiveUTF8 over every non-ASCII code point, alone and inside a longer text,
    either side the needle: a match with an ASCII letter is one the folded content writes as it (other
    ASCII characters have no case partners)."""
    sql = f"""
        SELECT groupUniqArrayIf(n, {FOLDED} != lower(a)), groupUniqArray(n)
        FROM ({CODE_POINTS}) ARRAY JOIN arrayMap(x -> char(x), range(97, 123)) AS a
        WHERE positionCaseInsensitiveUTF8(c, a) > 0 OR positionCaseInsensitiveUTF8(a, c) > 0
           OR positionCaseInsensitiveUTF8(concat('q', c, 'q-padding-past-16-bytes'), concat('q', a, 'q')) > 0
           OR positionCaseInsensitiveUTF8(concat('q', a, 'q-padding-past-16-bytes'), concat('q', c, 'q')) > 0"""
    folded_otherwise, matched = store.client.query(sql).result_rows[0]
    assert folded_otherwise == [] and 0x212A in matched, (folded_otherwise, matched)


def test_the_engine_matches_a_caseless_character_only_to_itself(store: Store) -> None:
    sample = ["🎉", "🎊", "漢", "字", "か", "€", "→", "٣", "ก", "א", "\u4e00", "\U0001f600"]
    assert all(traces._folded(c) == c for c in sample)
    sql = f"""
        SELECT groupUniqArray((s, n)) FROM ({CODE_POINTS}) ARRAY JOIN {{sample:Array(String)}} AS s
        WHERE c != s AND (positionCaseInsensitiveUTF8(c, s) > 0 OR positionCaseInsensitiveUTF8(s, c) > 0)"""
    assert store.client.query(sql, parameters={"sample": sample}).result_rows[0][0] == []


def test_the_view_copies_exactly_the_content_keys_the_search_is_defined_on() -> None:
    view = next(p for p in schema_files() if p.name.startswith("024_")).read_text()
    assert sorted(set(re.findall(r"SpanAttributes\['([^']+)'\]", view))) == sorted(traces.CONTENT_KEYS)


def test_the_search_folds_content_with_the_indexed_expression_verbatim() -> None:
    migration = next(p for p in schema_files() if p.name.startswith("029_")).read_text(encoding="utf-8")
    assert f"ADD INDEX IF NOT EXISTS idx_content_folded {traces.FOLDED_CONTENT}\n" in migration
    assert traces.FOLDED_CONTENT in traces._index_condition(None, "kiss")[0]


def granules(client: Any, text: str) -> str:
    """What the folded index leaves of otel_traces_content for ``text``'s grams: "selected/total"."""
    plan = client.query(
        f"EXPLAIN indexes = 1 SELECT TraceId FROM otel_traces_content WHERE hasAllTokens("
        f"{traces.FOLDED_CONTENT}, {{grams:Array(String)}})",
        parameters={"grams": traces.search_grams(text)},
    ).result_rows
    lines = [line for (line,) in plan]
    at = next(i for i, x in enumerate(lines) if x.strip() == "Name: idx_content_folded")
    return next(line.split(":")[1].strip() for line in lines[at:] if "Granules:" in line)


def test_the_index_rules_out_every_part_for_a_text_found_nowhere(store: Store) -> None:
    absent, common = granules(store.client, "xyzzy-absent"), granules(store.client, "request")
    assert absent.startswith("0/") and not common.startswith("0/"), (absent, common)
    assert granules(store.client, "kissxyzzy").startswith("0/")  # k, i and s no longer break runs
    assert granules(store.client, "漢字かxyzzy").startswith("0/")


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
    # The restart prices the calls these spans stored without a cost, where the engine knows the model
    # (llmtrace.store.prices.serve_prices): the traces found and everything else about them stay the same.
    costs = ["unpriced_calls", "cost_usd"]
    for text, found in before.items():
        after = assert_same(store.client, text, monkeypatch)
        pd.testing.assert_frame_equal(after.drop(columns=costs), found.drop(columns=costs))
        assert (after["unpriced_calls"] <= found["unpriced_calls"]).all()  # models it has no price for stay so


def test_a_store_from_before_029_gets_the_folded_index_on_its_old_rows_and_searches_them_the_same(
    empty_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = schema_files()
    run = client_runner(empty_store)
    apply_migrations(run, files=[p for p in files if p.name < "029"])
    rows = [row(tid, END - timedelta(minutes=30 + i), c) for i, (tid, c) in enumerate(HOSTILE.items())]
    empty_store.insert("otel_traces", rows, column_names=OTEL_TRACES_COLUMNS)
    assert traces.search_grams("kissxyzzy")[:2] == ["kis", "iss"]  # 024's index could not take these
    assert apply_migrations(run, files=files) == [p.name for p in files if p.name >= "029"]
    indexes = "SELECT name FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = {t:String}"
    assert empty_store.query(indexes, parameters={"t": "otel_traces_content"}).result_rows == [("idx_content_folded",)]
    assert granules(empty_store, "kissxyzzy").startswith("0/") and not granules(empty_store, "kiss").startswith("0/")
    for text in ("kiss", f"{KELVIN}ISS", "漢字か", "🎊 done", "refund", "istanbul", "xyzzy-absent", "ж", "zq"):
        assert_same(empty_store, text, monkeypatch)
    # While a mutation is pending (as 029's MATERIALIZE on an external server), parts may lack the index:
    # no dictionary lookup then.
    assert traces._dictionary_tokens(empty_store, "zq") == [[]]
    failing = "ALTER TABLE otel_traces_content UPDATE SpanId = 'x' WHERE throwIf(Timestamp > 0)"
    empty_store.command(failing, settings={"mutations_sync": 0})
    assert traces._dictionary_tokens(empty_store, "zq") is None
    empty_store.command("KILL MUTATION WHERE database = currentDatabase() AND table = 'otel_traces_content' SYNC")
    assert traces._dictionary_tokens(empty_store, "zq") == [[]]


def test_a_text_without_3_grams_is_looked_up_in_the_index_dictionary(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Present: each piece's list holds the 3-grams around it; absent: an empty list rules out every
    part; common: too many 3-grams, no condition (the staged search stops early instead)."""
    lookup = traces._dictionary_tokens
    assert lookup(store.client, "zq") == [[]]
    assert lookup(store.client, "Ж") == [["\nж\n", "z\nж"]] or lookup(store.client, "Ж") == [["\nЖ\n", "z\nЖ"]]
    assert [len(t) > 0 for t in lookup(store.client, "ПРИВЕТ") or []] == [True, True]
    assert len((lookup(store.client, "e") or [[]])[0]) > 5
    monkeypatch.setattr(traces, "_MAX_TOKENS", 5)
    assert lookup(store.client, "e") == []
    monkeypatch.setattr(traces, "_MAX_ENTRIES", 100)  # a dictionary too large to read: no lookup
    assert lookup(store.client, "zq") is None
    monkeypatch.undo()
    sql, params = traces._index_condition(store.client, "zq")
    plan = store.client.query(
        f"EXPLAIN indexes = 1 SELECT TraceId FROM otel_traces_content WHERE 1{sql}", parameters=params
    )
    lines = [line for (line,) in plan.result_rows]
    at = next(i for i, x in enumerate(lines) if x.strip() == "Name: idx_content_folded")
    assert next(line for line in lines[at:] if "Granules:" in line).split(":")[1].strip().startswith("0/")
