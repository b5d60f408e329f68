"""Which Python callables a YAML `fraction: {of: {python: ...}}` may name, and resolving them.

YAML rules are data, so a rule file must not reach arbitrary code (`os:system`). A target
resolves only to:
- `file.py:function`: a Python file in the rule file's own folder or below it, named by a
  relative path without `..` and not leading out of that folder through a symbolic link. It
  is the rule author's own code, loaded from its path (as a Python rule module would be).
- `module:function` that the allowlist allows: `DEFAULT_ALLOWLIST`
  (`switchboard.collections.totals:count_files`) plus the entries of
  SWITCHBOARD_PYTHON_ALLOWLIST, each `module:function` or `module:*` (every callable defined
  in that module itself, not one it imported).
Anything else is refused with `CallableRefused` before any module is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

DEFAULT_ALLOWLIST: tuple[str, ...] = ("switchboard.collections.totals:count_files",)
ALLOWLIST_SETTING = "SWITCHBOARD_PYTHON_ALLOWLIST"


class CallableRefused(ValueError):
    """A `python:` target that a YAML rule is not allowed to name."""


def resolve(target: str, base_dir: str = "", allowlist: Iterable[str] = ()) -> Callable[..., Any]:
    """The callable `target` names; CallableRefused when it is not allowed, ImportError (or
    whatever importing raises) when it cannot be loaded. Never calls it."""
    module_name, _, function_name = target.rpartition(":")
    if module_name.endswith(".py"):
        module = _load_file(_local_file(module_name, base_dir))
        exact = True
    else:
        exact = _allowed(module_name, function_name, allowlist)
        module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ImportError(f"{target}: {function_name!r} is not a callable in {module_name}")
    if not exact and getattr(function, "__module__", None) != module_name:
        raise CallableRefused(
            f"{function_name!r} is not defined in {module_name} itself "
            f"('{module_name}:*' allows only what the module defines)"
        )
    return cast(Callable[..., Any], function)  # checked callable just above


def _local_file(name: str, base_dir: str) -> Path:
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise CallableRefused(
            f"{name} must be a path relative to the rule file's folder, without '..'"
        )
    folder = Path(base_dir or ".").resolve()
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder):
        raise CallableRefused(f"{name} leads out of the rule file's folder")
    return path


def _load_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_switchboard_total_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _allowed(module_name: str, function_name: str, allowlist: Iterable[str]) -> bool:
    """Whether the allowlist names this function exactly (True) or its module with `*` (False);
    CallableRefused when it names neither."""
    entries = {*DEFAULT_ALLOWLIST, *allowlist}
    if f"{module_name}:{function_name}" in entries:
        return True
    if f"{module_name}:*" in entries:
        return False
    raise CallableRefused(
        "only a file beside the rule ('helpers.py:function') or a callable listed in "
        f"{ALLOWLIST_SETTING} can be used"
    )
