"""The proxied OpenAI routes: chat, completions, embeddings, responses, as pure ASGI.

Per request: key → body checks → model → quota and limits → relay → settle and meter.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from fastapi import FastAPI

from gateway.admission.cost import Cost, prompt_estimate
from gateway.admission.guard import Pass, check_model_access, cost
from gateway.api.embedding_input import decode_token_input
from gateway.api.request_checks import Endpoint, check_request
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    NeedsDatabase,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from gateway.http.asgi import ClientGone, Receive, Scope, Send, header, read_body
from gateway.http.context import RequestContext, get_context
from gateway.http.errors import send_error, sse_error_event
from gateway.keys.end_users import end_user_of
from gateway.rag.access import NEEDS_DATABASE
from gateway.rag.grounding import chat as rag_chat
from gateway.rag.grounding.citations import CitationRewriter
from gateway.rag.grounding.responses_output import ResponsesRewriter
from gateway.rag.grounding.responses_request import chat_request
from gateway.rag.metering import Payer
from gateway.state import AppState, state_of
from gateway.upstream.relay import RelayRequest, RelayResult
from gateway.usage import event_from_request


def check_content_type(scope: Scope) -> None:
    content_type = header(scope, b"content-type")
    # A missing type is tolerated (the body must still parse); a wrong one is refused.
    if content_type is not None and not content_type.lower().startswith(b"application/json"):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type `{content_type.decode('latin-1')}`: send a JSON body "
            "with `Content-Type: application/json`."
        )


def parse_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON ({exc.msg} at position {exc.pos})."
        ) from None


_STOPPING = (
    "The gateway is shutting down and cut this request short; retry it (another replica, "
    "or this one once it is back, will serve it)."
)


async def _say_stopping(send: Send, relayed: RelayResult) -> None:
    """Tell the client why its request ends here, briefly: the process is going away."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1):  # a client that reads nothing must not hold us
            if relayed.sse_open:
                event = sse_error_event(_STOPPING, code="server_shutting_down")
                await send({"type": "http.response.body", "body": event, "more_body": False})
            else:  # refused by the server if a whole answer already went out
                await send_error(send, UpstreamUnavailable(_STOPPING, code="server_shutting_down"))


# The endpoints whose requests may carry a file_search tool for the gateway to run.
_GROUNDED = frozenset({Endpoint.CHAT, Endpoint.RESPONSES})


class ProxyRoute:
    def __init__(self, api: FastAPI, endpoint: Endpoint) -> None:
        self.api = api
        self.endpoint = endpoint
        self.path = endpoint.value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        ctx.route = self.path
        state = state_of(self.api.state)
        in_flight = state.metrics.in_flight.labels(self.path)
        in_flight.inc()
        # Until its usage is recorded: a graceful stop waits for that before the last flush.
        state.unrecorded.enter()
        granted = Pass()
        # Filled in by the relay as it goes, so that a request cancelled mid-relay still
        # knows what reached the engine and the client.
        relayed = RelayResult()
        status, client_left = 0, False
        try:
            try:
                if scope["method"] != "POST":
                    raise InvalidRequest(f"Use POST for {self.path}.")
                granted.key = await state.guard.authenticate(scope)
                ctx.key_id = granted.key.id if granted.key else None
                await self._handle(state, ctx, granted, scope, receive, send, relayed)
                status, client_left = relayed.status or 499, relayed.cancelled
            except GatewayError as exc:
                # Raised after the request reached an engine (one that went silent), it
                # is still metered: the engine worked on it until the gateway gave up.
                status = exc.status
                await send_error(send, exc)
            except ClientGone:
                relayed.cancelled = True
                status, client_left = 499, True
        except BaseException as exc:
            # The server cancelling us (a graceful stop that gave up waiting) or a bug: the
            # engine may have worked all the same, so it is metered as cancelled. Recorded
            # before anything awaits, then the slot is freed now rather than when its
            # lease expires.
            relayed.cancelled = True
            stopping = isinstance(exc, asyncio.CancelledError)
            await self._finish(
                state, ctx, granted, relayed, 503 if stopping else 500, client_left=False
            )
            if stopping:
                await _say_stopping(send, relayed)
            raise
        else:
            await self._finish(state, ctx, granted, relayed, status, client_left=client_left)
        finally:
            in_flight.dec()

    async def _finish(
        self,
        state: AppState,
        ctx: RequestContext,
        granted: Pass,
        result: RelayResult,
        status: int,
        *,
        client_left: bool,
    ) -> None:
        try:
            charged = cost(granted, result)
            self._meter(state, ctx, result, charged, client_left)
            self._record(state, ctx, granted, result, charged, status)
            await state.guard.settle(granted, charged)
        finally:
            state.unrecorded.leave()

    async def _handle(
        self,
        state: AppState,
        ctx: RequestContext,
        granted: Pass,
        scope: Scope,
        receive: Receive,
        send: Send,
        relayed: RelayResult,
    ) -> None:
        check_content_type(scope)
        raw = await read_body(receive)
        checked = check_request(self.endpoint, parse_json(raw), max_n=state.settings.max_n)
        changed = checked.changed
        if granted.key is not None and granted.key.trusted_front_end:
            secret = state.settings.end_user_jwt_secret
            person = end_user_of(
                granted.key,
                scope["headers"],
                checked.body,
                secret.get_secret_value() if secret is not None else None,
            )
            granted.end_user = person.id if person is not None else None
        if self.endpoint is Endpoint.EMBEDDINGS:
            changed = decode_token_input(checked.body) or changed
        # A dict lookup for plain requests; only a file_search tool goes further.
        file_search = None
        if "tools" in checked.body and self.endpoint in _GROUNDED:
            file_search = rag_chat.take_file_search(checked.body)
        turn = None  # a Response with file_search is answered through chat completions
        if file_search is not None and self.endpoint is Endpoint.RESPONSES:
            turn = chat_request(checked.body, file_search.sent)
        engines = state.engines
        check_model_access(granted.key, engines.registry.served_id(checked.model), checked.model)
        model, candidates = engines.route(checked.model)
        ctx.model = model
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
        request = RelayRequest(
            path=Endpoint.CHAT.value if turn else self.path,
            body=orjson.dumps(checked.body) if changed else raw,
            headers=engines.headers(ctx.request_id),
            model=model,
            stream=checked.stream,
            strip_usage=not checked.client_wants_usage,
            responses_api=self.endpoint is Endpoint.RESPONSES,
            started=ctx.started,
            extra_headers=granted.headers,
        )
        if file_search is not None:
            chat = turn.chat if turn else checked.body
            # The query's embedding is metered as its own event on this request's route.
            if state.retrieval is None:  # the answer the Files and Vector Stores routes give
                raise NeedsDatabase(NEEDS_DATABASE, param=f"tools[{file_search.position}]")
            payer = Payer(granted.key, self.path, ctx.request_id, within_request=True)
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
        await state.relay.forward(request, candidates, receive, send, relayed)
        ctx.upstream = relayed.upstream

    def _meter(
        self,
        state: AppState,
        ctx: RequestContext,
        result: RelayResult,
        cost: Cost,
        client_left: bool,
    ) -> None:
        metrics = state.metrics
        if client_left:
            metrics.client_disconnects.labels(self.path).inc()
        if result.ttft_s is not None:
            metrics.ttft.labels(ctx.model).observe(result.ttft_s)
        if cost.prompt_tokens:
            metrics.tokens.labels(ctx.model, "prompt").inc(cost.prompt_tokens)
        if cost.completion_tokens:
            metrics.tokens.labels(ctx.model, "completion").inc(cost.completion_tokens)

    def _record(
        self,
        state: AppState,
        ctx: RequestContext,
        granted: Pass,
        result: RelayResult,
        cost: Cost,
        status: int,
    ) -> None:
        if granted.key is None:
            return
        state.guard.record(
            event_from_request(
                request_id=ctx.request_id,
                key_id=granted.key.id,
                model=ctx.model,
                route=self.path,
                started=ctx.started,
                status=status,
                upstream=result.upstream,
                prompt_tokens=cost.prompt_tokens,
                completion_tokens=cost.completion_tokens,
                ttft_s=result.ttft_s,
                streamed=result.streamed,
                cancelled=result.cancelled,
                end_user=granted.end_user,
            )
        )
