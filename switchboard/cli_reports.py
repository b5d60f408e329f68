"""What `switchboard explain`, `replay`, `demo` and `backfill` print."""

from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .rules.model import RuleSet
from .settings import Settings
from .submissions import submission_for

T = TypeVar("T")


def control_lines(rule: Any, decision: Any, event: Any) -> list[str]:
    """What `explain` says about a matched rule's controls: the re-run policy and the
    generation (or key) of the job this event would make, and any debounce."""
    generation = decision.generation
    if rule.rerun.mode == "key":
        shown = f"key {generation.removeprefix('key:')!r}"
    else:
        shown = f"generation {generation!r}"
    lines = [f"rerun {rule.rerun.describe()}: the next job is {shown}"]
    if rule.debounce is not None:
        seconds = rule.debounce.total_seconds()
        lines.append(
            f"debounce {seconds:g} s: held, submitted once with the latest event when no "
            f"further matching event for this {decision.requests[0].resource} has come for "
            f"{seconds:g} s"
        )
    return lines


def print_explanation(
    engine: Any, event: Any, extra_files: Sequence[str], dataset_name: str | None
) -> None:
    from .model import DatasetView, FileInfo

    files = [event.file] if event.file else []
    files += [FileInfo(id=f"extra-{i}", name=n) for i, n in enumerate(extra_files)]
    name = dataset_name or event.dataset_name
    view = DatasetView(id=event.dataset_id or "", name=name, files=tuple(files))
    evaluation = engine.explain(event, view)
    file_desc = f"{event.file.name} ({event.file.id})" if event.file else "-"
    shown_name = repr(name) if name else "unknown (the daemon asks Clowder; see --dataset-name)"
    click.echo(f"event {event.kind.value}  message {event.message_id}")
    click.echo(f"  dataset {event.dataset_id or '-'}  name {shown_name}")
    click.echo(f"  file {file_desc}")
    click.echo(f"  dataset files {', '.join(view.names()) or '-'}")
    submissions: dict[str, list[Any]] = {}
    for s in evaluation.submissions:
        submissions.setdefault(s.rule, []).append(s)
    for decision in evaluation.decisions:
        mark = "MATCH" if decision.matched else ("ERROR" if decision.error else "no")
        click.echo(f"{mark:<5} {decision.rule}")
        for reason in decision.reasons:
            click.echo(f"        {reason}")
        if decision.error:
            click.echo(f"        error: {decision.error}")
        rule = engine.rules.get(decision.rule)
        if decision.matched and rule is not None and rule.collect is None:
            for line in control_lines(rule, decision, event):
                click.echo(f"        {line}")
            if rule.debounce is not None:
                submissions[decision.rule] = [
                    submission_for(rule.name, r, event, generation=decision.generation)
                    for r in decision.requests
                ]
        for s in submissions.get(decision.rule, []):
            click.echo(
                f"        -> {s.extractor} {s.resource_type} {s.resource_id} via {s.via} "
                f"job {s.job_id} parameters {dict(s.parameters)}"
            )
    matched = sum(1 for d in evaluation.decisions if d.matched)
    total = sum(len(v) for v in submissions.values())
    click.echo(f"{matched} of {len(evaluation.decisions)} rule(s) match; {total} submission(s)")
    if evaluation.decisions and any(r.kind != "yaml" for r in engine.rules):
        click.echo("note: Python rules saw empty collection progress; nothing was kept")


def with_progress(total: int, label: str, run: Callable[..., T]) -> T:
    """`run()`, with a progress bar over `total` items on a terminal (`run` takes the bar's
    `on_progress`); plain output otherwise, so piped output stays clean."""
    if not sys.stdout.isatty():
        return run()
    with click.progressbar(length=total, label=label) as bar:
        return run(on_progress=bar.update)


def echo_per_target(per_target: Mapping[str, int]) -> None:
    """The TARGET / SUBMISSIONS table that `replay`, `demo` and `backfill` end with."""
    width = max((len(t) for t in per_target), default=6)
    click.echo(f"{'TARGET'.ljust(width)}  SUBMISSIONS")
    for target, count in sorted(per_target.items()):
        click.echo(f"{target.ljust(width)}  {count}")


def replay_and_report(
    settings: Settings, ruleset: RuleSet, records: list[dict[str, Any]], database: str | None
) -> None:
    """`replay` and `demo`: run the records through the daemon's processor, print the counts."""
    from .engine import Engine
    from .outgoing import extractor_message
    from .replay import replay
    from .store.migrate import upgrade
    from .store.sql import SqlStore

    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    with tempfile.TemporaryDirectory() as tmp, contextlib.closing(engine):
        url = database or f"sqlite:///{Path(tmp) / 'replay.db'}"
        upgrade(url)
        store = SqlStore(url)
        archive = None
        if database and settings.archive:  # a kept database keeps its provenance
            from .provenance.archive import EventArchive
            from .provenance.versions import version_of

            archive = EventArchive(store)
            archive.activate(version_of(settings.rules, ruleset.names()), "replay")
        try:
            summary = with_progress(
                len(records),
                "replaying",
                functools.partial(
                    replay,
                    records,
                    engine,
                    store,
                    extractor_message,
                    batch_size=settings.batch_size,
                    archive=archive,
                ),
            )
        finally:
            store.close()
    click.echo(
        f"{summary.events} events, {sum(summary.per_target.values())} submissions, "
        f"{summary.duplicates} duplicates, {len(summary.malformed)} malformed, "
        f"{len(summary.rule_errors)} rule errors"
    )
    echo_per_target(summary.per_target)
    for line in summary.malformed + summary.poison + summary.rule_errors:
        click.echo(f"  ! {line}", err=True)
