"""Who may read the pages: anyone on a loopback bind, else whoever shows the token.

The token comes as `Authorization: Bearer <token>` (Prometheus, curl) or as the
`switchboard_token` cookie (a browser; `/?token=<token>` sets it once and redirects).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from ..errors import SettingsError

COOKIE = "switchboard_token"


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def require_token_off_loopback(host: str, token: str, *, variable: str) -> None:
    """SettingsError when `host` is not loopback and no token is set (nothing served openly)."""
    if not is_loopback(host) and not token:
        raise SettingsError(
            f"{variable}={host} listens beyond this machine: set SWITCHBOARD_HTTP_TOKEN "
            "(clients send it as 'Authorization: Bearer <token>' or the switchboard_token cookie)"
        )


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a request shows, from its bearer header or its cookie."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    raw = headers.get("cookie", "")
    if not raw:
        return None
    try:
        cookie = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel is not None else None


def allowed(token: str, headers: Mapping[str, str]) -> bool:
    """True when no token is required, or the request shows the right one."""
    if not token:
        return True
    shown = presented_token(headers)
    return shown is not None and hmac.compare_digest(shown.encode(), token.encode())


def cookie_header(token: str) -> str:
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
