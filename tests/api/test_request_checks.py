from __future__ import annotations

import pytest

from gateway.api.request_checks import CheckedRequest, Endpoint, check_request
from gateway.errors import InvalidRequest

CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def checks(endpoint: Endpoint, body: object, max_n: int = 8) -> CheckedRequest:
    return check_request(endpoint, body, max_n=max_n)


def test_stream_gets_usage_requested_and_remembered() -> None:
    checked = checks(Endpoint.CHAT, {**CHAT, "stream": True})
    assert checked.body["stream_options"] == {"include_usage": True}
    assert checked.changed and not checked.client_wants_usage


def test_client_usage_request_is_kept_unchanged() -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    checked = checks(Endpoint.CHAT, body)
    assert checked.client_wants_usage and not checked.changed


def test_other_stream_options_survive() -> None:
    body = {**CHAT, "stream": True, "stream_options": {"continuous_usage_stats": True}}
    checked = checks(Endpoint.CHAT, body)
    assert checked.body["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}


def test_max_tokens_reads_both_names_for_chat() -> None:
    assert checks(Endpoint.CHAT, {**CHAT, "max_completion_tokens": 50}).max_tokens == 50
    assert checks(Endpoint.CHAT, {**CHAT, "max_tokens": 70}).max_tokens == 70
    assert (
        checks(Endpoint.RESPONSES, {"model": "m", "input": "x", "max_output_tokens": 9}).max_tokens
        == 9
    )


def test_guided_fields_translate_and_merge() -> None:
    body = {
        **CHAT,
        "guided_choice": ["a", "b"],
        "guided_regex": "a|b",
        "structured_outputs": {"whitespace_pattern": " "},
    }
    checked = checks(Endpoint.CHAT, body)
    assert checked.body["structured_outputs"] == {
        "choice": ["a", "b"],
        "regex": "a|b",
        "whitespace_pattern": " ",
    }
    assert checked.changed


def test_conflicting_guided_and_structured_outputs_are_refused() -> None:
    body = {**CHAT, "guided_regex": "a", "structured_outputs": {"regex": "b"}}
    with pytest.raises(InvalidRequest) as caught:
        checks(Endpoint.CHAT, body)
    assert caught.value.param == "guided_regex"


def test_untouched_bodies_are_not_reserialised() -> None:
    assert not checks(Endpoint.CHAT, dict(CHAT)).changed
    assert not checks(Endpoint.EMBEDDINGS, {"model": "m", "input": "x"}).changed


@pytest.mark.parametrize(
    "endpoint", [Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS, Endpoint.RESPONSES]
)
def test_missing_input_names_the_field(endpoint: Endpoint) -> None:
    with pytest.raises(InvalidRequest) as caught:
        checks(endpoint, {"model": "m"})
    assert caught.value.param in ("prompt", "input")


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(InvalidRequest):
        checks(Endpoint.CHAT, {**CHAT, "max_tokens": True})


def test_chat_max_completion_tokens_wins_over_max_tokens_as_in_vllm() -> None:
    both = {**CHAT, "max_completion_tokens": 500, "max_tokens": 20}
    assert checks(Endpoint.CHAT, both).max_tokens == 500
    # The ignored field is still validated, as vLLM's request model does.
    with pytest.raises(InvalidRequest) as caught:
        checks(Endpoint.CHAT, {**CHAT, "max_completion_tokens": 5, "max_tokens": "x"})
    assert caught.value.param == "max_tokens"


def test_completions_without_max_tokens_take_vllms_default_of_16() -> None:
    assert checks(Endpoint.COMPLETIONS, {"model": "m", "prompt": "x"}).max_tokens == 16
    assert checks(Endpoint.CHAT, dict(CHAT)).max_tokens is None


@pytest.mark.parametrize(
    ("prompt", "prompts"),
    [
        ("one", 1),
        ([1, 2, 3], 1),  # token ids: one prompt
        (["a", "b", "c"], 3),
        ([[1, 2], [3], [4, 5]], 3),
    ],
)
def test_completions_answers_scale_with_n_and_prompts(prompt: object, prompts: int) -> None:
    body = {"model": "m", "prompt": prompt, "n": 2}
    assert checks(Endpoint.COMPLETIONS, body).sequences == 2 * prompts


def test_answers_per_endpoint() -> None:
    assert checks(Endpoint.CHAT, {**CHAT, "n": 3}).sequences == 3
    assert checks(Endpoint.CHAT, dict(CHAT)).sequences == 1
    assert checks(Endpoint.EMBEDDINGS, {"model": "m", "input": ["a", "b"]}).sequences == 0
    assert checks(Endpoint.RESPONSES, {"model": "m", "input": "x"}).sequences == 1


@pytest.mark.parametrize("n", [0, -1, 9, 1000, "2", 2.0, True])
@pytest.mark.parametrize("endpoint", [Endpoint.CHAT, Endpoint.COMPLETIONS])
def test_n_outside_the_cap_or_not_an_integer_is_refused(endpoint: Endpoint, n: object) -> None:
    body = {"model": "m", "messages": CHAT["messages"], "prompt": "x", "n": n}
    with pytest.raises(InvalidRequest) as caught:
        checks(endpoint, body, max_n=8)
    assert caught.value.param == "n"
    assert "from 1 to 8" in caught.value.message


@pytest.mark.parametrize("value", ["false", "0", "no", 0, 1])
def test_include_usage_must_be_a_real_boolean(value: object) -> None:
    # vLLM reads "false" as false: taken for true here, the stream would go unmetered.
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": value}}
    with pytest.raises(InvalidRequest) as caught:
        checks(Endpoint.CHAT, body)
    assert caught.value.param == "stream_options.include_usage"


def test_include_usage_false_is_overridden_and_stripped_later() -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": False}}
    checked = checks(Endpoint.CHAT, body)
    assert checked.body["stream_options"] == {"include_usage": True}
    assert not checked.client_wants_usage


def test_background_responses_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        checks(Endpoint.RESPONSES, {"model": "m", "input": "x", "background": True})
    assert caught.value.param == "background"
    assert checks(Endpoint.RESPONSES, {"model": "m", "input": "x", "background": False})
