"""Which updates are relayed to Clowder: all (v1), only Clowder-issued jobs' (v2), none (off)."""

from __future__ import annotations

from dataclasses import replace

from switchboard.jobs.forwarding import ForwardingPolicy, forward_id
from switchboard.jobs.views import JobView
from tests.conftest import START

JOB = JobView(
    job_id="job-1",
    rule="r",
    target="ext",
    via="amqp",
    resource_type="file",
    resource_id="f",
    dataset_id="d",
    clowder_job_id=None,
    ray_submission_id=None,
    reply_to="clowder.abc",
    correlation_id="corr-1",
    status="submitted",
    latest_message=None,
    created_at=START,
    sent_at=START,
    started_at=None,
    updated_at=START,
    finished_at=None,
)


def test_clowder_v1_gets_every_update_of_a_job_with_a_reply_queue() -> None:
    assert ForwardingPolicy(clowder_version=1).forwards(JOB, {"job_id": "job-1"})
    assert not ForwardingPolicy().forwards(replace(JOB, reply_to=None), {})


def test_clowder_v2_never_gets_our_own_job_ids() -> None:
    policy = ForwardingPolicy(clowder_version=2)
    issued = replace(JOB, clowder_job_id="65a1f0c2e4b0a1b2c3d4e5f7")

    assert not policy.forwards(JOB, {"job_id": "job-1"})
    assert not policy.forwards(issued, {"job_id": "job-1"})
    assert policy.forwards(issued, {"job_id": "65a1f0c2e4b0a1b2c3d4e5f7"})


def test_forwarding_switched_off_forwards_nothing() -> None:
    assert not ForwardingPolicy(enabled=False).forwards(JOB, {"job_id": "job-1"})


def test_a_forwarded_copy_has_an_outbox_id_of_64_characters_at_most() -> None:
    assert len(forward_id("a" * 64)) == 64
