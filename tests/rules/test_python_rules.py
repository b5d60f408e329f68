"""Python rules: `@rule` builds a callable Rule and registers nothing; modules load in order."""

from __future__ import annotations

import signal
from pathlib import Path
from textwrap import dedent

import pytest

from switchboard.model import EventKind, submit
from switchboard.rules import Rule, rule
from switchboard.rules.python_rules import rules_from_module
from tests.rules.events import make_event, view_of


def test_decorated_function_is_a_rule_that_still_runs_directly() -> None:
    @rule(on="manual.*", name="recheck")
    def recheck(event, dataset):
        """Resubmit on demand."""
        return submit("ops.recheck", resource="dataset")

    assert isinstance(recheck, Rule)
    assert recheck.name == "recheck"
    assert recheck.kind == "python"
    assert recheck.kinds == {EventKind.MANUAL_FILE, EventKind.MANUAL_DATASET}
    assert recheck.description == "Resubmit on demand."
    event = make_event()
    assert recheck(event, view_of(event)).extractor == "ops.recheck"


def test_bare_decorator_uses_the_function_name_and_the_default_kind() -> None:
    @rule
    def stereo_pairs(event, dataset):
        return None

    assert stereo_pairs.name == "stereo_pairs"
    assert stereo_pairs.on == ("dataset.file.added",)


def test_an_on_pattern_matching_no_event_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="matches no event kind"):
        rule(on="dataset.fil.added")(lambda e, d: None)


def test_module_rules_are_collected_in_definition_order(tmp_path: Path) -> None:
    path = tmp_path / "my_rules.py"
    path.write_text(
        dedent("""\
        from switchboard import rule, submit

        @rule
        def zeta(event, dataset):
            return None

        @rule(name="alpha-rule")
        def alpha(event, dataset):
            return submit("x")

        not_a_rule = 3
        """)
    )
    rules, problems = rules_from_module(path)
    assert problems == []
    assert [r.name for r in rules] == ["zeta", "alpha-rule"]
    assert [str(r.source) for r in rules] == [f"{path}:3", f"{path}:7"]


def test_a_module_that_fails_to_import_is_a_problem_at_the_failing_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("from switchboard import rule\n\nvalue = 1 / 0\n")
    rules, problems = rules_from_module(path)
    assert rules == []
    assert [str(p) for p in problems] == [
        f"{path}:3: cannot import: ZeroDivisionError: division by zero"
    ]


def test_a_module_raising_keyboard_interrupt_is_a_problem_once_sigint_is_handled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "interrupts.py"
    path.write_text("import sys\n\nraise KeyboardInterrupt\n")
    previous = signal.signal(signal.SIGINT, lambda *_: None)  # as `switchboard run` does
    try:
        rules, problems = rules_from_module(path)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert rules == []
    assert [str(p) for p in problems] == [f"{path}:3: cannot import: KeyboardInterrupt"]
    with pytest.raises(KeyboardInterrupt):  # with Python's default handler it may be Ctrl-C
        rules_from_module(path)


def test_a_syntax_error_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "typo.py"
    path.write_text("x = 1\ndef f(:\n    pass\n")
    _, problems = rules_from_module(path)
    assert problems[0].line == 2
    assert "SyntaxError" in problems[0].reason


def test_a_rules_module_can_import_a_helper_beside_it(tmp_path: Path) -> None:
    (tmp_path / "_helpers.py").write_text("TARGET = 'terra.x'\n")
    (tmp_path / "uses_helper.py").write_text(
        "from _helpers import TARGET\nfrom switchboard import rule, submit\n\n"
        "@rule\ndef r(event, dataset):\n    return submit(TARGET)\n"
    )
    rules, problems = rules_from_module(tmp_path / "uses_helper.py")
    assert problems == []
    event = make_event()
    assert rules[0](event, view_of(event)).extractor == "terra.x"


def test_python_rule_with_a_when_prefilter_runs_only_on_events_that_pass_it() -> None:
    from switchboard.engine import Engine

    seen: list[str] = []

    @rule(name="bins", when={"file.name": {"suffix": ".bin"}, "file.size": {"gte": 10}})
    def bins(event, dataset):
        seen.append(event.file.name)
        return submit("x.bin", resource="file")

    @rule(name="everything")
    def everything(event, dataset):
        return None

    engine = Engine([bins, everything])
    try:
        for name, size in [("a.bin", 20), ("b.tif", 20), ("c.bin", 5)]:
            event = make_event(name, size=size)
            evaluation = engine.evaluate(event, view_of(event))
            assert [d.rule for d in evaluation.matched] == (["bins"] if name == "a.bin" else [])
            explained = engine.explain(event, view_of(event))
            assert [d.rule for d in explained.matched] == [d.rule for d in evaluation.matched]
        assert seen == ["a.bin", "a.bin"]  # once by evaluate, once by explain; never the others
        reasons = engine.explain(make_event("b.tif"), view_of(make_event("b.tif"))).decisions[0]
        assert reasons.reasons[-1] == "when= prefilter failed"
    finally:
        engine.close()


def test_a_bad_when_prefilter_is_refused_with_its_problem() -> None:
    with pytest.raises(ValueError, match=r"@rule f: when: file\.name: unknown operator 'sufix'"):

        @rule(when={"file.name": {"sufix": ".bin"}})
        def f(event, dataset):
            return None
