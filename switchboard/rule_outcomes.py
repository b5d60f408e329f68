"""What a Python rule's call came to: the requests it returned, or its error as one line.

The error names the rule's own file and line (from the traceback, or from an isolated rule's
worker) and never shows the event's secrets.
"""

from __future__ import annotations

from typing import Any

from .model import Event, SubmitRequest
from .rules.isolated import RemoteError, rule_line
from .rules.model import Rule
from .secrets import REDACTED, replace_secrets, secret_values

MAX_ERROR_CHARS = 500


def as_requests(value: Any) -> tuple[SubmitRequest, ...] | None:
    """A rule's return value as requests; None when it is not None, a submit or a list of them."""
    if value is None:
        return ()
    if isinstance(value, SubmitRequest):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, SubmitRequest) for v in value):
        return tuple(value)
    return None


def describe_exception(exc: BaseException | None, r: Rule, event: Event) -> str:
    """`raised Type at file:line: message`, truncated, with the event's secrets redacted."""
    if exc is None:
        return "raised an unknown error"
    if isinstance(exc, RemoteError):  # from an isolated rule's worker process
        where = f" at {r.source.path}:{exc.line}" if exc.line else ""
        return shown_error(f"raised {exc.type_name}{where}", exc.message, event)
    where = ""
    line = rule_line(exc, r.function)
    code = getattr(r.function, "__code__", None)
    if line is not None and code is not None:
        where = f" at {r.source.path or code.co_filename}:{line}"
    return shown_error(f"raised {type(exc).__name__}{where}", str(exc), event)


def shown_error(head: str, text: str, event: Event) -> str:
    """`head: text`, truncated, with the event's secrets redacted."""
    message = head + (f": {text}" if text else "")
    message = replace_secrets(message, secret_values(event.body), REDACTED)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return message
