"""The one way a rule's request becomes a `Submission`: its resource, job id and options."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .jobids import job_id
from .model import Event, ResourceType, Submission, SubmitRequest

COLLECTION_RESOURCE = "collection"  # the job id namespace of a collection's firings


def resource_id_of(event: Event, resource: ResourceType) -> str:
    """The id of the file or dataset `event` is about ("" when it has none)."""
    if resource == "file":
        return event.file.id if event.file is not None else ""
    return event.dataset_id or ""


def generation_of(event: Event) -> str:
    """A per-event submission's generation: "0", except for manual submissions (`manual.*`),
    where it is the event's message id so an operator's deliberate re-check submits again."""
    return event.message_id if event.kind.value.startswith("manual.") else "0"


def collection_job_id(rule: str, request: SubmitRequest, key: str, generation: int) -> str:
    """A collection firing's job id: from (rule, target, key, generation), not the event."""
    return job_id(rule, request.extractor, COLLECTION_RESOURCE, key, str(generation))


def submission_for(
    rule: str,
    request: SubmitRequest,
    event: Event,
    *,
    collection: tuple[str, int] | None = None,
    parameters: Mapping[str, Any] | None = None,
    generation: str | None = None,
) -> Submission:
    """The submission of `request` made by `rule` for `event`, with its deterministic job id.

    A per-event job id derives from (rule, target, resource, generation); a collection
    firing's (`collection` = (key, generation)) from (rule, target, key, generation), and
    `parameters` (the request's plus what the firing adds) replace the request's.
    `generation` is the rule's re-run policy's (`rules.rerun.generation`); without it, "0"
    (a manual submission: its message id).
    """
    resource_id = resource_id_of(event, request.resource)
    if collection is None:
        if generation is None:
            generation = generation_of(event)
        jid = job_id(rule, request.extractor, request.resource, resource_id, generation)
    else:
        jid = collection_job_id(rule, request, *collection)
    return Submission(
        job_id=jid,
        rule=rule,
        extractor=request.extractor,
        resource_type=request.resource,
        resource_id=resource_id,
        via=request.via,
        parameters=request.parameters if parameters is None else MappingProxyType(dict(parameters)),
        event_message_id=event.message_id,
        options=request.options,
    )
