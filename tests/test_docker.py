"""The deploy files stay true to the code: compose validates and the image command runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from switchboard.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "docker-compose.yml"
OVERLAY = ROOT / "docker" / "docker-compose.clowder.yml"
COMPOSE_FILES = pytest.mark.parametrize("compose", [COMPOSE, OVERLAY], ids=["own", "clowder"])


def _exec_form(instruction: str) -> list[str]:
    """The JSON array of a Dockerfile ENTRYPOINT/CMD instruction in exec form."""
    match = re.search(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"{DOCKERFILE.name} has no exec-form {instruction}"
    return json.loads(match.group(1))


def _switchboard_script() -> str:
    found = Path(sys.executable).with_name("switchboard")
    return str(found) if found.exists() else "switchboard"


ENV_EXAMPLE = ROOT / "docker" / ".env.example"
NEEDS_COMPOSE = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose not installed"
)


def _compose_config(
    env_file: Path, tmp_path: Path, compose: Path = COMPOSE
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `env_file`'s variables (none from this machine)."""
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", str(compose), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path)},
    )


@NEEDS_COMPOSE
def test_compose_file_passes_docker_compose_validation(tmp_path: Path) -> None:
    done = _compose_config(ENV_EXAMPLE, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "change-me-rabbitmq" in done.stdout  # the credentials come from the env file


@NEEDS_COMPOSE
def test_clowder_overlay_passes_docker_compose_validation_and_joins_clowders_network(
    tmp_path: Path,
) -> None:
    done = _compose_config(ENV_EXAMPLE, tmp_path, OVERLAY)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["networks"]["clowder"]["external"] is True
    assert config["networks"]["clowder"]["name"] == "clowder_clowder"
    switchboard = config["services"]["switchboard"]
    assert "clowder" in switchboard["networks"]
    assert "rabbitmq" not in config["services"]  # Clowder's broker, not one of our own
    assert switchboard["environment"]["RABBITMQ_URI"].endswith("@rabbitmq:5672/%2F")
    assert switchboard["environment"]["CLOWDER_URL"] == "http://clowder:9000"


@NEEDS_COMPOSE
def test_clowder_overlay_refuses_to_start_without_the_broker_and_token(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = _compose_config(empty, tmp_path, OVERLAY)
    assert done.returncode != 0
    assert "CLOWDER_RABBITMQ_URI" in done.stderr or "POSTGRES_PASSWORD" in done.stderr


@NEEDS_COMPOSE
def test_compose_refuses_to_start_without_real_credentials(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = _compose_config(empty, tmp_path)
    assert done.returncode != 0
    assert "RABBITMQ_" in done.stderr or "POSTGRES_PASSWORD" in done.stderr


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


@COMPOSE_FILES
def test_every_variable_the_compose_file_uses_is_in_the_env_example(compose: Path) -> None:
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    used = _variables(compose.read_text())
    assert used, "the compose file reads no variables"
    assert used <= example, used - example


@COMPOSE_FILES
def test_compose_publishes_ports_only_on_localhost_and_never_uses_guest(compose: Path) -> None:
    text = compose.read_text()
    services = yaml.safe_load(text)["services"]
    published = [str(port) for service in services.values() for port in service.get("ports", [])]
    assert published, "nothing is published"
    assert all(port.startswith("127.0.0.1:") for port in published), published
    assert "guest" not in text
    web = services["switchboard"]["environment"]
    assert web["SWITCHBOARD_HTTP_HOST"] == "0.0.0.0"  # inside the container, so a token:
    assert web["SWITCHBOARD_HTTP_TOKEN"].startswith("${SWITCHBOARD_HTTP_TOKEN:?")


@COMPOSE_FILES
def test_compose_checks_the_health_of_ray_postgres_and_switchboard_waits_for_them(
    compose: Path,
) -> None:
    services = yaml.safe_load(compose.read_text())["services"]
    ray_check = " ".join(services["ray-head"]["healthcheck"]["test"])
    assert "/api/gcs_healthz" in ray_check
    waits = services["switchboard"]["depends_on"]
    assert {name: w["condition"] for name, w in waits.items()} == {
        name: "service_healthy" for name in waits
    }
    assert "ray-head" in waits and "postgres" in waits


def test_image_has_a_healthcheck_on_healthz_and_runs_as_a_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD \[.*switchboard\.web\.probe.*healthz", text, re.M)
    assert re.search(r"^USER switchboard$", text, re.M)
    assert "SWITCHBOARD_HTTP_PORT=8080" in text


def test_own_compose_runs_its_own_broker_without_guest() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    rabbit = compose["services"]["rabbitmq"]["environment"]
    assert rabbit["RABBITMQ_DEFAULT_USER"].startswith("${RABBITMQ_USER:?")
    assert rabbit["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")


@COMPOSE_FILES
def test_compose_passes_only_settings_switchboard_reads(compose: Path) -> None:
    config = yaml.safe_load(compose.read_text())
    environment = config["services"]["switchboard"]["environment"]
    known = set(Settings._ENV.values())
    assert set(environment) <= known, set(environment) - known


def test_image_entrypoint_is_the_console_script_and_its_command_is_known() -> None:
    entrypoint, command = _exec_form("ENTRYPOINT"), _exec_form("CMD")
    assert entrypoint == ["switchboard"]
    done = subprocess.run(
        [_switchboard_script(), *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--migrate" in done.stdout


def test_image_migration_step_runs_outside_the_image(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    done = subprocess.run(
        [_switchboard_script(), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SWITCHBOARD_DATABASE_URL": f"sqlite:///{database}", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert database.exists()


def test_image_sets_only_settings_switchboard_reads_and_a_writable_database() -> None:
    text = DOCKERFILE.read_text()
    names = set(re.findall(r"\b(SWITCHBOARD_[A-Z_]+)=", text))
    assert names, "the image configures nothing"
    assert names <= set(Settings._ENV.values()), names - set(Settings._ENV.values())
    assert "SWITCHBOARD_DATABASE_URL=sqlite:////data/" in text
    assert re.search(r"chown switchboard /data", text)
