"""The message router at intake: a new inbound kind is one parser, one handler, one route."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from switchboard.errors import MalformedEvent
from switchboard.intake import BatchResult, Parsed, Route, Router
from switchboard.ports import Delivery
from switchboard.testing import ListDelivery


@dataclass(frozen=True)
class StatusUpdate:
    job_id: str
    status: str


def parse_status(delivery: Delivery) -> StatusUpdate:
    data = json.loads(bytes(delivery.body))
    if "job_id" not in data:
        raise MalformedEvent("a status update needs a job_id")
    return StatusUpdate(data["job_id"], data.get("status", ""))


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[object]] = []

    def handle(
        self, items: Sequence[Parsed[object]], result: BatchResult, fingerprint: str | None = None
    ) -> None:
        self.batches.append([item.message for item in items])
        result.committed.extend(item.delivery for item in items)


def delivery(tag: int, routing_key: str, body: dict[str, object]) -> ListDelivery:
    return ListDelivery(tag, json.dumps(body).encode(), {}, routing_key)


def test_each_batch_is_dispatched_by_message_kind_to_its_own_handler() -> None:
    statuses, others = Recorder(), Recorder()
    router = Router(
        [
            Route(parse_status, statuses, accepts=lambda d: d.routing_key == "status"),
            Route(lambda d: json.loads(bytes(d.body)), others),
        ]
    )
    result = router.process(
        [
            delivery(1, "status", {"job_id": "j1", "status": "done"}),
            delivery(2, "event", {"id": "e"}),
            delivery(3, "status", {"job_id": "j2"}),
        ]
    )
    assert statuses.batches == [[StatusUpdate("j1", "done"), StatusUpdate("j2", "")]]
    assert others.batches == [[{"id": "e"}]]
    assert sorted(d.delivery_tag for d in result.committed) == [1, 2, 3]


def test_a_message_its_parser_refuses_is_malformed_and_the_others_still_go_through() -> None:
    statuses = Recorder()
    router = Router([Route(parse_status, statuses)])
    result = router.process([delivery(1, "s", {"status": "x"}), delivery(2, "s", {"job_id": "j"})])
    assert [(d.delivery_tag, reason) for d, reason in result.malformed] == [
        (1, "a status update needs a job_id")
    ]
    assert statuses.batches == [[StatusUpdate("j", "")]]


def test_a_message_no_route_accepts_is_dead_lettered_with_a_reason() -> None:
    router = Router([Route(parse_status, Recorder(), accepts=lambda d: False)])
    result = router.process([delivery(1, "x", {"job_id": "j"})])
    assert [reason for _, reason in result.malformed] == ["no handler for this kind of message"]


class CountingParser:
    def __init__(self) -> None:
        self.parsed: list[int] = []

    def __call__(self, delivery: Delivery) -> object:
        self.parsed.append(delivery.delivery_tag)
        return parse_status(delivery)


class NoCrashes:
    """A crash guard that never saw a crash (counts attempts, forgets them)."""

    max_crashes = 3

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def record_attempt(self, fingerprint: str) -> int:
        self.attempts.append(fingerprint)
        return 1

    def forget(self, fingerprint: str) -> None:
        pass

    def forget_in(self, uow: object, fingerprint: str) -> None:
        pass


def test_a_delivery_parsed_ahead_is_dispatched_without_being_parsed_again() -> None:
    parse, statuses = CountingParser(), Recorder()
    router = Router([Route(parse, statuses)])
    first = delivery(1, "status", {"job_id": "j1"})
    router.parse_ahead(first)
    later = delivery(2, "status", {"job_id": "j2"})
    router.process([first, later])
    assert parse.parsed == [1, 2]  # each once: the first ahead, the second at dispatch
    assert statuses.batches == [[StatusUpdate("j1", ""), StatusUpdate("j2", "")]]


def test_a_malformed_delivery_parsed_ahead_is_dead_lettered_with_its_reason() -> None:
    statuses = Recorder()
    router = Router([Route(parse_status, statuses)])
    bad = delivery(1, "status", {"status": "done"})
    router.parse_ahead(bad)
    result = router.process([bad])
    assert result.malformed == [(bad, "a status update needs a job_id")]
    assert statuses.batches == []


def test_a_redelivered_delivery_is_not_parsed_before_the_crash_guard_counts_it() -> None:
    parse, statuses, guard = CountingParser(), Recorder(), NoCrashes()
    router = Router([Route(parse, statuses)], crash_guard=guard)
    suspect = ListDelivery(1, json.dumps({"job_id": "j1"}).encode(), {}, "s", redelivered=True)
    router.parse_ahead(suspect)
    assert parse.parsed == []  # parsing may be what crashed the daemon
    router.process([suspect])
    assert len(guard.attempts) == 1 and parse.parsed == [1]
