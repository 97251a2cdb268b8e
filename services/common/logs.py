"""Structured JSON logs: one object a line, with any `extra=` fields (event_id, sku, …)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# Fields that tie a log line to an event, an order line or a SKU, so that an operator can grep
# every line about one of them across both services.
CORRELATION_FIELDS = ("event_id", "order_id", "line_id", "sku")


def correlation(message: Any) -> dict[str, str]:
    """The non-empty event_id / order_id / line_id / sku of a protobuf message (request or
    event), for `extra=`; nested `line` messages count too."""
    found: dict[str, str] = {}
    for source in (message, getattr(message, "line", None)):
        if source is None or not hasattr(source, "DESCRIPTOR"):
            continue
        fields = source.DESCRIPTOR.fields_by_name
        for name in CORRELATION_FIELDS:
            if name in fields and name not in found:
                value = getattr(source, name)
                if isinstance(value, str) and value:
                    found[name] = value
    return found


def configure(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika/aiormq log every reconnect attempt at length; our own lines say what matters.
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
