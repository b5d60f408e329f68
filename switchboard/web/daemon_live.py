"""The running daemon's `Live`: its loop pulse, consumer, rules and counters since start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..clock import utc_now
from ..metrics import Metrics
from ..rules.model import RuleSet
from .live import Check, LoopPulse, RuleCounts, rule_version

DEAD_LETTER_REASONS = ("malformed", "poison", "oversized")


@dataclass
class DaemonLive:
    """Reads the daemon's state; every read is of a value the loop thread writes atomically."""

    queue: str
    pulse: LoopPulse
    max_stall_s: float
    metrics: Metrics
    rules: Callable[[], RuleSet]  # the processor's active rule set
    consuming: Callable[[], bool]  # the source holds an open connection with a consumer
    database: Callable[[], Check]
    started_at: datetime = field(default_factory=utc_now)
    daemon: bool = True
    _versions: dict[int, tuple[RuleSet, str]] = field(default_factory=dict)

    def ruleset(self) -> RuleSet:
        return self.rules()

    def rule_version(self) -> str:
        """Hashed once per loaded rule set (a reload swaps in a new one)."""
        ruleset = self.rules()
        known = self._versions.get(id(ruleset))
        if known is None or known[0] is not ruleset:
            known = (ruleset, rule_version(ruleset))
            self._versions.clear()
            self._versions[id(ruleset)] = known
        return known[1]

    def rule_counts(self, rule: str) -> RuleCounts:
        value = self.metrics.value
        return RuleCounts(
            matches=int(value("switchboard_rule_matches_total", rule=rule)),
            errors=int(value("switchboard_rule_errors_total", rule=rule, kind="error")),
            timeouts=int(value("switchboard_rule_errors_total", rule=rule, kind="timeout")),
        )

    def dead_letters_since_start(self) -> Mapping[str, int]:
        counts = {
            reason: int(self.metrics.value("switchboard_dead_letters_total", reason=reason))
            for reason in DEAD_LETTER_REASONS
        }
        return {reason: n for reason, n in counts.items() if n}

    def health(self) -> list[Check]:
        stalled = self.pulse.seconds_since()
        ok = stalled <= self.max_stall_s
        detail = f"the loop turned {stalled:.1f} s ago (bound {self.max_stall_s:g} s)"
        return [Check("loop", ok, detail)]

    def readiness(self) -> list[Check]:
        consuming = self.consuming()
        ruleset = self.rules()
        return [
            Check(
                "consuming", consuming, "consuming" if consuming else "not connected to RabbitMQ"
            ),
            self.database(),
            Check("rules", len(ruleset) > 0, f"{len(ruleset)} rule(s) loaded"),
            *self.health(),
        ]
