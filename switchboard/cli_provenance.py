"""The provenance commands: `rules history|show`, `explain --event`, `backfill`, `prov`."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from .cli_reports import echo_per_target, with_progress
from .cli_store import command_settings, load_rules_or_exit, migrated_store
from .errors import RuleLoadError, SwitchboardError

if TYPE_CHECKING:
    from .outbox_queue import MessageBuilder
    from .store.sql import SqlStore


@contextlib.contextmanager
def _store(url: str) -> Iterator[SqlStore]:
    """The migrated store; an error from the store while in use is a clear refusal too."""
    with migrated_store(url) as store:
        try:
            yield store
        except SwitchboardError as exc:
            raise click.ClickException(str(exc)) from None


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time (UTC unless it says otherwise)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@click.group(name="rules")
def rules_group() -> None:
    """Rule-set versions the daemon has run under."""


@rules_group.command(name="history")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def rules_history(ctx: click.Context, database: str | None) -> None:
    """List every rule-set version with when it was active."""
    from .provenance.version_store import activations_of, history

    settings = command_settings(ctx, database_url=database)
    with _store(settings.database_url) as store, store.engine.connect() as connection:
        versions = history(connection)
        if not versions:
            click.echo("no rule versions stored yet (the daemon stores one at start and reload)")
            return
        click.echo(f"{'VERSION':<12}  {'FIRST ACTIVE':<25}  {'LAST ACTIVE':<25}  TIMES  RULES")
        for v in versions:
            last = v.last_active_at.isoformat(timespec="seconds") if v.last_active_at else "-"
            click.echo(
                f"{v.version:<12}  {v.first_active_at.isoformat(timespec='seconds'):<25}  "
                f"{last:<25}  {v.activations:>5}  {len(v.rules.rule_names)} in "
                f"{len(v.rules.files)} file(s)"
            )
        click.echo("activations:")
        for at, version, reason in activations_of(connection):
            click.echo(f"  {at.isoformat(timespec='seconds')}  {version}  {reason}")


@rules_group.command(name="show")
@click.argument("version")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def rules_show(ctx: click.Context, version: str, database: str | None) -> None:
    """Print one version's rule names and every file's text (VERSION or a prefix of it)."""
    from .provenance.version_store import load_version

    settings = command_settings(ctx, database_url=database)
    with _store(settings.database_url) as store, store.engine.connect() as connection:
        found = load_version(connection, version)
    click.echo(f"version {found.version}  sha256 {found.content_hash}")
    click.echo(f"loaded from {', '.join(found.roots)}")
    click.echo(f"rules: {', '.join(found.rule_names) or '-'}")
    for f in found.files:
        click.echo(f"--- {f.path}")
        click.echo(f.text, nl=not f.text.endswith("\n"))


def explain_archived(
    ctx: click.Context,
    message_id: str,
    current: bool,
    rule_paths: Sequence[str],
    database: str | None,
) -> None:
    """`explain --event`: see `provenance.explain_past`."""
    from .provenance.explain_past import explain_event

    settings = command_settings(ctx, rules=rule_paths, database_url=database)
    today = load_rules_or_exit(settings.rules, settings) if current else None
    with _store(settings.database_url) as store, store.engine.connect() as connection:
        try:
            lines = explain_event(connection, message_id, settings, today)
        except RuleLoadError as exc:
            raise click.ClickException(
                "the stored rule version no longer loads here: "
                + "; ".join(str(p) for p in exc.problems)
            ) from None
    for line in lines:
        click.echo(line)


@click.command()
@click.option("--rules", "rule_paths", multiple=True, required=True, help="Rule files or folders.")
@click.option("--rule", "rule_names", multiple=True, help="Only this rule (repeatable).")
@click.option("--since", default=None, help="Events that arrived at or after this ISO time.")
@click.option("--until", default=None, help="Events that arrived before this ISO time.")
@click.option("--dataset", "dataset_id", default=None, help="Only this dataset's events.")
@click.option("--dry-run", is_flag=True, help="Print what would be submitted; change nothing.")
@click.option("--database", default=None, help="SQLAlchemy database URL (the daemon's).")
@click.pass_context
def backfill(
    ctx: click.Context,
    rule_paths: tuple[str, ...],
    rule_names: tuple[str, ...],
    since: str | None,
    until: str | None,
    dataset_id: str | None,
    dry_run: bool,
    database: str | None,
) -> None:
    """Apply rules to archived events: submit what they would have, nothing twice.

    Runs beside a running daemon on its database: each chunk of events is its own short
    transaction, submissions go into the same outbox under deterministic job ids.
    """
    from .outgoing import extractor_message
    from .provenance.backfill import Backfill, only_rules, with_secret_key
    from .provenance.queries import count_archived
    from .provenance.versions import version_of

    settings = command_settings(ctx, rules=rule_paths, database_url=database)
    start, end = _when(since, "--since"), _when(until, "--until")
    loaded = load_rules_or_exit(rule_paths, settings)
    try:
        chosen = only_rules(loaded, rule_names)
    except SwitchboardError as exc:
        raise click.ClickException(str(exc)) from None
    version = version_of(rule_paths, loaded.names())
    build: MessageBuilder = extractor_message
    if settings.clowder_key:
        build = with_secret_key(extractor_message, settings.clowder_key)
    elif not dry_run:
        click.echo("note: CLOWDER_KEY is not set: backfilled messages carry no secretKey", err=True)
    with _store(settings.database_url) as store:
        job = Backfill(
            store,
            chosen,
            version,
            build,
            rule_timeout_s=settings.rule_timeout_s,
            manifest_dir=settings.manifest_dir,
        )
        with store.engine.connect() as connection:
            total = count_archived(connection, since=start, until=end, dataset_id=dataset_id)
        click.echo(
            f"{'dry run: ' if dry_run else ''}backfilling {total} archived event(s) with "
            f"{', '.join(chosen.names()) or 'no rules'} (version {version.version})"
        )
        window: dict[str, Any] = {"since": start, "until": end, "dataset_id": dataset_id}
        summary = with_progress(
            total, "backfilling", functools.partial(job.run, dry_run=dry_run, **window)
        )
    verb = "would submit" if dry_run else "submitted"
    if dry_run:
        for s in summary.submissions:
            click.echo(
                f"would submit {s.extractor} {s.resource_type} {s.resource_id} via {s.via} "
                f"job {s.job_id} (rule {s.rule}, event {s.event_message_id})"
            )
    echo_per_target(summary.per_target)
    click.echo(
        f"{summary.events} event(s), {verb} {len(summary.submissions)}, "
        f"{summary.repeats} already submitted (skipped), {summary.members} collection "
        f"member(s), {len(summary.errors)} error(s)"
    )
    for line in summary.errors:
        click.echo(f"  ! {line}", err=True)


@click.command(name="prov")
@click.option("--job", "job_id", default=None, help="A job (submission) id.")
@click.option("--dataset", "dataset_id", default=None, help="A Clowder dataset id.")
@click.option("--collection", "key", default=None, help="A collection key.")
@click.option("--generation", type=int, default=None, help="With --collection: one generation.")
@click.option("--event", "message_id", default=None, help="An archived event's message id.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "provn"]), default="json", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None)
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def prov_command(
    ctx: click.Context,
    job_id: str | None,
    dataset_id: str | None,
    key: str | None,
    generation: int | None,
    message_id: str | None,
    fmt: str,
    output: str | None,
    database: str | None,
) -> None:
    """Write the W3C PROV document of a job, dataset, collection or event (PROV-JSON or PROV-N).

    Give exactly one of --job, --dataset, --collection, --event.
    """
    from .provenance.prov_document import ProvBuilder
    from .provenance.prov_subjects import dataset_document, event_document

    chosen = [o for o in (job_id, dataset_id, key, message_id) if o is not None]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --job, --dataset, --collection, --event")
    if generation is not None and key is None:
        raise click.UsageError("--generation goes with --collection")
    settings = command_settings(ctx, database_url=database)
    with _store(settings.database_url) as store, store.engine.connect() as connection:
        builder = ProvBuilder(connection, settings.queue)
        if job_id is not None:
            found = builder.job(job_id) is not None
            what = f"job {job_id}"
        elif dataset_id is not None:
            found = dataset_document(builder, dataset_id) > 0
            what = f"archived event of dataset {dataset_id}"
        elif key is not None:
            found = builder.collection(key, generation) > 0
            at = "" if generation is None else f" generation {generation}"
            what = f"firing of collection {key!r}{at}"
        else:
            assert message_id is not None
            found = event_document(builder, message_id)
            what = f"archived event {message_id}"
    if not found:
        raise click.ClickException(f"no {what} in the database")
    if fmt == "json":
        text = str(builder.doc.serialize(format="json", indent=2))
    else:
        text = str(builder.doc.get_provn())
    if output is None:
        click.echo(text)
    else:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


def register(main: click.Group) -> None:
    """Add the provenance commands to the `switchboard` group."""
    main.add_command(rules_group)
    main.add_command(backfill)
    main.add_command(prov_command)
