"""Submits `via: ray` outbox rows as Ray jobs through the Ray dashboard's job submission API."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DeliveryFailed, MessageNotEncodable, SubmissionRejected
from ..ports import JobMembers, OutboxRow, Sink
from ..secrets import is_secret
from ..secrets import redact_url as redact_uri
from ..settings import Settings
from ..sink_registry import RAY_JOB_VARIABLE, as_json
from .ray_batch_job import BatchJobs

DEFAULT_TIMEOUT_S = 60.0
_STATUS = re.compile(r"status code (\d{3})")


def ray_job_spec(row: OutboxRow) -> dict[str, Any]:
    """The keyword arguments of `JobSubmissionClient.submit_job` for one row.

    The submission id is the row's job id (so a replayed row can never start a second job),
    and the job reads the message body, parameters included, as JSON from the environment
    variable SWITCHBOARD_JOB. Secrets (Clowder's `secretKey`) are left out: Ray shows every
    job's runtime_env on its dashboard, which has no login by default.
    """
    submission = row.submission
    options = submission.options
    if not isinstance(options.get("entrypoint"), str):
        raise SubmissionRejected(f"job {submission.job_id} has no Ray entrypoint in its row")
    runtime_env = copy.deepcopy(as_json(options).get("runtime_env") or {})
    env_vars = dict(runtime_env.get("env_vars") or {})
    body = {key: value for key, value in row.body.items() if not is_secret(key)}
    try:
        env_vars[RAY_JOB_VARIABLE] = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:  # this row's fault alone: fail it
        raise MessageNotEncodable(f"job {submission.job_id}: body is not JSON: {exc}") from exc
    runtime_env["env_vars"] = env_vars
    from ..ray_batch.submission import driver_resources

    return {
        "entrypoint": options["entrypoint"],
        "submission_id": submission.job_id,
        "runtime_env": runtime_env,
        "metadata": job_metadata(row),
        **driver_resources(as_json(options).get("resources")),
    }


def job_metadata(row: OutboxRow) -> dict[str, str]:
    """Ray's metadata of the job: which rule and target it is, under which job id."""
    submission = row.submission
    return {"rule": submission.rule, "target": submission.extractor, "job_id": submission.job_id}


class RayJobSink(Sink):
    """Send `via: ray` rows as Ray jobs (implements `ports.Sink`).

    `address` is the dashboard's HTTP address (`http://ray-head:8265`). Ray is imported on the
    first send, so the rest of Switchboard never imports it. An unreachable or failing
    dashboard raises DeliveryFailed (the relay retries with backoff); a job spec Ray refuses
    raises SubmissionRejected (failed at once). A submission id Ray already knows means an
    earlier attempt got through: that counts as sent.

    `timeout_s` bounds each HTTP request to the dashboard; one send makes at most
    REQUESTS_PER_SEND of them (the version check of a new client, the submission, a lookup
    after an error; a batch job's send also asks whether its folder's package is known and
    uploads it, so its requests get `timeout_s * REQUESTS_PER_SEND / BATCH_REQUESTS_PER_SEND`
    each: the same bound for the whole send
    after an error), so a dashboard that accepts and never answers holds a send for at most
    `REQUESTS_PER_SEND * timeout_s`.

    Note: Ray's client lets the RAY_ADDRESS / RAY_API_SERVER_ADDRESS environment variables
    override `address`; Switchboard reads its own setting from the same RAY_ADDRESS.
    """

    REQUESTS_PER_SEND = 3
    BATCH_REQUESTS_PER_SEND = 5

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        batch: BatchJobs | None = None,
        auth_token: str = "",
    ) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ImportError(
                "RAY_ADDRESS is set but Ray is not installed: pip install 'switchboard[ray]'"
            )
        self.address = address
        self.where = redact_uri(address)  # for messages: a password in the URL stays out
        self.timeout_s = timeout_s
        self._request_s = timeout_s  # this send's bound per request (smaller for batch jobs)
        self.batch = batch or BatchJobs()
        self._headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
        self._client: Any = None

    def send(self, row: OutboxRow) -> None:
        if "batch" not in row.submission.options:
            self._submit(row, ray_job_spec(row))
            return
        # The folder is uploaded by submit_job (as the job's working_dir), then not needed.
        self._request_s = self.timeout_s * self.REQUESTS_PER_SEND / self.BATCH_REQUESTS_PER_SEND
        try:
            with tempfile.TemporaryDirectory(prefix="switchboard-job-") as folder:
                spec = self.batch.submit_kwargs(row, Path(folder) / "job", job_metadata(row))
                self._submit(row, spec)
        finally:
            self._request_s = self.timeout_s

    def _submit(self, row: OutboxRow, spec: dict[str, Any]) -> None:
        job_id = row.submission.job_id
        refused = _authentication_error()
        try:
            self._connect().submit_job(**spec)
        except refused as exc:  # a token Ray refuses: every retry would be refused too
            self._client = None
            raise SubmissionRejected(
                f"Ray at {self.where} refused our credentials for job {job_id} "
                f"({self._token_setting()}): {self._say(exc)}"
            ) from exc
        except (ValueError, TypeError) as exc:  # Ray's checks of the spec
            raise SubmissionRejected(f"Ray refused job {job_id}: {self._say(exc)}") from exc
        except OSError as exc:  # connection refused, reset, timed out (requests' errors too)
            self._client = None
            raise DeliveryFailed(f"Ray at {self.where} unreachable: {self._say(exc)}") from exc
        except RuntimeError as exc:
            if self._exists(job_id):
                return  # an earlier attempt submitted it (the answer was lost, or a replay)
            status = _status_of(exc)
            if status in (401, 403):  # an older Ray's answer to a missing or wrong token
                raise SubmissionRejected(
                    f"Ray at {self.where} refused our credentials for job {job_id} "
                    f"({self._token_setting()}): {self._say(exc)}"
                ) from exc
            if status is not None and 400 <= status < 500:
                raise SubmissionRejected(f"Ray refused job {job_id}: {self._say(exc)}") from exc
            message = f"Ray at {self.where} failed job {job_id}: {self._say(exc)}"
            raise DeliveryFailed(message) from exc

    def close(self) -> None:
        self._client = None

    def _say(self, exc: Exception) -> str:
        """Ray's error, short (it holds the server's whole traceback) and without secrets."""
        return _short(exc).replace(self.address, self.where)

    def _token_setting(self) -> str:
        if self._headers:
            return "the token in RAY_AUTH_TOKEN is not this cluster's"
        return "the cluster wants a token: set RAY_AUTH_TOKEN"

    def _connect(self) -> Any:
        """The job submission client; building it asks the dashboard for its version."""
        if self._client is None:
            self._client = _timed_client(self.address, lambda: self._request_s, self._headers)
        return self._client

    def _exists(self, job_id: str) -> bool:
        """Whether Ray knows a job with this submission id (False if it cannot tell)."""
        try:
            self._connect().get_job_info(job_id)
        except (OSError, RuntimeError):
            return False
        return True


def _timed_client(address: str, timeout_s: Callable[[], float], headers: dict[str, str]) -> Any:
    """Ray's JobSubmissionClient with a timeout on every request (Ray sets none)."""
    from ray.job_submission import JobSubmissionClient

    class TimedClient(JobSubmissionClient):
        def _do_request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s())
            return super()._do_request(*args, **kwargs)

    return TimedClient(address, headers=dict(headers) or None)


def _authentication_error() -> type[Exception]:
    """Ray's error for refused credentials (newer Rays only; imported late, like all of Ray)."""
    import ray.exceptions

    return getattr(ray.exceptions, "AuthenticationError", ValueError)


def _status_of(exc: Exception) -> int | None:
    """The HTTP status in Ray's `Request failed with status code N: ...` errors."""
    found = _STATUS.search(str(exc))
    return int(found.group(1)) if found else None


def _short(exc: Exception, limit: int = 500) -> str:
    """The first and last lines of a long message (a server traceback's last says why)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    if len(lines) > 1:
        text = f"{lines[0]} ... {text}"
    return text[:limit]


def from_settings(
    settings: Settings, timeout_s: float, members: JobMembers | None = None
) -> RayJobSink:
    """The `via: ray` sink of `sink_registry` (imports Ray only when it sends).

    Batch jobs read their members from `members` (the store) and publish progress to our
    status queue on RABBITMQ_URI, so it reaches the job's timeline.
    """
    batch = BatchJobs(
        members=members,
        status_url=settings.rabbitmq_uri,
        status_queue=settings.status_queue_name,
        clowder_url=settings.clowder_url,
        clowder_key=settings.clowder_key,
        clowder_version=settings.clowder_version,
        output_dir=settings.ray_output_dir,
        python=cluster_python(settings.ray_address),
    )
    return RayJobSink(
        settings.ray_address,
        timeout_s=timeout_s / RayJobSink.REQUESTS_PER_SEND,
        batch=batch,
        auth_token=settings.ray_auth_token,
    )


def job_client(settings: Settings, timeout_s: float = 10.0) -> Callable[[], Any]:
    """A job client of RAY_ADDRESS with our token, built on first use (the Ray poller's)."""
    headers = (
        {"Authorization": f"Bearer {settings.ray_auth_token}"} if settings.ray_auth_token else {}
    )
    made: list[Any] = []

    def client() -> Any:
        if not made:
            made.append(_timed_client(settings.ray_address, lambda: timeout_s, headers))
        return made[0]

    return client


def cluster_python(address: str) -> str:
    """The interpreter a job's entrypoint runs: ours for a Ray on this machine (the local
    head runs our venv), else the cluster's `python`."""
    host = urllib.parse.urlsplit(address if "//" in address else f"//{address}").hostname
    return sys.executable if host in ("127.0.0.1", "localhost", "::1") else "python"
