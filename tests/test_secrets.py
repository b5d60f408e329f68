"""One word list and one function per kind of redaction, used by every module that redacts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from switchboard import amqp, logs, secrets
from switchboard.store.engine import redacted

PACKAGE = Path(secrets.__file__).parent


def test_every_secret_name_is_masked_in_log_lines_from_the_one_word_list() -> None:
    for name in secrets.SECRET_NAMES:
        text = logs.scrub(f"GET /x?{name}=s3cr3t-value&page=2")
        assert "s3cr3t-value" not in text, name
        assert "page=2" in text


def test_a_secret_field_is_recognised_by_its_last_segment_in_any_case() -> None:
    assert secrets.is_secret("body.SecretKey")
    assert secrets.is_secret("parameters.auth.API_KEY")
    assert not secrets.is_secret("body.keywords")


def test_url_passwords_are_hidden_for_broker_database_and_http_urls_alike() -> None:
    assert secrets.redact_url("amqp://u:p%40ss@h:5673/v?x=1") == "amqp://u:***@h:5673/v?x=1"
    assert secrets.redact_url("postgresql+psycopg://sb:pw@[::1]:5432/db") == (
        "postgresql+psycopg://sb:***@[::1]:5432/db"
    )
    assert secrets.redact_url("https://Clowder.Example/api") == "https://Clowder.Example/api"
    assert secrets.redact_url("sqlite:///state.db") == "sqlite:///state.db"
    text = secrets.scrub_text("failed: https://me:hunter2@clowder.example/api")
    assert "hunter2" not in text and "https://me:***@clowder.example/api" in text


@pytest.mark.parametrize(
    "line",
    [
        '{"msg": "submitted", "job_id": "ab12", "rule": "r", "via": "amqp"}',
        '{"secretKey": "abcd1234", "x": 1}',
        "login with PASSWORD=hunter2 failed",
        "\u017fecret=hunter2 (a long s, which (?i) reads as s)",
        "api_key: hunter2, Token=t0ken, passwd=p",
        "https://u:hunter2@h/x and amqp://guest:guest@127.0.0.1:5672/%2f",
        "nothing to hide here",
    ],
)
def test_scrubbing_skips_lines_without_a_secret_name_yet_scrubs_every_line_with_one(
    line: str,
) -> None:
    expected = secrets._NAMED_VALUE.sub(lambda m: m.group(1) + secrets.MASK, line)
    expected = secrets._URL_PASSWORD.sub(lambda m: m.group(1) + secrets.MASK + m.group(2), expected)
    assert secrets.scrub_text(line) == expected


def test_the_broker_and_the_database_redact_urls_the_same_way() -> None:
    url = "postgresql+psycopg://switchboard:s3cret@db.example:5432/state"
    assert redacted(url) == amqp.redact_uri(url) == secrets.redact_url(url)


def test_known_secret_values_are_replaced_raw_and_url_encoded() -> None:
    key = "k/ey+1 2"
    text = secrets.replace_secrets(f"a {key} b {'k%2Fey%2B1%202'} c {'k%2Fey%2B1+2'}", [key])
    assert text == "a *** b *** c ***"
    assert secrets.replace_secrets("nothing", ["", "x" * 5]) == "nothing"


def test_secret_values_of_an_event_body_skip_short_and_non_text_values() -> None:
    body = {"secretKey": "abcdef", "token": "abc", "password": 12345, "id": "abcdefgh"}
    assert secrets.secret_values(body) == ["abcdef"]


def test_removing_secret_keys_reaches_nested_mappings_and_lists() -> None:
    body = {"secretKey": "s", "files": [{"id": "f", "Token": "t"}], "params": {"api_key": "a"}}
    assert secrets.without_secrets(body) == {"files": [{"id": "f"}], "params": {}}
    assert secrets.masked(body) == {
        "secretKey": "<redacted>",
        "files": [{"id": "f", "Token": "<redacted>"}],
        "params": {"api_key": "<redacted>"},
    }


def test_no_module_but_secrets_keeps_its_own_secret_word_list() -> None:
    """A frozenset or tuple literal naming `password` outside secrets.py is a second list."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "secrets.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Set | ast.Tuple | ast.List) and any(
                isinstance(e, ast.Constant) and e.value == "password" for e in node.elts
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []
