"""The index finds every rule that matches: same matches as evaluating every rule by brute force."""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.engine import Engine
from switchboard.model import EventKind
from switchboard.rules.yaml_rules import rules_from_yaml
from tests.rules.events import make_event, view_of

NAMES = ["stereoTop - 1", "stereoTop - 2", "StereoTop - 3", "flir - 1", "RGB - 2017-05-01", "a"]
FILES = ["a.bin", "b.BIN", "x_left.tif", "x_LEFT.TIF", "7", "07", "m.ply", ""]
MIMES = ["image/tiff", "IMAGE/TIFF", "application/json", ""]
SIZES = [None, 0, 7, 1000]

text_values = st.sampled_from(
    ["stereoTop", "stereo", "S", ".bin", ".BIN", "_left.tif", "7", "a", ""]
)
number_values = st.sampled_from([0, 7, 7.0, 999, 1000])


TEXT_OPERATORS = ["equals", "prefix", "suffix", "iequals", "iprefix", "isuffix", "glob", "iglob"]
tests = st.one_of(
    *(st.builds(lambda v, op=op: {op: v}, text_values) for op in TEXT_OPERATORS),
    st.builds(lambda v: {"glob": f"*{v}"}, text_values),
    st.builds(lambda v: {"iglob": f"{v}*"}, text_values),
    st.builds(lambda v: {"regex": f"^{v}"}, st.sampled_from(["stereo", "RGB - ", "x_", "a"])),
    st.builds(lambda v: {"in": v}, st.lists(st.one_of(text_values, number_values), min_size=1)),
    st.builds(lambda v: {"anything-but": v}, text_values),
    st.builds(lambda v: {"exists": v}, st.booleans()),
    st.builds(lambda v: {"equals": v}, number_values),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["lt", "gte"]), number_values),
)
fields = st.sampled_from(["dataset.name", "file.name", "file.mime_type", "file.size"])
leaf = st.builds(lambda field, test: {field: test}, fields, tests)
nested = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
    ),
    max_leaves=4,
)
conditions = st.one_of(leaf, leaf, nested)  # mostly plain tests, so that rules often match
whens = st.lists(conditions, min_size=1, max_size=2).map(
    lambda items: {k: v for item in items for k, v in item.items()}
)
kinds = st.sampled_from(["dataset.file.added", "manual.*", "*"])


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    rules = []
    for i in range(draw(st.integers(1, 6))):
        rules.append(
            {"name": f"r{i}", "on": draw(kinds), "when": draw(whens), "submit": {"extractor": "x"}}
        )
    return json.dumps(rules)


events = st.builds(
    lambda name, file, mime, size, kind: make_event(
        file, dataset_name=name, mime_type=mime, size=size, kind=kind
    ),
    st.sampled_from(NAMES),
    st.sampled_from(FILES),
    st.sampled_from(MIMES),
    st.sampled_from(SIZES),
    st.sampled_from([EventKind.FILE_ADDED, EventKind.MANUAL_FILE]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), st.lists(events, min_size=1, max_size=5))
def test_index_matches_exactly_what_brute_force_matches(text: str, sample: list) -> None:
    rules, problems = rules_from_yaml("generated.yaml", text)
    assert problems == []
    engine = Engine(rules)
    try:
        for event in sample:
            view = view_of(event)
            indexed = engine.evaluate(event, view)
            brute = engine.explain(event, view)
            assert [d.rule for d in indexed.matched] == [d.rule for d in brute.matched]
            candidates = {d.rule for d in indexed.decisions}
            assert {d.rule for d in brute.matched} <= candidates
    finally:
        engine.close()


def test_a_thousand_rules_on_distinct_prefixes_give_one_candidate() -> None:
    text = "".join(
        f'- {{name: r{i}, when: {{dataset.name: {{prefix: "site{i} - "}}}}, '
        f"submit: {{extractor: x}}}}\n"
        for i in range(1000)
    )
    rules, _ = rules_from_yaml("many.yaml", text)
    engine = Engine(rules)
    event = make_event(dataset_name="site417 - 2017")
    assert [d.rule for d in engine.evaluate(event, view_of(event)).decisions] == ["r417"]
    engine.close()


def test_index_misses_no_single_test_on_any_field_for_any_event() -> None:
    """Exhaustive over small pools: one rule per (field, operator, operand), every event."""
    operands = ["stereoTop", "stereo", "S", ".bin", ".BIN", "_left.tif", "7", "07", "a", "x_"]
    operands += ["*.bin", "*_LEFT.TIF", "x*", "image/*"]
    tests: list[dict] = [{op: v} for op in TEXT_OPERATORS for v in operands]
    tests += [{"regex": p} for p in ["^stereo", "^RGB - ", "^x_", "^a*b", "^a+"]]
    tests += [{"equals": n} for n in (0, 7, 1000)] + [{"in": ["a.bin", 7]}]
    rules = [
        {"name": f"r{i}", "on": "*", "when": {field: test}, "submit": {"extractor": "x"}}
        for i, (field, test) in enumerate(
            (f, t)
            for f in ("dataset.name", "file.name", "file.mime_type", "file.size")
            for t in tests
        )
    ]
    compiled, problems = rules_from_yaml("all.yaml", json.dumps(rules))
    assert problems == []
    engine = Engine(compiled)
    names = [*NAMES, "abbb", "aaa", "x_1"]
    for name, file, mime, size in itertools.product(names, FILES, MIMES, SIZES):
        event = make_event(file, dataset_name=name, mime_type=mime, size=size)
        indexed = [d.rule for d in engine.evaluate(event, view_of(event)).matched]
        brute = [d.rule for d in engine.explain(event, view_of(event)).matched]
        assert indexed == brute, (name, file, mime, size)
    engine.close()
