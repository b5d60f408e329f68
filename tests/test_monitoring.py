"""The shipped alerts, Prometheus configuration and Grafana dashboard are valid and read only
series Switchboard really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from switchboard.metrics import Metrics
from switchboard.store.sql import SqlStore
from switchboard.web.gauges import StateGauges
from switchboard.web.live import LoopPulse

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "docker" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "docker" / "grafana" / "switchboard-dashboard.json"
NEEDS_PROMTOOL = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian's prometheus)"
)
_SERIES = re.compile(r"\b((?:switchboard|process)_[a-z_]+)")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@NEEDS_PROMTOOL
def test_alert_rules_pass_promtool_check() -> None:
    done = _promtool("check", "rules", str(ALERTS), cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 12 rules found" in done.stdout


@NEEDS_PROMTOOL
def test_alerts_fire_when_they_should_in_promtool_unit_tests() -> None:
    done = _promtool("test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr


@NEEDS_PROMTOOL
def test_a_broken_alert_expression_is_caught_by_promtool(tmp_path: Path) -> None:
    broken = tmp_path / "alerts.yml"
    broken.write_text(ALERTS.read_text().replace("> 86400", "> > 86400", 1))
    assert _promtool("check", "rules", str(broken), cwd=tmp_path).returncode != 0


@NEEDS_PROMTOOL
def test_the_example_prometheus_configuration_passes_promtool(tmp_path: Path) -> None:
    token = tmp_path / "switchboard.token"
    token.write_text("change-me-token\n")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "/etc/prometheus/switchboard.token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/switchboard.token", str(token))
    )
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    done = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_have_the_shape_prometheus_reads() -> None:
    """The schema check that runs even without promtool."""
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    names = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
            names.append(rule["alert"])
    assert len(names) == len(set(names))
    wanted = {
        "SwitchboardCollectionLate",
        "SwitchboardOutboxBacklogGrowing",
        "SwitchboardSubmissionsFailed",
        "SwitchboardNoEvents",
    }
    assert wanted <= set(names)


def _exported(store: SqlStore) -> set[str]:
    """Every series name a daemon's /metrics can show, each metric given a sample."""
    metrics = Metrics(process=True)
    metrics.batch(1, 0, 0.01)
    metrics.dead_lettered("malformed", 1)
    metrics.delayed_events(1)
    metrics.submission("x", "failed")
    metrics.rule_outcomes(["r"], [("r", "timed out")])
    metrics.call("amqp", "ok", 0.01)
    metrics.reloaded(ok=True)
    metrics.rules_active(1, 0.0)
    metrics.build("1", "3.11")
    metrics.job_counts({("x", "failed"): 1})  # the job tracking's series
    metrics.job_finished("x", 3.0)
    metrics.orphan_updates.inc()
    text = generate_latest(metrics.registry).decode()
    text += generate_latest(_state_registry(store)).decode()
    text += 'switchboard_queue_messages{queue="error.q"} 0\nup 1\n'  # from QueueDepths, Prometheus
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def _state_registry(store: SqlStore) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(StateGauges(store.engine, seconds_since_turn=LoopPulse().seconds_since))
    return registry


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_series_the_alerts_and_the_dashboard_read_is_exported(sql_store: SqlStore) -> None:
    exported = _exported(sql_store)
    expressions = [
        r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
    ]
    read = {
        name for expr in expressions + _dashboard_expressions() for name in _SERIES.findall(expr)
    }
    assert read, "no series found in the alerts and the dashboard"
    assert read <= exported, sorted(read - exported)


def test_the_dashboard_is_grafana_json_with_a_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Switchboard" and dashboard["uid"] == "switchboard"
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
