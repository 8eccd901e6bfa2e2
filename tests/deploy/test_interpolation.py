"""Compose's interpolation rules, from the specification's own examples."""

from __future__ import annotations

import pytest

from tests.deploy.interpolation import InterpolationError, Interpolator, required_variables

ENV = {"SET": "value", "EMPTY": "", "OTHER": "other"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("pre-${SET}-post", "pre-value-post"),
        ("${UNSET}", ""),
        ("$UNSET/x", "/x"),
        ("${SET:-default}", "value"),
        ("${EMPTY:-default}", "default"),
        ("${UNSET:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-${OTHER}}", "other"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${SET:?never evaluated ${UNSET:?nor this}}", "value"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: $5", "cost: $5"),
        ("a $ b", "a $ b"),
        ("${SET:-a:b:c}", "value"),
        ("${UNSET:-http://host:8080/v1}", "http://host:8080/v1"),
    ],
)
def test_substitution(text: str, expected: str) -> None:
    assert Interpolator(ENV).text(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET:?set it in .env}", "UNSET is missing a value: set it in .env"),
        ("${EMPTY:?must not be empty}", "EMPTY is missing a value: must not be empty"),
        ("${UNSET?needed}", "UNSET is missing a value: needed"),
        ("${UNSET:?see ${OTHER}}", "see other"),
    ],
)
def test_required_values_stop_compose(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message):
        Interpolator(ENV).text(text)


def test_set_but_empty_satisfies_the_colonless_form() -> None:
    assert Interpolator(ENV).text("${EMPTY?needed}") == ""


@pytest.mark.parametrize("text", ["${}", "${1ABC}", "${SET/x/y}", "${SET", "${SET:=x}"])
def test_malformed_expressions_are_errors(text: str) -> None:
    with pytest.raises(InterpolationError):
        Interpolator(ENV).text(text)


def test_tracks_what_was_read_and_what_was_unset() -> None:
    interpolator = Interpolator(ENV)
    interpolator.value({"a": ["$SET", "${UNSET}", "${MISSING:-fine}"], "keys-untouched": 1})
    assert interpolator.used == {"SET", "UNSET", "MISSING"}
    assert interpolator.unset == {"UNSET"}  # a default is no warning


def test_values_not_keys() -> None:
    assert Interpolator(ENV).value({"$SET": "$SET"}) == {"$SET": "value"}


def test_required_variables_are_listed_with_their_messages() -> None:
    text = "a: ${A:?set A} b: ${B?} c: ${C:-x}"
    assert required_variables(text) == {"A": "set A", "B": ""}
