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


def _exec_form(instruction: str) -> list[str]:
    """The JSON array of a Dockerfile ENTRYPOINT/CMD instruction in exec form."""
    match = re.search(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"{DOCKERFILE.name} has no exec-form {instruction}"
    return json.loads(match.group(1))


def _switchboard_script() -> str:
    found = Path(sys.executable).with_name("switchboard")
    return str(found) if found.exists() else "switchboard"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_passes_docker_compose_validation() -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_compose_passes_only_settings_switchboard_reads() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    environment = compose["services"]["switchboard"]["environment"]
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
