"""A tiny random-but-valid PEFT LoRA adapter for SmolLM2-135M, written in a test's folder.

vLLM reads `adapter_config.json` and `adapter_model.safetensors` (PEFT's layout). The
weights are random but small (lora_B scaled down), so the adapter changes the model's
answers a little without turning them into noise: enough to prove it was applied.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

RANK = 8
TARGETS = ("q_proj", "v_proj")


def write_adapter(folder: Path, base_model: Path, *, seed: int = 0) -> Path:
    """Write the adapter for the HF model folder `base_model` into `folder`; `folder`."""
    config = json.loads((base_model / "config.json").read_text())
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // int(config["num_attention_heads"]))
    out = {
        "q_proj": int(config["num_attention_heads"]) * head_dim,
        "v_proj": int(config["num_key_value_heads"]) * head_dim,
    }
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for layer in range(int(config["num_hidden_layers"])):
        for target in TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            tensors[f"{prefix}.lora_A.weight"] = (
                torch.randn(RANK, hidden, generator=generator) * 0.02
            )
            tensors[f"{prefix}.lora_B.weight"] = (
                torch.randn(out[target], RANK, generator=generator) * 0.02
            )
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_model),
        "r": RANK,
        "lora_alpha": 2 * RANK,
        "lora_dropout": 0.0,
        "target_modules": list(TARGETS),
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "inference_mode": True,
    }
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    return folder
