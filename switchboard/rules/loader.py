"""Load rule files and folders into one `RuleSet`, or refuse them with every problem at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import Problem, RuleLoadError
from ..locations import SourceLocation
from . import yaml_source
from .legacy import LegacyContext, is_legacy_module, rules_from_legacy
from .model import Rule, RuleSet
from .python_rules import rules_from_module
from .yaml_rules import YamlFile, compile_yaml_file

YAML_SUFFIXES = (".yaml", ".yml")
RULE_SUFFIXES = (*YAML_SUFFIXES, ".py")


def _skipped(name: str) -> bool:
    # `_helpers.py` can be imported by rule modules; dot-files are editor and VCS droppings.
    return name.startswith(("_", "."))


def _walk(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _skipped(entry.name):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.suffix in RULE_SUFFIXES:
            yield entry


def rule_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """The rule files `paths` name, in load order, and problems with paths that aren't usable.

    Folders are searched recursively in sorted order, skipping `__pycache__` and any file or
    folder whose name starts with `_` or `.`; a file is loaded once however often it is named.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = list(_walk(path))
        elif path.is_file():
            if path.suffix not in RULE_SUFFIXES:
                problems.append(Problem(str(path), 1, "not a rule file (.yaml, .yml or .py)"))
                continue
            found = [path]
        else:
            problems.append(Problem(str(path), 0, "no such file or directory"))
            continue
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, problems


def _load_file(
    path: Path, legacy: LegacyContext | None, python_allowlist: tuple[str, ...]
) -> YamlFile:
    if path.suffix == ".py":
        if is_legacy_module(path):
            rules, problems = rules_from_legacy(path, legacy)
        else:
            rules, problems = rules_from_module(path)
        return YamlFile(rules, problems, [(r.name, r.source) for r in rules])
    try:
        with path.open("rb") as stream:  # never more than the limit into memory
            head = stream.read(yaml_source.MAX_YAML_BYTES + 1)
        too_big = yaml_source.size_problem(head, max(len(head), path.stat().st_size))
        if too_big is not None:
            return YamlFile(problems=[Problem(str(path), *too_big)])
        text = head.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return YamlFile(problems=[Problem(str(path), 1, f"cannot read: {exc}")])
    return compile_yaml_file(str(path), text, python_allowlist=python_allowlist)


def load_rules(
    paths: Iterable[str | Path],
    *,
    legacy: LegacyContext | None = None,
    python_allowlist: Iterable[str] = (),
) -> RuleSet:
    """Load every rule under `paths`; RuleLoadError lists every problem in every file.

    A rule name defined twice (in one file or across files) is reported at the second definition,
    also when the first definition is refused for another problem.
    A `rules.py` beside a `rule_extractor_map.json` is a legacy rulechecker module; `legacy`
    (`LegacyContext.from_settings(settings)`) gives its rules host, key and mounted paths.
    `python_allowlist` (`settings.python_allowlist`) names the `module:function` or `module:*`
    callables a YAML `python:` total may use besides files beside the rule file.
    """
    files, problems = rule_files(paths)
    allowlist = tuple(python_allowlist)
    rules: list[Rule] = []
    first_seen: dict[str, SourceLocation] = {}
    limits: dict[str, tuple[Any, SourceLocation]] = {}
    for path in files:
        loaded = _load_file(path, legacy, allowlist)
        problems.extend(loaded.problems)
        for target, (limit, source) in loaded.limits.items():
            if target in limits:
                reason = f"limits for target {target!r} already set at {limits[target][1]}"
                problems.append(Problem(source.path, source.line or 1, reason))
            else:
                limits[target] = (limit, source)
        for name, source in loaded.declared:
            first = first_seen.get(name)
            if first is None:
                first_seen[name] = source
                continue
            reason = f"duplicate rule name {name!r} (first defined at {first})"
            problems.append(Problem(source.path or str(path), source.line or 1, reason))
        rules.extend(loaded.rules)  # any duplicate is a problem, so these are only kept if unique
    if problems:
        raise RuleLoadError(problems)
    return RuleSet(
        rules,
        sources=[str(f) for f in files],
        limits={target: limit for target, (limit, _) in limits.items()},
    )
