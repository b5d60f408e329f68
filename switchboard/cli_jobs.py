"""`switchboard jobs` and `switchboard job`: following submissions to their end (issue 9)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from .cli_store import command_settings, ensure_migrated
from .jobs import statuses as st
from .jobs.views import JobView, OrphanView

if TYPE_CHECKING:
    from .jobs.store import JobStore

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: an ISO 8601 time (UTC if no offset) or an age such as `30m`, `2h`, `1d`."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return now - timedelta(seconds=float(relative.group(1)) * _UNIT_S[relative.group(2)])
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an ISO 8601 time nor an age like 30m, 2h, 1d"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@contextlib.contextmanager
def _job_store(url: str) -> Iterator[JobStore]:
    """The jobs at `url`; a clear refusal if the database is not migrated to head."""
    from .jobs.store import JobStore
    from .store.engine import make_engine

    ensure_migrated(url)
    engine = make_engine(url)
    try:
        yield JobStore(engine)
    finally:
        engine.dispose()


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%S%z")


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def job_table(views: list[JobView], now: datetime) -> list[str]:
    """The table of background 002: target, job id, started, latest update, status, elapsed.

    A pending job a throttle holds back (see `throttle`) shows as `pending (throttled)`."""
    from .throttle import THROTTLED

    header = ("TARGET", "JOB ID", "STARTED", "LATEST UPDATE", "STATUS", "ELAPSED")
    rows = [
        (
            v.target,
            v.job_id,
            _when(v.started_at),
            _when(v.updated_at),
            f"{v.status} (throttled)" if v.latest_message == THROTTLED else v.status,
            _elapsed(v.elapsed_s(now)),
        )
        for v in views
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def _orphan_line(orphan: OrphanView) -> str:
    named, correlation = orphan.named_job_id or "-", orphan.correlation_id or "-"
    return (
        f"{_when(orphan.received_at)}  {orphan.status:<11} correlation {correlation}"
        f"  job_id {named}: {orphan.message or ''}"
    )


@click.command(name="jobs")
@click.option("--rule", default=None, help="Only this rule's jobs.")
@click.option("--target", default=None, help="Only jobs for this target (extractor).")
@click.option("--dataset", "dataset_id", default=None, help="Only jobs on this dataset id.")
@click.option("--status", type=click.Choice(st.STATUSES), default=None, help="Only this status.")
@click.option("--since", default=None, help="Created since: ISO 8601 time or age (30m, 2h, 1d).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--orphans", is_flag=True, help="List updates that named no job we know instead.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def jobs_command(
    ctx: click.Context,
    rule: str | None,
    target: str | None,
    dataset_id: str | None,
    status: str | None,
    since: str | None,
    limit: int,
    orphans: bool,
    as_json: bool,
    database: str | None,
) -> None:
    """List jobs newest first: target, job id, started, latest update, status, elapsed."""
    from .jobs.queries import JobFilter

    now = datetime.now(UTC)
    which = JobFilter(
        rule=rule,
        target=target,
        dataset_id=dataset_id,
        status=status,
        since=None if since is None else parse_since(since, now),
        limit=limit,
    )
    with _job_store(command_settings(ctx, database_url=database).database_url) as store:
        if orphans:
            found = store.orphans(limit)
            if as_json:
                click.echo(json.dumps([o.as_json() for o in found], indent=2))
            else:
                click.echo(f"orphan updates (newest {len(found)}):")
                for orphan in found:
                    click.echo("  " + _orphan_line(orphan))
            return
        views = store.jobs(which)
    if as_json:
        click.echo(json.dumps([v.as_json(now) for v in views], indent=2))
        return
    for line in job_table(views, now):
        click.echo(line)


@click.command(name="job")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job and its timeline as JSON.")
@click.option("--logs", is_flag=True, help="Print Ray's logs of a Ray job.")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.pass_context
def job_command(
    ctx: click.Context, job_id: str, as_json: bool, logs: bool, database: str | None
) -> None:
    """Show one job and its timeline of status updates."""
    settings = command_settings(ctx, database_url=database)
    now = datetime.now(UTC)
    with _job_store(settings.database_url) as store:
        view = store.job(job_id)
        if view is None:
            raise click.ClickException(f"no job {job_id}")
        entries = store.timeline(job_id)
    if logs:
        click.echo(ray_logs(view, settings.ray_address), nl=False)
        return
    if as_json:
        document: dict[str, Any] = view.as_json(now)
        document["timeline"] = [e.as_json() for e in entries]
        click.echo(json.dumps(document, indent=2))
        return
    for key, value in view.as_json(now).items():
        click.echo(f"{key + ':':<18} {'-' if value is None else value}")
    if view.reply_to:
        click.echo(f"{'reply_to:':<18} {view.reply_to}")
    click.echo("timeline:")
    for e in entries:
        click.echo(f"  {_when(e.at)}  {e.status:<11} {e.source:<9} {e.message or ''}".rstrip())


def ray_logs(view: JobView, ray_address: str) -> str:
    """Ray's logs of a Ray job (JobSubmissionClient.get_job_logs); ClickException otherwise."""
    if view.via != "ray" or not view.ray_submission_id:
        raise click.ClickException(f"job {view.job_id} is not a Ray job (via {view.via}): no logs")
    if not ray_address:
        raise click.ClickException("RAY_ADDRESS is not set: cannot ask Ray for the logs")
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise click.ClickException(
            "Ray is not installed here (pip install 'switchboard[ray]')"
        ) from None
    try:
        text: str = JobSubmissionClient(ray_address).get_job_logs(view.ray_submission_id)
    except Exception as exc:  # Ray raises RuntimeError, ConnectionError, ...: all are answers
        raise click.ClickException(
            f"Ray at {ray_address} gave no logs for {view.job_id}: {exc}"
        ) from None
    return text


def job_count_lines(counts: dict[tuple[str, str], int]) -> list[str]:
    """`switchboard status`: jobs by status per target, one line each."""
    if not counts:
        return ["jobs: none"]
    lines = ["jobs:"]
    for target in sorted({t for t, _ in counts}):
        parts = [f"{s} {counts[(target, s)]}" for s in st.STATUSES if (target, s) in counts]
        lines.append(f"  {target}: " + ", ".join(parts))
    return lines
