"""The job's members as JSON lines (`{"id", "name", "path"}`), shipped with the job, not mounted."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MembersError(ValueError):
    """The members file is unusable; the message names the file and line."""


@dataclass(frozen=True)
class Member:
    """One file of the job: its Clowder id, its name, the path `process_file` gets."""

    id: str
    path: str
    name: str = ""

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "path": self.path}


def member_from_mapping(data: Mapping[str, Any], where: str) -> Member:
    """A Member from `{"id", "path", "name"?}`; `id` defaults to the path."""
    path = data.get("path")
    if not isinstance(path, str) or not path:
        raise MembersError(f"{where}: a member needs a non-empty 'path'")
    member_id = data.get("id", path)
    name = data.get("name") or Path(path).name
    if not isinstance(member_id, str) or not isinstance(name, str):
        raise MembersError(f"{where}: 'id' and 'name' must be strings")
    return Member(id=member_id, path=path, name=name)


def write_members(path: Path, members: Iterable[Member | Mapping[str, Any]]) -> int:
    """Write the members file; how many members it holds. Duplicate ids are an error."""
    seen: set[str] = set()
    with path.open("w", encoding="utf-8") as out:
        for number, item in enumerate(members, 1):
            member = item if isinstance(item, Member) else member_from_mapping(item, f"#{number}")
            if member.id in seen:
                raise MembersError(f"member #{number}: duplicate id {member.id!r}")
            seen.add(member.id)
            out.write(json.dumps(member.to_json(), ensure_ascii=False) + "\n")
    return len(seen)


def read_members(path: Path) -> list[Member]:
    """Every member of the file, in order; MembersError naming `path:line` for a bad line."""
    members: list[Member] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MembersError(f"{path}: cannot read the members: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise MembersError(f"{where}: not JSON: {exc}") from exc
        if not isinstance(data, Mapping):
            raise MembersError(f"{where}: a member must be a JSON object")
        member = member_from_mapping(data, where)
        if member.id in seen:
            raise MembersError(f"{where}: duplicate member id {member.id!r}")
        seen.add(member.id)
        members.append(member)
    return members
