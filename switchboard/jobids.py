"""Deterministic job ids: the same (rule, target, resource, generation) always gives the same id."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1f3a52-8f0e-4c1e-9a43-5b3c1c0de7a1")


def job_id(
    rule: str, extractor: str, resource_type: str, resource_id: str, generation: str = "0"
) -> str:
    """A UUID5 string; it is the AMQP message_id, the body's job_id and the Ray submission_id."""
    key = "\x1f".join((rule, extractor, resource_type, resource_id, generation))
    return str(uuid.uuid5(_NAMESPACE, key))
