"""The `switchboard` command line: check, explain, replay, demo, run, status and db upgrade."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .errors import MalformedEvent, NotMigrated, RuleLoadError, SwitchboardError
from .settings import Settings

DEMO_DAY = Path(__file__).parent / "demo" / "day.jsonl"


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: Settings = ctx.obj
    return replace(base, **{k: v for k, v in overrides.items() if v not in (None, ())})


def _load_rules(paths: Sequence[str]) -> Any:
    from .rules import load_rules

    try:
        return load_rules(paths)
    except RuleLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s); no rules loaded", err=True)
        sys.exit(1)


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Switchboard: route Clowder events to the extractors that want them."""
    from . import logs

    logs.configure(log_level)
    ctx.obj = Settings.from_env()


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def check(paths: tuple[str, ...]) -> None:
    """Validate rule files; print the loaded rules, or every problem as path:line: reason."""
    ruleset = _load_rules(paths)
    rows = [("NAME", "KIND", "ON", "TARGETS", "SOURCE")]
    for r in ruleset:
        targets = ", ".join(r.targets) or "-"
        state = "" if r.enabled else " (disabled)"
        rows.append((r.name + state, r.kind, ",".join(r.on), targets, r.source))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{len(ruleset)} rule(s) OK")


@main.command()
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rule_paths", multiple=True, help="Rule files or folders.")
@click.option(
    "--with-file",
    "extra_files",
    multiple=True,
    metavar="NAME",
    help="Pretend the dataset also holds a file of this name (repeatable).",
)
@click.option("--dataset-name", default=None, help="The dataset's name, if the event lacks it.")
@click.pass_context
def explain(
    ctx: click.Context,
    event_file: str,
    rule_paths: tuple[str, ...],
    extra_files: tuple[str, ...],
    dataset_name: str | None,
) -> None:
    """Show which rules match EVENT_FILE and why the others don't. Changes nothing."""
    from .engine import Engine
    from .events import load_event_file
    from .model import DatasetView, FileInfo

    settings = _settings(ctx, rules=rule_paths)
    ruleset = _load_rules(settings.rules)
    try:
        event = load_event_file(event_file)
    except MalformedEvent as exc:
        raise click.ClickException(f"{event_file}: {exc.reason}") from None
    files = [event.file] if event.file else []
    files += [FileInfo(id=f"extra-{i}", name=n) for i, n in enumerate(extra_files)]
    view = DatasetView(
        id=event.dataset_id or "", name=dataset_name or event.dataset_name, files=tuple(files)
    )
    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    evaluation = engine.explain(event, view)
    file_desc = f"{event.file.name} ({event.file.id})" if event.file else "-"
    click.echo(f"event {event.kind.value} message {event.message_id}")
    click.echo(f"  dataset {event.dataset_id or '-'} name {view.name!r}  file {file_desc}")
    submissions: dict[str, list[Any]] = {}
    for s in engine.submissions(evaluation):
        submissions.setdefault(s.rule, []).append(s)
    for decision in evaluation.decisions:
        mark = "MATCH" if decision.matched else ("ERROR" if decision.error else "no")
        click.echo(f"{mark:<5} {decision.rule}")
        for reason in decision.reasons:
            click.echo(f"        {reason}")
        if decision.error:
            click.echo(f"        error: {decision.error}")
        for s in submissions.get(decision.rule, []):
            click.echo(
                f"        -> {s.extractor} {s.resource_type} {s.resource_id} via {s.via} "
                f"job {s.job_id} parameters {dict(s.parameters)}"
            )


def _replay_and_report(settings: Settings, records: list[dict], database: str | None) -> None:
    from .engine import Engine
    from .outgoing import extractor_message
    from .replay import replay
    from .store.migrate import upgrade
    from .store.sql import SqlStore

    ruleset = _load_rules(settings.rules)
    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    with tempfile.TemporaryDirectory() as tmp:
        url = database or f"sqlite:///{Path(tmp) / 'replay.db'}"
        upgrade(url)
        store = SqlStore(url)
        try:
            if sys.stdout.isatty():
                with click.progressbar(length=len(records), label="replaying") as bar:
                    summary = replay(
                        records,
                        engine,
                        store,
                        extractor_message,
                        batch_size=settings.batch_size,
                        on_progress=bar.update,
                    )
            else:
                summary = replay(
                    records, engine, store, extractor_message, batch_size=settings.batch_size
                )
        finally:
            store.close()
    click.echo(
        f"{summary.events} events, {sum(summary.per_target.values())} submissions, "
        f"{summary.duplicates} duplicates, {len(summary.malformed)} malformed, "
        f"{len(summary.rule_errors)} rule errors"
    )
    width = max((len(t) for t in summary.per_target), default=6)
    click.echo(f"{'TARGET'.ljust(width)}  SUBMISSIONS")
    for target, count in sorted(summary.per_target.items()):
        click.echo(f"{target.ljust(width)}  {count}")
    for line in summary.malformed + summary.poison + summary.rule_errors:
        click.echo(f"  ! {line}", err=True)


@main.command(name="replay")
@click.argument("events_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rule_paths", multiple=True, help="Rule files or folders.")
@click.option(
    "--database",
    default=None,
    help="Keep state in this database URL (default: a throwaway SQLite file).",
)
@click.pass_context
def replay_command(
    ctx: click.Context, events_file: str, rule_paths: tuple[str, ...], database: str | None
) -> None:
    """Run recorded events (JSON Lines) through the rules; print submissions per target."""
    from .traffic import read_records

    settings = _settings(ctx, rules=rule_paths)
    try:
        records = [record for _, record in read_records(events_file)]
    except MalformedEvent as exc:
        raise click.ClickException(exc.reason) from None
    _replay_and_report(settings, records, database)


@main.command()
@click.option(
    "--rules", "rule_paths", multiple=True, help="Rule files or folders (default: rules/)."
)
@click.pass_context
def demo(ctx: click.Context, rule_paths: tuple[str, ...]) -> None:
    """Replay a bundled day of TERRA-like traffic through the rules and print the routing."""
    from .traffic import read_records

    settings = _settings(ctx, rules=rule_paths)
    missing = [p for p in settings.rules if not Path(p).exists()]
    if missing:
        raise click.ClickException(
            f"rule path {missing[0]!r} not found: run from the repository root or pass --rules"
        )
    records = [record for _, record in read_records(DEMO_DAY)]
    click.echo(
        f"demo: {len(records)} events of one TERRA-like day, rules from {', '.join(settings.rules)}"
    )
    _replay_and_report(settings, records, None)


@main.command()
@click.option("--rules", "rule_paths", multiple=True, help="Rule files or folders.")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option("--queue", default=None, help="Our input queue.")
@click.option("--migrate", is_flag=True, help="Apply database migrations before starting.")
@click.pass_context
def run(
    ctx: click.Context,
    rule_paths: tuple[str, ...],
    database: str | None,
    queue: str | None,
    migrate: bool,
) -> None:
    """Run the daemon: consume events, match rules, submit work."""
    from .app import run_daemon
    from .store.migrate import upgrade as run_upgrade

    settings = _settings(ctx, rules=rule_paths, database_url=database, queue=queue)
    if migrate:
        run_upgrade(settings.database_url)
    try:
        code = run_daemon(settings)
    except NotMigrated as exc:
        raise click.ClickException(str(exc)) from None
    except RuleLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException("rules refused; the daemon did not start") from None
    sys.exit(code)


@main.command()
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option("--limit", default=20, show_default=True, help="How many recent submissions.")
@click.pass_context
def status(ctx: click.Context, database: str | None, limit: int) -> None:
    """Show outbox totals and recent submissions."""
    from .store.migrate import ensure_current
    from .store.sql import SqlStore

    settings = _settings(ctx, database_url=database)
    try:
        ensure_current(settings.database_url)
    except NotMigrated as exc:
        raise click.ClickException(str(exc)) from None
    store = SqlStore(settings.database_url)
    try:
        counts = store.counts_by_status()
        click.echo("submissions: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for row in store.recent_submissions(limit):
            s = row.submission
            error = f"  ({row.last_error})" if row.last_error else ""
            click.echo(
                f"{row.status:<8} {s.job_id}  {s.rule} -> {s.extractor} "
                f"{s.resource_type} {s.resource_id} attempts {row.attempts}{error}"
            )
    finally:
        store.close()


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def upgrade(ctx: click.Context, database: str | None) -> None:
    """Create or migrate the schema to the current version."""
    from .store.migrate import upgrade as run_upgrade

    settings = _settings(ctx.find_root(), database_url=database)
    try:
        run_upgrade(settings.database_url)
    except SwitchboardError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("database is at the current schema version")
