"""The proxied OpenAI routes: chat, completions, embeddings, responses.

Their checks (gateway.api.request_checks), token-id input to embeddings, and retrieval
for a `file_search` tool; the rest is the guarded path every family shares.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI

from gateway.admission.cost import prompt_estimate
from gateway.api.embedding_input import decode_token_input
from gateway.api.guarded_route import Call, GuardedRoute, check_content_type, parse_json
from gateway.api.request_checks import Endpoint, check_request
from gateway.errors import NeedsDatabase
from gateway.http.asgi import read_body
from gateway.rag.access import NEEDS_DATABASE
from gateway.rag.grounding import chat as rag_chat
from gateway.rag.grounding.citations import CitationRewriter
from gateway.rag.grounding.responses_output import ResponsesRewriter
from gateway.rag.grounding.responses_request import chat_request
from gateway.rag.metering import Payer
from gateway.upstream.dialect import OPENAI, RESPONSES

# The endpoints whose requests may carry a file_search tool for the gateway to run.
_GROUNDED = frozenset({Endpoint.CHAT, Endpoint.RESPONSES})


class ProxyRoute(GuardedRoute):
    def __init__(self, api: FastAPI, endpoint: Endpoint) -> None:
        super().__init__(api, endpoint.value)
        self.endpoint = endpoint
        # A Response with file_search is answered through chat, but its usage and
        # events are still the Responses API's (the rewriter turns them back).
        self.dialect = RESPONSES if endpoint is Endpoint.RESPONSES else OPENAI

    async def _handle(self, call: Call) -> None:
        state, granted, scope = call.state, call.granted, call.scope
        check_content_type(scope)
        raw = await read_body(call.receive)
        checked = check_request(self.endpoint, parse_json(raw), max_n=state.settings.max_n)
        changed = checked.changed
        self.identify_end_user(call, checked.body)
        if self.endpoint is Endpoint.EMBEDDINGS:
            changed = decode_token_input(checked.body) or changed
        # A dict lookup for plain requests; only a file_search tool goes further.
        file_search = None
        if "tools" in checked.body and self.endpoint in _GROUNDED:
            file_search = rag_chat.take_file_search(checked.body)
        turn = None  # a Response with file_search is answered through chat completions
        if file_search is not None and self.endpoint is Endpoint.RESPONSES:
            turn = chat_request(checked.body, file_search.sent)
        model, candidates = self.route_model(call, checked.model)
        if model != checked.model:
            checked.body["model"] = model
            changed = True
        await state.guard.admit(
            granted,
            len(raw),
            checked.max_tokens,
            sequences=checked.sequences,
            prompt_tokens=prompt_estimate(raw),
        )
        request = self.relay_request(
            call,
            orjson.dumps(checked.body) if changed else raw,
            model,
            stream=checked.stream,
            strip_usage=not checked.client_wants_usage,
            path=Endpoint.CHAT.value if turn else self.path,
        )
        if file_search is not None:
            chat = turn.chat if turn else checked.body
            # The query's embedding is metered as its own event on this request's route.
            if state.retrieval is None:  # the answer the Files and Vector Stores routes give
                raise NeedsDatabase(NEEDS_DATABASE, param=f"tools[{file_search.position}]")
            payer = Payer(granted.key, self.path, call.ctx.request_id, within_request=True)
            grounding = await rag_chat.augment(
                state.retrieval, payer, file_search, chat, checked.max_tokens, request, candidates
            )
            if turn is not None:
                request.rewrite = ResponsesRewriter(
                    turn.echo,
                    grounding.query,
                    grounding.hits,
                    grounding.sources,
                    turn.include_results,
                )
            elif grounding.sources:
                request.rewrite = CitationRewriter(grounding.sources)
            # Retrieved passages made the prompt longer than the client's body.
            granted.prompt_estimate = max(granted.prompt_estimate, prompt_estimate(request.body))
        await self.relay(call, request, candidates)
