"""Reading a legacy `rule_extractor_map.json` and every problem with its shape, by line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import Problem

EXTRACT_LEVELS = ("dataset", "file")


def key_line(text: str, key: str) -> int:
    """The line of the map's text where `key` is defined (1 if not found)."""
    pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return 1


def load_map(path: Path) -> tuple[dict[str, Any] | None, str, list[Problem]]:
    """The parsed `rule_extractor_map.json`, its text, and every problem with its shape."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, "", [Problem(shown, 1, f"cannot read: {exc}")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, text, [Problem(shown, exc.lineno, f"invalid JSON: {exc.msg}")]
    shape = '{rule_name: {"extractors": {extractor_name: {...}}}}'
    if not isinstance(data, dict):
        return None, text, [Problem(shown, 1, f"must be a JSON object {shape}")]
    if not data:
        return None, text, [Problem(shown, 1, "names no rules")]
    problems = []
    for name, entry in data.items():
        line = key_line(text, name)
        extractors = entry.get("extractors") if isinstance(entry, dict) else None
        if not isinstance(extractors, dict) or not extractors:
            reason = f'rule {name!r}: "extractors" must be a non-empty object ({shape})'
            problems.append(Problem(shown, line, reason))
            continue
        for extractor, config in extractors.items():
            where = key_line(text, extractor) if extractor else line
            if not extractor.strip():
                problems.append(Problem(shown, where, f"rule {name!r}: empty extractor name"))
            elif not isinstance(config, dict):
                reason = f"rule {name!r}: extractor {extractor!r} must map to an object"
                problems.append(Problem(shown, where, reason))
            elif config.get("extract_level", "dataset") not in EXTRACT_LEVELS:
                reason = (
                    f"rule {name!r}: extractor {extractor!r}: extract_level must be "
                    f"'dataset' or 'file', not {config['extract_level']!r}"
                )
                problems.append(Problem(shown, where, reason))
    return (None if problems else data), text, problems
