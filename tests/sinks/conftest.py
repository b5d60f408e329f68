"""Fixtures for sink tests: outbox rows built the way the processor builds them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.events import event_from_record
from switchboard.jobids import job_id
from switchboard.model import Submission
from switchboard.outgoing import extractor_message
from switchboard.ports import OutboxRow

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def make_row():
    """`make_row(extractor, resource_type="dataset", via="amqp", n=0)` -> a pending OutboxRow."""
    event = event_from_record(json.loads((FIXTURES / "v1_dataset_file_added.json").read_text()))

    def make(
        extractor: str, resource_type: str = "dataset", via: str = "amqp", n: int = 0
    ) -> OutboxRow:
        resource_id = event.dataset_id if resource_type == "dataset" else event.resource_id
        submission = Submission(
            job_id=job_id(f"rule-{n}", extractor, resource_type, resource_id),
            rule=f"rule-{n}",
            extractor=extractor,
            resource_type=resource_type,  # type: ignore[arg-type]
            resource_id=resource_id,
            via=via,  # type: ignore[arg-type]
            parameters={"n": n},
            event_message_id=event.message_id,
        )
        body, properties = extractor_message(event, submission)
        return OutboxRow(submission, body, properties, "pending", 0, datetime.now(UTC))

    return make
