from __future__ import annotations

import pytest

from gateway.api.request_checks import Endpoint, check_request
from gateway.errors import InvalidRequest

CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_stream_gets_usage_requested_and_remembered():
    checked = check_request(Endpoint.CHAT, {**CHAT, "stream": True})
    assert checked.body["stream_options"] == {"include_usage": True}
    assert checked.changed and not checked.client_wants_usage


def test_client_usage_request_is_kept_unchanged():
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    checked = check_request(Endpoint.CHAT, body)
    assert checked.client_wants_usage and not checked.changed


def test_other_stream_options_survive():
    body = {**CHAT, "stream": True, "stream_options": {"continuous_usage_stats": True}}
    checked = check_request(Endpoint.CHAT, body)
    assert checked.body["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}


def test_max_tokens_reads_both_names_for_chat():
    assert check_request(Endpoint.CHAT, {**CHAT, "max_completion_tokens": 50}).max_tokens == 50
    assert check_request(Endpoint.CHAT, {**CHAT, "max_tokens": 70}).max_tokens == 70
    assert (
        check_request(
            Endpoint.RESPONSES, {"model": "m", "input": "x", "max_output_tokens": 9}
        ).max_tokens
        == 9
    )


def test_guided_fields_translate_and_merge():
    body = {
        **CHAT,
        "guided_choice": ["a", "b"],
        "guided_regex": "a|b",
        "structured_outputs": {"whitespace_pattern": " "},
    }
    checked = check_request(Endpoint.CHAT, body)
    assert checked.body["structured_outputs"] == {
        "choice": ["a", "b"],
        "regex": "a|b",
        "whitespace_pattern": " ",
    }
    assert checked.changed


def test_conflicting_guided_and_structured_outputs_are_refused():
    body = {**CHAT, "guided_regex": "a", "structured_outputs": {"regex": "b"}}
    with pytest.raises(InvalidRequest) as caught:
        check_request(Endpoint.CHAT, body)
    assert caught.value.param == "guided_regex"


def test_untouched_bodies_are_not_reserialised():
    assert not check_request(Endpoint.CHAT, dict(CHAT)).changed
    assert not check_request(Endpoint.EMBEDDINGS, {"model": "m", "input": "x"}).changed


@pytest.mark.parametrize(
    "endpoint", [Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS, Endpoint.RESPONSES]
)
def test_missing_input_names_the_field(endpoint):
    with pytest.raises(InvalidRequest) as caught:
        check_request(endpoint, {"model": "m"})
    assert caught.value.param in ("prompt", "input")


def test_bool_is_not_an_integer():
    with pytest.raises(InvalidRequest):
        check_request(Endpoint.CHAT, {**CHAT, "max_tokens": True})
