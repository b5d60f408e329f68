"""Top frames of a `py-spy record --format raw` file (collapsed stacks), for benchmark notes.

Run: python bench/profile_summary.py PROFILE.txt [--top 15]

Prints the share of samples whose innermost frame is each function ("self") and the share in
which each function appears anywhere on the stack ("total"), per thread group: py-spy names
each stack's thread first when run with `--threads`, otherwise all threads are summed.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

OUTER = {"cli.py", "core.py", "decorators.py", "threading.py", "app.py", "switchboard"}
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    """`function (path/to/module.py:12)` as `module.py:function`."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['function']}"


ROLES = (  # (role, a frame only that thread's stacks contain)
    ("relay", "relay_threads.py:RelayThreads._run"),
    ("intake", "daemon.py:Daemon._loop"),
)


def role_of(frames: list[str]) -> str:
    for role, marker in ROLES:
        if marker in frames:
            return role
    return "other"


def summarise(path: Path, top: int = 12) -> None:
    """Print, per thread role, its share of the samples and its top frames."""
    self_counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total_counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    per_role: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short(f) for f in stack.split(";") if f and not f.startswith("thread (")]
        if not frames:
            continue
        role = role_of(frames)
        per_role[role] += count
        self_counts[role][frames[-1]] += count
        for frame in set(frames):
            total_counts[role][frame] += count
    samples = sum(per_role.values())
    print(f"\n{path.name}: {samples:,} samples (threads not idle)")
    for role, role_samples in per_role.most_common():
        print(f"  [{role}] {100 * role_samples / max(1, samples):.1f} % of samples")
        print(f"    {'self %':>7}  function (innermost frame)")
        for frame, count in self_counts[role].most_common(top):
            print(f"    {100 * count / role_samples:>7.1f}  {frame}")
        print(f"    {'total %':>7}  switchboard function (anywhere on the stack)")
        ours = [
            (frame, count)
            for frame, count in total_counts[role].most_common()
            if frame.split(":")[0] not in OUTER and count < 0.95 * role_samples
        ]
        for frame, count in ours[:top]:
            print(f"    {100 * count / role_samples:>7.1f}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.profiles:
        summarise(path, args.top)


if __name__ == "__main__":
    main()
