"""The archived body: the text as received with every secret-named key cut out."""

from __future__ import annotations

import json

import pytest

from switchboard.provenance.records import body_text
from switchboard.secrets import without_secrets

BODIES = [
    {"secretKey": "abc", "id": "f1", "datasetId": "d1"},
    {"id": "f1", "secretKey": 'a "quoted", value'},
    {"id": "f1", "secretKey": "x", "host": "h"},
    {"secretKey": "only"},
    {"id": "f1", "nested": {"token": "t", "keep": [1, {"password": "p"}]}, "SecretKey": "k"},
    {"id": "f1", "a.token": "dotted", "name": "key", "text": 'say "key": "no"'},
    {"id": "f1", "secretKey": {"an": "object"}, "apikey": 12345},
    {"id": "f1", "list": ["secretKey", "key:"], "nothing": None},
    {"id": "f1", "caf\u00e9": "x", "secretKey": "k"},
]


@pytest.mark.parametrize("body", BODIES)
def test_the_archived_body_is_the_body_without_its_secrets(body: dict) -> None:
    for raw in (json.dumps(body).encode(), json.dumps(body, separators=(",", ":")).encode()):
        assert json.loads(body_text(body, raw)) == without_secrets(body)


def test_the_text_as_received_is_kept_when_only_string_secrets_are_cut() -> None:
    raw = b'{ "id" : "f1",  "secretKey": "abc",\n "z": 1.50 }'
    assert body_text(json.loads(raw), raw) == '{ "id" : "f1",\n "z": 1.50 }'
