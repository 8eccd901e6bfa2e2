"""Fitting a file_search chat prompt into the model's context window. Pure: no I/O.

The prompt is the conversation with a block of retrieved passages put before the text of
the last user message. What changes from turn to turn (the passages) comes after what stays
(the system prompt and earlier turns, as the client sends them again), so vLLM's automatic
prefix cache reuses the conversation: passages in the system prompt would change the
prompt's first tokens every turn. When it is too long for `max_model_len` less the tokens
kept free for the answer, the weakest passages go first, then the oldest earlier turns; the
system prompt and the last user turn (with whatever follows it) never go. Costs are token
counts the caller measured with the engine's tokenizer, or estimated here at about 4
characters a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import ContextLengthExceeded, InvalidRequest

Message = dict[str, Any]

SYSTEM_ROLES = frozenset({"system", "developer"})
CHARS_PER_TOKEN = 4
# Role markers and separators a chat template adds around each message (ChatML: 4-5).
MESSAGE_OVERHEAD = 4
GENERATION_PROMPT = 3
SOURCES_PREAMBLE = (
    "Use these sources to answer the question after them. Cite each source you use by its "
    "number in square brackets, like [1]. If the sources do not answer it, say so."
)
QUESTION_HEADING = "Question:"


@dataclass(frozen=True, slots=True)
class Conversation:
    system: list[Message]  # the leading system/developer messages: never dropped
    turns: list[list[Message]]  # earlier turns, oldest first, each from a user message on
    current: list[Message]  # the last user message and anything after it: never dropped

    @property
    def last_user_index(self) -> int:
        return len(self.system) + sum(len(turn) for turn in self.turns)


def split_conversation(messages: Sequence[Message]) -> Conversation:
    last_user = None
    for i, message in enumerate(messages):
        if message.get("role") == "user":
            last_user = i
    if last_user is None:
        raise InvalidRequest(
            "A file_search tool needs a user message to search with.", param="messages"
        )
    head = 0
    while head < last_user and messages[head].get("role") in SYSTEM_ROLES:
        head += 1
    turns: list[list[Message]] = []
    for message in messages[head:last_user]:
        if message.get("role") == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return Conversation(list(messages[:head]), turns, list(messages[last_user:]))


def message_text(message: Message) -> str:
    """The text of a message: its string content, or the text parts of a content array."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") in ("text", "input_text")
            and isinstance(part.get("text"), str)
        )
    return ""


def search_query(conversation: Conversation) -> str:
    query = message_text(conversation.current[0]).strip()
    if not query:
        raise InvalidRequest(
            "The last user message has no text to search the vector stores with.",
            param=f"messages[{conversation.last_user_index}].content",
        )
    return query


# -- the prompt ------------------------------------------------------------------------


def source_block(label: int, filename: str, text: str) -> str:
    return f"[{label}] {filename}: {text.strip()}"


def sources_text(blocks: Sequence[str]) -> str:
    return "\n\n".join([SOURCES_PREAMBLE, *blocks])


def with_sources(question: Message, text: str) -> Message:
    """The last user message with the sources before its own text (the question last: small
    models answer the question nearest the end). Its text parts stay as the client sent them."""
    content = question.get("content")
    if isinstance(content, list):
        lead = {"type": "text", "text": f"{text}\n\n{QUESTION_HEADING}\n"}
        return {**question, "content": [lead, *content]}
    return {**question, "content": f"{text}\n\n{QUESTION_HEADING}\n{content or ''}"}


def assemble(conversation: Conversation, blocks: Sequence[str], drop_turns: int) -> list[Message]:
    """The messages to send: the kept passages (`blocks`) and the turns after the dropped."""
    history = [m for turn in conversation.turns[drop_turns:] for m in turn]
    current = conversation.current
    if blocks:
        current = [with_sources(current[0], sources_text(blocks)), *current[1:]]
    return [*conversation.system, *history, *current]


# -- estimates -------------------------------------------------------------------------


def estimate_text(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_message(message: Message) -> int:
    content = message.get("content")
    if isinstance(content, str):
        size = len(content)
    else:
        size = len(orjson.dumps(content)) if content is not None else 0
    if message.get("tool_calls"):
        size += len(orjson.dumps(message["tool_calls"]))
    return MESSAGE_OVERHEAD + -(-size // CHARS_PER_TOKEN)


def estimate_prompt(messages: Sequence[Message], tools: Any = None) -> int:
    tools_cost = estimate_text(orjson.dumps(tools).decode()) if tools else 0
    return sum(estimate_message(m) for m in messages) + tools_cost + GENERATION_PROMPT


@dataclass(frozen=True, slots=True)
class Costs:
    fixed: int  # never dropped: system prompt, last turn, tools, template overhead
    preamble: int  # the sources' instructions, paid only while a passage is kept
    passages: list[int]  # best first
    turns: list[int]  # oldest first


def prompt_costs(
    conversation: Conversation, blocks: Sequence[str], tools: Any, measured: int | None
) -> Costs:
    """Each part's share of the whole prompt. Parts are estimated, then scaled so that they
    add up to the `measured` total of the full prompt (the engine's count) when there is one."""
    passages = [estimate_text("\n\n" + block) for block in blocks]
    preamble = estimate_text(f"{SOURCES_PREAMBLE}\n\n{QUESTION_HEADING}\n") if blocks else 0
    turns = [sum(estimate_message(m) for m in turn) for turn in conversation.turns]
    estimated = estimate_prompt(assemble(conversation, blocks, 0), tools)
    total = estimated if measured is None else measured
    scale = total / estimated if estimated else 1.0
    passages = [round(cost * scale) for cost in passages]
    turns = [round(cost * scale) for cost in turns]
    preamble = round(preamble * scale)
    fixed = max(0, total - preamble - sum(passages) - sum(turns))
    return Costs(fixed, preamble, passages, turns)


# -- fitting ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    max_model_len: int
    reserve: int  # completion tokens kept free when dropping parts can make room
    max_tokens: int | None = None  # the client's; must fit, where the reserve is a wish

    @property
    def required(self) -> int:
        return 1 if self.max_tokens is None else self.max_tokens


def budget_for(max_model_len: int, max_tokens: int | None, default_reserve: int) -> Budget:
    if max_tokens is not None:
        return Budget(max_model_len, max_tokens, max_tokens)
    # Without max_tokens vLLM generates until the window is full: any reserve is a guess,
    # and a quarter of the window at most keeps small-context models useful.
    return Budget(max_model_len, min(default_reserve, max_model_len // 4))


@dataclass(frozen=True, slots=True)
class Plan:
    passages_kept: int  # the best ones: a prefix of the passages
    passages_dropped: int
    turns_dropped: int  # the oldest ones
    prompt_tokens: int  # as the costs predict

    @property
    def trimmed(self) -> bool:
        return bool(self.passages_dropped or self.turns_dropped)


def fit_context(budget: Budget, costs: Costs) -> Plan:
    """Drop the weakest passages, then the oldest turns, until the prompt leaves
    `budget.reserve` free; raise ContextLengthExceeded when even the parts that are never
    dropped leave less than `budget.required`."""
    limit = budget.max_model_len - budget.reserve
    passages, fixed = costs.passages, costs.fixed

    def sources(kept: int) -> int:
        return costs.preamble + sum(passages[:kept]) if kept else 0

    history = sum(costs.turns)
    kept = len(passages)
    while kept and fixed + history + sources(kept) > limit:
        kept -= 1
    dropped = 0
    while not kept and dropped < len(costs.turns) and fixed + history > limit:
        history -= costs.turns[dropped]
        dropped += 1
    if dropped:
        # The dropped turns did not fit even without any passage; the best passages may
        # still fit in what their going freed.
        while kept < len(passages) and fixed + history + sources(kept + 1) <= limit:
            kept += 1
    prompt = fixed + history + sources(kept)
    if prompt + budget.required > budget.max_model_len:
        raise context_error(budget, prompt)
    return Plan(kept, len(passages) - kept, dropped, prompt)


def context_error(budget: Budget, prompt: int) -> ContextLengthExceeded:
    # The prefix is what LangChain and litellm look for (with the code) to trim history.
    over = prompt + budget.required - budget.max_model_len
    if budget.max_tokens is not None:
        asked = (
            f"you requested {prompt + budget.required} tokens ({prompt} in the messages, "
            f"{budget.required} in the completion)"
        )
    else:
        asked = f"your messages resulted in {prompt} tokens, leaving no room for the completion"
    return ContextLengthExceeded(
        f"This model's maximum context length is {budget.max_model_len} tokens. However, "
        f"{asked}: {over} tokens too many, even without any retrieved passage or earlier "
        "turn. Please reduce the length of the messages or completion.",
        param="messages",
    )
