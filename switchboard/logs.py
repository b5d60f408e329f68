"""Logging setup: JSON lines when not on a terminal, readable lines on one; secrets scrubbed."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from .secrets import scrub_text

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


scrub = scrub_text  # the name tests and callers know


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return scrub(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: "
        line += record.getMessage() + (f" {extras}" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def configure(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Install one stderr handler; JSON unless stderr is a terminal (or as told)."""
    use_json = not sys.stderr.isatty() if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
