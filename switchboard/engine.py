"""The matching engine: event + dataset view + rules -> decisions with reasons -> submissions.

Pure: no broker, database or Ray imports. Declarative rules are looked up through the
`RuleIndex` and verified; Python rules run after them through a `RuleRunner` (all of one
batch's in one hand-off to a worker thread, each with its own timeout), isolated ones through an
`IsolatedRunner` (a worker process, killed at the time limit). A rule that raises (anything,
SystemExit included), overruns, dies or returns nonsense becomes that rule's error in its
`Decision`; the others still decide. An Engine is used by one thread at a time; close it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, overload

from .model import DatasetView, Decision, Evaluation, Event, Submission, SubmitRequest
from .rule_outcomes import as_requests, describe_exception
from .rules.collect import Collected, render_collected
from .rules.fields import EVENT_FIELDS, Subject, event_field
from .rules.index import RuleIndex
from .rules.isolated import IsolatedRunner
from .rules.model import Rule, RuleSet
from .rules.rerun import generation
from .rules.runner import Outcome, RuleRunner
from .rules.templates import MissingValue
from .submissions import submission_for

SLOW_CALL_S = 1.0  # an isolated call this long (or killed) is followed by `between` (keepalive)
log = logging.getLogger(__name__)
_RETURNED_NOTHING = ("python rule returned no submission(s)",)


@dataclass(frozen=True, slots=True)
class CollectingEvaluation(Evaluation):
    """An Evaluation plus what matching `collect:` rules ask of their collections.

    A collect rule's decision is matched (with its firing's requests, for `explain`) but yields
    no submission here: the processor adds the member and fires when `until` holds. Its
    submissions are those of the other matched decisions.
    """

    collects: tuple[Collected, ...] = field(default_factory=tuple)
    # matched decisions of debounced rules, with each rule's debounce: the processor holds them
    debounced: tuple[tuple[Decision, timedelta], ...] = field(default_factory=tuple)


class Engine:
    """Evaluates one event against every rule; see the module docstring."""

    def __init__(
        self,
        rules: RuleSet | Iterable[Rule],
        *,
        rule_timeout_s: float = 2.0,
        between: Callable[[], None] | None = None,
    ) -> None:
        """`between` runs on this thread after each isolated call that took a while (a killed
        call takes the whole time limit; a batch may hold many): the daemon passes the broker
        source's keepalive so heartbeats flow. Its failures are logged, never raised here."""
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        self.rule_timeout_s = rule_timeout_s
        self.between = between
        self._declarative = [r for r in self.rules if r.declarative and r.enabled]
        self._index = RuleIndex(self._declarative)
        self._order = {r.name: i for i, r in enumerate(self.rules)}
        self._collecting = frozenset(r.name for r in self.rules if r.collect is not None)
        self._debounce_of = {r.name: r.debounce for r in self.rules if r.debounce is not None}
        self._debounced = frozenset(self._debounce_of)
        self._python = [r for r in self.rules if not r.declarative and r.enabled]
        self._python_index = RuleIndex(self._python)  # by their `when=` prefilters
        self._runner = RuleRunner(rule_timeout_s)
        self._isolated = IsolatedRunner(rule_timeout_s)  # starts a process only when called

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, event: Event, dataset: DatasetView) -> CollectingEvaluation:
        """Decisions of the candidate rules (rules the index rules out are omitted).

        `dataset` must already include this event's file.
        """
        return self.evaluate_many([(event, dataset)])[0]

    def evaluate_many(
        self, pairs: Sequence[tuple[Event, DatasetView]], *, unmatched: bool = True
    ) -> list[CollectingEvaluation]:
        """`evaluate` for each (event, dataset) in order, with the Python rules of them all run
        in one hand-off to the runner: a thread hand-off per event costs more than a rule.

        The calls run event by event, rule by rule, as consecutive `evaluate` calls would run
        them, each with its own timeout. `unmatched=False` leaves out the decisions of rules
        that neither matched nor failed: the daemon acts only on the others, and most events
        match nothing, so it need not build, sort and archive a verdict per candidate rule.
        """
        decided: list[tuple[list[Decision], list[Collected]]] = []
        calls: list[tuple[Rule, Event, DatasetView]] = []
        owners: list[int] = []
        for index, (event, dataset) in enumerate(pairs):
            subject = Subject(event, dataset)
            collects: list[Collected] = []
            decisions = [
                self._decide_declarative(
                    self._declarative[i], subject, thorough=False, into=collects
                )
                for i in self._index.candidates(subject)
            ]
            if not unmatched:
                decisions = [d for d in decisions if d.matched or d.error is not None]
            decided.append((decisions, collects))
            for position in self._python_index.candidates(subject):
                r = self._python[position]
                if r.when is not None and not r.when.check(subject, {}, None, False):
                    continue  # its when= prefilter fails: the function is not run
                calls.append((r, event, dataset))
                owners.append(index)
        outcomes = self._python_outcomes(calls)
        for index, call, ran in zip(owners, calls, outcomes, strict=True):
            if not unmatched and ran.value is None and ran.status == "ok":
                continue  # returned nothing (most calls): no verdict to build
            decision = self._python_decision(*call, ran)
            if unmatched or decision.matched or decision.error is not None:
                decided[index][0].append(decision)
        evaluations: list[CollectingEvaluation] = []
        for (event, _), (decisions, collects) in zip(pairs, decided, strict=True):
            if self._python and len(decisions) > 1:
                decisions.sort(key=lambda d: self._order[d.rule])
            frozen = tuple(decisions)
            held: tuple[tuple[Decision, timedelta], ...] = ()
            if self._debounce_of:
                held = tuple(
                    (d, self._debounce_of[d.rule])
                    for d in frozen
                    if d.matched and d.rule in self._debounce_of
                )
            evaluations.append(
                CollectingEvaluation(
                    event,
                    frozen,
                    _Submissions(self, event, frozen) if frozen else (),  # most events: none
                    tuple(collects) if collects else (),
                    held,
                )
            )
        return evaluations

    def explain(self, event: Event, dataset: DatasetView) -> Evaluation:
        """A decision with reasons for every loaded rule, without the index (for `explain`).

        Conditions are evaluated in full (not short-circuited) so every reason is shown. Python
        rules are run, as they would be by `evaluate`.
        """
        subject = Subject(event, dataset)
        prefiltered: dict[Rule, Decision] = {}
        for r in self._python:
            reasons: list[str] = []
            if r.when is not None and not r.when.check(subject, {}, reasons, True):
                prefiltered[r] = Decision(r.name, False, (*reasons, "when= prefilter failed"))
        python = [r for r in self._python if event.kind in r.kinds and r not in prefiltered]
        ran = self._run_python([(r, event, dataset) for r in python])
        decided = dict(zip(python, ran, strict=True))
        decided |= prefiltered
        decisions = []
        for r in self.rules:
            if not r.enabled:
                decisions.append(Decision(r.name, False, ("rule is disabled",)))
            elif event.kind not in r.kinds:
                on = ", ".join(r.on)
                reason = f"on [{on}]: event kind {event.kind.value!r} is not selected"
                decisions.append(Decision(r.name, False, (reason,)))
            elif r.declarative:
                decisions.append(self._decide_declarative(r, subject, thorough=True))
            else:
                decisions.append(decided[r])
        frozen = tuple(decisions)
        return Evaluation(event, frozen, _Submissions(self, event, frozen))

    def _decide_declarative(
        self, r: Rule, subject: Subject, *, thorough: bool, into: list[Collected] | None = None
    ) -> Decision:
        reasons: list[str] = []
        captures: dict[str, str] = {}
        held = True
        if r.when is None:
            reasons.append("no conditions")
        elif not r.when.check(subject, captures, reasons, thorough):
            held = False
            if not thorough:
                return Decision(r.name, False, tuple(reasons))
        for requirement in r.require:
            if not requirement.check(subject.dataset, reasons):
                held = False
                if not thorough:
                    break
        if not held:
            return Decision(r.name, False, tuple(reasons))

        def lookup(name: str) -> Any:
            if name in captures:
                return captures[name]
            getter = EVENT_FIELDS.get(name) or event_field(name)
            return getter(subject)

        try:
            requests = tuple(spec.render(lookup) for spec in r.submits)
            if r.collect is not None:
                collected = render_collected(r.name, r.collect, lookup, requests)
                reasons.append(f"collects member {collected.member!r} into {collected.key!r}")
            gen = generation(r.rerun, subject.event, subject.dataset, r.require, lookup)
        except (MissingValue, ValueError) as exc:
            return Decision(r.name, False, tuple(reasons), error=str(exc))
        decision = self._checked(r, subject.event, tuple(reasons), requests, gen)
        if r.collect is not None and decision.matched and into is not None:
            into.append(collected)
        return decision

    def _run_python(self, calls: list[tuple[Rule, Event, DatasetView]]) -> list[Decision]:
        """Each call's decision, in order (see `_python_outcomes`)."""
        ran = self._python_outcomes(calls)
        return [self._python_decision(*call, out) for call, out in zip(calls, ran, strict=True)]

    def _python_outcomes(self, calls: list[tuple[Rule, Event, DatasetView]]) -> list[Outcome]:
        """Each call's outcome, in order: the in-thread rules in one hand-off to the runner
        (each with its own timeout), the isolated ones one by one in their worker processes.
        Isolated rules share nothing with the others, so running them last decides the same."""
        outcomes: list[Outcome] = [Outcome("still_running")] * len(calls)  # all replaced below
        threaded = [i for i, (r, _, _) in enumerate(calls) if not r.isolated]
        if threaded:
            batch = []
            for i in threaded:
                r, event, dataset = calls[i]
                assert r.function is not None
                batch.append((r.name, r.function, (event, dataset)))
            for i, outcome in zip(threaded, self._runner.run_many(batch), strict=True):
                outcomes[i] = outcome
        for i, (r, event, dataset) in enumerate(calls):
            if r.isolated:
                started = time.monotonic()
                outcome = self._isolated.run(_module_path(r), r.name, event, dataset)
                outcomes[i] = outcome
                if (
                    outcome.status in ("killed", "died")
                    or time.monotonic() - started >= SLOW_CALL_S
                ):
                    self._between()
        return outcomes

    def _between(self) -> None:
        if self.between is None:
            return
        try:
            self.between()
        except Exception as exc:  # a lost broker shows again when the batch is acked
            log.warning("keepalive between rule calls failed: %s", exc)

    def _python_decision(
        self, r: Rule, event: Event, dataset: DatasetView, outcome: Outcome
    ) -> Decision:
        if outcome.status == "timed_out":
            return Decision(r.name, False, error=f"timed out after {float(self.rule_timeout_s)} s")
        if outcome.status == "still_running":
            error = "not run: its call on an earlier event timed out and is still running"
            return Decision(r.name, False, error=error)
        if outcome.status == "killed":
            error = f"killed after its time limit of {float(self.rule_timeout_s)} s"
            return Decision(r.name, False, error=error)
        if outcome.status == "died":
            return Decision(r.name, False, error=str(outcome.value))
        if outcome.status == "raised":
            return Decision(r.name, False, error=describe_exception(outcome.error, r, event))
        requests = as_requests(outcome.value)
        if requests is None:
            error = (
                f"returned {type(outcome.value).__name__}; "
                "expected None, a submit(...) or a list of them"
            )
            return Decision(r.name, False, error=error)
        if not requests:  # most calls: nothing to submit, so no generation to work out
            return Decision(r.name, False, _RETURNED_NOTHING)
        reasons = (f"python rule returned {len(requests)} submission(s)",)
        subject = Subject(event, dataset)
        try:
            gen = generation(r.rerun, event, dataset, (), lambda name: event_field(name)(subject))
        except MissingValue as exc:
            return Decision(r.name, False, reasons, error=str(exc))
        return self._checked(r, event, reasons, requests, gen)

    @staticmethod
    def _checked(
        r: Rule,
        event: Event,
        reasons: tuple[str, ...],
        requests: tuple[SubmitRequest, ...],
        gen: str = "0",
    ) -> Decision:
        """The decision, or an error if a request names a resource this event does not have."""
        for request in requests:
            if request.resource == "file" and (event.file is None or not event.file.id):
                return Decision(
                    r.name, False, reasons, error="resource: file, but the event has no file"
                )
            if request.resource == "dataset" and not event.dataset_id:
                return Decision(
                    r.name, False, reasons, error="resource: dataset, but the event has no dataset"
                )
            if not request.extractor:
                return Decision(r.name, False, reasons, error="the extractor name is empty")
        return Decision(r.name, bool(requests), reasons, requests, generation=gen)

    def submissions_of(self, event: Event, decisions: Iterable[Decision]) -> tuple[Submission, ...]:
        """One Submission per request of every matched decision (each job id once); a collect
        rule's requests are its collection's, fired through the processor, and a debounced
        rule's are held by the processor (see `debounce`), not submitted per event."""
        result: dict[str, Submission] | None = None
        for decision in decisions:
            rule = decision.rule
            if not decision.matched or rule in self._collecting or rule in self._debounced:
                continue
            for request in decision.requests:
                submission = submission_for(rule, request, event, generation=decision.generation)
                if result is None:
                    result = {}
                result.setdefault(submission.job_id, submission)
        return () if result is None else tuple(result.values())

    @property
    def stuck_rules(self) -> list[str]:
        """Python rules whose timed-out call is still running (they are skipped meanwhile)."""
        return self._runner.abandoned

    def close(self) -> None:
        """Stop the idle rule worker threads and every isolated rule's worker process."""
        self._runner.close()
        self._isolated.close()


class _Submissions(Sequence[Submission]):
    """An evaluation's submissions, built when first read: matching alone (`explain`, the
    match benchmark) need not pay for job ids it never uses."""

    __slots__ = ("_decisions", "_engine", "_event", "_made")

    def __init__(self, engine: Engine, event: Event, decisions: tuple[Decision, ...]) -> None:
        self._engine, self._event, self._decisions = engine, event, decisions
        self._made: tuple[Submission, ...] | None = None

    def _all(self) -> tuple[Submission, ...]:
        if self._made is None:
            self._made = self._engine.submissions_of(self._event, self._decisions)
        return self._made

    @overload
    def __getitem__(self, index: int) -> Submission: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Submission]: ...
    def __getitem__(self, index: int | slice) -> Submission | Sequence[Submission]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Submission]:  # Sequence's would index until IndexError
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


def _module_path(r: Rule) -> str:
    """The file an isolated rule's worker imports: where the loader found it, else its code's."""
    if r.module_path:
        return r.module_path
    code = getattr(r.function, "__code__", None)
    return str(Path(code.co_filename).resolve()) if code is not None else ""
