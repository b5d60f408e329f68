"""The status page's HTML, rendered by Jinja2 with autoescaping on (no build step)."""

from __future__ import annotations

import urllib.parse
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,  # a misspelt name is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    env.filters["query"] = lambda values: urllib.parse.urlencode(values)
    return env


def render_status(context: dict[str, Any], filters: dict[str, str]) -> str:
    return environment().get_template("status.html").render(**context, filters=filters)


def duration(seconds: float | None) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12.5s`: short, for tables."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
