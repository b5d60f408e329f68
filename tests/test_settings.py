"""Settings come from the environment, and flags override it."""

import pytest
from click.testing import CliRunner

from switchboard.cli import main
from switchboard.errors import SettingsError
from switchboard.settings import DEFAULT_DATABASE_URL, Settings


def test_defaults_use_the_embedded_sqlite_database():
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///")


def test_environment_variables_named_in_the_design_are_read():
    settings = Settings.from_env(
        {
            "RABBITMQ_URI": "amqp://u:p@broker:5672/%2f",
            "SWITCHBOARD_DATABASE_URL": "postgresql+psycopg://db/x",
            "SWITCHBOARD_RULES": "rules/a.yaml,rules/b",
            "SWITCHBOARD_QUEUE": "ncsa.rulechecker.terra",
            "CLOWDER_URL": "https://clowder.example.org",
            "CLOWDER_KEY": "k",
            "RAY_ADDRESS": "ray://head:10001",
            "SWITCHBOARD_PREFETCH": "17",
            "SWITCHBOARD_RULE_TIMEOUT_S": "0.5",
        }
    )
    assert settings.rabbitmq_uri == "amqp://u:p@broker:5672/%2f"
    assert settings.database_url == "postgresql+psycopg://db/x"
    assert settings.rules == ("rules/a.yaml", "rules/b")
    assert settings.queue == "ncsa.rulechecker.terra"
    assert settings.clowder_url == "https://clowder.example.org"
    assert settings.ray_address == "ray://head:10001"
    assert settings.prefetch_count == 17
    assert settings.rule_timeout_s == 0.5


def test_flags_override_the_environment_and_none_means_not_given():
    settings = Settings.from_env({"SWITCHBOARD_QUEUE": "from-env"}, queue="from-flag", rules=None)
    assert settings.queue == "from-flag"
    assert settings.rules == ("rules",)


def test_the_clowder_key_is_not_shown_in_the_settings_repr():
    settings = Settings.from_env({"CLOWDER_KEY": "very-secret-key"})
    assert "very-secret-key" not in repr(settings)


def test_legacy_exchange_binding_and_relay_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SWITCHBOARD_BIND_CLOWDER_EXCHANGE": "yes",
            "SWITCHBOARD_BINDING_KEYS": "*.dataset.file.added,*.file.created",
            "SWITCHBOARD_RELAY_MAX_ATTEMPTS": "3",
            "SWITCHBOARD_HEARTBEAT_INTERVAL_S": "60",
        }
    )
    assert settings.legacy_exchange_bind is True
    assert settings.legacy_binding_keys == ("*.dataset.file.added", "*.file.created")
    assert settings.relay_max_attempts == 3
    assert settings.heartbeat_interval_s == 60.0


def test_a_value_its_setting_cannot_take_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_PREFETCH: invalid literal"):
        Settings.from_env({"SWITCHBOARD_PREFETCH": "abc"})
    with pytest.raises(SettingsError, match="SWITCHBOARD_BIND_CLOWDER_EXCHANGE: expected one of"):
        Settings.from_env({"SWITCHBOARD_BIND_CLOWDER_EXCHANGE": "flase"})


def test_the_cli_reports_a_bad_environment_variable_as_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(main, ["check", "rules"], env={"SWITCHBOARD_PREFETCH": "abc"})
    assert result.exit_code == 1
    assert "Error: SWITCHBOARD_PREFETCH: invalid literal" in result.output
    assert "Traceback" not in result.output


def test_clowder_version_and_max_delays_are_read_and_a_bad_version_is_refused_naming_it():
    settings = Settings.from_env({"CLOWDER_VERSION": "2", "SWITCHBOARD_MAX_DELAYS": "5"})
    assert (settings.clowder_version, settings.max_delays) == (2, 5)
    assert (Settings().clowder_version, Settings().max_delays) == (1, 20)
    with pytest.raises(SettingsError, match="CLOWDER_VERSION: must be 1 or 2, not 3"):
        Settings.from_env({"CLOWDER_VERSION": "3"})
    with pytest.raises(SettingsError, match="SWITCHBOARD_MAX_DELAYS"):
        Settings.from_env({"SWITCHBOARD_MAX_DELAYS": "-1"})


def test_the_repr_of_settings_shows_no_broker_or_database_password() -> None:
    settings = Settings(
        rabbitmq_uri="amqp://user:broker-pw-1@rabbit:5672/%2f",
        database_url="postgresql+psycopg://user:db-pw-2@db:5432/switchboard",
        clowder_key="clowder-key-3",
    )
    shown = repr(settings)
    assert "Settings(" in shown
    for secret in ("broker-pw-1", "db-pw-2", "clowder-key-3"):
        assert secret not in shown
