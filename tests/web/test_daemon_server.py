"""`switchboard run` with SWITCHBOARD_HTTP_PORT: the daemon's own server on real RabbitMQ."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest

from switchboard.app import build_app
from switchboard.settings import Settings
from switchboard.store.migrate import upgrade
from tests.broker import URI

pytestmark = pytest.mark.rabbitmq


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_the_daemon_serves_probes_metrics_and_pages_once_it_consumes(
    tmp_path: Path, channel: object, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- name: tifs\n  when: {file.name: {suffix: .tif}}\n  submit: {extractor: x}\n"
    )
    database = f"sqlite:///{tmp_path / 'state.db'}"
    upgrade(database)
    queue = f"test.{uuid.uuid4().hex}"
    port = _free_port()
    settings = Settings(
        rabbitmq_uri=URI,
        database_url=database,
        rules=(str(rules),),
        queue=queue,
        http_port=port,
        heartbeat_interval_s=3600,
    )
    with caplog.at_level(logging.INFO):
        app = build_app(settings)
    base = f"http://127.0.0.1:{port}"
    loop = threading.Thread(target=app.daemon.run)
    try:
        startup = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
        assert startup and f"1 rule(s), queue {queue}, database {database}" in startup[0]
        assert "sinks amqp" in startup[0]
        loop.start()
        for _ in range(600):  # until the source has connected (no time is asserted)
            status, body = _get(base + "/readyz")
            if status == 200:
                break
            threading.Event().wait(0.05)
        assert status == 200, body
        assert {c["name"] for c in json.loads(body)["checks"]} >= {"consuming", "rules"}
        assert _get(base + "/healthz")[0] == 200
        status, metrics = _get(base + "/metrics")
        text = metrics.decode()
        assert status == 200
        assert "switchboard_build_info{" in text and "process_resident_memory_bytes" in text
        assert "switchboard_rules_loaded 1.0" in text
        assert f'switchboard_queue_messages{{queue="error.{queue}"}} 0.0' in text
        assert "_created" not in text
        assert _get(base + "/")[0] == 200
        assert _get(base + "/api/rules")[0] == 200
        dead = json.loads(_get(base + "/api/dead-letters")[1])
        assert dead["queues"]["error_queue"] == f"error.{queue}"
        assert dead["queues"]["error_messages"] == 0
        assert _get(base + "/no/such/page")[0] == 404
    finally:
        app.daemon.stop()
        loop.join(30)
        app.close()
        for name in (queue, f"error.{queue}", f"retry.{queue}", f"{queue}.status"):
            channel.queue_delete(name)  # type: ignore[attr-defined]  # a pika channel
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/healthz", timeout=5)  # closed with the app
