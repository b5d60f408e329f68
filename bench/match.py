"""Benchmark (not a test): matching throughput as the number of declarative rules grows.

Generates N rules (a realistic mix: prefixes on dataset.name, suffixes on file.name, equals on
mime type, numeric sizes, `^`-anchored regexes with captures, any/not nesting, dataset.files
requirements), a fixed set of events, and times `Engine.evaluate` for N = 10, 100, 1,000 and
10,000. Prints events/s per N and the ratio events/s(10,000) / events/s(10); the index is
meant to keep that ratio >= 0.7. The events come from the sensors the first ten rules serve
(present at every N), so each event is relevant to the same rules at every N and only the
number of rules it must be kept away from grows; `--spread` draws them from every sensor instead.

Run: python bench/match.py [--events 3000] [--rounds 15] [--spread]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import EVENT_SENSORS  # bench/ is on sys.path when run as a script

from switchboard.engine import Engine
from switchboard.model import DatasetView, Event, EventKind, FileInfo
from switchboard.rules.model import RuleSet
from switchboard.rules.yaml_rules import rules_from_yaml

SIZES = (10, 100, 1_000, 10_000)
UNIVERSE = 10_000  # sensors (dataset name prefixes) that events and rules are drawn from
SENSORS = EVENT_SENSORS  # the core sensors, shared with bench/pipeline.py's workload
SUFFIXES = (".bin", "_left.tif", "_right.tif", ".ply", "_ir.bin", ".json", ".h5", ".nc", ".las")
MIMES = ("application/octet-stream", "image/tiff", "application/json", "application/x-hdf")


def sensor(i: int) -> str:
    return f"{SENSORS[i % len(SENSORS)]} s{i:05d} - "


CORE = 10  # rules 0-9: one rule of each shape for each of the sensors the events come from


def rule_yaml(i: int) -> str:
    """Rule number `i`; rules 0-9 are the same whatever N is.

    Every tenth further rule is a near miss on a core sensor (same dataset prefix, another file
    suffix), so the events' own index paths get crowded as N grows; the rest are for other
    sensors.
    """
    name = f"rule-{i:05d}"
    prefix = sensor(i)
    suffix = SUFFIXES[i % len(SUFFIXES)]
    if i >= CORE and i % 10 == 0:
        prefix, suffix = sensor((i // 10) % CORE), f"_v{i}{suffix}"
    mime = MIMES[i % len(MIMES)]
    target = f"submit: {{extractor: terra.extractor{i % 97}, resource: dataset}}"
    shape = i % 10
    if shape in (0, 1, 2, 3):
        when = f'dataset.name: {{prefix: "{prefix}"}}\n    file.name: {{suffix: "{suffix}"}}'
    elif shape in (4, 5):
        when = (
            f'dataset.name: {{prefix: "{prefix}"}}\n    file.mime_type: "{mime}"\n'
            f"    file.size: {{gte: {i % 5000}}}"
        )
    elif shape == 6:
        when = (
            f"dataset.name: {{regex: '^{prefix}(?P<date>\\d{{4}}-\\d{{2}}-\\d{{2}})__'}}\n"
            f'    file.name: {{isuffix: "{suffix}"}}'
        )
        target = (
            f"submit: {{extractor: terra.extractor{i % 97}, resource: file, "
            'parameters: {date: "{date}", file: "{file.name}"}}'
        )
    elif shape == 7:
        when = f'dataset.name: {{prefix: "{prefix}"}}\n    file.name: {{suffix: "{suffix}"}}'
        when += (
            f'\n  require:\n    dataset.files:\n      where: {{name: {{suffix: "{suffix}"}}}}\n'
            "      count: {gte: 2}"
        )
    elif shape == 8:
        when = (
            f'dataset.name: {{iprefix: "{prefix.upper()}"}}\n'
            f"    any:\n"
            f'      - file.name: {{suffix: "{suffix}"}}\n'
            f'      - file.name: {{suffix: "{SUFFIXES[(i + 1) % len(SUFFIXES)]}"}}'
        )
    else:
        when = (
            f'dataset.name: {{prefix: "{prefix}"}}\n    file.name: {{glob: "*{suffix}"}}\n'
            '    not: {file.name: {glob: "*.tmp*"}}'
        )
    return f"- name: {name}\n  on: dataset.file.added\n  when:\n    {when}\n  {target}\n"


def make_rules(n: int) -> RuleSet:
    text = "".join(rule_yaml(i) for i in range(n))
    rules, problems = rules_from_yaml(f"<generated {n}>", text)
    if problems:
        raise SystemExit("\n".join(map(str, problems[:5])))
    return RuleSet(rules)


def make_events(count: int, spread: bool = False, seed: int = 7) -> list[tuple[Event, DatasetView]]:
    """The fixed event set: from the core sensors, or (`spread`) from all 10,000 sensors."""
    rng = random.Random(seed)
    events = []
    for k in range(count):
        i = rng.randrange(UNIVERSE if spread else CORE)
        name = f"{sensor(i)}2017-05-{1 + k % 28:02d}__10-20-30-{k % 1000:03d}"
        suffix = rng.choice(SUFFIXES)
        file = FileInfo(f"f{k}", f"capture_{k}{suffix}", rng.choice(MIMES), rng.randrange(10_000))
        other = FileInfo(f"g{k}", f"capture_{k}_b{suffix}", file.mime_type, 100)
        dataset = DatasetView(f"d{i}", name, (other, file))
        events.append(
            (Event(EventKind.FILE_ADDED, f"m{k}", file.id, dataset.id, file, name), dataset)
        )
    return events


def time_once(engine: Engine, events: list) -> float:
    start = time.perf_counter()
    for event, dataset in events:
        engine.evaluate(event, dataset)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=15, help="timed passes per N (best kept)")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="draw events from all 10,000 sensors: with 10 rules almost no event reaches a rule,"
        " with 10,000 every event does (a worst case for the ratio, not a fixed relevance)",
    )
    args = parser.parse_args()
    events = make_events(args.events, spread=args.spread)
    engines = {n: Engine(make_rules(n)) for n in SIZES}
    origin = "all 10,000 sensors" if args.spread else f"the {CORE} core sensors"
    print(f"{len(events)} events from {origin}; best of {args.rounds} interleaved passes per N")
    best = dict.fromkeys(SIZES, float("inf"))
    for _ in range(args.rounds):  # interleaved, so a burst of machine load hits every N alike
        for n, engine in engines.items():
            best[n] = min(best[n], time_once(engine, events))
    print(f"{'rules':>7} {'events/s':>10} {'candidates/event':>17} {'matches/event':>14}")
    for n, engine in engines.items():
        evaluations = [engine.evaluate(event, dataset) for event, dataset in events]
        candidates = sum(len(e.decisions) for e in evaluations) / len(events)
        matches = sum(len(e.matched) for e in evaluations) / len(events)
        print(f"{n:>7} {len(events) / best[n]:>10,.0f} {candidates:>17.2f} {matches:>14.2f}")
        engine.close()
    ratio = best[SIZES[0]] / best[SIZES[-1]]
    print(f"ratio events/s({SIZES[-1]:,}) / events/s({SIZES[0]}): {ratio:.2f} (target >= 0.7)")


if __name__ == "__main__":
    main()
