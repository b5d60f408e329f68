"""All configuration in one dataclass; `Settings.from_env` is the only reader of the environment."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from .delays import DEFAULT_MAX_DELAYS
from .errors import SettingsError

DEFAULT_DATABASE_URL = "sqlite:///switchboard.db"


def _split_paths(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.replace(",", os.pathsep).split(os.pathsep) if p)


@dataclass(frozen=True)
class Settings:
    """Everything Switchboard can be told. Flags override the environment, which overrides these."""

    # Left out of the repr: their passwords must not reach a log or a traceback.
    rabbitmq_uri: str = field(default="amqp://guest:guest@127.0.0.1:5672/%2f", repr=False)
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    rules: tuple[str, ...] = ("rules",)
    queue: str = "switchboard"
    clowder_url: str = ""
    clowder_key: str = field(default="", repr=False)
    ray_address: str = ""
    prefetch_count: int = 256
    batch_size: int = 200
    batch_wait_s: float = 0.05
    rule_timeout_s: float = 2.0
    max_event_bytes: int = 1_048_576
    # body bytes of received, unsettled deliveries before the consumer pauses (256 MiB)
    max_unacked_bytes: int = 268_435_456
    # crashes of the daemon a redelivered message may cause before it is dead-lettered
    max_crashes: int = 3
    legacy_exchange_bind: bool = False
    legacy_binding_keys: tuple[str, ...] = ("*.dataset.file.added",)
    heartbeat_interval_s: float = 300.0
    relay_max_attempts: int = 10
    relay_backoff_s: float = 1.0
    relay_lease_s: float = 30.0
    # while the input has a backlog, a relay thread starts a round at most this often
    relay_backlog_gap_s: float = 0.3
    clowder_retry_delay_s: float = 30.0
    clowder_version: int = 1  # pyclowder's CLOWDER_VERSION: 1 (Clowder v1) or 2 (clowder2)
    max_delays: int = (
        DEFAULT_MAX_DELAYS  # times one event may wait for Clowder before it is dead-lettered
    )
    manifest_dir: str = ""
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"  # the metrics server's address; 0.0.0.0 for every interface
    # Sent and failed outbox rows and dedup-ledger ids older than this are pruned; 0 keeps all.
    retention_days: float = 30.0
    # Also keep at most this many archived events, ledger ids and finished outbox rows; 0: no cap.
    retention_rows: int = 0
    # Archive every consumed event with its outcome (provenance, `explain --event`, backfill).
    archive: bool = True
    # pyclowder's MOUNTED_PATHS for legacy rules: {"path Clowder reports": "path seen here"}
    mounted_paths: Mapping[str, str] = field(default_factory=dict)
    # Legacy rules' `files[].filepath` when Clowder gives no path (no CLOWDER_URL, no admin key,
    # not disk storage): a template over {dataset_id}, {dataset_name}, {file_id}, {filename},
    # e.g. "/home/clowder/sites/ua-mac/Level_1/{dataset_id}/{filename}". Empty: the bare name.
    legacy_file_path: str = ""
    # Callables YAML `python:` totals may name besides files beside the rule file, as
    # `module:function` or `module:*`; switchboard.collections.totals:count_files always is.
    python_allowlist: frozenset[str] = frozenset()
    # Our durable queue for extractors' status updates ("" means `<queue>.status`), and
    # whether each update is relayed on to the job's original reply_to (Clowder).
    status_queue: str = ""
    status_forward: bool = True
    # The daemon's one HTTP server (/metrics, /healthz, /readyz, the status page, /api); 0: off.
    # metrics_port/metrics_host are its deprecated aliases (used while http_port is 0).
    http_port: int = 0
    http_host: str = "127.0.0.1"  # any other address needs http_token
    http_token: str = field(default="", repr=False)  # bearer token or `switchboard_token` cookie
    # /healthz fails once the daemon's loop has not turned for this long (a stuck loop)
    health_max_stall_s: float = 120.0
    # Ray's token (Ray >= 2.59 token auth), sent as `Authorization: Bearer`; left out of the repr.
    ray_auth_token: str = field(default="", repr=False)
    # CPUs of the private Ray head `switchboard run` starts for RAY_ADDRESS=local.
    ray_num_cpus: int = 2
    # Where batch jobs write results.jsonl and summary.json, as `<dir>/<job id>/` on the node
    # running the job (a disk it shares with you); empty: inside the job's own working_dir.
    ray_output_dir: str = ""
    # How often the job poller asks Ray (and Clowder v2) for the state of unfinished jobs; 0: never.
    job_poll_interval_s: float = 10.0
    # Back-pressure per target, JSON {"target": {"max_in_flight": 50, "rate": "10/s"}} (rule
    # files may add `limits:` too); a row admitted this long ago no longer counts in flight.
    limits: str = ""
    in_flight_timeout_s: float = 3600.0
    throttle_recheck_s: float = 1.0  # how soon a throttled row is looked at again

    _ENV: ClassVar[dict[str, str]] = {
        "rabbitmq_uri": "RABBITMQ_URI",
        "database_url": "SWITCHBOARD_DATABASE_URL",
        "rules": "SWITCHBOARD_RULES",
        "queue": "SWITCHBOARD_QUEUE",
        "clowder_url": "CLOWDER_URL",
        "clowder_key": "CLOWDER_KEY",
        "ray_address": "RAY_ADDRESS",
        "prefetch_count": "SWITCHBOARD_PREFETCH",
        "batch_size": "SWITCHBOARD_BATCH_SIZE",
        "rule_timeout_s": "SWITCHBOARD_RULE_TIMEOUT_S",
        "max_event_bytes": "SWITCHBOARD_MAX_EVENT_BYTES",
        "max_unacked_bytes": "SWITCHBOARD_MAX_UNACKED_BYTES",
        "max_crashes": "SWITCHBOARD_MAX_CRASHES",
        "manifest_dir": "SWITCHBOARD_MANIFEST_DIR",
        "metrics_port": "SWITCHBOARD_METRICS_PORT",
        "metrics_host": "SWITCHBOARD_METRICS_HOST",
        "retention_days": "SWITCHBOARD_RETENTION_DAYS",
        "retention_rows": "SWITCHBOARD_RETENTION_ROWS",
        "archive": "SWITCHBOARD_ARCHIVE",
        "mounted_paths": "SWITCHBOARD_MOUNTED_PATHS",
        "legacy_file_path": "SWITCHBOARD_LEGACY_FILE_PATH",
        "python_allowlist": "SWITCHBOARD_PYTHON_ALLOWLIST",
        "relay_lease_s": "SWITCHBOARD_RELAY_LEASE_S",
        "relay_backlog_gap_s": "SWITCHBOARD_RELAY_BACKLOG_GAP_S",
        "clowder_retry_delay_s": "SWITCHBOARD_CLOWDER_RETRY_DELAY_S",
        "clowder_version": "CLOWDER_VERSION",
        "max_delays": "SWITCHBOARD_MAX_DELAYS",
        "batch_wait_s": "SWITCHBOARD_BATCH_WAIT_S",
        "legacy_exchange_bind": "SWITCHBOARD_BIND_CLOWDER_EXCHANGE",
        "legacy_binding_keys": "SWITCHBOARD_BINDING_KEYS",
        "heartbeat_interval_s": "SWITCHBOARD_HEARTBEAT_INTERVAL_S",
        "relay_max_attempts": "SWITCHBOARD_RELAY_MAX_ATTEMPTS",
        "relay_backoff_s": "SWITCHBOARD_RELAY_BACKOFF_S",
        "status_queue": "SWITCHBOARD_STATUS_QUEUE",
        "status_forward": "SWITCHBOARD_STATUS_FORWARD",
        "http_port": "SWITCHBOARD_HTTP_PORT",
        "http_host": "SWITCHBOARD_HTTP_HOST",
        "http_token": "SWITCHBOARD_HTTP_TOKEN",
        "health_max_stall_s": "SWITCHBOARD_HEALTH_MAX_STALL_S",
        "ray_auth_token": "RAY_AUTH_TOKEN",
        "ray_num_cpus": "SWITCHBOARD_RAY_NUM_CPUS",
        "ray_output_dir": "SWITCHBOARD_RAY_OUTPUT_DIR",
        "job_poll_interval_s": "SWITCHBOARD_JOB_POLL_INTERVAL_S",
        "limits": "SWITCHBOARD_LIMITS",
        "in_flight_timeout_s": "SWITCHBOARD_IN_FLIGHT_TIMEOUT_S",
        "throttle_recheck_s": "SWITCHBOARD_THROTTLE_RECHECK_S",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the variables named in DESIGN.md, then apply non-None `overrides` (CLI flags)."""
        env = os.environ if environ is None else environ
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, var in cls._ENV.items():
            if var in env and env[var] != "":
                try:
                    values[name] = _coerce(types[name], env[var])
                except ValueError as exc:
                    raise SettingsError(f"{var}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    def __post_init__(self) -> None:
        if self.clowder_version not in (1, 2):
            raise SettingsError(f"CLOWDER_VERSION: must be 1 or 2, not {self.clowder_version!r}")
        if self.max_delays < 0:
            raise SettingsError(f"SWITCHBOARD_MAX_DELAYS: must be 0 or more, not {self.max_delays}")
        if self.job_poll_interval_s < 0:
            raise SettingsError(
                "SWITCHBOARD_JOB_POLL_INTERVAL_S: must be 0 (off) or more, "
                f"not {self.job_poll_interval_s}"
            )
        self.target_limits()  # a SettingsError now rather than when the relay starts

    def target_limits(self) -> dict[str, Any]:
        """SWITCHBOARD_LIMITS parsed: {target: throttle.TargetLimit}; SettingsError if bad."""
        if not self.limits.strip():
            return {}
        from .throttle import parse_limits

        try:
            return parse_limits(json.loads(self.limits), "SWITCHBOARD_LIMITS")
        except ValueError as exc:  # JSONDecodeError too
            raise SettingsError(
                str(exc)
                if "SWITCHBOARD_LIMITS" in str(exc)
                else f"SWITCHBOARD_LIMITS: not JSON: {exc}"
            ) from None

    @property
    def status_queue_name(self) -> str:
        """The queue extractors send our jobs' status updates to."""
        return self.status_queue or f"{self.queue}.status"

    @property
    def sink_timeout_s(self) -> float:
        """How long one send may take: half the relay's claim, so a send checked under a claim
        always ends while that claim holds (no other relay can have taken the row)."""
        return self.relay_lease_s / 2


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


_ALLOWLIST_ENTRY = re.compile(r"[A-Za-z_][\w.]*:(?:[A-Za-z_]\w*|\*)")


def _allowlist(raw: str) -> frozenset[str]:
    """Comma-separated `module:function` / `module:*` entries (SWITCHBOARD_PYTHON_ALLOWLIST)."""
    entries = frozenset(e.strip() for e in raw.split(",") if e.strip())
    for entry in sorted(entries):
        if not _ALLOWLIST_ENTRY.fullmatch(entry):
            raise ValueError(f"expected module:function or module:* entries, got {entry[:80]!r}")
    return entries


def _coerce(type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    if kind.startswith("frozenset"):
        return _allowlist(raw)
    if kind.startswith("tuple"):
        return _split_paths(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        word = raw.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}, got {raw[:80]!r}")
        return word in _TRUE
    if kind.startswith("Mapping"):
        return _json_object(raw)
    return raw


def _json_object(raw: str) -> dict[str, str]:
    """A JSON object of strings (SWITCHBOARD_MOUNTED_PATHS); ValueError saying what is wrong."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"expected a JSON object of strings, got {raw[:80]!r}: {exc}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"expected a JSON object of strings, got {raw[:80]!r}")
    return value
