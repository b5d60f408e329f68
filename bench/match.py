"""Benchmark (not a test): matching throughput as the number of declarative rules grows.

Generates N rules (a realistic mix: prefixes on dataset.name, suffixes on file.name, equals on
mime type, numeric sizes, `^`-anchored regexes with captures, any/not nesting, dataset.files
requirements), a fixed set of events, and times `Engine.evaluate` for N = 10, 100, 1,000 and
10,000. Prints events/s per N and the ratio events/s(10,000) / events/s(10); the index is
meant to keep that ratio >= 0.7. The events come from the sensors the first ten rules serve
(present at every N), so each event is relevant to the same rules at every N and only the
number of rules it must be kept away from grows; `--spread` draws them from every sensor instead.

`--operator OP` (a YAML operator name, repeatable) generates N rules of that one operator
instead, each on its own operand, with events that each concern the same few core rules at
every N; `--mixed` generates them all together, round robin. Each prints events/s per N and
`ratio OP events/s(10,000) / events/s(10): X`. `--operator regex-no-literal` shows the one
family that stays linear (regexes with no literal to look up).

Run: python bench/match.py [--events 3000] [--rounds 15] [--spread]
     python bench/match.py --operator lt [--operator between ...] | --every-operator | --mixed
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from operator_families import FAMILIES, Family, mixed  # bench/ is on sys.path as a script
from operator_families import make_events as make_family_events
from workload import EVENT_SENSORS

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


def family_rules(family: Family, n: int) -> RuleSet:
    """N rules of one generated family (JSON is YAML)."""
    rules = [
        {
            "name": f"rule-{j:05d}",
            "on": "dataset.file.added",
            "when": family.when(j),
            "submit": {"extractor": f"terra.extractor{j % 97}", "resource": "file"},
        }
        for j in range(n)
    ]
    compiled, problems = rules_from_yaml(f"<{family.name} {n}>", json.dumps(rules))
    if problems:
        raise SystemExit("\n".join(map(str, problems[:5])))
    return RuleSet(compiled)


def time_once(engine: Engine, events: list) -> float:
    start = time.perf_counter()
    for event, dataset in events:
        engine.evaluate(event, dataset)
    return time.perf_counter() - start


def _affordable(slowest: Engine, events: list, pass_s: float) -> list:
    """The first events, as many as the slowest engine evaluates in about `pass_s` (>= 50)."""
    probe = events[:50]
    rate = len(probe) / max(time_once(slowest, probe), 1e-9)
    return events[: max(len(probe), min(len(events), int(rate * pass_s)))]


def measure(label: str, engines: dict[int, Engine], events: list, rounds: int) -> float:
    """Print events/s, candidates and matches per N; return the ratio (10,000 / 10)."""
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(rounds):  # interleaved, so a burst of machine load hits every N alike
        for n, engine in engines.items():
            best[n] = min(best[n], time_once(engine, events))
    print(f"{'rules':>7} {'events/s':>10} {'candidates/event':>17} {'matches/event':>14}")
    for n, engine in engines.items():
        evaluations = [engine.evaluate(event, dataset) for event, dataset in events]
        candidates = sum(len(e.decisions) for e in evaluations) / len(events)
        matches = sum(len(e.matched) for e in evaluations) / len(events)
        print(f"{n:>7} {len(events) / best[n]:>10,.0f} {candidates:>17.2f} {matches:>14.2f}")
        engine.close()
    first, last = min(engines), max(engines)
    ratio = best[first] / best[last]
    print(f"ratio {label}events/s({last:,}) / events/s({first}): {ratio:.2f} (target >= 0.7)")
    return ratio


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
    parser.add_argument(
        "--operator",
        action="append",
        choices=[*FAMILIES, "mixed"],
        help="N rules of this one YAML operator instead of the realistic mix (repeatable)",
    )
    parser.add_argument("--mixed", action="store_true", help="all operators' rules together")
    parser.add_argument(
        "--pass-s",
        type=float,
        default=2.0,
        help="with --operator: use fewer events when a pass at 10,000 rules would take longer",
    )
    parser.add_argument(
        "--every-operator", action="store_true", help="each operator in turn, then --mixed"
    )
    args = parser.parse_args()
    families = list(args.operator or [])
    if args.every_operator:
        families = [*FAMILIES, "mixed"]
    elif args.mixed:
        families.append("mixed")
    if not families:
        events = make_events(args.events, spread=args.spread)
        engines = {n: Engine(make_rules(n)) for n in SIZES}
        origin = "all 10,000 sensors" if args.spread else f"the {CORE} core sensors"
        print(f"{len(events)} events from {origin}; best of {args.rounds} interleaved passes per N")
        measure("", engines, events, args.rounds)
        return
    ratios = {}
    for name in families:
        family = mixed() if name == "mixed" else FAMILIES[name]
        family_events = make_family_events(family, args.events)
        engines = {n: Engine(family_rules(family, n)) for n in SIZES}
        family_events = _affordable(engines[SIZES[-1]], family_events, args.pass_s)
        print(f"\n== {name}: {len(family_events)} events, best of {args.rounds} passes per N")
        ratios[name] = measure(f"{name} ", engines, family_events, args.rounds)
    if len(ratios) > 1:
        print("\nratios: " + ", ".join(f"{n} {r:.2f}" for n, r in ratios.items()))


if __name__ == "__main__":
    main()
