"""Rules: the YAML rule language, Python rules, and loading them into a `RuleSet`."""

from .loader import load_rules
from .model import Rule, RuleSet, SubmitSpec
from .python_rules import rule

__all__ = ["Rule", "RuleSet", "SubmitSpec", "load_rules", "rule"]
