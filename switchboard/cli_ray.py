"""`switchboard ray submit MANIFEST_ID` and `demo --ray`: batch jobs on Ray by hand."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .settings import Settings

WAIT_S = 600.0
SEND_S = 180.0  # the three requests of one send, 60 s each (a busy dashboard is slow to answer)
DEMO_MEMBERS = 8


@click.group(name="ray")
def ray_group() -> None:
    """Ray batch jobs (RAY_ADDRESS; `local` starts a private head)."""


@ray_group.command(name="submit")
@click.argument("manifest_id")
@click.option("--database", default=None, help="SQLAlchemy database URL.")
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Wait for the job and print its summary (always with RAY_ADDRESS=local).",
)
@click.pass_context
def submit_command(
    ctx: click.Context, manifest_id: str, database: str | None, wait: bool | None
) -> None:
    """Submit a fired collection's Ray job now, under its own job id (so a job Ray already
    has is not started twice), and mark its outbox row sent."""
    from .cli_store import migrated_store
    from .ray_embedded import LOCAL

    base: Settings = ctx.find_root().obj
    settings = replace(base, database_url=database) if database else base
    if not settings.ray_address:
        raise click.ClickException("RAY_ADDRESS is not set (RAY_ADDRESS=local starts a Ray here)")
    with migrated_store(settings.database_url) as store:
        rows = store.manifest_submissions(manifest_id, "ray")
        if not rows:
            raise click.ClickException(f"no via: ray submission for manifest {manifest_id}")
        local = settings.ray_address == LOCAL
        submit_rows(settings, store, rows, wait=local if wait is None else wait or local)


def submit_rows(settings: Settings, store: Any, rows: list[Any], *, wait: bool) -> list[Any]:
    """Send each row through the Ray sink (a private head for RAY_ADDRESS=local); the final
    job infos when `wait`, else the rows' job ids."""
    from .errors import DeliveryFailed, SubmissionRejected
    from .ray_embedded import with_local_ray
    from .sinks.ray_jobs import from_settings

    done: list[Any] = []
    with with_local_ray(settings) as running:
        sink = from_settings(running, SEND_S, store)  # by hand: no relay claim to keep within
        for row in rows:
            job_id = row.submission.job_id
            try:
                sink.send(row)
            except (DeliveryFailed, SubmissionRejected) as exc:
                raise click.ClickException(str(exc)) from None
            if row.status == "pending":
                store.mark_sent(job_id)
            click.echo(f"submitted {job_id} ({row.submission.rule} -> {row.submission.extractor})")
            done.append(_wait(running, job_id) if wait else job_id)
    return done


def _wait(settings: Settings, job_id: str) -> Any:
    """Wait for the job to end; print its status and the runner's summary line."""
    from ray.job_submission import JobSubmissionClient

    token = settings.ray_auth_token
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = JobSubmissionClient(settings.ray_address, headers=headers)
    deadline = time.monotonic() + WAIT_S
    while not (info := client.get_job_info(job_id)).status.is_terminal():
        if time.monotonic() > deadline:
            raise click.ClickException(f"job {job_id} still {info.status} after {WAIT_S:.0f} s")
        time.sleep(0.5)
    logs = client.get_job_logs(job_id).strip().splitlines()
    summary = next((line for line in reversed(logs) if line.startswith("{")), "")
    click.echo(f"job {job_id} {info.status}: {info.message or ''}".rstrip())
    if summary:
        click.echo(f"summary {summary}")
    return info


def run_demo(settings: Settings) -> None:
    """`demo --ray`: a collection of DEMO_MEMBERS files fires one batch job on a private Ray;
    print each member's result."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise click.ClickException("demo --ray needs Ray: pip install 'switchboard[ray]'")
    from .demo_ray import demo_events, demo_rule, write_demo_files
    from .engine import Engine
    from .outgoing import extractor_message
    from .processor import Processor
    from .rules import load_rules
    from .store.migrate import upgrade
    from .store.sql import SqlStore
    from .testing import ListDelivery

    with tempfile.TemporaryDirectory(prefix="switchboard-demo-") as tmp:
        folder = Path(tmp)
        paths = write_demo_files(folder / "data", DEMO_MEMBERS)
        rule = folder / "ray_demo.yaml"
        rule.write_text(demo_rule(folder / "data", DEMO_MEMBERS), encoding="utf-8")
        url = f"sqlite:///{folder / 'demo.db'}"
        upgrade(url)
        store = SqlStore(url)
        engine = Engine(load_rules([rule]))
        try:
            events = [ListDelivery.from_record(n, e) for n, e in enumerate(demo_events(paths))]
            fired = Processor(engine, store, extractor_message).process(events)
            click.echo(f"demo --ray: {len(paths)} files fired {len(fired.submissions)} batch job")
            demo = Settings(
                ray_address="local",
                ray_num_cpus=settings.ray_num_cpus,
                ray_output_dir=str(folder / "out"),
                rabbitmq_uri="",  # the demo needs no broker: no progress updates
            )
            submit_rows(demo, store, store.due_outbox(10), wait=True)
        finally:
            engine.close()
            store.close()
        for job in sorted((folder / "out").iterdir()):
            for line in (job / "results.jsonl").read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                shown = record["result"] if record["ok"] else record["error"]
                click.echo(f"  {record['name']:<24} {json.dumps(shown, sort_keys=True)}")
    sys.stdout.flush()
