"""`switchboard demo --database` then `switchboard web`: the demo day's results in a browser."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from switchboard.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _switchboard() -> str:
    found = Path(sys.executable).with_name("switchboard")
    return str(found) if found.exists() else "switchboard"


def _read(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


def test_demo_then_web_shows_the_demo_days_collection_and_submissions(
    tmp_path: Path, root_logging_restored: None
) -> None:
    database = f"sqlite:///{tmp_path / 'switchboard.db'}"
    demo = CliRunner().invoke(
        main, ["demo", "--rules", str(ROOT / "rules"), "--database", database]
    )
    assert demo.exit_code == 0, demo.output
    assert f"look at it: switchboard web --database {database}" in demo.output
    web = subprocess.Popen(
        [
            _switchboard(),
            "web",
            "--database",
            database,
            "--port",
            "0",
            "--rules",
            str(ROOT / "rules"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "SWITCHBOARD_HTTP_PORT": ""},
    )
    try:
        assert web.stdout is not None
        line = web.stdout.readline()
        found = re.search(r"serving (http://\S+)/ from", line)
        assert found, line
        base = found.group(1)
        collections = json.loads(_read(base + "/api/collections"))
        keys = {c["key"]: c for c in collections["items"]}
        assert keys["fullfield-rgb/2017-05-01"]["member_count"] == 30
        assert keys["fullfield-rgb/2017-05-01"]["state"] == "fired"
        jobs = json.loads(_read(base + "/api/jobs?limit=500"))
        assert jobs["total"] == 74
        assert {j["target"] for j in jobs["items"]} >= {"terra.geotiff.fieldmosaic"}
        page = _read(base + "/").decode()
        assert "fullfield-rgb/2017-05-01" in page and "terra.stereo-rgb.bin2tif" in page
        rules = json.loads(_read(base + "/api/rules?limit=500"))
        assert {r["name"] for r in rules["items"]} >= {"stereo-bin2tif", "fullfield-rgb-mosaic"}
        assert "switchboard_collections_open 1.0" in _read(base + "/metrics").decode()
    finally:
        web.send_signal(signal.SIGINT)
        web.communicate(timeout=30)
    assert web.returncode == 0


def test_web_refuses_an_unmigrated_database_and_an_open_bind_without_a_token(
    tmp_path: Path, root_logging_restored: None
) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    refused = CliRunner().invoke(main, ["web", "--database", empty, "--port", "0"])
    assert refused.exit_code == 1 and "switchboard db upgrade" in refused.output
    open_bind = CliRunner().invoke(
        main, ["web", "--database", empty, "--port", "0", "--host", "0.0.0.0"]
    )
    assert open_bind.exit_code == 1 and "SWITCHBOARD_HTTP_TOKEN" in open_bind.output
