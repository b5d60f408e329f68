"""A quiet collection's trigger: what the sweeper needs to fire later without the event.

Both directions of the round trip live here, so what `trigger_of` stores is exactly what
`event_of` and `requests_of` read back (older triggers included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..events import parse_event
from ..model import Event, SubmitRequest
from ..records import body_bytes
from ..rules.collect import Collected
from ..sink_registry import as_json, plain_options

_OLD_RAY_KEYS = ("entrypoint", "runtime_env")  # options kept beside the request before 0.5


def trigger_of(event: Event, collected: Collected) -> dict[str, Any]:
    """The event and rendered targets of the member that armed the quiet deadline.

    The event is kept as its original body text (`raw`), not as a re-encoded object: the
    sweeper parses exactly what arrived, however it was escaped. Triggers armed by older
    versions hold `body` (an object) instead.
    """
    return {
        **event_record(event),
        "total": collected.total if isinstance(collected.total, int) else None,
        "all_of": sorted(collected.all_of),
        "requests": request_records(collected.requests),
    }


def event_record(event: Event) -> dict[str, Any]:
    """The part of a trigger `event_of` reads back: body text, routing key, reply properties."""
    return {
        **_stored_body(event),
        "routing_key": event.routing_key,
        "properties": {
            k: v for k, v in event.properties.items() if k in ("reply_to", "correlation_id")
        },
    }


def request_records(requests: Sequence[SubmitRequest]) -> list[dict[str, Any]]:
    """Rendered targets as JSON, as `requests_of` reads them back."""
    return [
        {
            "extractor": r.extractor,
            "resource": r.resource,
            "via": r.via,
            "parameters": dict(r.parameters),
            "options": as_json(r.options),
        }
        for r in requests
    ]


def requests_of(trigger: Mapping[str, Any]) -> tuple[SubmitRequest, ...]:
    """The targets `trigger_of` stored (older triggers keep Ray's options beside them)."""
    requests = []
    for r in trigger.get("requests") or ():
        options = r.get("options")
        if options is None:
            options = {k: r[k] for k in _OLD_RAY_KEYS if r.get(k) is not None}
        requests.append(
            SubmitRequest(
                r["extractor"],
                r["resource"],
                r["via"],
                MappingProxyType(r["parameters"]),
                plain_options(options),
            )
        )
    return tuple(requests)


def event_of(trigger: Mapping[str, Any]) -> Event:
    """The trigger's event, parsed from the body text it arrived as.

    No intake size limit applies: the body passed it when it arrived, and the limit may have
    been lowered since. A trigger armed by an older version holds the parsed `body`; it is
    re-encoded without ASCII escapes, so its size stays what arrived.
    """
    raw = trigger.get("raw")
    data = body_bytes(raw if isinstance(raw, str) else trigger.get("body"))
    return parse_event(
        data,
        trigger.get("properties") or {},
        routing_key=trigger.get("routing_key") or "",
        max_bytes=len(data),
    )


def _stored_body(event: Event) -> dict[str, Any]:
    """`{"raw": <body text>}`, or `{"body": <object>}` for an event built without its bytes."""
    try:
        raw = bytes(event.raw).decode("utf-8")
    except UnicodeDecodeError:  # parse_event refuses such bodies; a hand-made Event may not
        raw = ""
    return {"raw": raw} if raw else {"body": dict(event.body)}
