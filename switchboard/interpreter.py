"""Interpreter settings for the daemon: how often CPython hands the GIL between threads, and
a garbage collector kept off the objects that live as long as the process.

The GIL: intake, the relay and the rule runner share one interpreter. A thread coming back
from a PostgreSQL or broker round trip waits for the GIL until the thread holding it drops
it, which a busy thread does only every switch interval (CPython's default is 5 ms; relay
threads used to lower it to 1 ms when they started). Intake makes several round trips a
batch and the relay many short ones a round, each followed by such a wait; at 0.5 ms a backlog
drained ~10 % faster than at 1 ms (`bench/pipeline.py`'s workload, four runs each).

The collector: CPython runs a young collection every 700 net container allocations and,
every hundred of those, a full one that walks every tracked object (modules, rules, the
SQLAlchemy and pika machinery). A batch of 200 events allocates tens of thousands of
short-lived containers, so the collector took a sixth of the daemon's CPU, most of it in full
collections of ~70 ms each: pauses every event of the batch waited out. Once the daemon is
built, `settle()` collects, freezes what survived (the collector never walks it again; what
is freed later is still freed by reference counting) and spaces young collections a batch's
worth of allocations apart. Cycles made after startup are still collected.
"""

from __future__ import annotations

import gc
import sys

# net container allocations between young collections (CPython's default is 700); the older
# generations keep CPython's ratios (a middle collection every 10 young ones, a full one every
# 10 middle ones, and that only once a quarter of the long-lived objects are new)
YOUNG_THRESHOLD = 20_000
SWITCH_INTERVAL_S = 0.0005  # CPython's default is 0.005


def settle(
    young_threshold: int = YOUNG_THRESHOLD, switch_interval_s: float = SWITCH_INTERVAL_S
) -> None:
    """Collect, freeze the survivors out of future collections, space young collections
    `young_threshold` allocations apart and hand the GIL on every `switch_interval_s`."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    sys.setswitchinterval(switch_interval_s)
