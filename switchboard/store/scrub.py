"""Secrets taken out of a message body once it no longer needs to be sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..rules.fields import is_secret


def without_secrets(value: Any) -> Any:
    """`value` with every secret-named key (`secretKey`, `password`, ...) removed, at any depth.

    A sent row's body is only a record of what went out; Clowder's `secretKey` in it would
    otherwise stay in the database for as long as the row does.
    """
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items() if not is_secret(str(k))}
    if isinstance(value, list | tuple):
        return [without_secrets(v) for v in value]
    return value
