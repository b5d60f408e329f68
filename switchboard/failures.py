"""One-line descriptions of failures for dead-letter headers and logs, and delivery identity."""

from __future__ import annotations

import hashlib

from .ports import Delivery

MAX_REASON_CHARS = 500


def delivery_fingerprint(delivery: Delivery) -> str:
    """What identifies one delivery across redeliveries without parsing it (parsing is part of
    what may crash): a hash of its routing key and body, of fixed length."""
    digest = hashlib.sha256(delivery.routing_key.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(bytes(delivery.body))
    return "sha256:" + digest.hexdigest()


def describe_failure(error: BaseException) -> str:
    """`Type: first line` of an exception, fit for a dead-letter header and a log line.

    A database error is described by the driver's own error (with its SQLSTATE), not by
    SQLAlchemy's text, which appends the SQL statement; only the first line is kept (the
    server's DETAIL lines may quote values). (`orig` and `sqlstate` are read by reflection:
    any exception may come here, and SQLAlchemy is not imported.)
    """
    original = getattr(error, "orig", None)
    source = original if isinstance(original, BaseException) else error
    sqlstate = getattr(source, "sqlstate", None)
    code = f" (SQLSTATE {sqlstate})" if isinstance(sqlstate, str) and sqlstate else ""
    return shortened(f"{type(source).__name__}{code}: {first_line(str(source))}")


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def shortened(text: str) -> str:
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return text
