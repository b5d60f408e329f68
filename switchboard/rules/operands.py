"""Checks of the operands rule authors give operators, with errors in the authors' words."""

from __future__ import annotations

from typing import Any

from .equality import is_number


class OperatorError(ValueError):
    """An operator given an operand it cannot use."""


def show_operand(operand: Any) -> str:
    """An operand as rule authors wrote it (true/false, not Python's True/False)."""
    if isinstance(operand, bool):
        return "true" if operand else "false"
    return repr(list(operand)) if isinstance(operand, tuple) else repr(operand)


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


def text_operand(name: str, operand: Any) -> str:
    if not isinstance(operand, str):
        raise OperatorError(f"{name} needs text, got {show_operand(operand)}")
    return operand


def number_operand(name: str, operand: Any) -> float | int:
    if not is_number(operand):
        raise OperatorError(f"{name} needs a number, got {show_operand(operand)}")
    number: float | int = operand
    return number


def scalar_list(name: str, operand: Any, *, allow_scalar: bool) -> tuple[Any, ...]:
    if allow_scalar and is_scalar(operand):
        return (operand,)
    if not isinstance(operand, list) or not operand:
        raise OperatorError(f"{name} needs a non-empty list of values, got {show_operand(operand)}")
    for item in operand:
        if not is_scalar(item):
            raise OperatorError(f"{name} values must be text, numbers or booleans, not {item!r}")
    return tuple(operand)
