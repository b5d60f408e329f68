"""The sink registry: every via, its enabling setting, its options and its factory in one table."""

from __future__ import annotations

import pytest

from switchboard.app import build_sinks, refuse_rules_without_their_sink
from switchboard.errors import RuleLoadError
from switchboard.model import submit
from switchboard.rules.yaml_rules import SUBMIT_KEYS
from switchboard.settings import Settings
from switchboard.sink_registry import OPTION_KEYS, SINKS, option_problems


def test_every_sink_option_is_a_submit_key_and_belongs_to_exactly_one_via() -> None:
    owners = [via for kind in SINKS.values() for _ in kind.options for via in [kind.via]]
    assert len(owners) == len(OPTION_KEYS)
    assert set(OPTION_KEYS) <= set(SUBMIT_KEYS)


def test_an_option_given_to_another_via_names_the_via_it_belongs_to() -> None:
    assert option_problems("amqp", {"entrypoint": "x"}) == [
        ("entrypoint", "entrypoint is only for via: ray, not via: amqp")
    ]


def test_python_submit_refuses_an_unknown_via_naming_every_known_one() -> None:
    with pytest.raises(ValueError, match="via must be one of 'amqp', 'clowder-api', 'ray'"):
        submit("x", via="carrier-pigeon")


def test_only_the_sinks_whose_setting_is_set_are_built() -> None:
    sinks = build_sinks(Settings())
    try:
        assert list(sinks) == ["amqp"]
    finally:
        for sink in sinks.values():
            sink.close()


def test_the_startup_check_names_the_variable_the_registry_gives(tmp_path) -> None:
    from switchboard.rules import load_rules

    rules = tmp_path / "rules.yaml"
    rules.write_text("- name: r\n  submit: {extractor: x, via: clowder-api}\n")
    with pytest.raises(RuleLoadError, match="submits via clowder-api but CLOWDER_URL is not set"):
        refuse_rules_without_their_sink(load_rules([str(rules)]), Settings())
