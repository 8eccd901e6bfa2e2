"""A chat completion written back as a `/v1/responses` Response, whole or as its stream of
events, with the `file_search_call` that grounded it and `file_citation` annotations.

Output: `[file_search_call, message]`. The call lists the query and, when the request
included `file_search_call.results`, the passages the model was given. The message's
`output_text` carries one annotation per citation (`{type, file_id, filename, index}`,
as OpenAI writes them). A stream has the Responses event sequence: created, in_progress,
the search call's item and states, the message item, its text deltas, the annotations,
the done events and `response.completed` with the usage, each with a sequence number.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.rag.grounding.citations import Source, annotate
from gateway.rag.search.hybrid import SearchHit
from gateway.upstream.sse import event_data

Event = dict[str, Any]


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(chat: Any) -> dict[str, Any] | None:
    if not isinstance(chat, dict):
        return None
    prompt, completion = chat.get("prompt_tokens") or 0, chat.get("completion_tokens") or 0
    cached = (chat.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


class ResponsesRewriter:
    """Rewrites one chat completion (body or stream) into a Response."""

    def __init__(
        self,
        echo: dict[str, Any],
        query: str,
        hits: Sequence[SearchHit],
        sources: Sequence[Source],
        include_results: bool,
    ) -> None:
        self.echo, self.query, self.hits = echo, query, list(hits)
        self.sources, self.include_results = list(sources), include_results
        self.id, self.search_id, self.message_id = _id("resp"), _id("fs"), _id("msg")
        self.created_at = int(time.time())
        self.model = ""
        # Stream state
        self._seq = 0
        self._started = False
        self._texts: list[str] = []
        self._usage: dict[str, Any] | None = None
        self._finish: str | None = None
        self._done = False

    # Pieces

    def search_call(self, status: str) -> dict[str, Any]:
        results = None
        if self.include_results and status == "completed":
            results = [
                {
                    "file_id": h.file_id,
                    "filename": h.filename,
                    "score": h.score,
                    "text": h.text,
                    "attributes": h.attributes,
                }
                for h in self.hits
            ]
        return {
            "id": self.search_id,
            "type": "file_search_call",
            "status": status,
            "queries": [self.query],
            "results": results,
        }

    def annotations(self, text: str) -> list[dict[str, Any]]:
        flat = []
        for nested in annotate(text, self.sources):
            citation = nested["file_citation"]
            flat.append(
                {
                    "type": "file_citation",
                    "file_id": citation["file_id"],
                    "filename": citation["filename"],
                    "index": citation["index"],
                }
            )
        return flat

    def text_part(self, text: str, final: bool) -> dict[str, Any]:
        annotations = self.annotations(text) if final else []
        return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}

    def message(self, text: str, status: str) -> dict[str, Any]:
        content = [self.text_part(text, True)] if status == "completed" else []
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def response(
        self, status: str, output: list[dict[str, Any]], used: dict[str, Any] | None
    ) -> dict[str, Any]:
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "tool_choice": "auto",
            "truncation": "disabled",
            "usage": used,
            **self.echo,
            "metadata": self.echo.get("metadata") or {},
        }

    def _final(self, text: str, finish: str | None) -> tuple[str, list[dict[str, Any]]]:
        status = "incomplete" if finish == "length" else "completed"
        message = self.message(text, "completed")
        if status == "incomplete":
            message["status"] = "incomplete"
        return status, [self.search_call("completed"), message]

    # Whole answers

    def body(self, raw: bytes) -> bytes:
        try:
            chat = orjson.loads(raw)
            choice = chat["choices"][0]
            text = choice["message"].get("content") or ""
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            return raw
        self.model = chat.get("model", "")
        status, output = self._final(text, choice.get("finish_reason"))
        return orjson.dumps(self.response(status, output, usage(chat.get("usage"))))

    # Streams

    def events(self, events: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for raw in events:
            if self._done:
                continue
            data = event_data(raw)
            if data == b"[DONE]":
                out += self._finish_stream()
                continue
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue  # comments and keep-alives: nothing a Responses client reads
            if not isinstance(chunk, dict) or "choices" not in chunk:
                out.append(raw)  # an error event passes as it is (the SDK raises on it)
                continue
            if not self._started:
                self.model = chunk.get("model", "")
                out += self._start()
            if chunk.get("usage"):
                self._usage = usage(chunk["usage"])
            for choice in chunk["choices"][:1]:
                delta = (choice.get("delta") or {}).get("content")
                if isinstance(delta, str) and delta:
                    self._texts.append(delta)
                    out.append(self._event("response.output_text.delta", self._at(delta=delta)))
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
        return out

    def _at(self, **fields: Any) -> Event:
        return {"item_id": self.message_id, "output_index": 1, "content_index": 0, **fields}

    def _event(self, kind: str, fields: Event) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _start(self) -> list[bytes]:
        self._started = True
        begun = self.response("in_progress", [], None)
        searching = self.search_call("in_progress")
        out = [
            self._event("response.created", {"response": begun}),
            self._event("response.in_progress", {"response": begun}),
            self._event("response.output_item.added", {"output_index": 0, "item": searching}),
        ]
        for state in ("in_progress", "searching", "completed"):
            out.append(
                self._event(
                    f"response.file_search_call.{state}",
                    {"output_index": 0, "item_id": self.search_id},
                )
            )
        done = self.search_call("completed")
        out.append(self._event("response.output_item.done", {"output_index": 0, "item": done}))
        item = self.message("", "in_progress")
        out.append(self._event("response.output_item.added", {"output_index": 1, "item": item}))
        part = self.text_part("", False)
        out.append(self._event("response.content_part.added", self._at(part=part)))
        return out

    def _finish_stream(self) -> list[bytes]:
        self._done = True
        out = [] if self._started else self._start()
        text = "".join(self._texts)
        annotations = self.annotations(text)
        for i, annotation in enumerate(annotations):
            out.append(
                self._event(
                    "response.output_text.annotation.added",
                    self._at(annotation_index=i, annotation=annotation),
                )
            )
        out.append(self._event("response.output_text.done", self._at(text=text, logprobs=[])))
        part = self.text_part(text, True)
        out.append(self._event("response.content_part.done", self._at(part=part)))
        status, output = self._final(text, self._finish)
        out.append(self._event("response.output_item.done", {"output_index": 1, "item": output[1]}))
        final = self.response(status, output, self._usage)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": final}))
        return out
