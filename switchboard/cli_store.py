"""What every command-line module shares: settings, rules and the state database (or a refusal)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from .errors import NotMigrated, RuleLoadError
from .settings import Settings

if TYPE_CHECKING:
    from .store.sql import SqlStore


def command_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """The root command's Settings with the options this command was given (unset ones left)."""
    base: Settings = ctx.find_root().obj
    return replace(base, **{k: v for k, v in overrides.items() if v not in (None, ())})


def load_rules_or_exit(paths: Sequence[str], settings: Settings) -> Any:
    """The rule set at `paths`; else every problem as path:line: reason on stderr, and exit 1."""
    from .rules import load_rules
    from .rules.legacy import LegacyContext

    try:
        return load_rules(
            paths,
            legacy=LegacyContext.from_settings(settings),
            python_allowlist=settings.python_allowlist,
        )
    except RuleLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s); no rules loaded", err=True)
        sys.exit(1)


def ensure_migrated(url: str) -> None:
    """Nothing if the database at `url` is at the head revision; else a clear refusal."""
    from .store.migrate import ensure_current

    try:
        ensure_current(url)
    except NotMigrated as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def migrated_store(url: str) -> Iterator[SqlStore]:
    """The SqlStore at `url`, closed after; a clear refusal if it is not migrated to head."""
    from .store.sql import SqlStore

    ensure_migrated(url)
    store = SqlStore(url)
    try:
        yield store
    finally:
        store.close()
