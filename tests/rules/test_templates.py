"""Templates: placeholders for fields and regex captures, brace escapes, and no code."""

from __future__ import annotations

import pytest

from switchboard.rules.fields import ABSENT
from switchboard.rules.templates import MissingValue, TemplateError, parse_template


def test_placeholders_are_replaced_and_double_braces_are_literal() -> None:
    template = parse_template("{{raw}} {file.name} on {date}}}")
    values = {"file.name": "a.bin", "date": "2017-05-01"}
    assert template.render(values.__getitem__) == "{raw} a.bin on 2017-05-01}"
    assert template.fields == ("file.name", "date")


def test_numbers_render_as_json_text() -> None:
    assert parse_template("{file.size}").render(lambda _: 42) == "42"


def test_an_absent_field_is_a_missing_value_not_an_empty_string() -> None:
    with pytest.raises(MissingValue, match=r"\{date\} has no value"):
        parse_template("x-{date}").render(lambda _: ABSENT)


@pytest.mark.parametrize(
    "source",
    ["{file.name", "a}b", "{}", "{file.name!r}", "{body.a[0]}", "{x.__class__ }", "{a:>4}"],
)
def test_anything_but_a_plain_field_name_is_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(source)
