"""Adapter names and paths, pure: what the admin API accepts before any engine is asked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.upstream.adapters.spec import AdapterPathError, AdapterSpec, confined_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("adapters/sql", "/models/adapters/sql"),
        ("sql/", "/models/sql"),
        ("/models/adapters/sql", "/models/adapters/sql"),
        ("./adapters//sql", "/models/adapters/sql"),
    ],
)
def test_paths_inside_the_models_dir(path: str, expected: str) -> None:
    assert confined_path("/models", path) == expected
    assert confined_path("/models/", path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "../etc",
        "adapters/../../etc",
        "adapters/..",
        "..\\secrets",
        "/etc/passwd",
        "/models-other/x",  # a sibling that shares the prefix
        "/models",  # the directory itself is no adapter
        ".",
        "adapters/\nsql",
    ],
)
def test_paths_outside_are_refused(path: str) -> None:
    with pytest.raises(AdapterPathError):
        confined_path("/models", path)


@pytest.mark.parametrize("name", ["", "-x", "a b", "a//b", "a/", "x" * 129, "tab\there", "é"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        AdapterSpec(name=name, path="p", base_model="m")


def test_names_like_model_ids_are_fine() -> None:
    spec = AdapterSpec(name="org/sql-helper_v1.2:q", path="p", base_model="m")
    assert spec.name == "org/sql-helper_v1.2:q"
