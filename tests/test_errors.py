"""The error tree in `gateway/errors.py` is the whole tree: every class the gateway can
answer with is defined there and drawn in its docstring."""

from __future__ import annotations

import importlib
import pkgutil

import gateway
from gateway import errors
from gateway.errors import GatewayError


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_error_class_lives_in_errors_py_and_is_in_the_tree() -> None:
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if module.name.endswith("__main__"):
            continue  # `python -m gateway` runs the CLI on import
        importlib.import_module(module.name)
    classes = _subclasses(GatewayError)
    assert classes, "no error classes found"
    for cls in classes:
        assert cls.__module__ == "gateway.errors", f"{cls.__qualname__} is in {cls.__module__}"
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} is not in the tree"
