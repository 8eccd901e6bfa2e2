"""A `/v1/responses` request with a `file_search` tool, as the chat completion the gateway
answers it with. Pure.

The gateway grounds the answer itself (search, context fitting, citations:
gateway.rag.grounding.chat) and asks the engine for a chat completion, which every vLLM
model serves, then writes the answer back as a Response
(gateway.rag.grounding.responses_output). It keeps no responses, so the conversation
travels in `input`, as with `store: false`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequest

Message = dict[str, Any]

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
# Sampling fields with the same name and meaning in both APIs.
_SAME = ("temperature", "top_p", "user")
# What the Response object repeats of the request.
_ECHOED = ("instructions", "max_output_tokens", "metadata", "temperature", "top_p", "user")
RESULTS_INCLUDE = "file_search_call.results"


@dataclass(frozen=True, slots=True)
class ResponsesTurn:
    chat: dict[str, Any]  # the chat completion request to forward (and ground)
    echo: dict[str, Any] = field(default_factory=dict)  # request fields the Response repeats
    include_results: bool = False  # `include: ["file_search_call.results"]`


def chat_request(body: dict[str, Any], tool: dict[str, Any]) -> ResponsesTurn:
    """`body` (its file_search tool already taken out, `tool` being that tool as sent) as a
    chat completion request; InvalidRequest naming the field this gateway cannot honour."""
    for stateful in ("previous_response_id", "conversation"):
        if body.get(stateful) is not None:
            raise InvalidRequest(
                f"`{stateful}` is not supported: this gateway keeps no responses. "
                "Send the whole conversation in `input`.",
                param=stateful,
            )
    if body.get("tools"):
        raise InvalidRequest(
            "With a file_search tool, /v1/responses takes no other tools here; "
            "send function tools through /v1/chat/completions.",
            param="tools",
        )
    chat: dict[str, Any] = {"model": body["model"], "messages": messages(body)}
    chat.update({name: body[name] for name in _SAME if body.get(name) is not None})
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # the Response reports usage
    include = body.get("include")
    echo = {name: body.get(name) for name in _ECHOED}
    echo["tools"] = [tool]
    echo["text"] = body.get("text") or {"format": {"type": "text"}}
    return ResponsesTurn(
        chat=chat,
        echo=echo,
        include_results=isinstance(include, list) and RESULTS_INCLUDE in include,
    )


def messages(body: dict[str, Any]) -> list[Message]:
    """`instructions` and `input` as chat messages."""
    out: list[Message] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("`instructions` must be a string.", param="instructions")
        out.append({"role": "system", "content": instructions})
    given = body.get("input")
    if isinstance(given, str):
        return [*out, {"role": "user", "content": given}]
    if not isinstance(given, list) or not given:
        raise InvalidRequest(
            "`input` must be a string or a non-empty array of messages.", param="input"
        )
    return out + [_message(item, f"input[{i}]") for i, item in enumerate(given)]


def _message(item: Any, where: str) -> Message:
    if not isinstance(item, dict) or item.get("type", "message") != "message":
        kind = item.get("type") if isinstance(item, dict) else type(item).__name__
        raise InvalidRequest(
            f"`{where}` must be a message ({{role, content}}); items of type `{kind}` are "
            "not supported with file_search here.",
            param=where,
        )
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"`{where}.role` must be one of {sorted(_ROLES)}.", param=f"{where}.role"
        )
    return {"role": role, "content": _text(item.get("content"), f"{where}.content")}


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"`{where}` must be a string or an array of parts.", param=where)
    texts: list[str] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidRequest(
                f"`{where}[{i}]` of type `{kind}` is not supported: send text parts "
                "(`input_text`) with file_search.",
                param=f"{where}[{i}]",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"`{where}[{i}].text` must be a string.", param=f"{where}[{i}]")
        texts.append(text)
    return "\n".join(texts)


def _response_format(text: Any) -> dict[str, Any] | None:
    """The Responses `text.format` as chat's `response_format`; None for plain text."""
    spec = text.get("format") if isinstance(text, dict) else None
    if not isinstance(spec, dict) or spec.get("type") in (None, "text"):
        return None
    if spec.get("type") == "json_object":
        return {"type": "json_object"}
    if spec.get("type") == "json_schema":
        schema = {k: spec[k] for k in ("name", "schema", "strict", "description") if k in spec}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(
        "`text.format.type` must be `text`, `json_object` or `json_schema`.",
        param="text.format.type",
    )
