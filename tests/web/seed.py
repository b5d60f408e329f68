"""A database holding what the status page shows: the demo day's collections and submissions,
some of them sent, some failed for good (with reasons), some waiting for a retry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.cli import DEMO_DAY
from switchboard.engine import Engine
from switchboard.outgoing import extractor_message
from switchboard.replay import replay
from switchboard.rules import load_rules
from switchboard.rules.model import RuleSet
from switchboard.store.sql import SqlStore
from switchboard.traffic import read_records

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"


@dataclass(frozen=True)
class Seeded:
    ruleset: RuleSet
    failed: list[str]  # job ids given up on, reason "refused by the broker: NOT_FOUND <n>"
    sent: list[str]
    retrying: str  # a pending job id with one failed attempt


def demo_ruleset() -> RuleSet:
    from switchboard.rules.legacy import LegacyContext
    from switchboard.settings import Settings

    return load_rules([str(RULES)], legacy=LegacyContext.from_settings(Settings()))


def seed(store: SqlStore) -> Seeded:
    """Replay the demo day into `store`, then settle some of its outbox rows."""
    ruleset = demo_ruleset()
    engine = Engine(ruleset)
    try:
        replay([r for _, r in read_records(DEMO_DAY)], engine, store, extractor_message)
    finally:
        engine.close()
    rows = store.claim_due(500, 60.0)
    by_target: dict[str, list[Any]] = {}
    for row in rows:
        by_target.setdefault(row.submission.extractor, []).append(row)
    flir = by_target["terra.multispectral.flir2tif"]
    failed = [row.submission.job_id for row in flir[:2]]
    for n, row in enumerate(flir[:2]):
        reason = f"refused by the broker: NOT_FOUND {n}"
        store.mark_attempt_failed(
            row.submission.job_id, reason, None, True, claim_token=row.claim_token
        )
    sent = [row.submission.job_id for row in by_target["terra.stereo-rgb.bin2tif"]]
    for row in by_target["terra.stereo-rgb.bin2tif"]:
        store.mark_sent(row.submission.job_id, claim_token=row.claim_token)
    retry = flir[2]
    store.mark_attempt_failed(
        retry.submission.job_id, "connection reset", None, False, claim_token=retry.claim_token
    )
    handled = set(failed) | set(sent) | {retry.submission.job_id}
    store.release_claims(
        [r.submission.job_id for r in rows if r.submission.job_id not in handled],
        rows[0].claim_token or "",
    )
    return Seeded(ruleset, failed, sent, retry.submission.job_id)
