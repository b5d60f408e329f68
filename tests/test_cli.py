"""The `switchboard` command line as a user runs it: check, explain, replay and demo."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner, Result

from switchboard import demo_day
from switchboard.cli import DEMO_DAY, main
from switchboard.rules import load_rules
from switchboard.rules.loader import rule_files
from switchboard.traffic import read_records, write_records

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
FIXTURES = Path(__file__).parent / "fixtures"
NOT_EVENTS = ("pyclowder_heartbeat.json", "pyclowder_status_update.json")
EVENT_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json") if p.name not in NOT_EVENTS)
PLOTCLIPPER = {"terra.plotclipper_tif": demo_day.RGB_DATASETS}  # one per left GeoTIFF
UNRELATED_DATASETS = ("weather - ", "EnvironmentLogger - ", "notes")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logging_restored: None) -> None:
    """Run each command in an empty folder, with no Switchboard settings from the environment.

    The CLI configures the root logger; `root_logging_restored` puts the test's back afterwards.
    """
    for name in ("SWITCHBOARD_RULES", "SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_MAX_EVENT_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def run(*args: str | Path, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text), encoding="utf-8")
    return path


def expected_routing(targets: Iterable[str]) -> dict[str, int]:
    """What the demo day must submit per target: `demo_day.EXPECTED_FIRINGS` plus plotclipper.

    Each EXPECTED_FIRINGS name (`bin2tif`) is part of exactly one target's name.
    """
    expected = dict(PLOTCLIPPER)
    for short, count in demo_day.EXPECTED_FIRINGS.items():
        named = [t for t in targets if short in t]
        assert len(named) == 1, f"{short!r} should name one target of {sorted(targets)}"
        expected[named[0]] = count
    return expected


def targets_table(output: str) -> dict[str, int]:
    """The `TARGET  SUBMISSIONS` table of a replay summary, as {target: count}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TARGET"))
    table = {}
    for line in lines[start + 1 :]:
        target, count = line.split()
        table[target] = int(count)
    return table


# --- check ---------------------------------------------------------------------------------------


def test_check_of_the_example_rules_prints_every_rule_of_every_file_and_exits_0() -> None:
    result = run("check", RULES)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "ON", "TARGETS", "SOURCE"]
    loaded = load_rules([RULES])
    assert lines[-1] == f"{len(loaded)} rule(s) OK"
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == set(loaded.names())
    assert "terra.stereo-rgb.bin2tif" in rows["stereo-bin2tif"]
    assert rows["scanner_ply2las"].split()[1] == "python"
    sources = {line.split()[-1].rsplit(":", 1)[0] for line in lines[1:-1]}
    files, _ = rule_files([RULES])
    assert sources == {str(f) for f in files}  # every file in rules/ contributes rules
    assert {f.suffix for f in files} == {".yaml", ".py"}


def test_check_marks_disabled_rules(tmp_path: Path) -> None:
    write(tmp_path / "r.yaml", "- {name: off, enabled: false, submit: {extractor: x}}\n")
    result = run("check", "r.yaml")
    assert result.exit_code == 0
    assert "off (disabled)" in result.stdout


def test_check_needs_at_least_one_path() -> None:
    assert run("check").exit_code == 2


PYTHON_ON_TYPO = """\
from switchboard import rule


@rule(on="dataset.file.add")
def f(event, dataset):
    return None
"""

# (kind of mistake, {file: text}, the exact `path:line: reason` line it gives)
MISTAKES = [
    (
        "unknown key",
        {"r.yaml": "- name: a\n  descripton: x\n  submit: {extractor: x}\n"},
        "rules/r.yaml:2: unknown key 'descripton' in rule 'a' (did you mean 'description'?)",
    ),
    (
        "unknown operator",
        {"r.yaml": "- name: a\n  when:\n    file.name: {sufix: .bin}\n  submit: {extractor: x}\n"},
        "rules/r.yaml:3: file.name: unknown operator 'sufix' (did you mean 'suffix'?)",
    ),
    (
        "bad regex",
        {
            "r.yaml": (
                "- name: a\n  when:\n    dataset.name: {regex: '(['}\n  submit: {extractor: x}\n"
            )
        },
        "rules/r.yaml:3: dataset.name: bad regex '([': unterminated character set at position 1",
    ),
    (
        "unknown template field",
        {"r.yaml": "- name: a\n  submit:\n    extractor: x\n    parameters: {day: '{day}'}\n"},
        "rules/r.yaml:4: rule 'a': unknown template field {day} "
        "(neither a field nor a named group of a regex in 'when')",
    ),
    (
        "template field that names no event field",
        {"r.yaml": "- name: a\n  submit: {extractor: 'x-{file.title}'}\n"},
        "rules/r.yaml:2: rule 'a': unknown template field {file.title}: unknown field "
        "'file.title' (known: event.kind, event.routing_key, event.host, event.message_id, "
        "file.id, file.name, file.mime_type, file.size, dataset.id, dataset.name, "
        "parameters.<path>, body.<path>)",
    ),
    (
        "template that could run code",
        {"r.yaml": "- name: a\n  submit: {extractor: 'x-{file.name.__class__!r}'}\n"},
        "rules/r.yaml:2: rule 'a': bad placeholder {file.name.__class__!r}: use a field name "
        "only (no format specs, conversions, indexing or spaces)",
    ),
    (
        "duplicate rule name across two files",
        {
            "a.yaml": "- name: same\n  submit: {extractor: x}\n",
            "b.yaml": "# second\n\n- name: same\n  submit: {extractor: y}\n",
        },
        "rules/b.yaml:3: duplicate rule name 'same' (first defined at rules/a.yaml:1)",
    ),
    (
        "missing target",
        {"r.yaml": "- name: a\n  when: {file.name: x.bin}\n"},
        "rules/r.yaml:1: rule 'a' has no submit target",
    ),
    (
        "empty extractor",
        {"r.yaml": "- name: a\n  submit:\n    extractor: ''\n"},
        "rules/r.yaml:3: rule 'a': submit needs a non-empty extractor",
    ),
    (
        "bad on kind",
        {"r.yaml": "- name: a\n  on: dataset.fil.added\n  submit: {extractor: x}\n"},
        "rules/r.yaml:2: rule 'a': 'on' 'dataset.fil.added' matches no event kind (known: "
        "dataset.file.added, file.created, metadata.added, manual.file, manual.dataset)",
    ),
    (
        "wrong type for enabled",
        {"r.yaml": "- name: a\n  enabled: 'yes'\n  submit: {extractor: x}\n"},
        "rules/r.yaml:2: rule 'a': enabled must be true or false, not 'yes'",
    ),
    (
        "wrong type for a numeric operand",
        {"r.yaml": "- name: a\n  when:\n    file.size: {gte: 1k}\n  submit: {extractor: x}\n"},
        "rules/r.yaml:3: file.size: gte needs a number, got '1k'",
    ),
    (
        "wrong type for resource",
        {"r.yaml": "- name: a\n  submit: {extractor: x, resource: collection}\n"},
        "rules/r.yaml:2: rule 'a': resource must be file or dataset, not 'collection'",
    ),
    (
        "yaml syntax error",
        {"r.yaml": "- name: a\n  submit: {extractor: x\n"},
        "rules/r.yaml:3: invalid YAML: while parsing a flow mapping expected ',' or '}', "
        "but got '<stream end>'",
    ),
    (
        "tab in yaml",
        {"r.yaml": "- name: a\n\tsubmit: {extractor: x}\n"},
        "rules/r.yaml:2: invalid YAML: while scanning for the next token found character "
        "'\\t' that cannot start any token",
    ),
    (
        "python module that fails to import",
        {"r.py": "import json\nimport no_such_module_anywhere\n"},
        "rules/r.py:2: cannot import: ModuleNotFoundError: No module named "
        "'no_such_module_anywhere'",
    ),
    (
        "python module with a syntax error",
        {"r.py": "def f(:\n    pass\n"},
        "rules/r.py:1: cannot import: SyntaxError: invalid syntax",
    ),
    (
        "python rule selecting no event kind",
        {"r.py": PYTHON_ON_TYPO},
        "rules/r.py:4: cannot import: ValueError: on='dataset.file.add' matches no event kind "
        "(known: dataset.file.added, file.created, metadata.added, manual.file, manual.dataset)",
    ),
    (
        "require with a bad quantifier",
        {
            "r.yaml": dedent("""\
                - name: a
                  require:
                    dataset.files:
                      where: {name: {suffix: .bin}}
                      count: {regex: '2'}
                  submit: {extractor: x}
                """)
        },
        "rules/r.yaml:5: count: 'regex' is not a numeric operator "
        "(equals, in, anything-but, lt, lte, gt, gte, between)",
    ),
    (
        "require with a non-boolean quantifier",
        {
            "r.yaml": (
                "- name: a\n  require:\n    dataset.files: {any: 3}\n  submit: {extractor: x}\n"
            )
        },
        "rules/r.yaml:3: dataset.files any: must be true",
    ),
    (
        "require without a quantifier",
        {
            "r.yaml": (
                "- name: a\n  require:\n    dataset.files: {where: {name: x}}\n"
                "  submit: {extractor: x}\n"
            )
        },
        "rules/r.yaml:3: dataset.files needs exactly one of count, any, all, none "
        "(found none of them)",
    ),
    (
        "unknown field",
        {"r.yaml": "- name: a\n  when: {file.title: x}\n  submit: {extractor: x}\n"},
        "rules/r.yaml:2: unknown field 'file.title' (known: event.kind, event.routing_key, "
        "event.host, event.message_id, file.id, file.name, file.mime_type, file.size, "
        "dataset.id, dataset.name, parameters.<path>, body.<path>)",
    ),
    (
        "duplicate key in one mapping",
        {
            "r.yaml": (
                "- name: a\n  when:\n    file.name: x\n    file.name: y\n  submit: {extractor: x}\n"
            )
        },
        "rules/r.yaml:4: duplicate key 'file.name'",
    ),
    (
        "invalid rule name",
        {"r.yaml": "- name: 'a rule'\n  submit: {extractor: x}\n"},
        "rules/r.yaml:1: invalid rule name 'a rule' (use letters, digits, '_', '.', '-')",
    ),
    (
        "a file that is not a list of rules",
        {"r.yaml": "name: a\nsubmit: {extractor: x}\n"},
        "rules/r.yaml:1: a rule file is a list of rules, or a mapping with the key 'rules' "
        "(and 'limits')",
    ),
]


@pytest.mark.parametrize(
    ("files", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_each_kind_of_mistake_gives_its_path_line_reason_and_exit_1(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        write(tmp_path / "rules" / name, text)
    result = run("check", "rules")
    assert result.exit_code == 1
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    assert problems == [expected, "1 problem(s); no rules loaded"]


def test_there_are_at_least_ten_kinds_of_mistakes() -> None:
    assert len(MISTAKES) >= 10


def test_every_problem_of_every_file_is_reported_in_one_run(tmp_path: Path) -> None:
    write(
        tmp_path / "rules" / "a.yaml",
        """\
        - name: a
          when:
            file.name: {sufix: ".bin"}
            dataset.name: {regex: "(["}
          submit: {extractor: ""}
        - name: b
          colour: blue
          submit: {extractor: "{nope}"}
        - name: fine
          submit: {extractor: fine}
        """,
    )
    write(tmp_path / "rules" / "b.yaml", "- name: fine\n  submit: {extractor: again}\n")
    write(tmp_path / "rules" / "c.py", "raise RuntimeError('broken helper')\n")
    write(tmp_path / "rules" / "d.yaml", "- name: d\n  submit: [\n")
    result = run("check", "rules", "missing.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "missing.yaml:0: no such file or directory",
        "rules/a.yaml:3: file.name: unknown operator 'sufix' (did you mean 'suffix'?)",
        "rules/a.yaml:4: dataset.name: bad regex '([': unterminated character set at position 1",
        "rules/a.yaml:5: rule 'a': submit needs a non-empty extractor",
        "rules/a.yaml:7: unknown key 'colour' in rule 'b'",
        "rules/a.yaml:8: rule 'b': unknown template field {nope} "
        "(neither a field nor a named group of a regex in 'when')",
        "rules/b.yaml:1: duplicate rule name 'fine' (first defined at rules/a.yaml:9)",
        "rules/c.py:1: cannot import: RuntimeError: broken helper",
        "rules/d.yaml:3: invalid YAML: while parsing a flow node expected the node content, "
        "but found '<stream end>'",
        "9 problem(s); no rules loaded",
    ]


# --- explain -------------------------------------------------------------------------------------


def rule_lines(output: str) -> dict[str, str]:
    """{rule name: its mark (MATCH / no / ERROR)} from explain's output."""
    marks = {}
    for line in output.splitlines():
        match = re.fullmatch(r"(MATCH|no|ERROR) +(\S+)", line)
        if match:
            marks[match[2]] = match[1]
    return marks


@pytest.mark.parametrize("name", EVENT_FIXTURES)
def test_explain_decides_every_rule_for_every_fixture(name: str) -> None:
    result = run("explain", FIXTURES / name, "--rules", RULES)
    assert result.exit_code == 0, result.output
    body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))["body"]
    assert result.stdout.startswith("event ")
    assert f"file {body.get('filename') or body['source']['extra']['filename']}" in result.stdout
    marks = rule_lines(result.stdout)
    assert set(marks) == set(load_rules([RULES]).names())
    assert "ERROR" not in marks.values()  # rule_utils rules run against a throwaway progress
    summary = rf"^\d+ of {len(load_rules([RULES]))} rule\(s\) match; \d+ submission\(s\)$"
    assert re.search(summary, result.stdout, re.M)
    assert "REDACTED-API-KEY" not in result.output


@pytest.mark.parametrize("name", NOT_EVENTS)
def test_explain_says_why_a_message_that_is_not_an_event_is_refused(name: str) -> None:
    result = run("explain", FIXTURES / name, "--rules", RULES)
    assert result.exit_code == 0
    first, second = result.stdout.splitlines()
    assert first.startswith("refused: not an event: this is a")
    assert "dead-letters" in second


def test_explain_shows_the_match_its_reasons_and_what_would_be_submitted() -> None:
    result = run("explain", FIXTURES / "v1_manual_dataset_submission.json", "--rules", RULES)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    at = lines.index("MATCH manual-recheck")
    assert lines[at + 1 : at + 4] == [
        "        parameters.reason exists true: held",
        "        event.routing_key in ['extractors.ncsa.rulechecker', "
        "'extractors.ncsa.rulechecker.terra']: held",
        # a manual submission's generation is its message id: a re-check submits again
        "        rerun once: the next job is generation '65a1f0c2e4b0a1b2c3d4e5f6'",
    ]
    assert re.fullmatch(
        r" +-> ops\.recheck-audit dataset 65a1f0a0e4b0a1b2c3d4e500 via amqp job [0-9a-f-]{36} "
        r"parameters \{'reason': 're-check'\}",
        lines[at + 4],
    )
    assert f"1 of {len(load_rules([RULES]))} rule(s) match; 1 submission(s)" in lines


def test_explain_says_which_condition_failed_and_with_what_value() -> None:
    result = run("explain", FIXTURES / "v2_file_job.json", "--rules", RULES)
    assert "no    flir2tif" in result.stdout
    assert "file.name suffix '_ir.bin': failed (file.name is 'scan_0001_west.ply')" in result.stdout
    assert "on [manual.dataset]: event kind 'dataset.file.added' is not selected" in result.stdout
    assert "name unknown (the daemon asks Clowder; see --dataset-name)" in result.stdout


def test_explain_uses_the_given_dataset_name_and_renders_regex_captures() -> None:
    result = run(
        "explain",
        FIXTURES / "v1_manual_file_submission.json",
        "--rules",
        RULES,
        "--dataset-name",
        "RGB GeoTIFFs - 2017-05-01__10-20-30-123",
    )
    assert rule_lines(result.stdout)["plotclipper-left-geotiff"] == "MATCH"
    assert "-> terra.plotclipper_tif file 65a1f0b9e4b0a1b2c3d4e5aa via amqp job" in result.stdout
    assert (
        "parameters {'date': '2017-05-01', 'time': '10-20-30-123', "
        "'source_file': '2017-05-01__10-20-30-123_left.tif'}" in result.stdout
    )


def raw_stereo_body(file_name: str) -> bytes:
    body = json.loads((FIXTURES / "v1_dataset_file_added.json").read_text())["body"]
    body["source"]["extra"]["filename"] = file_name
    return json.dumps(body).encode()


def test_explain_reads_a_raw_body_and_counts_the_files_given_with_with_file(
    tmp_path: Path,
) -> None:
    event = tmp_path / "body.json"
    event.write_bytes(raw_stereo_body("s_left.bin"))
    args = ["explain", event, "--rules", RULES, "--dataset-name", "stereoTop - 2017-05-01"]
    alone = run(*args)
    assert rule_lines(alone.stdout)["stereo-bin2tif"] == "no"
    assert "dataset.files where name suffix '.bin' count gte 2: failed (1 of 1 files match)" in (
        alone.stdout
    )
    both = run(*args, "--with-file", "s_right.bin")
    assert rule_lines(both.stdout)["stereo-bin2tif"] == "MATCH"
    assert "dataset files s_left.bin, s_right.bin" in both.stdout
    assert "-> terra.stereo-rgb.bin2tif dataset 65a1f0a0e4b0a1b2c3d4e500" in both.stdout


def test_explain_reads_a_raw_body_from_standard_input() -> None:
    result = run("explain", "-", "--rules", RULES, stdin=raw_stereo_body("x_ir.bin"))
    assert result.exit_code == 0
    assert "file x_ir.bin (65a1f0b9e4b0a1b2c3d4e5aa)" in result.stdout


def test_explain_of_a_body_that_is_not_json_says_the_daemon_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_bytes(b"{not json")
    result = run("explain", "bad.json", "--rules", RULES)
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "refused: body is not valid JSON: Expecting property name enclosed in double quotes"
    )


def test_explain_has_no_side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    event = tmp_path / "event.json"
    event.write_bytes(raw_stereo_body("s_left.bin"))
    before = sorted(tmp_path.rglob("*"))
    for name in EVENT_FIXTURES:
        assert run("explain", FIXTURES / name, "--rules", RULES).exit_code == 0
    assert run("explain", event, "--rules", RULES).exit_code == 0
    assert sorted(tmp_path.rglob("*")) == before


def test_explain_refuses_broken_rules_with_their_problems(tmp_path: Path) -> None:
    write(tmp_path / "r.yaml", "- name: a\n")
    result = run("explain", FIXTURES / "v2_file_job.json", "--rules", "r.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "r.yaml:1: rule 'a' has no submit target"
    assert result.stdout == ""


def test_explain_of_a_missing_file_is_a_usage_error() -> None:
    result = run("explain", "nowhere.json", "--rules", RULES)
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# --- replay and demo -----------------------------------------------------------------------------


def test_replay_of_the_demo_day_prints_submissions_per_target() -> None:
    result = run("replay", DEMO_DAY, "--rules", RULES)
    assert result.exit_code == 0, result.output
    table = targets_table(result.stdout)
    assert table == expected_routing(table)
    assert {"terra.stereo-rgb.bin2tif", "terra.3dscanner.ply2las"} <= set(table)
    assert result.stdout.splitlines()[0] == (
        f"{demo_day.TOTAL_EVENTS} events, {sum(table.values())} submissions, 0 duplicates, "
        "0 malformed, 0 rule errors"
    )
    assert "replaying" not in result.output  # no progress bar off a terminal


def test_unrelated_traffic_reaches_no_one(tmp_path: Path) -> None:
    unrelated = [
        record
        for _, record in read_records(DEMO_DAY)
        if record["dataset_name"].startswith(UNRELATED_DATASETS)
        or record["body"]["source"]["extra"]["filename"].endswith("_metadata.json")
    ]
    assert len(unrelated) == demo_day.UNRELATED_FILES + 20 + 15 + 10  # plus every metadata.json
    write_records(tmp_path / "unrelated.jsonl", unrelated)
    result = run("replay", "unrelated.jsonl", "--rules", RULES)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(f"{len(unrelated)} events, 0 submissions")
    assert targets_table(result.stdout) == {}


def test_replaying_the_same_day_again_on_one_database_submits_nothing_new(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'state.db'}"
    first = run("replay", DEMO_DAY, "--rules", RULES, "--database", database)
    again = run("replay", DEMO_DAY, "--rules", RULES, "--database", database)
    assert sum(targets_table(first.stdout).values()) > 0
    assert again.stdout.splitlines()[0] == (
        f"{demo_day.TOTAL_EVENTS} events, 0 submissions, {demo_day.TOTAL_EVENTS} duplicates, "
        "0 malformed, 0 rule errors"
    )


def test_replay_reports_malformed_lines_and_records(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"body": {}}\nnot json\n')
    result = run("replay", "bad.jsonl", "--rules", RULES)
    assert result.exit_code == 1
    assert "bad.jsonl:2: not valid JSON" in result.stderr
    records = [{"properties": {}, "body": {"extractor_info": {}, "id": "x"}}]
    write_records(tmp_path / "heartbeat.jsonl", records)
    result = run("replay", "heartbeat.jsonl", "--rules", RULES)
    assert result.exit_code == 0
    assert "1 events, 0 submissions, 0 duplicates, 1 malformed" in result.stdout
    assert "! message 1: not an event: this is a pyclowder heartbeat" in result.stderr


def test_replay_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "switchboard"
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [script, "replay", DEMO_DAY, "--rules", RULES],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        os.close(terminal)
        terminal = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    output = b"".join(chunks).decode()
    assert "replaying" in output
    assert "100%" in output
    assert "terra.stereo-rgb.bin2tif" in output


def test_demo_routes_the_bundled_day_as_documented() -> None:
    result = run("demo", "--rules", RULES)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert result.stderr == ""  # quiet: per-event logs only on --log-level INFO, no warnings
    day = f"demo: {demo_day.TOTAL_EVENTS} events of one TERRA-like day"
    assert lines[0] == f"{day}, rules from {RULES}"
    table = targets_table(result.stdout)
    assert table == expected_routing(table)
    assert lines[1] == (
        f"{demo_day.TOTAL_EVENTS} events, {sum(table.values())} submissions, 0 duplicates, "
        "0 malformed, 0 rule errors"
    )


def test_demo_uses_the_rules_folder_of_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert "rules from rules" in result.stdout
    table = targets_table(result.stdout)
    assert table == expected_routing(table)


def test_demo_without_a_rules_folder_says_how_to_fix_it() -> None:
    result = run("demo")
    assert result.exit_code == 1
    assert "rule path 'rules' not found: run from the repository root or pass --rules" in (
        result.stderr
    )


def test_check_warns_about_a_regex_with_no_literal_to_index(tmp_path: Path) -> None:
    write(
        tmp_path / "r.yaml",
        r"""
        - {name: digits, when: {file.name: {regex: '\d+'}}, submit: {extractor: x}}
        - {name: left, when: {file.name: {regex: 'x[0-9]+_left'}}, submit: {extractor: x}}
        """,
    )
    result = run("check", tmp_path / "r.yaml")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        r"warning: rule digits: file.name regex '\\d+' has no literal to index; "
        "checked on every event"
    ]
    assert result.stdout.splitlines()[-1] == "2 rule(s) OK"
