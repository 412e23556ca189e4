"""AWS's binary event stream (``application/vnd.amazon.eventstream``), as Bedrock streams it, for the fake LLM.

Each message: a prelude (total length and headers length, big-endian uint32, then the CRC32 of those
eight bytes), the headers (name length byte, name, type 7 = string, uint16 value length, value), the
payload, and a CRC32 of everything before it. botocore checks both CRCs, so a wrong byte fails the SDK.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

from llmtrace.demo.fake_llm_common import Frame, dumps

EVENT_STREAM = "application/vnd.amazon.eventstream"


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude with its CRC32, string headers, payload, message CRC32."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(kind: str, payload: Any, *, content: bool = False) -> Frame:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return Frame(event_message(headers, dumps(payload)), content)


def chunk_frame(chunk: dict[str, Any], *, content: bool = False) -> Frame:
    """An invoke stream's ``chunk`` event: the model's own JSON, base64 in ``bytes``."""
    return event_frame("chunk", {"bytes": base64.b64encode(dumps(chunk)).decode()}, content=content)


def exception_frame(kind: str, payload: Any) -> Frame:
    """The ``exception`` message a stream ends with when it fails after it started (``kind``: the
    stream member, e.g. ``modelStreamErrorException``)."""
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return Frame(event_message(headers, dumps(payload)))
