"""The VRAM arithmetic: does a model, at a quantization and context, fit a GPU under vLLM?

Pure functions only. vLLM's own accounting, which this mirrors:

    budget   = total VRAM x --gpu-memory-utilization   (the CUDA context sits outside it)
    KV cache = budget - weights - peak activations - non-torch allocations - CUDA graphs

and the cache is cut into blocks of 16 tokens per layer. The overhead terms are estimates
from the model's shape; vLLM measures the real ones at startup and logs the KV cache it got.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.plan.catalog import Architecture
from gateway.plan.hardware import GIB, Gpu
from gateway.plan.quant import Quant

DEFAULT_UTILIZATION = 0.90  # vLLM's default --gpu-memory-utilization
BLOCK_TOKENS = 16  # vLLM's default KV block size on CUDA
# vLLM's defaults for the OpenAI server on GPUs under 70 GiB; the plan prints the first so the
# activation estimate holds whatever the card.
MAX_NUM_BATCHED_TOKENS = 2048
MAX_NUM_SEQS = 256
# cuBLAS/NCCL workspaces and allocator slack that vLLM counts as "non-torch" memory.
NON_TORCH_BYTES = int(0.3 * GIB)
# Piecewise CUDA graphs for batch sizes up to 512: a fixed part plus a little per layer.
CUDA_GRAPH_BASE_BYTES = int(0.25 * GIB)
CUDA_GRAPH_PER_LAYER_BYTES = int(0.01 * GIB)
KV_DTYPE_BYTES = {"auto": 2, "fp8": 1}  # "auto" is the model dtype: fp16/bf16
# Offload this much more than the arithmetic says, since the overhead is an estimate: vLLM
# refuses to start when one max-model-len sequence does not fit the KV cache it measures.
OFFLOAD_MARGIN_BYTES = int(0.5 * GIB)
# What one CUDA context takes, outside vLLM's budget, roughly.
CUDA_CONTEXT_GIB = 0.5
CUDA_CONTEXT_BYTES = int(CUDA_CONTEXT_GIB * GIB)


@dataclass(frozen=True)
class PlanInput:
    arch: Architecture
    quant: Quant
    gpu: Gpu
    context: int
    concurrency: int = 1
    kv_cache_dtype: str = "auto"
    gpu_memory_utilization: float = DEFAULT_UTILIZATION
    # A measured size (catalog entry, files on disk) beats the formula when we have one.
    weights_bytes: int | None = None


@dataclass(frozen=True)
class Weights:
    linear_bytes: int
    other_bytes: int
    total_bytes: int
    measured: bool
    computed_bytes: int  # what the shape formula gives, shown beside a measured size


@dataclass(frozen=True)
class Overhead:
    activation_bytes: int
    sampler_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    dequant_scratch_bytes: int

    @property
    def total_bytes(self) -> int:
        return (
            self.activation_bytes
            + self.sampler_bytes
            + self.non_torch_bytes
            + self.cuda_graph_bytes
            + self.dequant_scratch_bytes
        )


@dataclass(frozen=True)
class Plan:
    inp: PlanInput
    weights: Weights
    kv_bytes_per_token: int
    overhead: Overhead
    budget_bytes: int
    kv_pool_bytes: int  # negative when weights and overhead alone exceed the budget
    kv_tokens: int  # whole blocks that fit in the pool
    max_context_tokens: int  # one sequence, capped by the model's max_position_embeddings
    max_concurrency: int  # sequences of the requested context held at once
    kv_needed_bytes: int
    fits: bool
    cpu_offload_gib: int | None  # 0 when it fits; None when no offload can make it fit
    decode_tokens_per_s_bound: float | None


def weight_bytes(arch: Architecture, quant: Quant, measured: int | None = None) -> Weights:
    linear = math.ceil(arch.linear_params * quant.linear_bits / 8)
    other = math.ceil(arch.other_params * quant.other_bits / 8)
    if measured is not None:
        # Keep the split for offload limits, scaled to the measured total.
        scale = measured / (linear + other)
        return Weights(round(linear * scale), round(other * scale), measured, True, linear + other)
    return Weights(linear, other, linear + other, False, linear + other)


def kv_bytes_per_token(arch: Architecture, kv_cache_dtype: str) -> int:
    """K and V, for every layer, every KV head, every head dimension."""
    dtype_bytes = KV_DTYPE_BYTES[kv_cache_dtype]
    return 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim * dtype_bytes


def overhead(arch: Architecture, quant: Quant) -> Overhead:
    h, inter = arch.hidden_size, arch.intermediate_size
    # The profiling pass runs MAX_NUM_BATCHED_TOKENS through one layer at a time: the MLP's
    # gate+up output and activation (3 x intermediate) and a handful of hidden-sized tensors.
    activation = MAX_NUM_BATCHED_TOKENS * (3 * inter + 6 * h) * 2
    # The sampler's dummy run: fp32 logits for MAX_NUM_SEQS rows plus two same-sized buffers.
    sampler = MAX_NUM_SEQS * arch.vocab_size * 4 * 3
    graphs = CUDA_GRAPH_BASE_BYTES + CUDA_GRAPH_PER_LAYER_BYTES * arch.num_hidden_layers
    scratch = 2 * inter * h * 2 if quant.dequant_scratch else 0  # fused gate_up at fp16
    return Overhead(activation, sampler, NON_TORCH_BYTES, graphs, scratch)


def _blocks_to_tokens(pool_bytes: int, kv_per_token: int) -> int:
    if pool_bytes <= 0:
        return 0
    return pool_bytes // (kv_per_token * BLOCK_TOKENS) * BLOCK_TOKENS


def _decode_bound(weights: Weights, offload_gib: int, gpu: Gpu) -> float | None:
    """Tokens/s for one stream if every step reads every weight once: a ceiling, not a forecast."""
    if gpu.bandwidth_gbs is None:
        return None
    offloaded = offload_gib * GIB
    seconds = (weights.total_bytes - offloaded) / (gpu.bandwidth_gbs * 1e9)
    if offloaded:
        if gpu.pcie_gbs is None:
            return None
        seconds += offloaded / (gpu.pcie_gbs * 1e9)
    return 1 / seconds


def plan(inp: PlanInput) -> Plan:
    weights = weight_bytes(inp.arch, inp.quant, inp.weights_bytes)
    per_token = kv_bytes_per_token(inp.arch, inp.kv_cache_dtype)
    extra = overhead(inp.arch, inp.quant)
    budget = int(inp.gpu.total_bytes * inp.gpu_memory_utilization)
    pool = budget - weights.total_bytes - extra.total_bytes
    tokens = _blocks_to_tokens(pool, per_token)
    max_context = min(tokens, inp.arch.max_position_embeddings)
    seq_tokens = math.ceil(inp.context / BLOCK_TOKENS) * BLOCK_TOKENS
    max_concurrency = tokens // seq_tokens
    needed = seq_tokens * inp.concurrency * per_token
    fits = max_concurrency >= inp.concurrency

    offload: int | None = 0
    if not fits:
        deficit = weights.total_bytes + extra.total_bytes + needed - budget
        offload = math.ceil((deficit + OFFLOAD_MARGIN_BYTES) / GIB)
        # vLLM offloads decoder-layer parameters only; embeddings and lm_head stay on the GPU.
        if offload * GIB > weights.linear_bytes:
            offload = None
    return Plan(
        inp=inp,
        weights=weights,
        kv_bytes_per_token=per_token,
        overhead=extra,
        budget_bytes=budget,
        kv_pool_bytes=pool,
        kv_tokens=tokens,
        max_context_tokens=max_context,
        max_concurrency=max_concurrency,
        kv_needed_bytes=needed,
        fits=fits,
        cpu_offload_gib=offload,
        decode_tokens_per_s_bound=(
            None if offload is None else _decode_bound(weights, offload, inp.gpu)
        ),
    )
