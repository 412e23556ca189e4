"""Just enough SQL lexing to route a ClickHouse HTTP request.

The HTTP interface must know three things ClickHouse's own parser would tell it: where the
statement of an ``INSERT ... FORMAT X`` ends and its data begins (the data may be binary),
which output format a result will be in (for ``X-ClickHouse-Format``), and whether the
statement returns a result set at all. Everything else is left to the engine. The lexer
follows ClickHouse's: ``--``, ``#``/``#!`` and nested ``/* */`` comments, ``'...'`` strings,
backquoted and double-quoted identifiers, each with backslash escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["MAX_QUERY_SIZE", "SqlTextError", "Statement", "parse_statement"]

MAX_QUERY_SIZE = 262_144
"""ClickHouse's default ``max_query_size``: the statement text, not counting INSERT data."""

# Statements whose response is a result set (ClickHouse sends X-ClickHouse-Format for them).
_RESULT_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "EXISTS", "CHECK", "("})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_QUOTES = {"'": "string", "`": "ident", '"': "ident"}


class SqlTextError(ValueError):
    """The request text cannot be a ClickHouse statement; ``code`` is ClickHouse's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, ident, punct, other
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Statement:
    """One request's statement, split from any INSERT data that follows it."""

    sql: str
    kind: str
    """First keyword, upper case (``(`` for a parenthesised SELECT)."""
    output_format: str | None = None
    """Format named by a trailing ``FORMAT`` clause of a non-INSERT statement."""
    insert_format: str | None = None
    """Input format of ``INSERT ... FORMAT X``; ``sql`` then excludes the FORMAT clause."""
    data: bytes = b""

    @property
    def returns_rows(self) -> bool:
        return self.kind in _RESULT_KINDS


def _skip_block_comment(text: str, pos: int) -> int:
    depth, n = 0, len(text)
    while pos < n:
        if text.startswith("/*", pos):
            depth += 1
            pos += 2
        elif text.startswith("*/", pos):
            depth -= 1
            pos += 2
            if depth == 0:
                return pos
        else:
            pos += 1
    return n


def _skip_quoted(text: str, pos: int) -> int:
    quote, n = text[pos], len(text)
    pos += 1
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            pos += 2
        elif ch == quote:
            if pos + 1 < n and text[pos + 1] == quote:  # doubled quote escapes itself
                pos += 2
            else:
                return pos + 1
        else:
            pos += 1
    return n


def _is_comment_start(text: str, pos: int) -> bool:
    if text.startswith("--", pos):
        return True
    return text[pos] == "#" and (pos + 1 == len(text) or text[pos + 1] in " !")


def tokens(text: str, start: int = 0) -> Iterator[Token]:
    """Lex ``text`` lazily, skipping whitespace and comments."""
    pos, n = start, len(text)
    while pos < n:
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif _is_comment_start(text, pos):
            end = text.find("\n", pos)
            pos = n if end < 0 else end + 1
        elif text.startswith("/*", pos):
            pos = _skip_block_comment(text, pos)
        elif ch in _QUOTES:
            end = _skip_quoted(text, pos)
            yield Token(_QUOTES[ch], text[pos:end], pos, end)
            pos = end
        elif match := _WORD.match(text, pos):
            yield Token("word", match.group(), pos, match.end())
            pos = match.end()
        else:
            yield Token("punct" if ch in "(),;.=[]{}" else "other", ch, pos, pos + 1)
            pos += 1


def _data_start(text: str, pos: int) -> int:
    """Where inline INSERT data begins after the format name (ClickHouse's rule): after the
    first newline if only blanks precede it, else after all the whitespace."""
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if text.startswith("\r\n", pos):
        return pos + 2
    if pos < n and text[pos] == "\n":
        return pos + 1
    while pos < n and text[pos].isspace():
        pos += 1
    return pos


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"Syntax error: the query is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        raise SqlTextError(62, message) from None


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise SqlTextError(229, f"Max query size exceeded: the query is {size} bytes, the limit is {limit}")


def _split_insert(raw: bytes, window: str, limit: int) -> Statement:
    depth = 0
    lexed = tokens(window)
    for tok in lexed:
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "word" and tok.text.upper() == "VALUES":
            break  # inline Values data: the whole body is one statement
        elif depth == 0 and tok.kind == "word" and tok.text.upper() == "FORMAT":
            name = next(lexed, None)
            if name is None or name.kind != "word":
                raise SqlTextError(62, "Syntax error: FORMAT must be followed by a format name")
            _check_size(tok.start, limit)
            sql = _decode(raw[: tok.start]).rstrip()
            data = raw[_data_start(window, name.end) :] if name.end < len(window) else b""
            return Statement(sql=sql, kind="INSERT", insert_format=name.text, data=bytes(data))
    return Statement(sql=_decode(raw).strip(), kind="INSERT")


def _trailing_format(text: str) -> str | None:
    depth, found = 0, None
    lexed = tokens(text)
    for tok in lexed:
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "word" and tok.text.upper() == "FORMAT":
            name = next(lexed, None)
            if name is not None and name.kind == "word":
                found = name.text
    return found


def _has_into_outfile(text: str) -> bool:
    previous = ""
    for tok in tokens(text):
        word = tok.text.upper() if tok.kind == "word" else ""
        if previous == "INTO" and word == "OUTFILE":
            return True
        previous = word
    return False


def parse_statement(raw: bytes, max_query_size: int = MAX_QUERY_SIZE) -> Statement:
    """Split a request's text (URL ``query`` + newline + body, as ClickHouse joins them).

    Raises :class:`SqlTextError` for an empty query, undecodable or oversized text, and
    ``INTO OUTFILE`` (which would write files on the server host; ClickHouse refuses it over
    HTTP too).
    """
    # latin-1 maps bytes 1:1, so offsets in the window are byte offsets into ``raw``.
    window = raw[: max_query_size + 1024].decode("latin-1")
    first = next(tokens(window), None)
    if first is None:
        raise SqlTextError(62, "Empty query")
    kind = first.text.upper() if first.kind == "word" else first.text
    if kind == "INSERT":
        return _split_insert(raw, window, max_query_size)
    _check_size(len(raw), max_query_size)
    sql = _decode(raw).strip()
    if _has_into_outfile(sql):
        raise SqlTextError(48, "INTO OUTFILE is not allowed over HTTP: it would write a file on the server host")
    return Statement(sql=sql, kind=kind, output_format=_trailing_format(sql))
