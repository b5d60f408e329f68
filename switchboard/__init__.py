"""Switchboard: one consumer sees every Clowder event and routes work to the extractors.

This module is the public API for rule authors and tools: the rule decorator and `submit`, the
values rules receive and return, loading and evaluating rule sets, and building events from
recorded messages for tests. Everything else is the daemon's own.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from .engine import Engine
from .errors import MalformedEvent, Problem, RuleLoadError, SwitchboardError
from .events import event_from_record, parse_event
from .model import (
    DatasetView,
    Decision,
    Evaluation,
    Event,
    EventKind,
    FileInfo,
    Submission,
    SubmitRequest,
    submit,
)
from .rules import Rule, RuleSet, load_rules, rule

try:
    __version__ = _version("switchboard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DatasetView",
    "Decision",
    "Engine",
    "Evaluation",
    "Event",
    "EventKind",
    "FileInfo",
    "MalformedEvent",
    "Problem",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "Submission",
    "SubmitRequest",
    "SwitchboardError",
    "__version__",
    "event_from_record",
    "load_rules",
    "parse_event",
    "rule",
    "submit",
]
