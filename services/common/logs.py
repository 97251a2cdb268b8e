"""Structured JSON logs: one object a line, with any `extra=` fields (event_id, sku, …).

Values that come from clients (request fields, event fields) are clipped with `clip` before
they reach a log line: a 1 MB SKU must not make a 1 MB line. The formatter clips any other
long extra field too, as a backstop.

With tracing on (services.common.tracing), a line written inside a span carries its
`trace_id` and `span_id` (hex, as trace backends show them); with tracing off, or outside
any span, lines have no such fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from opentelemetry import trace

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_RECORD_ATTRIBUTES = len(logging.makeLogRecord({}).__dict__)

# Longest client value kept in a log line; enough for any valid id or SKU (64-128 chars).
CLIPPED_LENGTH = 128
# Backstop for extra fields no one clipped (never our own long fields: none is this long).
_LONGEST_EXTRA = 4096

# Set by services.common.tracing when it is on: only then do lines look for a span.
_trace_ids = False


def include_trace_ids(on: bool) -> None:
    global _trace_ids
    _trace_ids = on


def clip(value: str, limit: int = CLIPPED_LENGTH) -> str:
    """`value`, or its first `limit` characters and its length when it is longer."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value)} chars)"


class JsonFormatter(logging.Formatter):
    # Every RPC logs a line (the access log), so this is on the hot path: one encoder for all
    # lines, the timestamp's seconds formatted once a second, no per-field function calls.
    _encode = json.JSONEncoder(ensure_ascii=False).encode

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._second, self._second_text = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # LogRecord.__init__ sets the standard attributes first, `extra=` comes after them.
        for key, value in islice(record.__dict__.items(), _RECORD_ATTRIBUTES, None):
            if key in _STANDARD or key[0] == "_":
                continue
            if value is None or type(value) in _PLAIN:
                entry[key] = value
            else:
                text = value if type(value) is str else str(value)
                entry[key] = text if len(text) <= _LONGEST_EXTRA else clip(text, _LONGEST_EXTRA)
        if _trace_ids:
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                entry["trace_id"] = format(span.trace_id, "032x")
                entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encode(entry)


_PLAIN = frozenset({int, float, bool})


# Fields that tie a log line to an event, an order line or a SKU, so that an operator can grep
# every line about one of them across both services.
CORRELATION_FIELDS = ("event_id", "order_id", "line_id", "sku")


def correlation(message: Any) -> dict[str, str]:
    """The non-empty event_id / order_id / line_id / sku of a protobuf message (request or
    event), clipped, for `extra=`; nested `line` messages count too."""
    found: dict[str, str] = {}
    names = _correlation_fields(type(message))
    if names:
        _collect(message, names, found)
    if _has_line(type(message)):
        line = message.line
        _collect(line, _correlation_fields(type(line)), found)
    return found


def _collect(message: Any, names: tuple[str, ...], found: dict[str, str]) -> None:
    for name in names:
        if name not in found:
            value = getattr(message, name)
            if value and isinstance(value, str):
                found[name] = clip(value)


# Per message type, looked up once: the access log calls correlation() on every RPC.
_FIELDS: dict[type, tuple[str, ...]] = {}
_LINES: dict[type, bool] = {}


def _correlation_fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        descriptor = getattr(kind, "DESCRIPTOR", None)
        fields = descriptor.fields_by_name if descriptor is not None else {}
        names = tuple(name for name in CORRELATION_FIELDS if name in fields)
        _FIELDS[kind] = names
    return names


def _has_line(kind: type) -> bool:
    has = _LINES.get(kind)
    if has is None:
        descriptor = getattr(kind, "DESCRIPTOR", None)
        field = descriptor.fields_by_name.get("line") if descriptor is not None else None
        has = field is not None and field.message_type is not None
        _LINES[kind] = has
    return has


def configure(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika/aiormq log every reconnect attempt at length; our own lines say what matters.
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # aiormq logs a failed connection attempt as an ERROR before raising it; the caller
    # handles it and says so (a warning while waiting for the broker, one line if refused).
    logging.getLogger("aiormq.connection").addFilter(_not_a_failed_connect)


def _not_a_failed_connect(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("error when creating transport")
