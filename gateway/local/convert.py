"""GGUF to a Hugging Face folder that vLLM serves. Heavy: imports torch and transformers.

A plain safetensors folder is what vLLM serves most reliably, and it needs nothing from a
hub. transformers dequantizes the GGUF while loading, so the folder holds float32 weights
(540 MB for SmolLM2-135M): exactly what the Q4_1 file encodes, nothing rounded again.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from gateway.local.errors import ModelPrepError


def gguf_to_hf(gguf: Path, dest: Path) -> None:
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # gguf and accelerate are checked by transformers itself
        raise ModelPrepError(
            "converting the chat model needs transformers, gguf and accelerate: "
            'pip install -e ".[local]"'
        ) from exc

    # Its progress bars and dtype warnings are noise in `gateway up`'s console. The GGUF
    # reader's bar is a bare tqdm on stderr that no transformers setting turns off.
    hf_logging: Any = transformers.utils.logging
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _load_and_save(AutoModelForCausalLM, AutoTokenizer, gguf, dest)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def _load_and_save(model_class: Any, tokenizer_class: Any, gguf: Path, dest: Path) -> None:
    kwargs = {"gguf_file": gguf.name, "local_files_only": True}
    model = model_class.from_pretrained(gguf.parent, **kwargs)
    tokenizer = tokenizer_class.from_pretrained(gguf.parent, **kwargs)
    if not tokenizer.chat_template:
        raise ModelPrepError(f"{gguf.name} carries no chat template: /v1/chat would fail")
    # The weights were dequantized while loading; left in place, these would write a GGUF
    # quantization_config into config.json, describing weights that are no longer quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
