"""The pool's actor: loads the processor once, then runs `process_file` over batches of members."""

from __future__ import annotations

import importlib
import json
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

Record = dict[str, Any]


def load_processor(reference: str, arguments: Mapping[str, Any]) -> Any:
    """Import `package.module:ClassName` and instantiate it (this loads the model)."""
    module_name, _, class_name = reference.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**arguments)


def member_record(member: Mapping[str, str], processor: Any) -> Record:
    """One member's result line: the dict `process_file` returned, or its error and traceback."""
    record: Record = {"member": member["id"], "name": member["name"], "path": member["path"]}
    try:
        result = processor.process_file(member["path"])
        if not isinstance(result, dict):
            raise TypeError(f"process_file must return a dict, got {type(result).__name__}")
        json.dumps(result)  # the results file is JSON: a result that is not fails here, alone
    except Exception as exc:  # the member's fault: recorded, and the batch goes on
        record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        record["traceback"] = traceback.format_exc()
        return record
    record.update(ok=True, result=result)
    return record


class BatchWorker:
    """A pool actor. `__init__` runs once per actor (on a Ray worker, never in the daemon)."""

    def __init__(self, processor: str, processor_args: Mapping[str, Any]) -> None:
        self.processor = load_processor(processor, processor_args)

    def process(self, members: Sequence[Mapping[str, str]]) -> list[Record]:
        return [member_record(member, self.processor) for member in members]
