"""Typed reads of `app.state`: a capability finds its object, or learns it is not there."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request

from gateway.config import Settings
from gateway.http.app_state import attribute, settings_of
from tests.http.exchange import http_scope


def test_attribute_is_the_object_of_the_asked_type_or_none() -> None:
    state = State()
    state.settings = Settings()
    state.retrieval = "not a Settings"
    assert attribute(state, "settings", Settings) is state.settings
    assert attribute(state, "retrieval", Settings) is None  # wrongly wired: not handed out
    assert attribute(state, "key_admin", Settings) is None  # not set (no lifespan yet)


def request_on(app: Starlette) -> Request:
    return Request(http_scope("/", app=app))


def test_settings_of_reads_the_apps_settings() -> None:
    app = Starlette()
    app.state.settings = Settings(port=9999)
    assert settings_of(request_on(app)).port == 9999


def test_an_app_built_without_settings_says_how_to_build_it() -> None:
    with pytest.raises(RuntimeError, match="create_app"):
        settings_of(request_on(Starlette()))
