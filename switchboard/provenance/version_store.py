"""Stores rule-set versions once per content hash, and each activation; reads them back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select

from ..errors import SwitchboardError
from ..store.provenance_tables import RuleActivationRow, RuleVersionRow
from ..store.statements import upsert
from .versions import RuleFile, RuleVersion

versions = cast(Table, RuleVersionRow.__table__)
activations = cast(Table, RuleActivationRow.__table__)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A stored version with when it was first active, how often, and when last."""

    version: str
    content_hash: str
    rules: RuleVersion
    first_active_at: datetime
    last_active_at: datetime | None
    activations: int


def write_activation(
    connection: Connection, version: RuleVersion, reason: str, at: datetime
) -> None:
    """Store `version` unless known (by its hash) and record that it became active `at`."""
    name = version.version
    statement = (
        upsert(connection.dialect.name, versions)
        .values(
            version=name,
            content_hash=version.content_hash,
            files={
                "roots": list(version.roots),
                "files": [{"path": f.path, "text": f.text} for f in version.files],
            },
            rule_names={"rules": list(version.rule_names)},
            first_active_at=at,
        )
        .on_conflict_do_nothing(index_elements=["version"])
    )
    connection.execute(statement)
    connection.execute(insert(activations).values(version=name, activated_at=at, reason=reason))


def _rules(row: Any) -> RuleVersion:
    files = tuple(RuleFile(f["path"], f["text"]) for f in row.files.get("files", []))
    return RuleVersion(
        tuple(row.files.get("roots", [])), files, tuple(row.rule_names.get("rules", []))
    )


def history(connection: Connection) -> list[StoredVersion]:
    """Every version, oldest first activation first."""
    stats = (
        select(
            activations.c.version,
            func.max(activations.c.activated_at).label("last"),
            func.count().label("times"),
        )
        .group_by(activations.c.version)
        .subquery()
    )
    query = (
        select(versions, stats.c.last, stats.c.times)
        .outerjoin(stats, stats.c.version == versions.c.version)
        .order_by(versions.c.first_active_at, versions.c.version)
    )
    return [
        StoredVersion(r.version, r.content_hash, _rules(r), r.first_active_at, r.last, r.times or 0)
        for r in connection.execute(query)
    ]


def activations_of(connection: Connection) -> list[tuple[datetime, str, str]]:
    """(activated_at, version, reason) of every activation, oldest first."""
    query = select(activations.c.activated_at, activations.c.version, activations.c.reason)
    rows = connection.execute(query.order_by(activations.c.id))
    return [(r.activated_at, r.version, r.reason) for r in rows]


def load_version(connection: Connection, name: str) -> RuleVersion:
    """The version named `name` or by a unique prefix of it (at least 4 characters)."""
    if len(name) < 4:
        raise SwitchboardError(f"version {name!r}: give at least 4 characters")
    rows = list(
        connection.execute(
            select(versions).where(versions.c.version.startswith(name[:12], autoescape=True))
        )
    )
    if not rows:
        raise SwitchboardError(f"no rule version {name!r} (see `switchboard rules history`)")
    if len(rows) > 1:
        raise SwitchboardError(
            f"version {name!r} is ambiguous: {', '.join(r.version for r in rows)}"
        )
    return _rules(rows[0])
