"""What a user runs against the stack from their machine, with the official SDK:
`python -m tests.deploy.client BASE_URL KEY MODEL` prints one JSON line about a plain and a
streamed chat completion (the rehearsal runs it where published ports are reachable)."""

from __future__ import annotations

import json
import sys

from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam


def main(base_url: str, key: str, model: str) -> None:
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=16)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, max_tokens=16, stream=True
    )
    streamed = "".join(
        chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices
    )
    headers = dict(raw.headers)
    print(
        json.dumps(
            {
                "model": reply.model,
                "content": reply.choices[0].message.content,
                "usage": reply.usage.model_dump() if reply.usage else None,
                "streamed": streamed,
                "ratelimit_limit": headers.get("x-ratelimit-limit-requests"),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
