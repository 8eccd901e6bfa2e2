"""Grounding and vLLM's prefix cache: where the retrieved passages go, measured on real vLLM.

A multi-turn grounded conversation sends the same system prompt and earlier turns again on
every turn, with new passages. vLLM's automatic prefix cache reuses a prompt's longest
cached prefix, so the passages' place decides what can be reused:
- `system`: passages merged into the system prompt (the gateway before this change): the
  prompt changes from its first tokens on, every turn;
- `user`: passages before the last user message's text (`gateway.rag.grounding.context`,
  what the gateway sends now): the system prompt and every earlier turn stay a prefix.

It starts SmolLM2-135M-Instruct on the CPU (the model `gateway up` runs), then plays the
same conversations once per placement, alternating, straight at the engine: the prompts are
what the gateway would forward, so the figures isolate the placement from search and
network costs. Per placement: vLLM's `prefix_cache_hits / prefix_cache_queries` (tokens,
from /metrics, over the turns after the first) and the time to the first token.

    python -m benchmarks.grounding_cache                 # ~3 min on two cores
    python -m benchmarks.grounding_cache --conversations 8 --turns 6 --json out.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.local.engine import Engine, EngineSpec, free_port
from gateway.local.models import prepare_chat_model
from gateway.rag.grounding.context import (
    Message,
    assemble,
    source_block,
    sources_text,
    split_conversation,
)

SYSTEM = (
    "You are the help desk of a small software team. Answer in two or three sentences, "
    "politely, and say when you do not know. The team builds a gateway in front of language "
    "models: it checks API keys, applies rate limits and quotas, records usage, and answers "
    "questions from the team's own documents, which it searches for every question. Quote "
    "the documents by their number in square brackets. Prefer the newest document when two "
    "disagree. Never invent a command, a setting or a file name that the documents do not "
    "give. When a question is about a person, a price or a date, answer only from the "
    "documents. Keep code in code blocks and name the language."
)
PASSAGES_PER_TURN = 4
PASSAGE_WORDS = 70


def corpus() -> list[str]:
    """Real English text that ships with Python: the docstrings of standard modules."""
    import importlib

    names = [
        "argparse",
        "asyncio",
        "collections",
        "csv",
        "email",
        "functools",
        "http",
        "json",
        "logging",
        "pathlib",
        "sqlite3",
        "statistics",
        "string",
        "textwrap",
        "threading",
        "unittest",
        "urllib",
        "uuid",
        "zipfile",
        "inspect",
        "pydoc",
    ]
    words: list[str] = []
    for name in names:
        module = importlib.import_module(name)
        for obj in (module, *vars(module).values()):
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str) and len(doc) > 200:
                words += doc.split()
    return [" ".join(words[i : i + PASSAGE_WORDS]) for i in range(0, len(words), PASSAGE_WORDS)]


def in_system_prompt(history: list[Message], blocks: Sequence[str]) -> list[Message]:
    """The earlier placement: the sources merged into the system prompt."""
    conversation = split_conversation(history)
    system = conversation.system[0]
    merged = {**system, "content": f"{system['content']}\n\n{sources_text(blocks)}"}
    turns = [m for turn in conversation.turns for m in turn]
    return [merged, *turns, *conversation.current]


def before_the_question(history: list[Message], blocks: Sequence[str]) -> list[Message]:
    return assemble(split_conversation(history), blocks, 0)


PLACEMENTS: dict[str, Callable[[list[Message], Sequence[str]], list[Message]]] = {
    "system": in_system_prompt,
    "user": before_the_question,
}


@dataclass
class Tally:
    hits: float = 0.0
    queries: float = 0.0
    ttft_s: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


def cache_counters(client: httpx.Client) -> tuple[float, float]:
    hits = queries = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("vllm:prefix_cache_hits_total"):
            hits += float(line.rsplit(" ", 1)[1])
        elif line.startswith("vllm:prefix_cache_queries_total"):
            queries += float(line.rsplit(" ", 1)[1])
    return hits, queries


def ask(client: httpx.Client, model: str, messages: list[Message]) -> tuple[float, str, int]:
    """Time to the first content token, the answer, the prompt's token count."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": 64,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    prompt_tokens = 0
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: ") :])
            if chunk.get("usage"):
                prompt_tokens = chunk["usage"]["prompt_tokens"]
            for choice in chunk.get("choices", []):
                text = choice.get("delta", {}).get("content")
                if text:
                    first = first or time.perf_counter()
                    parts.append(text)
    return (first or time.perf_counter()) - started, "".join(parts), prompt_tokens


def play(
    client: httpx.Client,
    model: str,
    place: Callable[[list[Message], Sequence[str]], list[Message]],
    passages: list[str],
    seed: int,
    turns: int,
    tally: Tally,
) -> None:
    """One conversation; the first turn warms the cache and is not counted."""
    rng = random.Random(seed)
    history: list[Message] = [{"role": "system", "content": SYSTEM}]
    for turn in range(turns):
        picked = rng.sample(range(len(passages)), PASSAGES_PER_TURN)
        blocks = [source_block(i + 1, f"doc{p}.md", passages[p]) for i, p in enumerate(picked)]
        question = f"Question {seed}.{turn}: what does doc{picked[0]}.md say, in short?"
        history.append({"role": "user", "content": question})
        before = cache_counters(client)
        ttft, answer, prompt_tokens = ask(client, model, place(history, blocks))
        after = cache_counters(client)
        history.append({"role": "assistant", "content": answer})
        if turn:
            tally.hits += after[0] - before[0]
            tally.queries += after[1] - before[1]
            tally.ttft_s.append(ttft)
            tally.prompt_tokens.append(prompt_tokens)


def run(
    conversations: int, turns: int, cache_dir: Path | None, block_size: int | None
) -> dict[str, Tally]:
    model = prepare_chat_model(cache_dir, on_progress=print)
    extra = ("--block-size", str(block_size)) if block_size else ()
    spec = EngineSpec(
        model=model.path,
        served_name=model.name,
        port=free_port(),
        max_model_len=4096,
        extra_args=extra,
    )
    logs = Path(tempfile.mkdtemp(prefix="grounding-cache-"))
    engine = Engine(spec, logs / "engine.log")
    engine.start()
    try:
        print(f"starting vLLM ({model.name}); log in {logs}")
        engine.wait_ready(600)
        tallies = {name: Tally() for name in PLACEMENTS}
        passages = corpus()
        with httpx.Client(base_url=spec.base_url, timeout=120) as client:
            for c in range(conversations):
                # Alternate which placement goes first: neither always gets a warmer machine.
                order = list(PLACEMENTS) if c % 2 == 0 else list(reversed(PLACEMENTS))
                for name in order:
                    # The same conversation for both: the placements share no prefix past
                    # the system prompt's text, so neither reuses the other's turns.
                    play(client, model.name, PLACEMENTS[name], passages, c, turns, tallies[name])
                print(f"conversation {c + 1}/{conversations} done")
        return tallies
    finally:
        engine.stop()


def report(tallies: dict[str, Tally]) -> str:
    lines = [
        "| passages in | prefix cache hit rate | TTFT p50 | TTFT mean | prompt tokens p50 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, t in tallies.items():
        lines.append(
            f"| {name} | {t.hit_rate:.1%} | {statistics.median(t.ttft_s) * 1000:.0f} ms | "
            f"{statistics.fmean(t.ttft_s) * 1000:.0f} ms | {statistics.median(t.prompt_tokens)} |"
        )
    old, new = tallies["system"], tallies["user"]
    ratio = statistics.median(new.ttft_s) / statistics.median(old.ttft_s)
    lines.append(f"\nTTFT p50 user/system: {ratio:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--turns", type=int, default=5, help="per conversation, first not counted")
    parser.add_argument("--model-cache", type=Path, help="default: the user's model cache")
    parser.add_argument(
        "--block-size",
        type=int,
        help="vLLM's KV block size, the prefix cache's unit (CPU: 128 by default; GPU: 16)",
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    tallies = run(args.conversations, args.turns, args.model_cache, args.block_size)
    print(report(tallies))
    if args.json:
        data: dict[str, Any] = {
            name: {
                "hits": t.hits,
                "queries": t.queries,
                "hit_rate": t.hit_rate,
                "ttft_s": t.ttft_s,
                "prompt_tokens": t.prompt_tokens,
            }
            for name, t in tallies.items()
        }
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
