"""`file_citation` annotations for answers grounded in retrieved passages.

One annotation per citation, in the shape of chat completions' own `url_citation`
annotation (`{"type": T, T: {...}}`) carrying the fields of the Responses API's
`file_citation` (file_id, filename, index) plus the passage itself as `quote`:

    {"type": "file_citation",
     "file_citation": {"file_id": "file-…", "filename": "a.md", "index": 42, "quote": "…"}}

`index` is where the model wrote the source's `[n]` marker in the answer; a passage the
model saw but did not mark is cited at the end of the text. The nesting matters in streams:
openai-python's stream accumulator merges list entries by a top-level `index` key, which
would fuse two flat citations into one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.upstream.sse import event_data

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


@dataclass(frozen=True, slots=True)
class Source:
    label: int  # the n of `[n]` in the prompt
    file_id: str
    filename: str
    quote: str


def annotation(source: Source, index: int) -> dict[str, Any]:
    citation = {
        "file_id": source.file_id,
        "filename": source.filename,
        "index": index,
        "quote": source.quote,
    }
    return {"type": "file_citation", "file_citation": citation}


def annotate(content: str, sources: Sequence[Source]) -> list[dict[str, Any]]:
    by_label = {source.label: source for source in sources}
    found: list[dict[str, Any]] = []
    cited: set[int] = set()
    for match in _MARKER.finditer(content):
        for label in match.group(1).split(","):
            source = by_label.get(int(label))
            if source is not None:
                found.append(annotation(source, match.start()))
                cited.add(source.label)
    end = len(content)
    return found + [annotation(s, end) for s in sources if s.label not in cited]


class CitationRewriter:
    """Adds the annotations to one answer: into a chat.completion body, or as one more
    chunk of a chat.completion.chunk stream, just before its usage chunk or `[DONE]`."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)
        self._texts: dict[int, list[str]] = {}
        self._first: dict[str, Any] | None = None
        self._sent = False

    def body(self, raw: bytes) -> bytes:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list):
            return raw
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            existing = message.get("annotations")
            message["annotations"] = [
                *(existing if isinstance(existing, list) else ()),
                *annotate(content if isinstance(content, str) else "", self.sources),
            ]
        return orjson.dumps(payload)

    def events(self, events: list[bytes]) -> list[bytes]:
        if self._sent:
            return events
        out: list[bytes] = []
        for event in events:
            if not self._sent and self._ends_answer(event):
                out.append(self.final_chunk())
                self._sent = True
            out.append(event)
        return out

    def _ends_answer(self, event: bytes) -> bool:
        """Records the answer's text; True for the usage-only chunk or `[DONE]`."""
        data = event_data(event)
        if data == b"[DONE]":
            return True
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list):
            return False  # an error event, or something else that is not a chunk
        if self._first is None:
            self._first = payload
        if not choices:
            return True
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            texts = self._texts.setdefault(int(choice.get("index") or 0), [])
            if isinstance(content, str):
                texts.append(content)
        return False

    def final_chunk(self) -> bytes:
        first = self._first or {}
        choices = [
            {
                "index": index,
                "delta": {"annotations": annotate("".join(texts), self.sources)},
                "logprobs": None,
                "finish_reason": None,
            }
            for index, texts in sorted((self._texts or {0: []}).items())
        ]
        chunk = {
            "id": first.get("id", ""),
            "object": "chat.completion.chunk",
            "created": first.get("created", 0),
            "model": first.get("model", ""),
            "choices": choices,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"
