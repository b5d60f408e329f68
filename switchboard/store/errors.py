"""Turns SQLAlchemy's connection failures into StoreError so the daemon can retry the batch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from ..errors import StoreError


def is_connection_failure(error: BaseException) -> bool:
    """Whether `error` means the database is (for now) unreachable rather than a bug."""
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, (sa_exc.OperationalError, sa_exc.InterfaceError)
        )
    return isinstance(error, sa_exc.TimeoutError)  # no pooled connection became free


@contextmanager
def store_errors(where: str) -> Iterator[None]:
    """Re-raise connection failures inside the block as StoreError, keeping the original cause.

    `where` names the database (password hidden); the message never includes SQL parameters.
    """
    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as error:
        if not is_connection_failure(error):
            raise
        raise StoreError(f"database {where} failed: {_summary(error)}") from error


def _summary(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line}"
