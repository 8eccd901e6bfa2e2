"""Chat completions with a `file_search` tool: retrieve, fit, forward without it, cite.

The gateway consumes the tool. It searches the named vector stores with the last user
turn, puts the passages (labelled [1], [2], ...) before that turn's text, fits the
prompt to the model's window (`context.py`), forwards the rest of the request, and adds
the passages used to the answer as `file_citation` annotations (`citations.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from gateway.errors import ContextLengthExceeded, GatewayError, InvalidRequest
from gateway.http.asgi import RawHeaders
from gateway.rag.grounding.citations import Source
from gateway.rag.grounding.context import (
    Conversation,
    Plan,
    assemble,
    budget_for,
    estimate_prompt,
    fit_context,
    prompt_costs,
    search_query,
    source_block,
    split_conversation,
)
from gateway.rag.grounding.tokens import count_chat_tokens
from gateway.rag.metering import Payer
from gateway.rag.resources import Retrieval
from gateway.rag.search.hybrid import SearchHit, search_stores
from gateway.upstream.balancer import choose
from gateway.upstream.registry import Upstream
from gateway.upstream.relay import RelayRequest

_TYPE = "file_search"
DEFAULT_RESULTS = 10
MAX_RESULTS = 50  # OpenAI's bound for file_search's max_num_results
# Re-measuring a trimmed prompt corrects the estimates' error; rarely needs a second round.
FIT_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class FileSearch:
    position: int  # in the request's `tools`, for error params
    vector_store_ids: list[str]
    max_num_results: int
    filters: dict[str, Any] | None
    score_threshold: float | None
    sent: dict[str, Any]  # the tool as the request wrote it


def take_file_search(body: dict[str, Any]) -> FileSearch | None:
    """The request's file_search tool, checked and taken out of `body` (with `tool_choice`
    when no tool remains), or None. Called only for chat and responses requests that carry
    `tools` (the tool has the same shape in both)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return None
    found = [
        i for i, tool in enumerate(tools) if isinstance(tool, dict) and tool.get("type") == _TYPE
    ]
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequest(
            "Send at most one file_search tool; list every vector store in its `vector_store_ids`.",
            param=f"tools[{found[1]}]",
        )
    tool = parse_tool(tools[found[0]], found[0])
    rest = [t for i, t in enumerate(tools) if i != found[0]]
    if rest:
        body["tools"] = rest
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == _TYPE:
            del body["tool_choice"]
    else:
        for field in ("tools", "tool_choice", "parallel_tool_calls"):
            body.pop(field, None)
    return tool


def parse_tool(tool: dict[str, Any], position: int) -> FileSearch:
    param = f"tools[{position}]"
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise InvalidRequest(
            f"`{param}.vector_store_ids` must be a non-empty array of vector store ids.",
            param=f"{param}.vector_store_ids",
        )
    count = tool.get("max_num_results")
    if count is None:
        count = DEFAULT_RESULTS
    elif isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RESULTS:
        raise InvalidRequest(
            f"`{param}.max_num_results` must be an integer from 1 to {MAX_RESULTS}.",
            param=f"{param}.max_num_results",
        )
    filters = tool.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise InvalidRequest(f"`{param}.filters` must be an object.", param=f"{param}.filters")
    return FileSearch(
        position, list(dict.fromkeys(ids)), count, filters, _score_threshold(tool, param), tool
    )


def _score_threshold(tool: dict[str, Any], param: str) -> float | None:
    ranking = tool.get("ranking_options")
    if ranking is None:
        return None
    if not isinstance(ranking, dict):
        raise InvalidRequest(
            f"`{param}.ranking_options` must be an object.", param=f"{param}.ranking_options"
        )
    threshold = ranking.get("score_threshold")
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        threshold = -1
    if not 0 <= threshold <= 1:
        raise InvalidRequest(
            f"`{param}.ranking_options.score_threshold` must be a number from 0 to 1.",
            param=f"{param}.ranking_options.score_threshold",
        )
    return float(threshold)


@dataclass(frozen=True, slots=True)
class Grounding:
    """What the answer was grounded on: the search query and the passages kept."""

    query: str
    hits: list[SearchHit]
    sources: list[Source]


async def augment(
    rag: Retrieval,
    payer: Payer,
    tool: FileSearch,
    body: dict[str, Any],
    max_tokens: int | None,
    request: RelayRequest,
    candidates: Sequence[Upstream],
) -> Grounding:
    """Retrieve and fit; rewrite `request`'s body and headers. The query's embedding is
    admitted and metered for `payer` (within its request). The caller cites the sources
    in the answer (`CitationRewriter` for chat)."""
    conversation = split_conversation(body["messages"])
    query = search_query(conversation)
    try:
        hits = await search_stores(
            rag,
            payer,
            tool.vector_store_ids,
            query,
            max_results=tool.max_num_results,
            filters=tool.filters,
            score_threshold=tool.score_threshold,
        )
    except GatewayError as exc:
        param = exc.param or ""
        if param == "vector_store_ids" or param.startswith("filters"):
            exc.param = f"tools[{tool.position}].{param}"  # where this request sent it
        raise
    blocks = [source_block(i + 1, hit.filename, hit.text) for i, hit in enumerate(hits)]
    plan = await _fit(rag, request, candidates, conversation, blocks, body, max_tokens)
    body["messages"] = assemble(conversation, blocks[: plan.passages_kept], plan.turns_dropped)
    request.body = orjson.dumps(body)
    request.extra_headers = [*(request.extra_headers or ()), *rag_headers(plan)]
    kept = hits[: plan.passages_kept]
    return Grounding(query, kept, _sources(kept))


def _sources(hits: Sequence[SearchHit]) -> list[Source]:
    return [Source(i + 1, h.file_id, h.filename, h.text) for i, h in enumerate(hits)]


def rag_headers(plan: Plan) -> RawHeaders:
    return [
        (b"x-gateway-rag-passages-used", str(plan.passages_kept).encode()),
        (b"x-gateway-rag-passages-dropped", str(plan.passages_dropped).encode()),
        (b"x-gateway-rag-turns-dropped", str(plan.turns_dropped).encode()),
    ]


async def _fit(
    rag: Retrieval,
    request: RelayRequest,
    candidates: Sequence[Upstream],
    conversation: Conversation,
    blocks: list[str],
    body: dict[str, Any],
    max_tokens: int | None,
) -> Plan:
    """One count of the full prompt in the common case; a trimmed prompt is measured again
    (estimates of its parts are scaled, not exact) and refitted until it is known to fit."""
    tools = body.get("tools")
    upstream = choose(candidates)

    async def measure(messages: list[dict[str, Any]]) -> tuple[int | None, int | None]:
        if upstream is None:
            return None, None
        counted = await count_chat_tokens(
            rag.engines, upstream, request.headers["x-request-id"], request.model, messages, tools
        )
        return (counted.count, counted.max_model_len) if counted else (None, None)

    measured, window = await measure(assemble(conversation, blocks, 0))
    window = window or rag.engines.registry.max_model_len(request.model)
    if window is None:  # nothing says how long the window is: send everything
        full = measured or estimate_prompt(assemble(conversation, blocks, 0), tools)
        return Plan(len(blocks), 0, 0, full)
    budget = budget_for(window, max_tokens, rag.settings.default_max_tokens)
    costs = prompt_costs(conversation, blocks, tools, measured)
    exact = measured is not None
    minimal_measured = False
    plan = Plan(len(blocks), 0, 0, costs.fixed)
    for _ in range(FIT_ROUNDS):
        try:
            plan = fit_context(budget, costs)
        except ContextLengthExceeded:
            if not exact or minimal_measured:
                raise
            # Say the overflow as the engine counts it: measure what is never dropped.
            minimal, _ = await measure(assemble(conversation, [], len(conversation.turns)))
            if minimal is None:
                raise
            costs = replace(costs, fixed=minimal)
            minimal_measured = True
            continue
        if not exact or not plan.trimmed:
            return plan
        actual, _ = await measure(
            assemble(conversation, blocks[: plan.passages_kept], plan.turns_dropped)
        )
        if actual is None or actual <= plan.prompt_tokens:
            return plan
        costs = replace(costs, fixed=costs.fixed + actual - plan.prompt_tokens)
    return plan
