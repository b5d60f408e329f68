"""Generated rules of one operator each, and events that concern the same few rules at every N.

Rule `j` of a family tests one field with operand `j`; the events come from the first ten
(`CORE`) rules, so what an event matches is the same at 10 and at 10,000 rules and only the
number of rules it must be kept away from grows. Fields a family does not test keep values no
other family's rules match (a huge size, the first core mime type), so `mixed` keeps that too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from switchboard.model import DatasetView, Event, EventKind, FileInfo

CORE = 10
LT_TOP = 100_000  # lt thresholds count down from here; `between` ranges sit above it
BETWEEN_BASE = 1_000_000
QUIET_SIZE = 10**9  # a file size no generated rule matches
MIMES = tuple(f"type/core{k}" for k in range(CORE))


@dataclass(frozen=True)
class Fields:
    """The values one generated event carries."""

    dataset_name: str
    file_name: str = "unrelated.dat"
    mime_type: str = MIMES[0]
    size: int = QUIET_SIZE
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Family:
    """One operator's generated rules (`when` of rule j) and events (for core rule c, event k)."""

    name: str
    when: Callable[[int], dict[str, Any]]
    fields: Callable[[int, int, random.Random], Fields]


def _name(c: int, k: int) -> str:
    return f"sensor{c:05d} - 2017-05-{1 + k % 28:02d}__{k % 1000:03d}"


def _plain(c: int, k: int) -> str:
    return _name(c + 50_000, k)  # a dataset name no prefix rule is about


def _no_literal(j: int) -> dict[str, Any]:
    """Rule j's regex, distinct for every j and with no literal to look up. RE2 repeats at
    most 1000 times, so past rule 8,999 a trailing `[a-f]{n}` keeps them distinct."""
    tail = f"[a-f]{{{j // 9000}}}" if j >= 9000 else ""
    return {
        "file.name": {"regex": f"^[a-z]+[0-9]{{{1 + j % 9}}}_[0-9]{{{(j // 9) % 1000 + 1}}}{tail}$"}
    }


def _but(j: int) -> dict[str, Any]:
    excluded = [m for k, m in enumerate(MIMES) if k != j] if j < CORE else [*MIMES, f"x/{j}"]
    return {"file.mime_type": {"anything-but": excluded}}


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "equals",
            lambda j: {"file.name": f"capture_{j:05d}.bin"},
            lambda c, k, r: Fields(_plain(c, k), f"capture_{c:05d}.bin"),
        ),
        Family(
            "iequals",
            lambda j: {"file.name": {"iequals": f"ICAPTURE_{j:05d}.BIN"}},
            lambda c, k, r: Fields(_plain(c, k), f"icapture_{c:05d}.bin"),
        ),
        Family(
            "in",
            lambda j: {"file.name": [f"in_{j:05d}.bin", f"in_{j:05d}.tif"]},
            lambda c, k, r: Fields(_plain(c, k), f"in_{c:05d}.{r.choice(['bin', 'tif'])}"),
        ),
        Family(
            "prefix",
            lambda j: {"dataset.name": {"prefix": f"sensor{j:05d} - "}},
            lambda c, k, r: Fields(_name(c, k)),
        ),
        Family(
            "suffix",
            lambda j: {"file.name": {"suffix": f"_{j:05d}.raw"}},
            lambda c, k, r: Fields(_plain(c, k), f"capture{k}_{c:05d}.raw"),
        ),
        Family(
            "glob",  # no literal head or tail: only the middle can be looked up
            lambda j: {"file.name": {"glob": f"*_{j:05d}_*"}},
            lambda c, k, r: Fields(_plain(c, k), f"capture{k}_{c:05d}_left.bin"),
        ),
        Family(
            "iglob",
            lambda j: {"file.name": {"iglob": f"*_S{j:05d}_*"}},
            lambda c, k, r: Fields(_plain(c, k), f"capture{k}_s{c:05d}_left.bin"),
        ),
        Family(
            "regex",  # unanchored
            lambda j: {"file.name": {"regex": f"_{j:05d}_(?P<side>left|right)"}},
            lambda c, k, r: Fields(_plain(c, k), f"capture{k}_{c:05d}_left.bin"),
        ),
        Family(
            "iregex",
            lambda j: {"file.name": {"iregex": f"_S{j:05d}_(left|right)"}},
            lambda c, k, r: Fields(_plain(c, k), f"capture{k}_s{c:05d}_LEFT.bin"),
        ),
        Family(
            "lt",  # an event of core c is below the thresholds of rules 0..c
            lambda j: {"file.size": {"lt": LT_TOP - j}},
            lambda c, k, r: Fields(_plain(c, k), size=LT_TOP - 1 - c),
        ),
        Family(
            "between",
            lambda j: {
                "file.size": {"between": [BETWEEN_BASE + 10 * j, BETWEEN_BASE + 10 * j + 5]}
            },
            lambda c, k, r: Fields(_plain(c, k), size=BETWEEN_BASE + 10 * c + r.randrange(6)),
        ),
        Family(
            "anything-but",  # core rule c excludes every core type but its own; the rest all
            _but,
            lambda c, k, r: Fields(_plain(c, k), mime_type=MIMES[c]),
        ),
        Family(
            "exists",
            lambda j: {f"body.tags.t{j:05d}": {"exists": True}},
            lambda c, k, r: Fields(_plain(c, k), body={"tags": {f"t{c:05d}": 1}}),
        ),
        Family(
            "regex-no-literal",  # nothing to look up: checked on every event
            _no_literal,
            lambda c, k, r: Fields(_plain(c, k), f"capture{1 + c % 9}_{'7' * (c // 9 + 1)}"),
        ),
    )
}
OPERATORS = tuple(n for n in FAMILIES if n != "regex-no-literal")
# Round-robin order of `mixed`: events come from the first ten (see `mixed`).
MIXED_ORDER = ("lt", "between", "anything-but", "exists", "regex", "iregex", "glob", "iglob")
MIXED_ORDER += ("equals", "prefix", "suffix", "iequals", "in")


def mixed() -> Family:
    """Every operator family together: rule j is rule j // F of family j % F.

    Events come from rule 0 of the first ten families, which every N includes.
    """
    families = [FAMILIES[n] for n in MIXED_ORDER]
    count = len(families)

    def fields(c: int, k: int, r: random.Random) -> Fields:
        return families[c % min(count, CORE)].fields(0, k, r)

    return Family("mixed", lambda j: families[j % count].when(j // count), fields)


def make_events(family: Family, count: int, seed: int = 7) -> list[tuple[Event, DatasetView]]:
    """`count` events, each from one of the family's core rules."""
    rng = random.Random(seed)
    events = []
    for k in range(count):
        c = rng.randrange(CORE)
        f = family.fields(c, k, rng)
        file = FileInfo(f"f{k}", f.file_name, f.mime_type, f.size)
        dataset = DatasetView(f"d{c}", f.dataset_name, (file,))
        event = Event(
            EventKind.FILE_ADDED,
            f"m{k}",
            file.id,
            dataset.id,
            file,
            f.dataset_name,
            body=f.body or {},
        )
        events.append((event, dataset))
    return events
