"""The HTTP server over a real socket: token auth off loopback, probes, a stuck loop, metrics."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from prometheus_client import generate_latest

from switchboard.daemon import Daemon
from switchboard.errors import SettingsError
from switchboard.intake import BatchResult
from switchboard.metrics import Metrics
from switchboard.ports import Delivery
from switchboard.relay import Relay
from switchboard.settings import Settings
from switchboard.store.sql import SqlStore
from switchboard.testing import ListSource
from switchboard.web.auth import is_loopback
from switchboard.web.gauges import StateGauges
from switchboard.web.live import LoopPulse
from switchboard.web.queue_depths import QueueDepths
from switchboard.web.server import WebServer
from switchboard.web.site import Site
from switchboard.web.wiring import endpoint
from tests.broker import URI
from tests.web.conftest import SiteMaker, daemon_live
from tests.web.seed import Seeded


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[WebServer] = []

    def start(site: Site, host: str = "127.0.0.1") -> str:
        server = WebServer(site, host, 0).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.address[1]}"

    yield start
    for server in servers:
        server.close()


def test_a_bind_beyond_loopback_is_refused_without_a_token() -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_HTTP_TOKEN"):
        endpoint(Settings(http_port=8080, http_host="0.0.0.0"))
    assert endpoint(Settings(http_port=8080, http_host="0.0.0.0", http_token="t")) is not None
    assert endpoint(Settings(http_port=8080)) is not None  # 127.0.0.1 by default
    assert endpoint(Settings()) is None
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.1")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_deprecated_metrics_port_settings_still_choose_where_the_server_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = endpoint(Settings(metrics_port=9100))
    assert found is not None and (found.host, found.port) == ("127.0.0.1", 9100)
    assert "deprecated" in caplog.text
    with pytest.raises(SettingsError, match=r"SWITCHBOARD_METRICS_HOST=0\.0\.0\.0"):
        endpoint(Settings(metrics_port=9100, metrics_host="0.0.0.0"))
    new = endpoint(Settings(http_port=8081, metrics_port=9100))
    assert new is not None and new.port == 8081  # the new setting wins


def test_off_loopback_every_page_needs_the_token_as_bearer_or_cookie_but_probes_do_not(
    seeded: Seeded, make_site: SiteMaker, serve: Any
) -> None:
    base = serve(make_site(token="s3cret"), host="0.0.0.0")
    for path in ("/", "/api/jobs", "/metrics", "/nope"):
        status, headers, _ = fetch(base + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert fetch(base + "/api/jobs", Authorization="Bearer wrong")[0] == 401
    assert fetch(base + "/api/jobs", Authorization="Bearer s3cret")[0] == 200
    assert fetch(base + "/", Cookie="switchboard_token=s3cret")[0] == 200
    assert fetch(base + "/nope", Authorization="Bearer s3cret")[0] == 404
    status, _, body = fetch(base + "/healthz")
    assert status == 200 and b"detail" not in body  # open, and saying only ok or not
    assert b"detail" in fetch(base + "/healthz", Authorization="Bearer s3cret")[2]


def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    site = make_site(token="s3cret")
    login = site.respond("GET", "/?token=s3cret", {})
    assert login.status == 303 and login.headers["Location"] == "/"
    assert login.headers["Set-Cookie"].startswith("switchboard_token=s3cret;")
    assert "HttpOnly" in login.headers["Set-Cookie"]
    assert site.respond("GET", "/?token=nope", {}).status == 401


class _StuckOnce:
    """An intake whose first batch hangs until released (a loop stuck in a batch)."""

    def __init__(self) -> None:
        self.entered_first = threading.Event()
        self.release = threading.Event()
        self.entered_second = threading.Event()
        self.calls = 0

    def process(self, deliveries: Sequence[Delivery]) -> BatchResult:
        self.calls += 1
        if self.calls == 1:
            self.entered_first.set()
            assert self.release.wait(60), "the test never released the batch"
        else:
            self.entered_second.set()
        return BatchResult(committed=list(deliveries))


class _Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_healthz_fails_while_the_daemon_loop_is_stuck_and_recovers_when_it_turns(
    seeded: Seeded, make_site: SiteMaker, store: SqlStore, serve: Any
) -> None:
    clock = _Monotonic()
    pulse = LoopPulse(clock)
    intake = _StuckOnce()
    source = ListSource([{"body": {"n": 1}}, {"body": {"n": 2}}])
    daemon = Daemon(source, intake, Relay(store, {}), batch_size=1, on_turn=pulse.beat)
    source.on_exhausted = daemon.stop
    base = serve(make_site(daemon_live(seeded, Metrics(), pulse=pulse, max_stall_s=30.0)))
    loop = threading.Thread(target=daemon.run)
    loop.start()
    try:
        assert intake.entered_first.wait(30)
        assert fetch(base + "/healthz")[0] == 200
        clock.now += 31  # the batch has held the loop past the bound
        status, _, body = fetch(base + "/healthz")
        assert status == 503 and b'"ok": false' in body
        assert fetch(base + "/readyz")[0] == 503  # not ready while not healthy
        intake.release.set()
        assert intake.entered_second.wait(30)
        assert fetch(base + "/healthz")[0] == 200
    finally:
        intake.release.set()
        loop.join(30)


def test_readyz_needs_a_consumer_the_database_and_rules(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    from tests.web.conftest import body_json, get

    ready = get(make_site(daemon_live(seeded, Metrics())), "/readyz")
    assert ready.status == 200
    assert {c["name"] for c in body_json(ready)["checks"]} == {
        "consuming",
        "database",
        "rules",
        "loop",
    }
    not_consuming = get(make_site(daemon_live(seeded, Metrics(), consuming=False)), "/readyz")
    assert not_consuming.status == 503
    [failed] = [c for c in body_json(not_consuming)["checks"] if not c["ok"]]
    assert failed["name"] == "consuming"


def test_metrics_carry_state_gauges_build_info_and_process_metrics_without_created_series(
    seeded: Seeded, store: SqlStore, clock: Any
) -> None:
    metrics = Metrics(process=True)
    metrics.build("1.2.3", "3.11")
    metrics.rule_outcomes(["a"], [("a", "timed out")])
    metrics.call("amqp", "ok", 0.01)
    metrics.registry.register(StateGauges(store.engine, clock=clock))
    clock.advance(90)
    text = generate_latest(metrics.registry).decode()
    assert "_created" not in text
    assert 'switchboard_build_info{python="3.11",version="1.2.3"} 1.0' in text
    assert "process_cpu_seconds_total" in text
    assert 'switchboard_outbox_rows{status="failed"} 2.0' in text
    assert "switchboard_outbox_oldest_pending_age_seconds 90.0" in text
    assert "switchboard_collections_open 1.0" in text
    assert "switchboard_collections_oldest_open_age_seconds 90.0" in text
    assert 'switchboard_rule_errors_total{kind="timeout",rule="a"} 1.0' in text
    assert 'switchboard_call_seconds_count{call="amqp",outcome="ok"} 1.0' in text
    assert "switchboard_database_up 1.0" in text


def test_metrics_still_answer_while_the_database_is_down() -> None:
    from switchboard.store.engine import make_engine

    down = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/nothing")
    metrics = Metrics()
    metrics.registry.register(StateGauges(down))
    text = generate_latest(metrics.registry).decode()
    assert "switchboard_database_up 0.0" in text
    assert "switchboard_outbox_rows" not in text


@pytest.mark.rabbitmq
def test_queue_depths_count_dead_letters_in_rabbitmq_without_taking_them(channel: Any) -> None:
    queue = f"test.{uuid.uuid4().hex}"
    channel.queue_declare(f"error.{queue}", durable=True)
    try:
        for n in range(3):
            channel.basic_publish("", f"error.{queue}", f"dead {n}".encode())
        depths = QueueDepths(URI, queue, ttl_s=0)
        found = depths.depths()
        assert (found.error, found.retry, found.problem) == (3, None, None)
        assert depths.depths().error == 3  # asking again took nothing off the queue
    finally:
        channel.queue_delete(f"error.{queue}")
    down = QueueDepths("amqp://guest:guest@127.0.0.1:9/%2f", queue).depths()
    assert down.error is None and down.problem


def test_the_image_healthcheck_probe_says_ok_only_while_the_server_is_healthy(
    seeded: Seeded, make_site: SiteMaker, serve: Any
) -> None:
    from switchboard.web.probe import probe

    clock = _Monotonic()
    pulse = LoopPulse(clock)
    base = serve(make_site(daemon_live(seeded, Metrics(), pulse=pulse, max_stall_s=30.0)))
    settings = Settings(http_port=int(base.rsplit(":", 1)[1]))
    assert probe("healthz", settings)[0] is True
    clock.now += 31
    ok, said = probe("healthz", settings)
    assert ok is False and "the loop turned 31.0 s ago" in said
    assert probe("healthz", Settings(http_port=9))[0] is False  # nothing listens there
    assert probe("healthz", Settings())[1].startswith("SWITCHBOARD_HTTP_PORT is not set")


def test_a_taken_port_is_refused_with_the_address_not_a_traceback(tmp_path: Any) -> None:
    import socket

    from switchboard.web.wiring import Endpoint, daemon_server

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", http_port=port)
        with pytest.raises(SettingsError, match=f"cannot listen on 127.0.0.1:{port}"):
            daemon_server(
                settings,
                Endpoint("127.0.0.1", port, ""),
                metrics=Metrics(),
                pulse=LoopPulse(),
                rules=lambda: None,  # type: ignore[arg-type,return-value]  # never read
                consuming=lambda: True,
            )
