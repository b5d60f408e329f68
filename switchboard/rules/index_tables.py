"""The match index's lookup tables for one field: prefixes and suffixes, literals a text must
contain (by n-grams), numeric ranges (an interval tree) and `anything-but` exclusions.

Each table maps its keys to the index's nodes (`N`) and appends to `out` the nodes whose key
a value hits; `index.py` builds the tree of nodes around them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .equality import as_number

N = TypeVar("N")


class AffixTable(Generic[N]):
    """Prefix (or suffix) keys of one field, probed by the lengths that can possibly hit.

    Keys are grouped by their first (last) `head` characters, `head` being the shortest key's
    length (at most 8): a value probes only the lengths of the keys sharing its head.
    """

    __slots__ = ("head", "heads", "keys", "suffix")

    def __init__(self, suffix: bool) -> None:
        self.suffix = suffix
        self.keys: dict[str, N] = {}
        self.head = 0
        self.heads: dict[str, tuple[int, ...]] | None = None

    def add(self, key: str, node: N) -> None:
        """File `node` under `key`; regrouped on first use, once the index is built."""
        self.keys[key] = node
        self.heads = None

    def _regroup(self) -> dict[str, tuple[int, ...]]:
        self.head = min(8, *(len(k) for k in self.keys))
        groups: dict[str, set[int]] = {}
        for key in self.keys:
            h = key[-self.head :] if self.suffix else key[: self.head]
            groups.setdefault(h, set()).add(len(key))
        self.heads = {h: tuple(sorted(lengths)) for h, lengths in groups.items()}
        return self.heads

    def hits(self, value: str, out: list[N]) -> None:
        heads = self.heads if self.heads is not None else self._regroup()
        head = self.head
        if len(value) < head:
            return
        keys = self.keys
        if self.suffix:
            lengths = heads.get(value[-head:])
            if lengths:
                size = len(value)
                for length in lengths:
                    if length > size:
                        break
                    if (node := keys.get(value[-length:])) is not None:
                        out.append(node)
        else:
            lengths = heads.get(value[:head])
            if lengths:
                size = len(value)
                for length in lengths:
                    if length > size:
                        break
                    if (node := keys.get(value[:length])) is not None:
                        out.append(node)


def _gram_length(size: int) -> int:
    """The n-gram length a literal of `size` characters is filed under (few lengths to probe)."""
    return 8 if size >= 8 else 4 if size >= 4 else 2 if size >= 2 else 1


class ContainsTable(Generic[N]):
    """Literals a text must contain, found through the n-grams of the value.

    Each literal is filed under one of its n-grams (n = 8, 4, 2 or 1, the largest not longer
    than it): the one fewest literals filed so far share, so similar literals (`_00417_`,
    `_00418_`) spread over buckets. A value probes each of its n-grams for each n in use, then
    checks the literals filed there at that offset. The cost grows with the value's length and
    the bucket sizes, not with the number of literals.
    """

    __slots__ = ("grams", "keys")

    def __init__(self) -> None:
        self.keys: dict[str, N] = {}
        self.grams: dict[int, dict[str, list[tuple[str, int, N]]]] | None = None

    def add(self, literal: str, node: N) -> None:
        """File `node` under `literal`; the lookup structure is rebuilt at the next hit."""
        self.keys[literal] = node
        self.grams = None

    def _regroup(self) -> dict[int, dict[str, list[tuple[str, int, N]]]]:
        grams: dict[int, dict[str, list[tuple[str, int, N]]]] = {}
        for literal, node in self.keys.items():
            n = _gram_length(len(literal))
            table = grams.setdefault(n, {})
            offset = min(
                range(len(literal) - n + 1),
                key=lambda o: len(table.get(literal[o : o + n], ())),
            )
            table.setdefault(literal[offset : offset + n], []).append((literal, offset, node))
        self.grams = grams
        return grams

    def hits(self, value: str, out: list[N]) -> None:
        grams = self.grams if self.grams is not None else self._regroup()
        size = len(value)
        found: set[str] | None = None
        for n, table in grams.items():
            for start in range(size - n + 1):
                bucket = table.get(value[start : start + n])
                if bucket is None:
                    continue
                for literal, offset, node in bucket:
                    begin = start - offset
                    if begin >= 0 and value.startswith(literal, begin):
                        if found is None:
                            found = set()
                        elif literal in found:
                            continue  # a second occurrence of the same literal
                        found.add(literal)
                        out.append(node)


# An interval tree node: center, intervals containing it by ascending low and by descending
# high, then the subtrees of intervals wholly below and wholly above the center.
_Interval = tuple[float, float, Any]
_Tree = tuple[float, list[tuple[float, Any]], list[tuple[float, Any]], Any, Any]


def _interval_tree(items: list[_Interval]) -> _Tree | None:
    if not items:
        return None
    ends = sorted(e for low, high, _ in items for e in (low, high) if abs(e) != float("inf"))
    center = ends[len(ends) // 2] if ends else 0.0
    here = [i for i in items if i[0] <= center <= i[1]]
    below = [i for i in items if i[1] < center]
    above = [i for i in items if i[0] > center]
    by_low = [(low, node) for low, _, node in sorted(here, key=lambda i: i[0])]
    by_high = [(high, node) for _, high, node in sorted(here, key=lambda i: -i[1])]
    return (center, by_low, by_high, _interval_tree(below), _interval_tree(above))


class RangeTable(Generic[N]):
    """Closed numeric ranges; a number finds those containing it in O(log n + hits)."""

    __slots__ = ("keys", "tree")

    def __init__(self) -> None:
        self.keys: dict[tuple[float, float], N] = {}
        self.tree: _Tree | None = None

    def add(self, bounds: tuple[float, float], node: N) -> None:
        """File `node` under `bounds`; the lookup structure is rebuilt at the next hit."""
        self.keys[bounds] = node
        self.tree = None

    def hits(self, number: float, out: list[N]) -> None:
        if self.tree is None:
            self.tree = _interval_tree([(lo, hi, node) for (lo, hi), node in self.keys.items()])
        tree = self.tree
        while tree is not None:
            center, by_low, by_high, below, above = tree
            if number < center:
                for low, node in by_low:
                    if low > number:
                        break
                    out.append(node)
                tree = below
            elif number > center:
                for high, node in by_high:
                    if high < number:
                        break
                    out.append(node)
                tree = above
            else:
                out.extend(node for _, node in by_low)
                return


def equality_probes(value: Any) -> list[Any]:
    """The keys (see `equality_keys`) of the operands `value` is equal to."""
    if isinstance(value, bool):
        return [("b", value)]
    if isinstance(value, str):
        number = as_number(value)
        return [value] if number is None else [value, ("n", number)]
    if isinstance(value, int | float):
        number = as_number(value)
        return [] if number is None else [("n", number), ("sn", number)]
    return []


class ButTable(Generic[N]):
    """`anything-but` keys: a present value hits every entry except those excluding it.

    Counted per excluded key: when a key is excluded by at least half of the entries, the
    entries that do not exclude it are precomputed, so a value pays for its hits, not for
    the entries it is kept away from.
    """

    __slots__ = ("complements", "entries", "excluders", "keys")

    def __init__(self) -> None:
        self.keys: dict[frozenset[Any], N] = {}
        self.entries: list[N] | None = None
        self.excluders: dict[Any, set[int]] = {}
        self.complements: dict[Any, list[int]] = {}

    def add(self, excluded: frozenset[Any], node: N) -> None:
        """File `node` under `excluded`; the lookup structure is rebuilt at the next hit."""
        self.keys[excluded] = node
        self.entries = None

    def _regroup(self) -> list[N]:
        entries = list(self.keys.values())
        excluders: dict[Any, set[int]] = {}
        for position, excluded in enumerate(self.keys):
            for key in excluded:
                excluders.setdefault(key, set()).add(position)
        everyone = range(len(entries))
        self.complements = {
            key: [p for p in everyone if p not in positions]
            for key, positions in excluders.items()
            if 2 * len(positions) >= len(entries)
        }
        self.excluders = excluders
        self.entries = entries
        return entries

    def hits(self, value: Any, out: list[N]) -> None:
        entries = self.entries if self.entries is not None else self._regroup()
        excluders = self.excluders
        probes = [k for k in equality_probes(value) if k in excluders]
        if not probes:
            out.extend(entries)
            return
        probes.sort(key=lambda k: -len(excluders[k]))
        others = [excluders[k] for k in probes[1:]]
        first = probes[0]
        complement = self.complements.get(first)
        if complement is None:
            excluded = excluders[first]
            complement = [p for p in range(len(entries)) if p not in excluded]
        out.extend(entries[p] for p in complement if not any(p in o for o in others))
