"""The compose stack as shipped, with a real vLLM engine on the CPU standing in for `vllm`
(SmolLM2-135M under the compose command's served name, port and --api-key): the gateway
container, as compose starts it, serves a chat through a real engine."""

from __future__ import annotations

from pathlib import Path

from gateway.local.models import prepare_chat_model
from tests.deploy.harness import Rehearse, chat_model, first_key, sdk_chat
from tests.deploy.variations import DEFAULT


def test_default_stack_serves_a_chat_through_real_vllm(
    rehearse: Rehearse, model_cache: Path
) -> None:
    model = prepare_chat_model(model_cache)
    with rehearse(DEFAULT, real_engines={"vllm": model.path}) as stack:
        stack.up(timeout=600)  # vLLM on two shared cores takes a minute or two
        answer = sdk_chat(stack, first_key(stack))
        assert answer["model"] == chat_model(stack) == "llama-3.3-70b"
        assert answer["content"].strip() and answer["streamed"].strip()
        assert answer["usage"]["prompt_tokens"] > 5 and answer["usage"]["completion_tokens"] > 0
