"""`explain --event`: an archived event explained under the rules active then, and today's.

The archive keeps only matched rules with the reasons that held; every other rule's reasons are
recomputed here from the stored rule version, on the dataset as it was (its first
`files_seen` files). Python rules run against empty, throwaway collection progress.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

import rule_utils

from ..engine import Engine
from ..errors import SwitchboardError
from ..model import DatasetView, Decision, Evaluation, Event
from ..rules import load_rules
from ..rules.legacy import LegacyContext
from ..rules.model import RuleSet
from ..settings import Settings
from ..store.collection_tables import CollectionFiring
from ..store.progress import Progress
from ..testing import InMemoryProgress
from .queries import archived_event, view_then
from .records import restored_event
from .version_store import load_version
from .versions import RuleVersion, materialized
from .why_not import closest_rule, why_not_fired

firings = CollectionFiring.__table__


@contextlib.contextmanager
def version_rules(version: RuleVersion, settings: Settings) -> Iterator[RuleSet]:
    """A stored version's rules, loaded from its files written to a temporary folder (kept
    while the block runs: isolated Python rules import their module from it)."""
    with materialized(version) as paths:
        yield load_rules(
            paths,
            legacy=LegacyContext.from_settings(settings),
            python_allowlist=settings.python_allowlist,
        )


@dataclass(frozen=True)
class Explained:
    """One event explained under one rule set."""

    label: str
    ruleset: RuleSet
    evaluation: Evaluation


def _explain(ruleset: RuleSet, event: Event, view: DatasetView, settings: Settings) -> Evaluation:
    engine = Engine(ruleset, rule_timeout_s=settings.rule_timeout_s)
    try:
        with rule_utils.bound(InMemoryProgress()):
            evaluation = engine.explain(event, view)
            tuple(evaluation.submissions)  # built now, while the engine is open
            return evaluation
    finally:
        engine.close()


def explain_event(
    connection: Connection,
    message_id: str,
    settings: Settings,
    current: RuleSet | None = None,
) -> list[str]:
    """The explanation's lines; SwitchboardError if the event is not in the archive."""
    row = archived_event(connection, message_id)
    if row is None:
        raise SwitchboardError(
            f"no archived event {message_id!r}: not consumed yet, consumed with the archive "
            "off, or pruned after the retention (SWITCHBOARD_RETENTION_DAYS / _ROWS)"
        )
    lines = _header(row)
    if row.status != "processed":
        lines.append(f"dead-lettered: {row.outcome.get('dead_letter')}")
        lines.append("  no rule saw it; the message is in error.<queue> with that reason")
        return lines
    event = restored_event(row._mapping)
    view = view_then(connection, row)
    lines += _archived_outcome(row.outcome)
    if not row.rule_version:
        lines.append("the rule version is unknown (archived before versions were kept)")
        return lines
    with version_rules(load_version(connection, row.rule_version), settings) as ruleset:
        then = Explained(row.rule_version, ruleset, _explain(ruleset, event, view, settings))
        lines.append(f"under the rules of then (version {row.rule_version}):")
        lines += _decisions(then.evaluation)
        lines += _collections(connection, then, row.outcome)
        if not then.evaluation.matched:
            lines += closest_rule(then.evaluation.decisions, event)
    if current is not None:
        now = Explained("current", current, _explain(current, event, view, settings))
        lines.append("under today's rules:")
        lines += _decisions(now.evaluation)
        lines += _collections(connection, now, row.outcome)
        if not now.evaluation.matched:
            lines += closest_rule(now.evaluation.decisions, event)
        lines += changes(then.evaluation, now.evaluation)
    return lines


def _header(row: Any) -> list[str]:
    fields = row.event or {}
    file = fields.get("file") or {}
    name = fields.get("dataset_name")
    return [
        f"event {row.kind or '-'}  message {row.message_id}",
        f"  arrived {row.arrived_at.isoformat(timespec='seconds')}  rules version "
        f"{row.rule_version or '-'}  {row.status}",
        f"  dataset {row.dataset_id or '-'}  name {name!r}"
        if name
        else f"  dataset {row.dataset_id or '-'}",
        f"  file {file.get('name', '-')} ({row.file_id})" if row.file_id else "  file -",
        f"  dataset files then {row.files_seen if row.files_seen is not None else '-'}",
    ]


def _archived_outcome(found: dict[str, Any]) -> list[str]:
    lines = ["what happened (archived):"]
    for m in found.get("matched", []):
        lines.append(f"  MATCH {m['rule']}")
        lines += [f"          {reason}" for reason in m.get("reasons", [])]
    for s in found.get("submissions", []):
        lines.append(
            f"  -> {s['extractor']} {s['resource_type']} {s['resource_id']} via {s['via']} "
            f"job {s['job_id']} (rule {s['rule']})"
        )
    if found.get("repeated_job_ids"):
        lines.append(f"  already queued before: {', '.join(found['repeated_job_ids'])}")
    for c in found.get("collections", []):
        lines.append(f"  member {c['member']!r} of collection {c['rule']} {c['key']!r}")
    for e in found.get("errors", []):
        lines.append(f"  ERROR {e['rule']}: {e['error']}")
    for b in found.get("backfills", []):
        what = f"job {b['job_id']}" if b.get("job_id") else f"member of {b['key']!r}"
        lines.append(f"  backfilled {b['at']} by {b['rule']} (version {b['version']}): {what}")
    if len(lines) == 1:
        lines.append("  no rule matched; nothing was submitted")
    return lines


def _decisions(evaluation: Evaluation) -> list[str]:
    by_rule: dict[str, list[Any]] = {}
    for s in evaluation.submissions:
        by_rule.setdefault(s.rule, []).append(s)
    lines = []
    for d in evaluation.decisions:
        mark = "MATCH" if d.matched else ("ERROR" if d.error else "no")
        lines.append(f"  {mark:<5} {d.rule}")
        lines += [f"          {reason}" for reason in d.reasons]
        if d.error:
            lines.append(f"          error: {d.error}")
        for s in by_rule.get(d.rule, []):
            lines.append(
                f"          -> {s.extractor} {s.resource_type} {s.resource_id} via {s.via} "
                f"job {s.job_id}"
            )
    matched = len(evaluation.matched)
    lines.append(f"  {matched} of {len(evaluation.decisions)} rule(s) match")
    return lines


def collection_keys(decisions: Sequence[Decision], found: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, key) of every collection the event was (or would be) a member of."""
    keys = [(c["rule"], c["key"]) for c in found.get("collections", [])]
    for d in decisions:
        for reason in d.reasons:
            if d.matched and reason.startswith("collects member ") and " into " in reason:
                with contextlib.suppress(ValueError, SyntaxError):
                    keys.append((d.rule, ast.literal_eval(reason.rsplit(" into ", 1)[1])))
    return list(dict.fromkeys(keys))


def _collections(connection: Connection, explained: Explained, found: dict[str, Any]) -> list[str]:
    lines = []
    rules = {r.name: r for r in explained.ruleset}
    for rule, key in collection_keys(explained.evaluation.decisions, found):
        r = rules.get(rule)
        state = Progress(connection).collection(rule, key)
        fired = connection.execute(
            select(firings)
            .where(firings.c.rule == rule, firings.c.key == key)
            .order_by(firings.c.generation)
        ).all()
        lines.append(f"  collection {rule} {key!r}:")
        for f in fired:
            lines.append(
                f"    generation {f.generation} fired {f.fired_at.isoformat(timespec='seconds')} "
                f"with {f.member_count} members (manifest {f.manifest_id}, job {f.job_id})"
            )
        if r is None or r.collect is None:
            lines.append("    (not a collection in these rules)")
        elif state is None:
            lines.append("    no member yet")
        else:
            lines += [f"    {line}" for line in why_not_fired(r.collect, state)]
    return lines


def changes(then: Evaluation, now: Evaluation) -> list[str]:
    """What today's rules decide differently from those active then."""
    before = {d.rule: d for d in then.decisions}
    after = {d.rule: d for d in now.decisions}
    lines = ["what changed:"]
    flipped = False
    for name in dict.fromkeys([*before, *after]):
        b, a = before.get(name), after.get(name)
        if b is None and a is not None:
            lines.append(f"  {name}: new rule, {'matches' if a.matched else 'does not match'}")
            flipped |= a.matched
        elif a is None and b is not None:
            lines.append(f"  {name}: removed ({'matched' if b.matched else 'did not match'} then)")
            flipped |= b.matched
        elif a is not None and b is not None and (a.matched, a.error) != (b.matched, b.error):
            lines.append(f"  {name}: {_verdict(b)} then, {_verdict(a)} now")
            flipped = True
    jobs_then = {s.job_id: s for s in then.submissions}
    jobs_now = {s.job_id: s for s in now.submissions}
    for job_id in jobs_now.keys() - jobs_then.keys():
        s = jobs_now[job_id]
        lines.append(f"  now also submits {s.extractor} {s.resource_id} job {job_id} ({s.rule})")
    for job_id in jobs_then.keys() - jobs_now.keys():
        s = jobs_then[job_id]
        lines.append(f"  no longer submits {s.extractor} {s.resource_id} job {job_id} ({s.rule})")
    if not flipped and jobs_now.keys() == jobs_then.keys():
        lines.append("  same outcome: today's rules match and submit as those of then did")
    return lines


def _verdict(d: Decision) -> str:
    return "error" if d.error else ("matched" if d.matched else "did not match")
