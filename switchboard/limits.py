"""The size limits on what an event may carry, so every value fits the database's indexes.

PostgreSQL refuses an index entry over about 2,700 bytes ("index row size exceeds btree
maximum"), and the dedup ledger, the inventory and collections index the ids and keys events
bring. Ids and rendered collection keys and members are therefore bounded in UTF-8 bytes (a
composite key such as (dataset id, file id) stays within the limit too), and bodies are
bounded in nesting so hashing and storing them never exhausts Python's stack.
"""

from __future__ import annotations

MAX_ID_BYTES = 512
"""Longest message id, file id or dataset id an event may carry, and longest rendered
collection key or member; longer ones are refused (the event, or that rule for that event)."""

MAX_NESTING = 64
"""Deepest nesting of objects and arrays in a body (Clowder's own bodies nest about 4 deep)."""


def utf8_length(text: str) -> int:
    """Bytes `text` takes in UTF-8 (a lone surrogate counted as the 3 bytes it would take)."""
    return len(text.encode("utf-8", "surrogatepass"))


def over_id_limit(text: str) -> bool:
    """Whether `text` is too long to be an id or a collection key (quick for short text)."""
    return len(text) * 4 > MAX_ID_BYTES and utf8_length(text) > MAX_ID_BYTES
