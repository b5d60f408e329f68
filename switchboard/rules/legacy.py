"""Legacy rulechecker rules: a TERRA-REF `rules.py` beside its `rule_extractor_map.json`, as is.

The original rulechecker imported `rules.py`, and for every entry of the map called the module
function of that name as `rule(extractor, connector, host, secret_key, resource, rulemap)`,
where `resource` is pyclowder's dataset resource and `rulemap` the map entry. The function
answers `{extractor: {"process": bool, "parameters": {...}}}`; each extractor with `process`
true gets a submission carrying those parameters. Here every map entry becomes an ordinary
`Rule` (kind "legacy") whose function adapts that call, so the engine runs it like any Python
rule (own worker thread, timeout, errors isolated) and rule_utils reaches the event's
transaction. Each file's `filepath` is its path on disk as `legacy_paths.FilePaths` finds it
(Clowder's file list, or the operator's template). Job ids are the engine's: (rule, extractor,
dataset, generation "0"), so a redelivered or re-sent event for the same dataset can never
submit twice, while an operator's manual re-check (the original way to re-evaluate a day) is a
new job.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import ClowderUnavailable, Problem
from ..locations import SourceLocation
from ..model import DatasetView, Event, SubmitRequest, kinds_matching, submit
from ..secrets import REDACTED, replace_secrets
from .legacy_map import key_line, load_map
from .legacy_paths import LEGACY_ON, SETTING, FilePaths
from .legacy_resource import dataset_resource
from .model import Rule
from .python_rules import import_rule_module

if TYPE_CHECKING:
    from ..settings import Settings

MAP_NAME = "rule_extractor_map.json"
MODULE_NAME = "rules.py"
SIGNATURE = "(extractor, connector, host, secret_key, resource, rulemap)"

log = logging.getLogger(__name__)


def is_legacy_module(path: Path) -> bool:
    """Whether `path` is a rulechecker `rules.py` (one with `rule_extractor_map.json` beside it)."""
    return path.name == MODULE_NAME and (path.parent / MAP_NAME).is_file()


@dataclass(frozen=True)
class LegacyContext:
    """What the rulechecker passed every rule besides the resource, from Switchboard's settings.

    An empty `host` or `secret_key` falls back to the event's own `host` / `secretKey`, which is
    what pyclowder handed its callbacks. `file_paths` finds each file's path on disk; without it
    the resource's `filepath` is the bare file name (or the path the event carries).
    """

    host: str = ""
    secret_key: str = field(default="", repr=False)
    mounted_paths: Mapping[str, str] = field(default_factory=dict)
    extractor_name: str = "switchboard"
    file_paths: FilePaths | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, between: Callable[[], None] | None = None
    ) -> LegacyContext:
        """From a `Settings` (clowder_url, clowder_key, mounted_paths, queue, legacy_file_path).

        `between` runs between slow file-list lookups (the daemon's broker keepalive).

        With CLOWDER_URL set, file paths come from Clowder's file list (one quick retry, then
        the events wait, like dataset-name lookups); the template covers what Clowder leaves out.
        """
        url, key, template = settings.clowder_url, settings.clowder_key, settings.legacy_file_path
        listing = None
        if url:
            from ..clowder import ClowderClient  # constructing it connects to nothing

            listing = ClowderClient(url, key, timeout_s=5.0, retries=1)
        file_paths = None
        if listing is not None or template:
            cooldown_s = settings.clowder_retry_delay_s
            file_paths = FilePaths(listing, template, cooldown_s=cooldown_s, between=between)
        return cls(
            host=url,
            secret_key=key,
            mounted_paths=dict(settings.mounted_paths),
            extractor_name=settings.queue or "switchboard",
            file_paths=file_paths,
        )


class LegacyConnector:
    """The part of pyclowder's connector that rule modules read (`mounted_paths`)."""

    def __init__(self, mounted_paths: Mapping[str, str], extractor_name: str) -> None:
        self.mounted_paths = dict(mounted_paths)
        self.extractor_name = extractor_name
        self.ssl_verify = True


class LegacyExtractor:
    """Stands in for the rulechecker's pyclowder Extractor (`extractor_info`, `logger`)."""

    def __init__(self, name: str) -> None:
        self.extractor_info = {"name": name, "categories": ["WORKFLOW"]}
        self.logger = logging.getLogger(f"switchboard.legacy.{name}")


class LegacyRuleError(RuntimeError):
    """A legacy rule's answer is not `{extractor: {"process": bool, "parameters": {...}}}`."""


class LegacyCall:
    """The `Rule.function` of a legacy rule: builds the original arguments, checks the answer.

    `__code__` is the legacy function's, so the engine places a rule's errors in `rules.py`.
    """

    def __init__(
        self,
        function: Any,
        rulemap: Mapping[str, Any],
        context: LegacyContext,
    ) -> None:
        self.function = function
        self.rulemap = rulemap
        self.context = context
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    @property
    def __code__(self) -> Any:
        return self.function.__code__

    def __call__(self, event: Event, dataset: DatasetView) -> list[SubmitRequest]:
        if not event.dataset_id:
            return []  # rulechecker rules are dataset rules; pyclowder would build no resource
        host = self.context.host or event.host or str(event.body.get("host") or "")
        secret = self.context.secret_key or str(event.body.get("secretKey") or "")
        rulemap = copy.deepcopy(dict(self.rulemap))
        paths = self.context.file_paths
        if paths is not None:
            try:
                paths.ensure(event)  # a no-op once the processor has prepared the batch
            except ClowderUnavailable as exc:
                raise LegacyRuleError(f"cannot list the dataset's file paths: {exc}") from None
        resource = dataset_resource(event, dataset, paths)
        try:
            answer = self.function(
                LegacyExtractor(self.context.extractor_name),
                LegacyConnector(self.context.mounted_paths, self.context.extractor_name),
                host,
                secret,
                resource,
                rulemap,
            )
        except Exception as exc:
            if secret and len(secret) >= 4 and secret in str(exc):
                redacted = replace_secrets(str(exc), [secret], REDACTED)
                error = LegacyRuleError(f"{type(exc).__name__}: {redacted}")
                raise error.with_traceback(exc.__traceback__) from None
            raise
        return self.requests(answer)

    def requests(self, answer: Any) -> list[SubmitRequest]:
        """The submissions a rule's answer asks for, in the map's extractor order."""
        extractors: Mapping[str, Any] = self.rulemap["extractors"]
        if not isinstance(answer, Mapping):
            raise LegacyRuleError(
                f"returned {type(answer).__name__}; expected "
                '{extractor: {"process": bool, "parameters": {...}}}'
            )
        unknown = [name for name in answer if name not in extractors]
        if unknown:
            raise LegacyRuleError(
                f"returned extractor {unknown[0]!r}, which its entry in {MAP_NAME} does not list"
            )
        result = []
        for name, config in extractors.items():
            verdict = answer.get(name)
            if verdict is None:
                continue
            if not isinstance(verdict, Mapping):
                kind = type(verdict).__name__
                raise LegacyRuleError(f"answer for {name!r} is {kind}, not a dict")
            if not verdict.get("process"):
                continue
            parameters = _parameters(name, verdict.get("parameters"))
            level = (config or {}).get("extract_level", "dataset")
            result.append(_legacy_submit(name, level, parameters))
        return result


def _legacy_submit(name: str, level: str, parameters: dict[str, Any]) -> SubmitRequest:
    """`submit`, except that `file_paths` is allowed: the rulechecker contract is that a rule
    writes its own list of paths and passes that file's path (never with `manifest_id`, which
    stays reserved, so the manifest file sink leaves the file alone)."""
    own = {k: v for k, v in parameters.items() if k != "file_paths"}
    request = submit(name, resource=level, parameters=own)  # type: ignore[arg-type]
    if "file_paths" in parameters:
        request = replace(request, parameters=MappingProxyType(dict(parameters)))
    return request


def _parameters(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # fieldmosaic accepted parameters as a JSON string too
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise LegacyRuleError(f"parameters for {name!r} are a string but not JSON") from exc
    if not isinstance(value, Mapping):
        raise LegacyRuleError(f"parameters for {name!r} are {type(value).__name__}, not a dict")
    try:
        parameters: dict[str, Any] = json.loads(json.dumps(value))
        return parameters
    except (TypeError, ValueError) as exc:
        raise LegacyRuleError(f"parameters for {name!r} are not JSON: {exc}") from exc


# --- loading ----------------------------------------------------------------------------------


def _signature_problem(function: Any) -> str | None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None  # builtins and C callables: let the call itself tell
    try:
        signature.bind(*range(6))
    except TypeError as exc:
        return f"must take {SIGNATURE}: {exc}"
    return None


def rules_from_legacy(
    path: str | Path, context: LegacyContext | None = None
) -> tuple[list[Rule], list[Problem]]:
    """Load a rulechecker `rules.py` and the map beside it into one `Rule` per map entry."""
    module_path = Path(path)
    map_path = module_path.parent / MAP_NAME
    shown_module, shown_map = str(path), str(map_path)
    rulemap, text, problems = load_map(map_path)
    if rulemap is None:
        return [], problems
    module, problems = import_rule_module(module_path)
    if module is None:
        return [], problems
    context = context or LegacyContext()
    if context.file_paths is not None and context.file_paths.problem:
        return [], [Problem(SETTING, 1, context.file_paths.problem)]
    kinds = kinds_matching(LEGACY_ON)
    rules: list[Rule] = []
    for name, entry in rulemap.items():
        function = getattr(module, name, None)
        if function is None or not callable(function):
            what = "is not defined" if function is None else "is not a function"
            reason = f"rule {name!r} {what} in {shown_module}"
            problems.append(Problem(shown_map, key_line(text, name), reason))
            continue
        code = getattr(function, "__code__", None)
        line = code.co_firstlineno if code is not None else 1
        wrong = _signature_problem(function)
        if wrong is not None:
            problems.append(Problem(shown_module, line, f"rule {name!r} {wrong}"))
            continue
        doc = (function.__doc__ or "").strip().splitlines()
        targets = ", ".join(entry["extractors"])
        rules.append(
            Rule(
                name=name,
                kind="legacy",
                on=LEGACY_ON,
                kinds=kinds,
                source=SourceLocation(shown_module, line),
                description=doc[0] if doc else f"rulechecker rule for {targets}",
                function=LegacyCall(function, entry, context),
            )
        )
    return (rules if not problems else []), problems
