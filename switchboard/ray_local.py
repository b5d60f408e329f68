"""A private local Ray head (`ray start --head --block`) for the embedded default and for tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

# Ray's client prefers these to the address it is given; the head must not inherit them either.
RAY_ADDRESS_VARIABLES = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
# Ray >= 2.59 reads these: token mode on the head, the token itself (or a file holding it).
RAY_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
DEFAULT_STARTUP_S = 90.0
DEFAULT_STOP_S = 60.0


class LocalRayError(RuntimeError):
    """The local Ray head did not start (the message holds the end of its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ray_executable() -> str:
    """The `ray` script next to this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


@dataclass
class LocalRay:
    """A Ray head of its own: own temp dir, free ports, dashboard (the job API) on 127.0.0.1.

    Use as a context manager; `address` is the dashboard's URL for `JobSubmissionClient`.
    Stopped by the process id of its `ray start --block` (SIGINT makes it stop everything it
    started; the process group is killed if it does not end in `stop_s`). Never `ray stop`,
    which stops every Ray of the machine.

    `auth_token` turns on Ray's token authentication (Ray >= 2.59, `RAY_AUTH_MODE=token`);
    clients then send `headers` (`Authorization: Bearer <token>`). Without it the head runs
    with `RAY_AUTH_MODE=disabled`, whatever the caller's environment says, so a token file in
    `~/.ray` cannot switch it on behind the client's back.
    """

    num_cpus: int = 1
    resources: Mapping[str, float] = field(default_factory=dict)
    auth_token: str | None = None
    startup_s: float = DEFAULT_STARTUP_S
    stop_s: float = DEFAULT_STOP_S
    environ: Mapping[str, str] | None = None  # the head's environment (default: ours)
    address: str = field(init=False, default="")
    temp_dir: str = field(init=False, default="")
    _process: subprocess.Popen[bytes] | None = field(init=False, default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers a job client needs for this head (empty without a token)."""
        return {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}

    @property
    def pid(self) -> int | None:
        """The process id of `ray start --block` while the head runs (what stops it)."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return Path(self.temp_dir) / "ray-start.log"

    def start(self) -> str:
        """Start the head and wait until its job API answers; its dashboard address."""
        # Short: Ray's socket paths under the temp dir must fit in 107 bytes.
        self.temp_dir = tempfile.mkdtemp(prefix="sbray-")
        dashboard_port = free_port()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(dashboard_port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                start_new_session=True,  # its own group: stopped as one, never ours
            )
        self.address = f"http://127.0.0.1:{dashboard_port}"
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self.address

    def stop(self) -> None:
        """Stop the head by its process id and remove its temp dir."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(self.stop_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group this head started
                process.wait()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self, dashboard_port: int) -> list[str]:
        ports = {
            "--port": free_port(),
            "--dashboard-port": dashboard_port,
            "--dashboard-agent-listen-port": free_port(),
            "--ray-client-server-port": free_port(),
        }
        command = [
            ray_executable(),
            "start",
            "--head",
            "--block",
            f"--num-cpus={self.num_cpus}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]
        if self.resources:
            command.append(f"--resources={json.dumps(dict(self.resources))}")
        return command

    def _environment(self) -> dict[str, str]:
        base = os.environ if self.environ is None else self.environ
        skip = (*RAY_ADDRESS_VARIABLES, *RAY_AUTH_VARIABLES)
        env = {key: value for key, value in base.items() if key not in skip}
        if self.auth_token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.auth_token)
        else:
            env["RAY_AUTH_MODE"] = "disabled"
        return env

    def _wait_until_up(self) -> None:
        """Poll the job API's version endpoint (what Ray's job client asks first)."""
        deadline = time.monotonic() + self.startup_s
        request = urllib.request.Request(f"{self.address}/api/version", headers=self.headers)
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalRayError(
                    f"ray start exited with {self._process.returncode}:\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200 and self._jobs_api_ready():
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise LocalRayError(
                    f"Ray's dashboard did not answer at {self.address} within "
                    f"{self.startup_s:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.3)

    def _jobs_api_ready(self) -> bool:
        """The job module answers (the version endpoint can come up before it)."""
        request = urllib.request.Request(f"{self.address}/api/jobs/", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
