"""A chat playground: any served model, optionally with file_search over one store.

The conversation lives in the page (a hidden field), not on the server; each turn is one
`POST /v1/chat/completions` with the whole history, exactly as a client would send it,
and the answer's `file_citation` annotations are listed under it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.ui.client import ApiError
from gateway.ui.render import page
from gateway.ui.web import Console, Form, Posted, SignedIn, read_form

router = APIRouter()

MAX_TURNS = 40  # messages kept in the page's history
MAX_MESSAGE_CHARS = 32_000


def _citation(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    name, quote = item.get("filename"), item.get("quote", "")
    if not isinstance(name, str) or not isinstance(quote, str):
        return None
    return {"filename": name[:256], "quote": quote[:2000]}


def history_from(form: Form) -> list[dict[str, Any]]:
    """The page's history, kept to well-formed user/assistant text turns (an answer keeps
    its citations, so earlier sources stay on the page)."""
    try:
        raw = json.loads(form.get("history") or "[]")
    except ValueError:
        return []
    if not isinstance(raw, list):
        return []
    kept: list[dict[str, Any]] = []
    for turn in raw[-MAX_TURNS:]:
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("user", "assistant")
            or not isinstance(turn.get("content"), str)
        ):
            continue
        notes = turn.get("citations")
        notes = notes if isinstance(notes, list) else []
        cited = [c for c in (_citation(n) for n in notes[:50]) if c is not None]
        text = turn["content"][:MAX_MESSAGE_CHARS]
        kept.append({"role": turn["role"], "content": text, "citations": cited})
    return kept


def citations(message: dict[str, Any]) -> list[dict[str, Any]]:
    """file_citation annotations, one per file and quote, numbered in order."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for note in message.get("annotations") or []:
        cited = note.get("file_citation") if isinstance(note, dict) else None
        if not isinstance(cited, dict):
            continue
        ident = (str(cited.get("file_id")), str(cited.get("quote", "")))
        if ident in seen:
            continue
        seen.add(ident)
        found.append(
            {
                "n": len(found) + 1,
                "file_id": cited.get("file_id"),
                "filename": cited.get("filename") or cited.get("file_id"),
                "quote": cited.get("quote") or "",
            }
        )
    return found


async def _choices(console: Console) -> tuple[list[str], list[dict[str, Any]], str | None]:
    try:
        models = sorted(m["id"] for m in (await console.api.get("/v1/models"))["data"])
        stores = (await console.api.get("/v1/vector_stores", limit=100))["data"]
    except ApiError as exc:
        return [], [], exc.message
    return models, stores, None


@router.get("/ui/playground", response_class=HTMLResponse)
async def playground_page(console: SignedIn) -> Response:
    models, stores, error = await _choices(console)
    return page(
        console,
        "playground.html",
        nav="playground",
        models=models,
        stores=stores,
        error=error,
        chosen={"model": console.request.query_params.get("model", ""), "store": ""},
        turns=[],
        history="[]",
    )


@router.post("/ui/playground/chat", response_class=HTMLResponse)
async def chat(console: Posted) -> Response:
    form = await read_form(console.request)
    history = history_from(form)
    model, store = form.get("model"), form.get("vector_store_id")
    message = form.get("message").strip()[:MAX_MESSAGE_CHARS]
    turns = [{**m} for m in history]
    problem = None
    if message:
        body: dict[str, Any] = {
            "model": model,
            "messages": [
                *({"role": t["role"], "content": t["content"]} for t in history),
                {"role": "user", "content": message},
            ],
        }
        if store:
            body["tools"] = [{"type": "file_search", "vector_store_ids": [store]}]
        started = time.monotonic()
        try:
            answer, headers = await console.api.call("POST", "/v1/chat/completions", json=body)
        except ApiError as exc:
            problem = exc.message
        else:
            reply = answer["choices"][0]["message"]
            turns.append({"role": "user", "content": message})
            turns.append(
                {
                    "role": "assistant",
                    "content": reply.get("content") or "",
                    "citations": citations(reply),
                    "usage": answer.get("usage") or {},
                    "seconds": round(time.monotonic() - started, 2),
                    "passages": headers.get("x-gateway-rag-passages-used"),
                }
            )
    keys = ("role", "content", "citations")
    kept = [{k: t[k] for k in keys if k in t} for t in turns][-MAX_TURNS:]
    response = page(
        console,
        "playground_chat.html",
        turns=turns,
        history=json.dumps(kept),
        problem=problem,
        chosen={"model": model, "store": store},
    )
    if problem is None and message:
        response.headers["hx-trigger"] = "chat-sent"  # console.js clears the message box
    return response
