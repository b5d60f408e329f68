"""Secret fields (Clowder's secretKey, tokens, passwords) never reach a template or a submission."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.engine import Engine
from switchboard.errors import RuleLoadError
from switchboard.rules import load_rules
from switchboard.rules.templates import parse_template
from tests.rules.events import make_event, view_of

REFUSED = "template field {%s} is a secret and cannot be used"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    return [str(p) for p in caught.value.problems]


def test_check_refuses_a_template_reading_body_secretkey_with_path_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(
        "- name: leak\n  submit:\n    extractor: x\n    parameters: {key: '{body.secretKey}'}\n"
    )
    result = CliRunner().invoke(main, ["check", "r.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ("r.yaml:4: rule 'leak': " + REFUSED % "body.secretKey")


def collect(**parts: str) -> str:
    """A collect rule body (line 2 holds `collect`) with `parts` replacing its defaults."""
    spec = {"key": "k", "member": "'{file.id}'", "until": "{count: 2}", **parts}
    inner = ", ".join(f"{k}: {v}" for k, v in spec.items())
    return f"  collect: {{{inner}}}\n  submit: {{extractor: x}}\n"


SUBMIT_PARAMETER = "  submit:\n    extractor: x\n    parameters: {a: [{b: '{parameters.token}'}]}\n"


@pytest.mark.parametrize(
    ("line", "field", "text"),
    [
        (2, "body.secretKey", "  submit: {extractor: 'x-{body.secretKey}'}\n"),
        (4, "parameters.token", SUBMIT_PARAMETER),
        (2, "body.auth.password", collect(key="'{body.auth.password}'")),
        (2, "body.SECRETKEY", collect(data="{p: '{body.SECRETKEY}'}")),
        (2, "body.apiKey", collect(member="'{body.apiKey}'")),
        (2, "body.secretKey", collect(until="{all_of: ['{body.secretKey}']}")),
        (2, "body.secretKey", collect(until="{fraction: {of: '{body.secretKey}'}}")),
    ],
)
def test_no_template_anywhere_in_a_rule_may_read_a_secret_field(
    tmp_path: Path, line: int, field: str, text: str
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("- name: leak\n" + text)
    found = problems_of(path)
    assert f"{path}:{line}: rule 'leak': " + REFUSED % field in found
    assert all("secret" in p for p in found)


def test_a_regex_on_a_secret_field_cannot_capture_it_into_a_template_field(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- name: leak\n"
        "  when: {body.secretKey: {regex: '(?P<k>.+)'}}\n"
        "  submit: {extractor: x, parameters: {k: '{k}'}}\n"
    )
    assert problems_of(path)[0] == (
        f"{path}:2: body.secretKey: a regex on a secret field cannot have named groups "
        "(they would make the secret a template field)"
    )


def test_a_secret_field_can_still_be_tested_for_presence(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- name: keyed\n  when: {body.secretKey: {exists: true}}\n  submit: {extractor: x}\n"
    )
    assert load_rules([path]).names() == ["keyed"]


def test_a_mapping_rendered_whole_has_the_secrets_inside_it_redacted(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "- name: forward\n  submit: {extractor: x, parameters: {resource: '{body.resource}'}}\n"
    )
    body = {"resource": {"id": "f1", "secretKey": "s3cr3t", "auth": [{"token": "t0k3n"}]}}
    engine = Engine(load_rules([path]))
    try:
        event = make_event(body=body)
        [submission] = list(engine.evaluate(event, view_of(event)).submissions)
    finally:
        engine.close()
    rendered = submission.parameters["resource"]
    assert "s3cr3t" not in rendered and "t0k3n" not in rendered
    assert '"id": "f1"' in rendered and '"secretKey": "<redacted>"' in rendered
    assert parse_template("{body.resource}").render(lambda _: body["resource"]) == rendered
