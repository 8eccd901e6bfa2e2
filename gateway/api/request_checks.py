"""What the gateway checks and rewrites in an OpenAI request body before it goes upstream.

Pure: a parsed body in, a checked and rewritten body out, `InvalidRequest` (with `param`)
for anything the engine would otherwise reject later or, worse, silently ignore.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.errors import InvalidRequest


class Endpoint(Enum):
    CHAT = "/v1/chat/completions"
    COMPLETIONS = "/v1/completions"
    EMBEDDINGS = "/v1/embeddings"
    RESPONSES = "/v1/responses"

    @property
    def streams(self) -> bool:
        return self is not Endpoint.EMBEDDINGS

    @property
    def has_stream_options(self) -> bool:
        return self in (Endpoint.CHAT, Endpoint.COMPLETIONS)


# vLLM >= 0.12 answers 200 and ignores these (unconstrained output); `structured_outputs`
# replaced them (vllm-project/vllm#29326).
GUIDED_FIELDS = {
    "guided_json": "json",
    "guided_regex": "regex",
    "guided_choice": "choice",
    "guided_grammar": "grammar",
    "guided_whitespace_pattern": "whitespace_pattern",
}
# Chose a backend per request before; now a server flag. Dropped rather than relayed.
DROPPED_GUIDED_FIELDS = ("guided_decoding_backend",)

_REQUIRED_INPUT = {
    Endpoint.CHAT: "messages",
    Endpoint.COMPLETIONS: "prompt",
    Endpoint.EMBEDDINGS: "input",
    Endpoint.RESPONSES: "input",
}
# The fields naming an answer's length, in vLLM's order of precedence: for chat it reads
# `max_completion_tokens` when set, else `max_tokens` (ChatCompletionRequest), not the
# smaller of the two.
_MAX_TOKEN_FIELDS = {
    Endpoint.CHAT: ("max_completion_tokens", "max_tokens"),
    Endpoint.COMPLETIONS: ("max_tokens",),
    Endpoint.RESPONSES: ("max_output_tokens",),
    Endpoint.EMBEDDINGS: (),
}
# vLLM's CompletionRequest.max_tokens defaults to 16 (a null is read as 16 too); chat and
# Responses have no such default: the engine may fill the context window.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
# Endpoints whose `n` asks the engine for several answers to one prompt. vLLM 0.32 no
# longer reads `best_of` (an unknown field to its CompletionRequest), so it costs nothing.
_TAKES_N = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS})


@dataclass(slots=True)
class CheckedRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    # The client's own wish: the usage chunk is stripped from the stream when it is False.
    client_wants_usage: bool
    # The longest answer the engine will write per sequence, None when the request leaves
    # it to the engine (chat, Responses: up to the context window).
    max_tokens: int | None
    changed: bool
    # How many answers the engine generates: `n` times the prompts of /v1/completions;
    # 0 for embeddings, which generate nothing.
    sequences: int = 1


def check_request(endpoint: Endpoint, body: Any, *, max_n: int) -> CheckedRequest:
    """`max_n` caps `n` (GATEWAY_MAX_N): each answer holds its own share of the engine."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("You must provide a model parameter (a string).", param="model")
    _require_input(endpoint, body)
    stream = _optional(body, "stream", bool) or False
    if stream and not endpoint.streams:
        raise InvalidRequest(f"{endpoint.value} does not support streaming.", param="stream")
    max_tokens = _max_tokens(endpoint, body)
    sequences = _sequences(endpoint, body, max_n)
    if endpoint is Endpoint.RESPONSES and body.get("background"):
        # Work that outlives the request escapes its slot and its metering, and the
        # gateway keeps no responses to fetch later.
        raise InvalidRequest(
            "`background` responses are not supported by this gateway: send the request "
            "without it (use `stream: true` to see the answer as it is written).",
            param="background",
        )
    changed = _translate_guided(body)
    wants_usage = False
    if endpoint.has_stream_options:
        wants_usage, options_changed = _stream_options(body, stream)
        changed = changed or options_changed
    return CheckedRequest(body, model, stream, wants_usage, max_tokens, changed, sequences)


def _require_input(endpoint: Endpoint, body: dict[str, Any]) -> None:
    field = _REQUIRED_INPUT[endpoint]
    value = body.get(field)
    if endpoint is Endpoint.CHAT:
        if not isinstance(value, list) or not value:
            raise InvalidRequest("`messages` must be a non-empty array.", param="messages")
        for i, message in enumerate(value):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise InvalidRequest(
                    f"`messages[{i}]` must be an object with a `role`.", param=f"messages[{i}]"
                )
    elif value is None or not isinstance(value, str | list):
        raise InvalidRequest(f"`{field}` is required (a string or an array).", param=field)


def _optional(body: dict[str, Any], field: str, kind: type) -> Any:
    value = body.get(field)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"`{field}` must be a {kind.__name__}.", param=field)
    return value


def _max_tokens(endpoint: Endpoint, body: dict[str, Any]) -> int | None:
    found: int | None = None
    for field in _MAX_TOKEN_FIELDS[endpoint]:
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"`{field}` must be a positive integer.", param=field)
        if found is None:  # the first field set wins, as in vLLM
            found = value
    if found is None and endpoint is Endpoint.COMPLETIONS:
        return COMPLETIONS_DEFAULT_MAX_TOKENS
    return found


def _sequences(endpoint: Endpoint, body: dict[str, Any], max_n: int) -> int:
    if endpoint is Endpoint.EMBEDDINGS:
        return 0
    if endpoint not in _TAKES_N:
        return 1
    n = body.get("n")
    if n is None:
        n = 1
    elif isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_n:
        raise InvalidRequest(
            f"`n` must be an integer from 1 to {max_n} on this gateway.", param="n"
        )
    if endpoint is Endpoint.COMPLETIONS:
        n *= completion_prompts(body)
    return int(n)


def completion_prompts(body: dict[str, Any]) -> int:
    """How many prompts a /v1/completions body holds, as vLLM reads `prompt`: a string or
    a list of token ids is one, a list of strings or of token-id lists is one each.
    `prompt_embeds` (one or a list) adds its own."""
    count = _prompt_count(body.get("prompt"), token_ids=True)
    count += _prompt_count(body.get("prompt_embeds"), token_ids=False)
    return max(1, count)


def _prompt_count(value: Any, *, token_ids: bool) -> int:
    if value is None:
        return 0
    if not isinstance(value, list):
        return 1
    if token_ids and value and isinstance(value[0], int):
        return 1
    return len(value)


_GUIDED_OR_DROPPED = frozenset(GUIDED_FIELDS) | frozenset(DROPPED_GUIDED_FIELDS)


def _translate_guided(body: dict[str, Any]) -> bool:
    if _GUIDED_OR_DROPPED.isdisjoint(body):  # nearly every request: one C-level pass
        return False
    guided = {k: body.pop(k) for k in list(body) if k in GUIDED_FIELDS}
    dropped = [body.pop(k) for k in DROPPED_GUIDED_FIELDS if k in body]
    if not guided:
        return bool(dropped)
    existing = body.get("structured_outputs")
    if existing is not None and not isinstance(existing, dict):
        raise InvalidRequest("`structured_outputs` must be an object.", param="structured_outputs")
    merged = dict(existing or {})
    for legacy, value in guided.items():
        key = GUIDED_FIELDS[legacy]
        if key in merged and merged[key] != value:
            raise InvalidRequest(
                f"`{legacy}` conflicts with `structured_outputs.{key}`; send only one.",
                param=legacy,
            )
        merged[key] = value
    body["structured_outputs"] = merged
    return True


def _stream_options(body: dict[str, Any], stream: bool) -> tuple[bool, bool]:
    """Returns (client wants usage, body changed). The engine always meters the stream."""
    options = _optional(body, "stream_options", dict)
    if not stream:
        if "stream_options" in body:
            # vLLM answers 400 to stream_options without stream; some clients send it anyway.
            del body["stream_options"]
            return False, True
        return False, False
    include = (options or {}).get("include_usage")
    if include is not None and not isinstance(include, bool):
        # vLLM reads "false", "0" or "no" as false: a string the gateway took for true
        # would leave the stream without its usage chunk, unmetered.
        raise InvalidRequest(
            "`stream_options.include_usage` must be a boolean.",
            param="stream_options.include_usage",
        )
    wants = include is True
    if wants:
        return True, False
    body["stream_options"] = {**(options or {}), "include_usage": True}
    return False, True
