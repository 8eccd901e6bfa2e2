"""Quantization formats vLLM can load, and what each costs per weight."""

from __future__ import annotations

from dataclasses import dataclass

# AWQ and GPTQ int4 with group size 128: 4 bits per weight, plus one fp16 scale and one
# 4-bit zero point per 128 weights. Embeddings and lm_head stay at 16 bits.
_INT4_G128_BITS = 4 + (16 + 4) / 128

# GGUF files quantize embeddings too and mix tensor types inside one "quant", so their cost is
# quoted per parameter over the whole file, measured from bartowski's Llama-3.3-70B-Instruct
# GGUF sizes (GB x 8 / 70.55e9 params). Other models land within a few percent.
_GGUF_70B_PARAMS = 70.553706496e9


def _gguf_bits(file_gb: float) -> float:
    return file_gb * 1e9 * 8 / _GGUF_70B_PARAMS


@dataclass(frozen=True)
class Quant:
    key: str
    label: str
    linear_bits: float  # bits per weight of the per-layer projections
    other_bits: float  # bits per weight of embeddings, lm_head, norms
    vllm_args: tuple[str, ...] = ()
    gguf: bool = False
    # vLLM has no batched (MMQ) kernel for GGUF i-quants: a prefill dequantizes a whole weight
    # to fp16 first, so the largest projection needs a scratch copy at 16 bits.
    dequant_scratch: bool = False
    note: str = ""


QUANTS: dict[str, Quant] = {
    q.key: q
    for q in (
        Quant("bf16", "bf16 (unquantized)", 16, 16),
        Quant("fp16", "fp16 (unquantized)", 16, 16),
        Quant(
            "fp8",
            "FP8 W8, quantized by vLLM at load",
            8,
            16,
            vllm_args=("--quantization", "fp8"),
            note="downloads the bf16 checkpoint; vLLM quantizes it while loading",
        ),
        Quant(
            "awq",
            "AWQ int4, group 128",
            _INT4_G128_BITS,
            16,
            note="vLLM reads the method from the checkpoint and picks its Marlin kernel",
        ),
        Quant(
            "gptq",
            "GPTQ int4, group 128",
            _INT4_G128_BITS,
            16,
            note="vLLM reads the method from the checkpoint and picks its Marlin kernel",
        ),
        Quant("q4_k_m", "GGUF Q4_K_M", _gguf_bits(42.52), _gguf_bits(42.52), gguf=True),
        Quant("q2_k", "GGUF Q2_K", _gguf_bits(26.38), _gguf_bits(26.38), gguf=True),
        Quant(
            "iq3_xxs",
            "GGUF IQ3_XXS",
            _gguf_bits(27.47),
            _gguf_bits(27.47),
            gguf=True,
            dequant_scratch=True,
        ),
        Quant(
            "iq2_m",
            "GGUF IQ2_M",
            _gguf_bits(24.12),
            _gguf_bits(24.12),
            gguf=True,
            dequant_scratch=True,
        ),
        Quant(
            "iq2_xs",
            "GGUF IQ2_XS",
            _gguf_bits(21.14),
            _gguf_bits(21.14),
            gguf=True,
            dequant_scratch=True,
        ),
    )
}

# Spellings people type for the same thing.
ALIASES: dict[str, str] = {
    "awq-int4": "awq",
    "int4": "awq",
    "gptq-int4": "gptq",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "auto": "bf16",
}


def find_quant(name: str) -> Quant | None:
    key = name.strip().lower()
    key = ALIASES.get(key, key).replace("-", "_")
    return QUANTS.get(key)


def quant_choices() -> list[str]:
    return sorted(QUANTS)


def quant_from_hf_config(config: dict[str, object]) -> str | None:
    """The quant key a checkpoint declares in its config.json, if any."""
    qc = config.get("quantization_config")
    if isinstance(qc, dict):
        method = str(qc.get("quant_method", "")).lower()
        bits = qc.get("bits", qc.get("w_bit"))
        if method in ("awq", "gptq") and bits == 4:
            return method
        if method == "fp8":
            return "fp8"
        return None
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    return "fp16" if dtype in ("float16", "half") else "bf16"
