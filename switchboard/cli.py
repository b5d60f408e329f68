"""The `switchboard` command line: check, explain, replay, demo, run, status, manifest, db."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_controls import COMMANDS as CONTROL_COMMANDS
from .cli_jobs import job_command, jobs_command
from .cli_provenance import register as register_provenance
from .cli_ray import ray_group
from .cli_reports import print_explanation, replay_and_report
from .cli_store import command_settings, load_rules_or_exit, migrated_store
from .errors import MalformedEvent, NotMigrated, RuleLoadError, SettingsError, SwitchboardError
from .settings import Settings

DEMO_DAY = Path(__file__).parent / "demo" / "day.jsonl"


@click.group()
@click.version_option(package_name="switchboard")
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Switchboard: route Clowder events to the extractors that want them."""
    from . import logs

    logs.configure(log_level)
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def check(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Validate rule files; print the loaded rules, or every problem as path:line: reason."""
    ruleset = load_rules_or_exit(paths, ctx.obj)
    rows = [("NAME", "KIND", "ON", "TARGETS", "SOURCE")]
    for r in ruleset:
        targets = ", ".join(r.targets) or "-"
        state = "" if r.enabled else " (disabled)"
        rows.append((r.name + state, r.kind, ",".join(r.on), targets, str(r.source)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    from .rules.index import index_note

    for r in ruleset:
        note = index_note(r) if r.enabled else None
        if note is not None:  # it still works, only slower as rules grow: a warning, not a problem
            click.echo(f"warning: rule {r.name}: {note}", err=True)
        for warning in r.warnings:  # rule controls: e.g. a `once` rule's submissions collapse
            click.echo(f"warning: {warning}", err=True)
    click.echo(f"{len(ruleset)} rule(s) OK")


@main.command()
@click.argument(
    "event_file", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@click.option("--rules", "rule_paths", multiple=True, help="Rule files or folders.")
@click.option(
    "--with-file",
    "extra_files",
    multiple=True,
    metavar="NAME",
    help="Pretend the dataset also holds a file of this name (repeatable).",
)
@click.option("--dataset-name", default=None, help="The dataset's name, if the event lacks it.")
@click.option("--event", "message_id", default=None, help="Explain this archived message id.")
@click.option("--current", is_flag=True, help="With --event: also under today's rules.")
@click.option("--database", default=None, help="With --event: the SQLAlchemy database URL.")
@click.pass_context
def explain(
    ctx: click.Context,
    event_file: str | None,
    rule_paths: tuple[str, ...],
    extra_files: tuple[str, ...],
    dataset_name: str | None,
    message_id: str | None,
    current: bool,
    database: str | None,
) -> None:
    """Show which rules match EVENT_FILE, why the others don't and what would be submitted.

    EVENT_FILE holds a raw message body or a {properties, body} record like tests/fixtures/
    ('-' reads standard input). Nothing is stored or sent. With --event MESSAGE_ID instead,
    an archived event is explained under the rules active when it arrived (and with
    --current under today's rules, showing what changed).
    """
    if (event_file is None) == (message_id is None):
        raise click.UsageError("give EVENT_FILE or --event MESSAGE_ID (one of them)")
    if message_id is not None:
        from .cli_provenance import explain_archived

        explain_archived(ctx, message_id, current, rule_paths, database)
        return
    if current or database:
        raise click.UsageError("--current and --database go with --event")
    assert event_file is not None
    from .engine import Engine
    from .events import event_from_json

    settings = command_settings(ctx, rules=rule_paths)
    ruleset = load_rules_or_exit(settings.rules, settings)
    try:
        with click.open_file(event_file, "rb") as handle:
            raw = handle.read(settings.max_event_bytes + 1)
    except OSError as exc:
        raise click.ClickException(f"{event_file}: cannot read: {exc.strerror}") from None
    try:
        event = event_from_json(raw, max_bytes=settings.max_event_bytes)
    except MalformedEvent as exc:
        click.echo(f"refused: {exc.reason}")
        click.echo("  the daemon dead-letters this message with that reason; no rule sees it")
        return
    import rule_utils

    from .testing import InMemoryProgress

    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    try:
        # Rules that keep progress through rule_utils see an empty store that is thrown away.
        with rule_utils.bound(InMemoryProgress()):
            print_explanation(engine, event, extra_files, dataset_name)
    finally:
        engine.close()


def _quiet_unless_asked(ctx: click.Context) -> None:
    """Replays log per event at INFO; unless --log-level was given, show warnings and up only."""
    import logging

    root = ctx.find_root()
    if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        logging.getLogger().setLevel(logging.WARNING)


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

    settings = command_settings(ctx, rules=rule_paths)
    _quiet_unless_asked(ctx)
    try:
        records = [record for _, record in read_records(events_file)]
    except MalformedEvent as exc:
        raise click.ClickException(exc.reason) from None
    replay_and_report(settings, load_rules_or_exit(settings.rules, settings), records, database)


@main.command()
@click.option(
    "--rules", "rule_paths", multiple=True, help="Rule files or folders (default: rules/)."
)
@click.option(
    "--database",
    default=None,
    help="Keep the results in this database URL, to look at with `switchboard web` "
    "(default: a throwaway SQLite file).",
)
@click.option("--ray", "with_ray", is_flag=True, help="Also run a batch job on a local Ray.")
@click.pass_context
def demo(
    ctx: click.Context, rule_paths: tuple[str, ...], database: str | None, with_ray: bool
) -> None:
    """Replay a bundled day of TERRA-like traffic through the rules and print the routing."""
    from .traffic import read_records

    settings = command_settings(ctx, rules=rule_paths)
    missing = [p for p in settings.rules if not Path(p).exists()]
    if missing:
        raise click.ClickException(
            f"rule path {missing[0]!r} not found: run from the repository root or pass --rules"
        )
    _quiet_unless_asked(ctx)
    records = [record for _, record in read_records(DEMO_DAY)]
    click.echo(
        f"demo: {len(records)} events of one TERRA-like day, rules from {', '.join(settings.rules)}"
    )
    replay_and_report(settings, load_rules_or_exit(settings.rules, settings), records, database)
    if database:
        from .store.engine import redacted

        click.echo(f"look at it: switchboard web --database {redacted(database)}")
    if with_ray:
        from .cli_ray import run_demo

        run_demo(settings)


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

    settings = command_settings(ctx, rules=rule_paths, database_url=database, queue=queue)
    try:
        code = run_daemon(settings, migrate=migrate)
    except (NotMigrated, SettingsError) as exc:  # SettingsError: the web server's address
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
    """Show outbox totals, collections and recent submissions."""
    from .cli_jobs import job_count_lines
    from .jobs.queries import counts as job_counts
    from .store.collection_report import collection_lines

    settings = command_settings(ctx, database_url=database)
    with migrated_store(settings.database_url) as store:
        counts = store.counts_by_status()
        click.echo("submissions: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        from .cli_controls import throttled_lines

        for line in throttled_lines(store):
            click.echo(line)
        if counts.get("failed"):
            # given up after the relay's max attempts (or refused): these need a person
            failed = store.recent_submissions(limit, status="failed")
            click.echo(f"failed (newest {len(failed)} of {counts['failed']}):")
            for row in failed:
                s = row.submission
                click.echo(
                    f"  {s.job_id}  {s.rule} -> {s.extractor} via {s.via} "
                    f"attempts {row.attempts}: {row.last_error}"
                )
        with store.engine.connect() as connection:
            for line in collection_lines(connection, limit):
                click.echo(line)
            for line in job_count_lines(job_counts(connection)):
                click.echo(line)
        click.echo("recent:")
        for row in store.recent_submissions(limit):
            s = row.submission
            error = f"  ({row.last_error})" if row.last_error else ""
            click.echo(
                f"{row.status:<8} {s.job_id}  {s.rule} -> {s.extractor} "
                f"{s.resource_type} {s.resource_id} attempts {row.attempts}{error}"
            )


@main.command()
@click.argument("manifest_id")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def manifest(ctx: click.Context, manifest_id: str, database: str | None, as_json: bool) -> None:
    """Print one collection firing's manifest: its sorted members with their data."""
    from .store.collection_report import write_manifest

    settings = command_settings(ctx, database_url=database)
    with migrated_store(settings.database_url) as store, store.engine.connect() as connection:
        found = write_manifest(connection, manifest_id, sys.stdout, as_json=as_json)
    if not found:
        raise click.ClickException(f"no manifest {manifest_id}")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def upgrade(ctx: click.Context, database: str | None) -> None:
    """Create or migrate the schema to the current version."""
    from .store.migrate import upgrade as run_upgrade

    settings = command_settings(ctx.find_root(), database_url=database)
    try:
        run_upgrade(settings.database_url)
    except SwitchboardError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("database is at the current schema version")


main.add_command(jobs_command)
main.add_command(job_command)
main.add_command(ray_group)

from .cli_web import web  # noqa: E402  # registered last: the command lives in its own module

main.add_command(web)

register_provenance(main)
for _command in CONTROL_COMMANDS:  # retry, resubmit, dead-letters, record (cli_controls)
    main.add_command(_command)

if __name__ == "__main__":  # `python -m switchboard.cli …` works like the console script
    main()
