"""The matching engine: event + dataset view + rules -> decisions with reasons -> submissions.

Pure: no broker, database or Ray imports. Declarative rules are looked up through the
`RuleIndex` and verified; Python rules run after them through a `RuleRunner` (all of one
batch's in one hand-off to a worker thread, each with its own timeout). A rule that raises,
overruns or returns nonsense becomes that rule's error in its `Decision`; the others still decide.
An Engine is used by one thread at a time.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .collections.spec import Collected, render_collected
from .jobids import job_id
from .model import DatasetView, Decision, Evaluation, Event, Submission, SubmitRequest
from .rules.fields import EVENT_FIELDS, Subject, event_field, is_secret, walk
from .rules.index import RuleIndex
from .rules.model import Rule, RuleSet
from .rules.runner import Outcome, RuleRunner
from .rules.templates import MissingValue

MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class CollectingEvaluation(Evaluation):
    """An Evaluation plus what matching `collect:` rules ask of their collections.

    A collect rule's decision is matched (with its firing's requests, for `explain`) but yields
    no submission here: the processor adds the member and fires when `until` holds.
    """

    collects: tuple[Collected, ...] = field(default_factory=tuple)


class Engine:
    """Evaluates one event against every rule; see the module docstring."""

    def __init__(self, rules: RuleSet | Iterable[Rule], *, rule_timeout_s: float = 2.0) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        self.rule_timeout_s = rule_timeout_s
        self._declarative = [r for r in self.rules if r.declarative and r.enabled]
        self._index = RuleIndex(self._declarative)
        self._order = {r.name: i for i, r in enumerate(self.rules)}
        self._python = [r for r in self.rules if not r.declarative and r.enabled]
        self._python_index = RuleIndex(self._python)  # by their `when=` prefilters
        self._runner = RuleRunner(rule_timeout_s)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, event: Event, dataset: DatasetView) -> Evaluation:
        """Decisions of the candidate rules (rules the index rules out are omitted).

        `dataset` must already include this event's file.
        """
        return self.evaluate_many([(event, dataset)])[0]

    def evaluate_many(self, pairs: Sequence[tuple[Event, DatasetView]]) -> list[Evaluation]:
        """`evaluate` for each (event, dataset) in order, with the Python rules of them all run
        in one hand-off to the runner: a thread hand-off per event costs more than a rule.

        The calls run event by event, rule by rule, as consecutive `evaluate` calls would run
        them, each with its own timeout.
        """
        decided: list[tuple[list[Decision], list[Collected]]] = []
        calls: list[tuple[str, Any, tuple[Any, ...]]] = []
        owners: list[tuple[int, Rule]] = []
        for index, (event, dataset) in enumerate(pairs):
            subject = Subject(event, dataset)
            collects: list[Collected] = []
            decisions = [
                self._decide_declarative(
                    self._declarative[i], subject, thorough=False, into=collects
                )
                for i in self._index.candidates(subject)
            ]
            decided.append((decisions, collects))
            for position in self._python_index.candidates(subject):
                r = self._python[position]
                if r.when is not None and not r.when.check(subject, {}, None, False):
                    continue  # its when= prefilter fails: the function is not run
                assert r.function is not None
                calls.append((r.name, r.function, (event, dataset)))
                owners.append((index, r))
        if calls:
            outcomes = self._runner.run_many(calls)
            for (index, r), outcome in zip(owners, outcomes, strict=True):
                decided[index][0].append(self._python_decision(r, pairs[index][0], outcome))
        evaluations: list[Evaluation] = []
        for (event, _), (decisions, collects) in zip(pairs, decided, strict=True):
            if self._python and len(decisions) > 1:
                decisions.sort(key=lambda d: self._order[d.rule])
            evaluations.append(CollectingEvaluation(event, tuple(decisions), tuple(collects)))
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
        decided = dict(zip(python, self._decide_python(python, event, dataset), strict=True))
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
        return Evaluation(event, tuple(decisions))

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
        except (MissingValue, ValueError) as exc:
            return Decision(r.name, False, tuple(reasons), error=str(exc))
        decision = self._checked(r, subject.event, tuple(reasons), requests)
        if r.collect is not None and decision.matched and into is not None:
            into.append(collected)
        return decision

    def _decide_python(
        self, rules: list[Rule], event: Event, dataset: DatasetView
    ) -> list[Decision]:
        """Run the Python rules in one hand-off to the runner (each with its own timeout)."""
        calls = []
        for r in rules:
            assert r.function is not None
            calls.append((r.name, r.function, (event, dataset)))
        outcomes = self._runner.run_many(calls)
        return [self._python_decision(r, event, o) for r, o in zip(rules, outcomes, strict=True)]

    def _python_decision(self, r: Rule, event: Event, outcome: Outcome) -> Decision:
        if outcome.status == "timed_out":
            return Decision(r.name, False, error=f"timed out after {float(self.rule_timeout_s)} s")
        if outcome.status == "still_running":
            error = "not run: its call on an earlier event timed out and is still running"
            return Decision(r.name, False, error=error)
        if outcome.status == "raised":
            return Decision(r.name, False, error=_describe_exception(outcome.error, r, event))
        requests = _as_requests(outcome.value)
        if requests is None:
            error = (
                f"returned {type(outcome.value).__name__}; "
                "expected None, a submit(...) or a list of them"
            )
            return Decision(r.name, False, error=error)
        reasons = (f"python rule returned {len(requests) or 'no'} submission(s)",)
        return self._checked(r, event, reasons, requests)

    @staticmethod
    def _checked(
        r: Rule, event: Event, reasons: tuple[str, ...], requests: tuple[SubmitRequest, ...]
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
        return Decision(r.name, bool(requests), reasons, requests)

    # -- submissions ---------------------------------------------------------------------------

    def submissions(self, evaluation: Evaluation) -> list[Submission]:
        """One Submission per request of every matched decision, with its deterministic job id.

        The generation is "0", except for manual submissions (`manual.*`), where it is the
        event's message id so an operator's deliberate re-check submits again.
        """
        event = evaluation.event
        generation = event.message_id if event.kind.value.startswith("manual.") else "0"
        result: list[Submission] = []
        seen: set[str] = set()
        for decision in evaluation.matched:
            found = self.rules.get(decision.rule)
            if found is not None and found.collect is not None:
                continue  # a collection fires through the processor, not per event
            for request in decision.requests:
                if request.resource == "file":
                    resource_id = event.file.id if event.file is not None else ""
                else:
                    resource_id = event.dataset_id or ""
                jid = job_id(
                    decision.rule, request.extractor, request.resource, resource_id, generation
                )
                if jid in seen:
                    continue
                seen.add(jid)
                result.append(
                    Submission(
                        job_id=jid,
                        rule=decision.rule,
                        extractor=request.extractor,
                        resource_type=request.resource,
                        resource_id=resource_id,
                        via=request.via,
                        parameters=request.parameters,
                        event_message_id=event.message_id,
                        entrypoint=request.entrypoint,
                        runtime_env=request.runtime_env,
                    )
                )
        return result

    @property
    def stuck_rules(self) -> list[str]:
        """Python rules whose timed-out call is still running (they are skipped meanwhile)."""
        return self._runner.abandoned

    def close(self) -> None:
        """Stop the idle rule worker threads."""
        self._runner.close()


def _as_requests(value: Any) -> tuple[SubmitRequest, ...] | None:
    if value is None:
        return ()
    if isinstance(value, SubmitRequest):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, SubmitRequest) for v in value):
        return tuple(value)
    return None


def _secrets_in(event: Event) -> list[str]:
    found = []
    for key in ("secretKey", "secret_key", "key", "apiKey", "api_key", "token", "password"):
        value = walk(event.body, (key,))
        if isinstance(value, str) and len(value) >= 4 and is_secret(key):
            found.append(value)
    return found


def _describe_exception(exc: BaseException | None, r: Rule, event: Event) -> str:
    """`raised Type at file:line: message`, truncated, with the event's secrets redacted."""
    if exc is None:
        return "raised an unknown error"
    where = ""
    code = getattr(r.function, "__code__", None)
    if code is not None:
        rule_file = Path(code.co_filename).resolve()
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if Path(f.filename).resolve() == rule_file
        ]
        if frames:
            shown = r.source.rpartition(":")[0] or frames[-1].filename
            where = f" at {shown}:{frames[-1].lineno}"
    message = f"raised {type(exc).__name__}{where}: {exc}"
    for secret in _secrets_in(event):
        message = message.replace(secret, "<redacted>")
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return message
