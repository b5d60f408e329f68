"""The operator commands: retry, resubmit, dead-letters list / redrive, record."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from typing import TYPE_CHECKING, Any

import click

from .cli_store import command_settings, migrated_store
from .errors import SwitchboardError

if TYPE_CHECKING:
    from .store.sql import SqlStore

WHO_HELP = "Who is acting, for the log (default: user@host)."


def _who(given: str | None) -> str:
    if given:
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def throttled_lines(store: SqlStore) -> list[str]:
    """`status`'s lines about what rule controls hold back: rows a throttle holds, per target,
    and debounced submissions waiting for their quiet period (none when nothing is held)."""
    from .store.throttle_sql import throttled_counts

    with store.engine.connect() as connection:
        counts = throttled_counts(connection)
    lines = []
    if counts:
        shown = ", ".join(f"{target} {n}" for target, n in sorted(counts.items()))
        lines.append(f"throttled (pending, held by limits): {sum(counts.values())}: {shown}")
    with store.unit_of_work() as uow:
        debounced = uow.debounces.pending()
    if debounced:
        lines.append(f"debounced (held until their events stop): {len(debounced)}")
        lines += [
            f"  {h.rule} {h.key}: {h.events} event(s), due {h.deadline:%Y-%m-%d %H:%M:%S} UTC"
            for h in debounced[:20]
        ]
    return lines


@click.command()
@click.argument("job_ids", nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed job.")
@click.option("--target", default=None, help="With --failed: only this target's jobs.")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option("--who", default=None, help=WHO_HELP)
@click.pass_context
def retry(
    ctx: click.Context,
    job_ids: tuple[str, ...],
    all_failed: bool,
    target: str | None,
    database: str | None,
    who: str | None,
) -> None:
    """Send failed jobs again (JOB_ID... or --failed [--target T]); others are left alone."""
    from .store.operator_sql import failed_job_ids
    from .store.operator_sql import retry as retry_jobs

    if bool(job_ids) == all_failed:
        raise click.UsageError("give JOB_IDs or --failed, not both and not neither")
    if target is not None and not all_failed:
        raise click.UsageError("--target goes with --failed")
    settings = command_settings(ctx, database_url=database)
    with migrated_store(settings.database_url) as store:
        chosen = list(job_ids) if job_ids else failed_job_ids(store, target)
        outcomes = retry_jobs(store, chosen, _who(who))
    for outcome in outcomes:
        click.echo(f"{outcome.job_id}  {outcome.note}")
    changed = sum(1 for o in outcomes if o.changed)
    click.echo(f"{changed} job(s) retried, {len(outcomes) - changed} left alone")


@click.command()
@click.argument("job_id")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option("--who", default=None, help=WHO_HELP)
@click.pass_context
def resubmit(ctx: click.Context, job_id: str, database: str | None, who: str | None) -> None:
    """Queue a new generation of JOB_ID under a new job id linked to it (once per job)."""
    from .store.operator_sql import resubmit as resubmit_job

    settings = command_settings(ctx, database_url=database)
    with migrated_store(settings.database_url) as store:
        outcome = resubmit_job(store, job_id, _who(who))
    if outcome.new_job_id is None:
        raise click.ClickException(f"{job_id}: {outcome.note}")
    click.echo(f"{job_id}  {outcome.note}")


@click.group(name="dead-letters")
def dead_letters() -> None:
    """The messages dead-lettered to error.<queue>: list them, send them back."""


@dead_letters.command(name="list")
@click.option("--queue", default=None, help="Our input queue (its error.<queue> is listed).")
@click.option("--limit", default=1000, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def list_command(ctx: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """List dead letters (they stay where they are)."""
    from .dead_letters import list_dead_letters

    settings = command_settings(ctx, queue=queue)
    try:
        letters = list_dead_letters(settings.rabbitmq_uri, settings.queue, limit)
    except SwitchboardError as exc:
        raise click.ClickException(str(exc)) from None
    for letter in letters:
        if as_json:
            click.echo(json.dumps(letter.as_json(), ensure_ascii=False, default=str))
        else:
            click.echo(f"{letter.id}  {letter.routing_key}  {letter.reason}")
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s) in error.{settings.queue}")


@dead_letters.command(name="redrive")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@click.option("--queue", default=None, help="Our input queue.")
@click.option("--database", default=None, help="Where the action is logged.")
@click.option("--who", default=None, help=WHO_HELP)
@click.pass_context
def redrive_command(
    ctx: click.Context,
    message_ids: tuple[str, ...],
    everything: bool,
    queue: str | None,
    database: str | None,
    who: str | None,
) -> None:
    """Move dead letters (MESSAGE_ID... or --all) back to the input queue, headers kept."""
    from .dead_letters import DeadLetter, redrive
    from .store.operator_sql import log_redrive

    if bool(message_ids) == everything:
        raise click.UsageError("give MESSAGE_IDs or --all, not both and not neither")
    settings = command_settings(ctx, queue=queue, database_url=database)
    actor = _who(who)
    with migrated_store(settings.database_url) as store:

        def logged(letter: DeadLetter) -> None:
            log_redrive(store, actor, settings.queue, letter.id, letter.reason)

        try:
            moved = redrive(
                settings.rabbitmq_uri,
                settings.queue,
                ids=None if everything else set(message_ids),
                who=actor,
                on_moved=logged,
            )
        except SwitchboardError as exc:
            raise click.ClickException(str(exc)) from None
    for letter in moved:
        click.echo(f"{letter.id}  back to {settings.queue}")
    missing = set(message_ids) - {letter.id for letter in moved}
    for ident in sorted(missing):
        click.echo(f"{ident}  not in error.{settings.queue}", err=True)
    click.echo(f"{len(moved)} dead letter(s) redriven")


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--queue", default=None, help="The input queue whose traffic to copy.")
@click.option("--count", required=True, type=click.IntRange(min=1), help="How many messages.")
@click.option("--exchange", default=None, help="The source exchange (default: Clowder's).")
@click.option(
    "--binding-key",
    "binding_keys",
    multiple=True,
    help="Routing keys to tap (default: SWITCHBOARD_BINDING_KEYS).",
)
@click.option("--timeout", "timeout_s", default=None, type=float, help="Stop after this idle.")
@click.pass_context
def record(
    ctx: click.Context,
    out: str,
    queue: str | None,
    count: int,
    exchange: str | None,
    binding_keys: tuple[str, ...],
    timeout_s: float | None,
) -> None:
    """Copy COUNT live messages into OUT (JSON Lines, for `replay`) from a tap queue bound to
    the same source as the input queue; the input queue itself is not touched."""
    from .amqp import LEGACY_EXCHANGE
    from .dead_letters import record_tap
    from .traffic import dumps_record

    settings = command_settings(ctx, queue=queue)
    keys = binding_keys or settings.legacy_binding_keys
    handle = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
    try:

        def write(record: dict[str, Any]) -> None:
            handle.write(dumps_record(record) + "\n")
            handle.flush()

        try:
            taken = record_tap(
                settings.rabbitmq_uri,
                exchange=exchange or LEGACY_EXCHANGE,
                binding_keys=keys,
                count=count,
                on_record=write,
                timeout_s=timeout_s,
            )
        except SwitchboardError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        if handle is not sys.stdout:
            handle.close()
    click.echo(f"{taken} message(s) recorded to {out}", err=True)


COMMANDS = (retry, resubmit, dead_letters, record)
