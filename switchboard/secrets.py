"""Secrets: which field names are secret, and the one way each kind of redaction is done.

Clowder puts its API key (`secretKey`) in every event body and broker and database URLs carry
passwords; whatever Switchboard shows (logs, reasons, error messages) or keeps (sent rows) goes
through these functions, so the word list and the masks are decided here once.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final

# Last path segments (any case) whose values are secrets: Clowder's secretKey, API keys,
# passwords, tokens.
SECRET_NAMES: Final = frozenset(
    {"secretkey", "secret_key", "secret", "password", "passwd", "token", "apikey", "api_key", "key"}
)
MASK: Final = "***"  # what a password or key in free text becomes
REDACTED: Final = "<redacted>"  # what a secret field's value becomes in reasons and renderings
MIN_SECRET_CHARS: Final = 4  # shorter values found in a body are too common to replace in text

_NAMES_PATTERN = "|".join(sorted(SECRET_NAMES, key=len, reverse=True))
# `name=value`, `"name": "value"`: the value up to a quote, `&`, blank, comma or brace.
_NAMED_VALUE = re.compile(rf"(?i)(\"?(?:{_NAMES_PATTERN})\"?\s*[:=]\s*\"?)[^\"&\s,}}]+")
# The secret names no other one contains: a text holds a secret name only if it holds one of
# these (none has an "i", the one letter `(?i)` matches in a form casefolding does not give)
_NAME_HINTS = tuple(n for n in SECRET_NAMES if not any(o != n and o in n for o in SECRET_NAMES))
# `scheme://user:password@`: the password up to the `@` (a URL in free text).
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*(@)")


_LEAVES = (str, int, float)  # JSON's scalars (bool is an int): nothing inside to scrub


@functools.lru_cache(maxsize=4096)  # asked for every key of every body sent: few distinct ones
def is_secret(path: str) -> bool:
    """Whether a field's value must never be shown or used in a template: the last segment
    of its dotted path is one of `SECRET_NAMES`, in any case."""
    return path.rsplit(".", 1)[-1].lower() in SECRET_NAMES


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`; everything else as written."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = _split_authority(rest)
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:{MASK}@{host}{slash}{tail}"


def _split_authority(rest: str) -> tuple[str, str, str]:
    """`user:pw@host:port`, the separator and the rest of a URL after its `scheme://`.

    The authority ends at the first `/`, `?` or `#` after its last `@` (a password may hold
    any of them when it was not percent-encoded).
    """
    start = rest.rfind("@") + 1
    for index in range(start, len(rest)):
        if rest[index] in "/?#":
            return rest[:index], rest[index], rest[index + 1 :]
    return rest, "", ""


def scrub_text(text: str) -> str:
    """Free text (a log line) with secret-named values and URL passwords replaced by `***`.

    Every log line passes here, and most name no secret: the patterns only run on a line
    that could match them (a secret name in it, casefolded as the patterns' `(?i)` would fold
    it, or a `://`), which spares the relay a regular-expression scan per submission logged.
    """
    folded = text.casefold()
    if any(hint in folded for hint in _NAME_HINTS):
        text = _NAMED_VALUE.sub(lambda m: m.group(1) + MASK, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(2), text)
    return text


def replace_secrets(text: str, secrets: Iterable[str], mask: str = MASK) -> str:
    """`text` with URL passwords and each of `secrets` (as is and URL-encoded) replaced by `mask`.

    For messages built from outside text (a broker's or Clowder's error, a rule's exception)
    that may quote a password or key the caller knows.
    """
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(2), text)
    for secret in secrets:
        if not secret:
            continue
        for form in dict.fromkeys(
            (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret))
        ):
            text = text.replace(form, mask)
    return text


def secret_values(mapping: Mapping[str, Any]) -> list[str]:
    """The text values of the secret-named top-level keys of `mapping` (an event body) that are
    long enough to be worth replacing wherever they appear (`MIN_SECRET_CHARS`)."""
    return [
        value
        for key, value in mapping.items()
        if is_secret(str(key)) and isinstance(value, str) and len(value) >= MIN_SECRET_CHARS
    ]


def without_secrets(value: Any) -> Any:
    """`value` with every secret-named key (`secretKey`, `password`, ...) removed, at any depth.

    A sent row's body is only a record of what went out; Clowder's `secretKey` in it would
    otherwise stay in the database for as long as the row does; Ray shows a job's environment
    to anyone who can open its dashboard.
    """
    if isinstance(value, _LEAVES) or value is None:  # most values; spares the ABC check below
        return value
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items() if not is_secret(str(k))}
    if isinstance(value, list | tuple):
        return [without_secrets(v) for v in value]
    return value


def masked(value: Any) -> Any:
    """`value` with every secret-named key's value replaced by `<redacted>`, at any depth (a
    mapping rendered whole into a template keeps its shape)."""
    if isinstance(value, _LEAVES) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret(str(k)) else masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value
