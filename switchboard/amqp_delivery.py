"""One delivery from our input queue, and the headers Switchboard puts on the ones it moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR_HEADER = "x-switchboard-error"
DELAY_HEADER = "x-switchboard-delayed"
ORIGINAL_ROUTING_KEY_HEADER = "x-switchboard-original-routing-key"
MAX_REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class AmqpDelivery:
    """One message from the input queue (implements `ports.Delivery`).

    `routing_key` is the key it was published with; for a message coming back from the retry
    queue that is the original key, restored from the header we stored it in.
    """

    delivery_tag: int
    body: bytes
    properties: Mapping[str, Any] = field(default_factory=dict)
    routing_key: str = ""
    redelivered: bool = False


def short_reason(reason: str) -> str:
    """A reason cut to MAX_REASON_CHARS, fit for a header."""
    reason = str(reason)
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 3] + "..."
