"""Python rules: the `@rule` decorator, and importing a rules module to collect its `Rule`s."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, overload

from ..errors import Problem
from ..locations import NOWHERE, SourceLocation
from ..model import DatasetView, Event, EventKind, kinds_matching
from .collect import parse_duration
from .condition_compiler import CompileContext, compile_condition
from .conditions import Condition
from .fields import event_field
from .model import DEFAULT_ON, Rule
from .rerun import parse_rerun

RuleFunction = Callable[[Event, DatasetView], Any]
ISOLATED_FLAG = "SWITCHBOARD_ISOLATED"  # module-level: run every rule of the module isolated
_module_numbers = itertools.count(1)


def _on_patterns(on: str | EventKind | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    patterns = (on,) if isinstance(on, str) else tuple(on)
    for pattern in patterns:
        if not isinstance(pattern, str) or not kinds_matching([pattern]):
            known = ", ".join(k.value for k in EventKind)
            raise ValueError(f"on={pattern!r} matches no event kind (known: {known})")
    return tuple(str(p) for p in patterns)


def _prefilter(when: Any, rule_name: str) -> Condition | None:
    """`when=` compiled with the YAML condition compiler; ValueError lists its problems."""
    if when is None:
        return None
    problems: list[str] = []
    ctx = CompileContext("event", lambda _line, reason: problems.append(reason), set())
    condition = compile_condition(when, 0, ctx, capturing=False)
    if problems or condition is None:
        raise ValueError(f"@rule {rule_name}: when: {'; '.join(problems) or 'invalid'}")
    return condition


def _make_rule(
    function: RuleFunction,
    on: str | EventKind | list[str] | tuple[str, ...],
    name: str | None,
    description: str | None,
    enabled: bool,
    isolated: bool | None = None,
    when: Any = None,
    rerun: Any = "once",
    debounce: Any = None,
) -> Rule:
    if not callable(function):
        raise TypeError(f"@rule decorates a function, not {function!r}")
    label = f"rule {name or function.__name__!r}"
    try:
        policy = parse_rerun(rerun)
        for field in policy.key.fields if policy.key is not None else ():
            if "." not in field:
                raise ValueError(f"rerun key field {{{field}}} is not an event field")
            event_field(field)
        held = None if debounce is None else parse_duration(debounce)
    except ValueError as exc:  # FieldError too
        raise ValueError(f"{label}: {exc}") from None
    patterns = _on_patterns(on)
    code = getattr(function, "__code__", None)
    source = SourceLocation(code.co_filename, code.co_firstlineno) if code is not None else NOWHERE
    doc = (function.__doc__ or "").strip().splitlines()
    return Rule(
        name=name or function.__name__,
        kind="python",
        on=patterns,
        kinds=kinds_matching(patterns),
        source=source,
        description=description if description is not None else (doc[0] if doc else ""),
        enabled=enabled,
        function=function,
        isolated=isolated,
        when=_prefilter(when, name or function.__name__),
        rerun=policy,
        debounce=held,
    )


@overload
def rule(function: RuleFunction, /) -> Rule: ...
@overload
def rule(
    *,
    on: str | EventKind | list[str] | tuple[str, ...] = ...,
    name: str | None = ...,
    description: str | None = ...,
    enabled: bool = ...,
    isolated: bool | None = ...,
    when: Any = ...,
    rerun: Any = ...,
    debounce: Any = ...,
) -> Callable[[RuleFunction], Rule]: ...


def rule(
    function: RuleFunction | None = None,
    /,
    *,
    on: str | EventKind | list[str] | tuple[str, ...] = DEFAULT_ON,
    name: str | None = None,
    description: str | None = None,
    enabled: bool = True,
    isolated: bool | None = None,
    when: Any = None,
    rerun: Any = "once",
    debounce: Any = None,
) -> Rule | Callable[[RuleFunction], Rule]:
    """Turn `function(event, dataset)` into a `Rule` (registers nothing anywhere).

    Use as `@rule` or `@rule(on="dataset.file.added", name="...")`. The function returns None,
    one `submit(...)` or a list of them. The result is still callable: `my_rule(event, dataset)`.
    `isolated=True` runs it in a worker process killed at its time limit (no rule_utils there);
    left unset, the module's `SWITCHBOARD_ISOLATED = True` asks that for all its rules.
    `when={...}` is a prefilter in the YAML condition language: the engine runs the function
    only on events that pass it, found through the match index like a YAML rule.
    `rerun` ("once", "on_new_files", "every_event" or {"key": "{file.id}"}) and `debounce`
    ("30s", or seconds) are the rule controls YAML rules have (see rules.rerun, debounce).
    """
    if isolated is not None and not isinstance(isolated, bool):
        raise TypeError(f"isolated must be True or False, not {isolated!r}")
    if function is not None:
        return _make_rule(function, on, name, description, enabled, isolated, when, rerun, debounce)
    return lambda f: _make_rule(f, on, name, description, enabled, isolated, when, rerun, debounce)


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
    return f"switchboard_rules_{path.stem}_{digest}_{next(_module_numbers)}"


def _error_line(exc: BaseException, path: Path) -> int:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.lineno and Path(frame.filename).resolve() == path
    ]
    return lines[-1] if lines else 1


def _ctrl_c_raises() -> bool:
    """Whether SIGINT raises KeyboardInterrupt here (no handler installed, as in the CLI)."""
    return signal.getsignal(signal.SIGINT) is signal.default_int_handler


def import_rule_module(path: str | Path) -> tuple[ModuleType | None, list[Problem]]:
    """Import the module at `path` under a unique name; the module, or the problem stopping it.

    The file's own folder is on sys.path during the import only, so a rules module can import
    helper modules beside it (the loader skips files starting with `_`, the place for helpers).
    """
    shown = str(path)
    resolved = Path(path).resolve()
    module_name = _module_name(resolved)
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        return None, [Problem(shown, 1, "cannot import: not a Python module")]
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(resolved.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # any failure of user code is a load problem
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt) and _ctrl_c_raises():
            raise  # may be a real Ctrl-C of `switchboard check`; the daemon handles SIGINT itself
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        reason = f"cannot import: {type(exc).__name__}" + (f": {message}" if message else "")
        return None, [Problem(shown, _error_line(exc, resolved), reason)]
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module, []


def rules_from_module(path: str | Path) -> tuple[list[Rule], list[Problem]]:
    """Import the module at `path` (see `import_rule_module`) and collect its rules in order."""
    module, problems = import_rule_module(path)
    if module is None:
        return [], problems
    isolated = getattr(module, ISOLATED_FLAG, False)
    if not isinstance(isolated, bool):
        reason = f"{ISOLATED_FLAG} must be True or False, not {isolated!r}"
        return [], [Problem(str(path), _assignment_line(Path(path), ISOLATED_FLAG), reason)]
    rules: list[Rule] = []
    seen: set[int] = set()
    name = module.__name__
    resolved = str(Path(path).resolve())
    for value in vars(module).values():
        if isinstance(value, Rule) and id(value) not in seen and _defined_in(value, name):
            seen.add(id(value))
            chosen = isolated if value.isolated is None else value.isolated
            loaded = replace(value, isolated=chosen, module_path=resolved)
            rules.append(_with_source(loaded, str(path)))
    return rules, []


def _assignment_line(path: Path, variable: str) -> int:
    """The line assigning `variable` at the top of the file (1 if not found)."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.startswith(variable):
            return number
    return 1


def _defined_in(r: Rule, module_name: str) -> bool:
    return getattr(r.function, "__module__", None) == module_name


def _with_source(r: Rule, shown_path: str) -> Rule:
    """The rule with its source written with the path as the user gave it."""
    return replace(r, source=SourceLocation(shown_path, r.source.line or 1))
