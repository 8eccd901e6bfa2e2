"""What a request may cost before it runs, and what it cost once it is over. Pure.

The reservation is what the limiter holds against a key's tpm while the request runs:
the prompt's estimate plus the longest answer the engine may write, for every answer it
writes. The cost is the one answer per request: it settles that reservation, counts
`gateway_tokens_total` and goes into the usage event, so the three never disagree.

The engine's own usage is the truth whenever it arrived. Without it (a client that left
mid-stream, an engine that died mid-answer, a server that stopped) the cost is what can
be known: the prompt's estimate, since the engine read the prompt once the request
reached it, and the answer's tokens the client already received. A request that did
not stream has received nothing yet, but the engine may have written its whole answer:
it is charged what it reserved, so leaving early never makes an answer free.
"""

from __future__ import annotations

from dataclasses import dataclass

# A rough prompt estimate: a few bytes of JSON per token for text in ASCII. Bytes outside
# ASCII count more (a CJK character is three UTF-8 bytes and one or two tokens; rare
# characters fall back to one token per byte), or prompts in them would reserve, and
# pay when cut short, a fraction of what they use.
_ASCII_BYTES_PER_TOKEN = 4
_OTHER_BYTES_PER_TOKEN = 2
_ASCII = bytes(range(128))


def prompt_estimate(raw: bytes) -> int:
    """Tokens a request body's prompt may hold, from its size alone (no tokenizer)."""
    if raw.isascii():  # one C pass; nearly every body
        return len(raw) // _ASCII_BYTES_PER_TOKEN
    other = len(raw.translate(None, _ASCII))
    return (len(raw) - other) // _ASCII_BYTES_PER_TOKEN + other // _OTHER_BYTES_PER_TOKEN


def completion_reservation(
    max_tokens: int | None, sequences: int, default_max_tokens: int, tpm: int | None
) -> int:
    """The answer tokens to reserve: `max_tokens` for each of `sequences` answers.

    Without a `max_tokens` the engine may write up to the context window; the gateway
    reserves `default_max_tokens` instead, at most a tenth of the key's tpm, or a key
    with a small tpm could send one such request a minute. Settling corrects it."""
    if sequences <= 0:
        return 0
    per_answer = max_tokens
    if per_answer is None:
        per_answer = default_max_tokens
        if tpm is not None:
            per_answer = max(1, min(per_answer, tpm // 10))
    return per_answer * sequences


@dataclass(frozen=True, slots=True)
class Cost:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FREE = Cost(0, 0)


def request_cost(
    *,
    dispatched: bool,
    status: int,
    streamed: bool,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    relayed_chunks: int,
    prompt_estimate: int,
    completion_reserved: int,
) -> Cost:
    """The tokens a request is charged, from what the relay saw.

    `status` is the engine's (0: no answer yet); `relayed_chunks` the content events the
    client received (vLLM sends about one token per event)."""
    if not dispatched or status not in (0, 200):
        return FREE  # never reached an engine, or the engine refused it: nothing ran
    if completion_tokens is None:
        completion_tokens = relayed_chunks if streamed else completion_reserved
    return Cost(prompt_tokens if prompt_tokens is not None else prompt_estimate, completion_tokens)
