"""Every operator, with positive and negative cases (numbers as text, case-insensitive forms)."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.rules.fields import ABSENT
from switchboard.rules.operators import OperatorError, make_operator, regex_literal_prefix

CASES: list[tuple[str, Any, Any, bool]] = [
    ("equals", "image/tiff", "image/tiff", True),
    ("equals", "image/tiff", "image/png", False),
    ("equals", 1048576, "1048576", True),  # a number in the rule, numeric text in the event
    ("equals", "1048576", 1048576, True),
    ("equals", 5, 5.0, True),
    ("equals", "007", "7", False),  # two texts compare as text
    ("equals", True, True, True),
    ("equals", True, "true", False),
    ("equals", 1, True, False),
    ("in", ["a.bin", "b.bin"], "b.bin", True),
    ("in", ["a.bin", "b.bin"], "c.bin", False),
    ("in", [1, 2], "2", True),
    ("prefix", "stereoTop - ", "stereoTop - 2017", True),
    ("prefix", "stereoTop - ", "StereoTop - 2017", False),
    ("prefix", "1", 10, False),  # text operators only match text
    ("suffix", ".bin", "x_left.bin", True),
    ("suffix", ".bin", "x_left.BIN", False),
    ("glob", "*_left.tif", "2017_left.tif", True),
    ("glob", "*_left.tif", "2017_LEFT.TIF", False),
    ("regex", r"\d{4}-\d{2}", "on 2017-05", True),  # search semantics
    ("regex", r"^\d{4}$", "2017-05", False),
    ("iequals", "IMAGE/TIFF", "image/tiff", True),
    ("iequals", "IMAGE/TIFF", "image/png", False),
    ("iprefix", "STEREOTOP", "stereoTop - x", True),
    ("iprefix", "STEREOTOP", "flir - x", False),
    ("isuffix", ".BIN", "x.bin", True),
    ("isuffix", ".BIN", "x.tif", False),
    ("iglob", "*_LEFT.TIF", "a_left.tif", True),
    ("iglob", "*_LEFT.TIF", "a_right.tif", False),
    ("iregex", "^rgb geotiffs", "RGB GeoTIFFs - 2017", True),
    ("iregex", "^rgb geotiffs", "flir", False),
    ("lt", 10, "9.5", True),
    ("lt", 10, 10, False),
    ("lte", 10, "10", True),
    ("lte", 10, 11, False),
    ("gt", 1000, "1048576", True),
    ("gt", 1000, "abc", False),  # non-numeric text fails, never raises
    ("gte", 2, 2, True),
    ("gte", 2, 1, False),
    ("gte", 1, True, False),  # booleans are not numbers
    ("between", [1, 5], "5", True),  # inclusive
    ("between", [1, 5], 1, True),
    ("between", [1, 5], 6, False),
    ("exists", True, "x", True),
    ("exists", True, ABSENT, False),
    ("exists", False, ABSENT, True),
    ("exists", False, "x", False),
    ("anything-but", ["image/tiff", "image/geotiff"], "image/png", True),
    ("anything-but", ["image/tiff", "image/geotiff"], "image/tiff", False),
    ("anything-but", "x", "y", True),
    ("anything-but", 3, "3", False),
]


@pytest.mark.parametrize(("name", "operand", "value", "expected"), CASES)
def test_operator_decides_as_documented(
    name: str, operand: Any, value: Any, expected: bool
) -> None:
    assert make_operator(name, operand).test(value) is expected


@pytest.mark.parametrize(
    ("name", "operand", "message"),
    [
        ("regex", "([a-z", "bad regex"),
        ("prefix", 3, "needs text"),
        ("gte", "5", "needs a number"),
        ("between", [5, 1], "low is greater than high"),
        ("between", [1], "between needs [low, high]"),
        ("in", [], "non-empty list"),
        ("exists", "yes", "true or false"),
        ("equals", None, "exists: false"),
        ("startswith", "x", "unknown operator"),
    ],
)
def test_operator_refuses_a_bad_operand(name: str, operand: Any, message: str) -> None:
    with pytest.raises(OperatorError, match=message.replace("[", r"\[")):
        make_operator(name, operand)


def test_unknown_operator_suggests_the_closest_name() -> None:
    with pytest.raises(OperatorError, match="did you mean 'prefix'"):
        make_operator("prefx", "a")


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        (r"^RGB GeoTIFFs - (?P<date>\d+)", "RGB GeoTIFFs - "),
        (r"^stereoTop\ -\ ", "stereoTop - "),
        (r"^abc*", "ab"),  # the last letter may repeat zero times
        (r"^abc+", "abc"),
        (r"^a|b", ""),  # top-level alternation: nothing is certain
        (r"^(a|b)c", ""),
        (r"abc", ""),  # not anchored
        (r"^\d", ""),
    ],
)
def test_regex_literal_prefix_is_only_what_every_match_starts_with(
    pattern: str, prefix: str
) -> None:
    assert regex_literal_prefix(pattern) == prefix
