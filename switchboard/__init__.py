"""Switchboard: one consumer sees every Clowder event and routes work to the extractors."""

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

__all__ = [
    "DatasetView",
    "Decision",
    "Evaluation",
    "Event",
    "EventKind",
    "FileInfo",
    "Rule",
    "RuleSet",
    "Submission",
    "SubmitRequest",
    "load_rules",
    "rule",
    "submit",
]
