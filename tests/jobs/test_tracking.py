"""Extractor messages reply to our status queue with our job id; Clowder's reply is kept."""

from __future__ import annotations

from switchboard.jobs.tracking import (
    ORIGINAL_CORRELATION_HEADER,
    ORIGINAL_REPLY_TO_HEADER,
    original_reply,
    redirected,
    with_status_queue,
)
from tests.store.helpers import submission

CLOWDER = {"message_id": "job-1", "reply_to": "clowder.abc", "correlation_id": "c-1"}


def test_a_redirected_message_replies_to_us_and_keeps_clowder_s_reply_in_headers() -> None:
    props = redirected({**CLOWDER, "headers": {"x-rule": "r"}}, "sb.status", "job-1")

    assert (props["reply_to"], props["correlation_id"]) == ("sb.status", "job-1")
    assert props["headers"] == {
        "x-rule": "r",
        ORIGINAL_REPLY_TO_HEADER: "clowder.abc",
        ORIGINAL_CORRELATION_HEADER: "c-1",
    }
    assert original_reply(props) == ("clowder.abc", "c-1")


def test_a_message_clowder_gave_no_reply_queue_has_none_to_keep() -> None:
    props = redirected({"message_id": "job-1"}, "sb.status", "job-1")

    assert original_reply(props) == (None, None)


def test_a_message_never_redirected_keeps_its_own_reply() -> None:
    assert original_reply(CLOWDER) == ("clowder.abc", "c-1")


def test_only_messages_to_extractor_queues_are_redirected() -> None:
    def build(event, sub):
        return {}, dict(CLOWDER)

    tracked = with_status_queue(build, "sb.status")

    _, amqp = tracked(None, submission(via="amqp"))  # type: ignore[arg-type]
    _, ray = tracked(None, submission(via="ray"))  # type: ignore[arg-type]
    assert amqp["reply_to"] == "sb.status"
    assert ray == CLOWDER
