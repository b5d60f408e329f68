"""`switchboard web`: the status pages and JSON API served from a database, no daemon needed."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from .cli_store import command_settings, ensure_migrated
from .errors import RuleLoadError, SettingsError
from .settings import Settings

DEFAULT_PORT = 8080  # when neither --port nor SWITCHBOARD_HTTP_PORT says
log = logging.getLogger(__name__)


@click.command()
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Port (default: SWITCHBOARD_HTTP_PORT, else {DEFAULT_PORT}; 0 picks a free one).",
)
@click.option("--host", default=None, help="Address to bind (default: SWITCHBOARD_HTTP_HOST).")
@click.option("--rules", "rule_paths", multiple=True, help="Rule files or folders to list.")
@click.pass_context
def web(
    ctx: click.Context,
    database: str | None,
    port: int | None,
    host: str | None,
    rule_paths: tuple[str, ...],
) -> None:
    """Serve the status page, /api and /metrics from the database, without a daemon."""
    from .store.engine import make_engine, redacted
    from .web.wiring import checked_endpoint, standalone_server

    settings = command_settings(ctx, database_url=database, http_host=host, rules=rule_paths)
    chosen = port if port is not None else (settings.http_port or DEFAULT_PORT)
    variable = "--host" if host is not None else "SWITCHBOARD_HTTP_HOST"
    try:
        where = checked_endpoint(settings.http_host, chosen, settings.http_token, variable=variable)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    ensure_migrated(settings.database_url)
    engine = make_engine(settings.database_url, reads_only=True)
    try:
        server = standalone_server(settings, where, engine=engine, ruleset=_rules(settings))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {where.host}:{where.port}: {exc}") from None
    click.echo(f"serving {server.url}/ from {redacted(settings.database_url)} (Ctrl-C stops)")
    sys.stdout.flush()  # a supervisor or a test reads the address from a pipe
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        engine.dispose()


def _rules(settings: Settings) -> Any:
    """The configured rules for the rules table, or None (with a warning) when they cannot load."""
    from .rules import load_rules
    from .rules.legacy import LegacyContext

    if not all(Path(p).exists() for p in settings.rules):
        log.warning(
            "rules %s not found: the rules table lists only rules seen in the outbox",
            settings.rules,
        )
        return None
    try:
        return load_rules(
            settings.rules,
            legacy=LegacyContext.from_settings(settings),
            python_allowlist=settings.python_allowlist,
        )
    except RuleLoadError as exc:
        log.warning("rules not loaded (%d problem(s)); run switchboard check", len(exc.problems))
        return None
