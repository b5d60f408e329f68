"""How rule values compare for equality: numbers with numbers, text with text, and the index
keys under which equal values meet (see `operators` for the rules' semantics)."""

from __future__ import annotations

from typing import Any


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_number(value: Any) -> float | None:
    """`value` as a float when it is a number or numeric text, else None (NaN counts as None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if number != number else number


def equal(value: Any, operand: Any) -> bool:
    """Equality as rules define it (see the module docstring)."""
    if is_number(operand) or is_number(value):
        a, b = as_number(value), as_number(operand)
        return a is not None and a == b
    return type(value) is type(operand) and value == operand


def equality_keys(operand: Any) -> list[Any]:
    """Index keys under which a value equal to `operand` will look itself up."""
    if isinstance(operand, bool):
        return [("b", operand)]
    if is_number(operand):
        number = as_number(operand)
        return [] if number is None else [("n", number)]
    keys: list[Any] = [operand]
    number = as_number(operand)
    if number is not None:
        keys.append(("sn", number))  # text operand that numbers (not texts) compare equal to
    return keys
