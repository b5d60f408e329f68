"""W3C PROV documents of Switchboard's decisions, built and serialized with the `prov` package.

Entities: events (named by message id), Clowder files and datasets, rule-set versions,
collection manifests, job results. Activities: rule evaluations (rule, version, the conditions
that held) and jobs (status, start, end). Agents: this Switchboard instance, each extractor, each
Ray job. Relations: an evaluation `used` its event, file, dataset and rule version and
`wasAssociatedWith` Switchboard; a job `wasInformedBy` the evaluation that decided it, `used`
its resource (or manifest) and `wasAssociatedWith` its extractor or Ray job; a manifest
`wasGeneratedBy` the firing evaluation and `wasDerivedFrom` each member's event; a job result
`wasGeneratedBy` its job.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from prov.constants import PROV
from prov.identifier import Namespace
from prov.model import PROV_TYPE, ProvDocument, ProvEntity
from sqlalchemy import Connection, select

from ..store.collection_tables import CollectionFiring, ManifestMember, ManifestRow
from .archive import memberships
from .job_facts import TERMINAL, JobFacts, job_facts
from .queries import ArchivedRow, archived_event, member_events

SB = "urn:switchboard:ns#"
NAMESPACES = {
    "sb": SB,
    "event": "urn:switchboard:event:",
    "evaluation": "urn:switchboard:evaluation:",
    "rules": "urn:switchboard:rules:",
    "manifest": "urn:switchboard:manifest:",
    "collection": "urn:switchboard:collection:",
    "job": "urn:switchboard:job:",
    "result": "urn:switchboard:result:",
    "agent": "urn:switchboard:agent:",
    "file": "urn:clowder:file:",
    "dataset": "urn:clowder:dataset:",
    "extractor": "urn:clowder:extractor:",
    "rayjob": "urn:ray:job:",
}
SB_NS = Namespace("sb", SB)
firings = CollectionFiring.__table__
manifests = ManifestRow.__table__
manifest_members = ManifestMember.__table__


def _id(prefix: str, local: str) -> str:
    """A qualified name whose local part is `local` percent-encoded where PROV-N needs it."""
    return f"{prefix}:{quote(local, safe='-._~')}"


class ProvBuilder:
    """Adds what the database knows to one PROV document; each record is added once."""

    def __init__(self, connection: Connection, instance: str) -> None:
        self.connection = connection
        self.doc = ProvDocument()
        for prefix, uri in NAMESPACES.items():
            self.doc.add_namespace(prefix, uri)
        self.agent = self.doc.agent(
            _id("agent", f"switchboard-{instance}"),
            {PROV_TYPE: PROV["SoftwareAgent"], "sb:queue": instance},
        )
        self._done: set[str] = set()
        self._entities: dict[str, ProvEntity] = {}

    def _once(self, key: str) -> bool:
        if key in self._done:
            return False
        self._done.add(key)
        return True

    # -- events and their evaluations -----------------------------------------------------------

    def event(self, message_id: str) -> ArchivedRow | None:
        """The event's entity, its file and dataset, and the evaluations of the rules that
        matched it (with what they submitted); None if it is not archived."""
        row = archived_event(self.connection, message_id)
        if row is None or not self._once(f"event {message_id}"):
            return row
        fields = row.event or {}
        attributes: dict[Any, Any] = {
            PROV_TYPE: SB_NS["Event"],
            "sb:message_id": row.message_id,
            "sb:arrived_at": row.arrived_at,
            "sb:status": row.status,
        }
        if row.kind:
            attributes["sb:kind"] = row.kind
        if row.routing_key:
            attributes["sb:routing_key"] = row.routing_key
        if row.outcome.get("dead_letter"):
            attributes["sb:dead_letter"] = row.outcome["dead_letter"]
        entity = self.doc.entity(_id("event", row.message_id), attributes)
        used = [entity]
        if row.dataset_id:
            used.append(self._dataset(row.dataset_id, fields.get("dataset_name")))
        if row.file_id and row.file_id != row.dataset_id:
            used.append(self._file(row.file_id, (fields.get("file") or {}).get("name")))
        version = self._version(row.rule_version) if row.rule_version else None
        for matched in row.outcome.get("matched", []):
            self._evaluation(row, matched["rule"], matched.get("reasons", []), used, version)
        for backfill in row.outcome.get("backfills", []):
            rule = backfill["rule"]
            self._evaluation(row, rule, [], used, self._version(backfill["version"]))
        return row

    def _evaluation(
        self,
        row: ArchivedRow,
        rule: str,
        reasons: list[str],
        used: list[ProvEntity],
        version: ProvEntity | None,
    ) -> str:
        identifier = _id("evaluation", f"{row.message_id}.{rule}")
        if not self._once(identifier):
            return identifier
        attributes: dict[Any, Any] = {PROV_TYPE: SB_NS["RuleEvaluation"], "sb:rule": rule}
        if version is not None:
            attributes["sb:version"] = str(version.get_attribute("sb:version").pop())
        if reasons:
            attributes["sb:conditions"] = "; ".join(reasons)
        activity = self.doc.activity(identifier, row.arrived_at, row.arrived_at, attributes)
        for entity in used:
            self.doc.used(activity, entity)
        if version is not None:
            self.doc.used(activity, version)
        self.doc.wasAssociatedWith(activity, self.agent)
        return identifier

    def _dataset(self, dataset_id: str, name: str | None) -> ProvEntity:
        attributes: dict[Any, Any] = {PROV_TYPE: SB_NS["ClowderDataset"], "sb:id": dataset_id}
        if name:
            attributes["sb:name"] = name
        return self._entity(_id("dataset", dataset_id), attributes)

    def _file(self, file_id: str, name: str | None) -> ProvEntity:
        attributes: dict[Any, Any] = {PROV_TYPE: SB_NS["ClowderFile"], "sb:id": file_id}
        if name:
            attributes["sb:name"] = name
        return self._entity(_id("file", file_id), attributes)

    def _version(self, version: str) -> ProvEntity:
        attributes = {PROV_TYPE: SB_NS["RuleSetVersion"], "sb:version": version}
        return self._entity(_id("rules", version), attributes)

    def _entity(self, identifier: str, attributes: dict[Any, Any]) -> ProvEntity:
        if identifier not in self._entities:
            self._entities[identifier] = self.doc.entity(identifier, attributes)
        return self._entities[identifier]

    # -- jobs -------------------------------------------------------------------------------

    def job(self, job_id: str) -> JobFacts | None:
        """The job's activity (and its event's provenance), or None if no longer known."""
        facts = job_facts(self.connection, job_id)
        if facts is None or not self._once(f"job {job_id}"):
            return facts
        if facts.event_message_id is not None:
            self.event(facts.event_message_id)
        attributes: dict[Any, Any] = {
            PROV_TYPE: SB_NS["Job"],
            "sb:job_id": facts.job_id,
            "sb:rule": facts.rule,
            "sb:extractor": facts.extractor,
            "sb:via": facts.via,
            "sb:status": facts.status,
            "sb:facts_from": facts.source,
        }
        if facts.started_at is not None:
            attributes["sb:started_at"] = facts.started_at
        if facts.ended_at is not None:
            attributes["sb:ended_at"] = facts.ended_at
        if facts.message:
            attributes["sb:message"] = facts.message
        if facts.timeline:
            attributes["sb:timeline"] = json.dumps(facts.timeline, separators=(",", ":"))
        activity = self.doc.activity(
            _id("job", job_id), facts.started_at, facts.ended_at, attributes
        )
        evaluation = _id("evaluation", f"{facts.event_message_id}.{facts.rule}")
        if evaluation in self._done:
            self.doc.wasInformedBy(activity, evaluation)
        if facts.manifest_id:
            self.doc.used(activity, self.manifest(facts.manifest_id))
        elif facts.resource_type == "file":
            self.doc.used(activity, self._file(facts.resource_id, None))
        else:
            self.doc.used(activity, self._dataset(facts.resource_id, None))
        if facts.via == "ray":
            agent_id = _id("rayjob", job_id)
            self.doc.agent(agent_id, {PROV_TYPE: PROV["SoftwareAgent"], "sb:name": facts.extractor})
        else:
            agent_id = _id("extractor", facts.extractor)
            if self._once(agent_id):
                self.doc.agent(agent_id, {PROV_TYPE: PROV["SoftwareAgent"]})
        self.doc.wasAssociatedWith(activity, agent_id)
        if facts.status in TERMINAL:
            result = self.doc.entity(
                _id("result", job_id), {PROV_TYPE: SB_NS["JobResult"], "sb:status": facts.status}
            )
            self.doc.wasGeneratedBy(result, activity, facts.ended_at)
        return facts

    # -- collections --------------------------------------------------------------------------

    def manifest(self, manifest_id: str) -> ProvEntity:
        """The manifest entity, derived from each member's event, generated by the firing."""
        identifier = _id("manifest", manifest_id)
        if identifier in self._entities:
            return self._entities[identifier]
        row = self.connection.execute(
            select(manifests).where(manifests.c.id == manifest_id)
        ).first()
        attributes: dict[Any, Any] = {PROV_TYPE: SB_NS["Manifest"], "sb:manifest_id": manifest_id}
        if row is None:
            return self._entity(identifier, attributes)
        attributes.update(
            {
                "sb:rule": row.rule,
                "sb:collection": row.key,
                "sb:generation": row.generation,
                "sb:member_count": row.member_count,
            }
        )
        entity = self._entity(identifier, attributes)
        members = self.connection.execute(
            select(manifest_members.c.member).where(manifest_members.c.manifest_id == manifest_id)
        ).scalars()
        by_member = member_events(self.connection, row.rule, row.key)
        fired_by: str | None = None
        for member in members:
            for message_id in by_member.get(member, [])[:1]:  # the event that added it
                event = self.event(message_id)
                if event is None:
                    continue
                self.doc.wasDerivedFrom(entity, _id("event", message_id))
                if any(
                    s.get("manifest_id") == manifest_id
                    for s in event.outcome.get("submissions", [])
                ):
                    fired_by = message_id
        if fired_by is not None:
            firing = _id("evaluation", f"{fired_by}.{row.rule}")
            self.doc.wasGeneratedBy(entity, firing, row.created_at)
        return entity

    def collection(self, key: str, generation: int | None) -> int:
        """Every firing of `key` (of any rule; one generation if given) with its manifest and
        jobs; without a generation, a collection not fired yet is an `sb:OpenCollection`
        derived from its members' events. How many firings or open collections were added."""
        query = select(firings).where(firings.c.key == key)
        if generation is not None:
            query = query.where(firings.c.generation == generation)
        jobs: list[str] = []
        found = 0
        for firing in self.connection.execute(query.order_by(firings.c.rule, firings.c.generation)):
            found += 1
            if firing.manifest_id:
                self.manifest(firing.manifest_id)
            if firing.job_id:
                jobs.append(firing.job_id)
        for job_id in jobs:
            self.job(job_id)
        if found or generation is not None:
            return found
        rules = self.connection.execute(
            select(memberships.c.rule).where(memberships.c.key == key).distinct()
        ).scalars()
        for rule in rules:
            found += 1
            entity = self._entity(
                _id("collection", f"{rule}/{key}"),
                {PROV_TYPE: SB_NS["OpenCollection"], "sb:rule": rule, "sb:collection": key},
            )
            for message_ids in member_events(self.connection, rule, key).values():
                if self.event(message_ids[0]) is not None:
                    self.doc.wasDerivedFrom(entity, _id("event", message_ids[0]))
        return found
