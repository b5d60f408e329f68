"""What the Ray poller records for Ray's words, without Ray."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from switchboard.ray_poller import RayJobPoller, ray_update

AT = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_failed_job_says_its_error_type_and_exit_code_and_the_same_word_has_one_key() -> None:
    info = SimpleNamespace(
        status="FAILED",
        message="Job failed.",
        error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
        driver_exit_code=2,
    )
    update = ray_update("job-1", info, AT)
    assert update is not None
    assert (update.status, update.source) == ("failed", "ray")
    assert update.message == "Job failed.; error type JOB_ENTRYPOINT_COMMAND_ERROR; exit code 2"
    assert ray_update("job-1", info, datetime.now(UTC)).key == update.key  # type: ignore[union-attr]
    assert ray_update("job-1", SimpleNamespace(status="WEIRD", message=None), AT) is None


def test_rays_running_or_pending_never_moves_a_job_back() -> None:
    news = RayJobPoller._news
    assert news("submitted", "submitted") and news("submitted", "started")
    assert not news("started", "submitted")
    assert not news("processing", "started")
    assert news("processing", "succeeded") and news("started", "failed")
