"""The plan as vLLM arguments, as JSON, and as text that shows its arithmetic."""

from __future__ import annotations

import shlex
from typing import Any

from gateway.plan.hardware import GIB
from gateway.plan.planner import (
    BLOCK_TOKENS,
    CUDA_CONTEXT_GIB,
    KV_DTYPE_BYTES,
    MAX_NUM_BATCHED_TOKENS,
    MAX_NUM_SEQS,
    OFFLOAD_MARGIN_BYTES,
    Plan,
)
from gateway.plan.resolve import ServeTarget, Subject


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def served_context(plan: Plan) -> tuple[int, int] | None:
    """The (max-model-len, cpu-offload-gb) the printed command uses, or None if nothing works."""
    if plan.fits:
        return plan.inp.context, 0
    if plan.cpu_offload_gib is not None:
        return plan.inp.context, plan.cpu_offload_gib
    if plan.max_context_tokens >= BLOCK_TOKENS:
        return plan.max_context_tokens, 0
    return None


def vllm_args(plan: Plan, target: ServeTarget) -> list[str]:
    chosen = served_context(plan)
    if chosen is None:
        return []
    context, offload = chosen
    inp = plan.inp
    args = [
        target.model_ref,
        "--served-model-name", target.served_name,
        "--max-model-len", str(context),
        "--gpu-memory-utilization", f"{inp.gpu_memory_utilization:g}",
        "--max-num-batched-tokens", str(MAX_NUM_BATCHED_TOKENS),
        *inp.quant.vllm_args,
    ]  # fmt: skip
    if inp.kv_cache_dtype == "fp8":
        args += ["--kv-cache-dtype", "fp8"]
    if offload:
        args += ["--cpu-offload-gb", str(offload)]
    if target.tokenizer:
        args += ["--tokenizer", target.tokenizer]
    if target.hf_config_path:
        args += ["--hf-config-path", target.hf_config_path]
    return args


def assumptions(plan: Plan, subject: Subject) -> list[str]:
    inp = plan.inp
    outside = inp.gpu.total_bytes - plan.budget_bytes
    notes = [
        f"weights: {subject.weights_source}",
        f"vLLM's budget is total VRAM x --gpu-memory-utilization; the CUDA context "
        f"(~{CUDA_CONTEXT_GIB} GiB) and anything else on the card (a desktop, the embedding "
        f"engine) must fit in the other {_gib(outside)}",
        f"overhead is estimated from the model's shape for --max-num-batched-tokens "
        f"{MAX_NUM_BATCHED_TOKENS}, vLLM's default {MAX_NUM_SEQS} sequences and CUDA graphs "
        f"up to batch 512 (give or take 0.5 GiB); vLLM logs the KV cache it really got at "
        f"startup ('Available KV cache memory'): trust that over this plan",
        f"KV cache is allocated in blocks of {BLOCK_TOKENS} tokens",
    ]
    if plan.cpu_offload_gib:
        notes.append(
            f"--cpu-offload-gb is the shortfall plus {OFFLOAD_MARGIN_BYTES / GIB:g} GiB of margin "
            f"for the overhead estimate, rounded up; it takes that much free host RAM (pinned); "
            f"embeddings and lm_head cannot be offloaded"
        )
    if inp.kv_cache_dtype == "fp8":
        notes.append(
            "fp8 KV cache halves KV memory; without calibrated scales it may cost accuracy"
        )
    if inp.quant.note:
        notes.append(f"{inp.quant.key}: {inp.quant.note}")
    if inp.quant.gguf:
        notes.append(
            "vLLM calls its GGUF support experimental and under-optimized; expect decode well "
            "below the bandwidth bound"
        )
    if plan.decode_tokens_per_s_bound is not None:
        pcie = (
            f" and the offloaded part at {inp.gpu.pcie_gbs:g} GB/s over PCIe"
            if plan.cpu_offload_gib
            else ""
        )
        notes.append(
            f"decode bound: one stream, every step reads every weight once, from VRAM at "
            f"{inp.gpu.bandwidth_gbs:g} GB/s{pcie}; real speed is lower"
        )
    return notes


def to_json(plan: Plan, subject: Subject) -> dict[str, Any]:
    inp, o = plan.inp, plan.overhead
    args = vllm_args(plan, subject.target)
    return {
        "model": inp.arch.key,
        "hf_repo": inp.arch.hf_repo,
        "quant": inp.quant.key,
        "gpu": inp.gpu.name,
        "gpu_total_gib": round(inp.gpu.total_gib, 2),
        "context": inp.context,
        "concurrency": inp.concurrency,
        "kv_cache_dtype": inp.kv_cache_dtype,
        "gpu_memory_utilization": inp.gpu_memory_utilization,
        "fits": plan.fits,
        "weights_gib": round(plan.weights.total_bytes / GIB, 2),
        "weights_measured": plan.weights.measured,
        "kv_bytes_per_token": plan.kv_bytes_per_token,
        "overhead_gib": {
            "activations": round(o.activation_bytes / GIB, 2),
            "sampler": round(o.sampler_bytes / GIB, 2),
            "non_torch": round(o.non_torch_bytes / GIB, 2),
            "cuda_graphs": round(o.cuda_graph_bytes / GIB, 2),
            "gguf_dequant_scratch": round(o.dequant_scratch_bytes / GIB, 2),
            "total": round(o.total_bytes / GIB, 2),
        },
        "budget_gib": round(plan.budget_bytes / GIB, 2),
        "kv_cache_gib": round(plan.kv_pool_bytes / GIB, 2),
        "kv_cache_tokens": plan.kv_tokens,
        "max_context_tokens": plan.max_context_tokens,
        "max_concurrency": plan.max_concurrency,
        "cpu_offload_gb": plan.cpu_offload_gib,
        "decode_tokens_per_s_upper_bound": (
            None
            if plan.decode_tokens_per_s_bound is None
            else round(plan.decode_tokens_per_s_bound, 1)
        ),
        "vllm_args": args,
        "vllm_command": shlex.join(["vllm", "serve", *args]) if args else None,
        "assumptions": assumptions(plan, subject),
    }


def _verdict(plan: Plan) -> list[str]:
    inp = plan.inp
    want = f"{inp.context:,} tokens x {inp.concurrency}"
    if plan.fits:
        return [
            f"FITS: {want} needs {_gib(plan.kv_needed_bytes)} of the {_gib(plan.kv_pool_bytes)}"
            f" KV cache; at this context {plan.max_concurrency} sequence(s) fit at once"
        ]
    lines = [f"DOES NOT FIT: {want} needs {_gib(plan.kv_needed_bytes)} of KV cache"]
    if plan.max_context_tokens >= BLOCK_TOKENS:
        lines.append(
            f"  on the GPU alone: one sequence of up to {plan.max_context_tokens:,} tokens, or "
            f"{plan.max_concurrency} of {inp.context:,}"
        )
    else:
        lines.append("  on the GPU alone: weights and overhead leave no room for any KV cache")
    if plan.cpu_offload_gib is None:
        lines.append("  --cpu-offload-gb cannot rescue it: the KV cache itself is too large")
    else:
        lines.append(
            f"  with --cpu-offload-gb {plan.cpu_offload_gib}: that many GiB of weights live in "
            f"pinned host RAM and cross PCIe on every forward pass (slow)"
        )
    return lines


def to_text(plan: Plan, subject: Subject) -> str:
    inp, o, w = plan.inp, plan.overhead, plan.weights
    a = inp.arch
    speed = plan.decode_tokens_per_s_bound
    args = vllm_args(plan, subject.target)
    lines = [
        f"Plan: {a.key} ({a.hf_repo}) | {inp.quant.label} | {inp.gpu.name} "
        f"({inp.gpu.total_gib:.2f} GiB) | context {inp.context:,} x {inp.concurrency} | "
        f"KV cache {inp.kv_cache_dtype}",
        "",
        "Weights",
    ]
    if w.measured:
        lines.append(
            f"  {w.total_bytes:,} B = {_gib(w.total_bytes)} ({subject.weights_source}; the "
            f"shape formula gives {_gib(w.computed_bytes)})"
        )
    else:
        lines += [
            f"  projections  {a.linear_params / 1e9:.2f} billion params x "
            f"{inp.quant.linear_bits:.3f} bit / 8 = {_gib(w.linear_bytes)}",
            f"  embeddings   {a.other_params / 1e9:.2f} billion params x "
            f"{inp.quant.other_bits:.3f} bit / 8 = {_gib(w.other_bytes)}",
            f"  total        {_gib(w.total_bytes)}",
        ]
    lines += [
        "KV cache per token",
        f"  2 (K,V) x {a.num_hidden_layers} layers x {a.num_key_value_heads} KV heads x "
        f"{a.head_dim} head dim x {KV_DTYPE_BYTES[inp.kv_cache_dtype]} B = "
        f"{plan.kv_bytes_per_token:,} B",
        "Overhead (estimate)",
        f"  activations  {_gib(o.activation_bytes)}  ({MAX_NUM_BATCHED_TOKENS} tokens x "
        f"(3 x {a.intermediate_size} + 6 x {a.hidden_size}) x 2 B)",
        f"  sampler      {_gib(o.sampler_bytes)}  ({MAX_NUM_SEQS} seqs x {a.vocab_size} vocab "
        "x 12 B)",
        f"  CUDA graphs  {_gib(o.cuda_graph_bytes)}",
        f"  non-torch    {_gib(o.non_torch_bytes)}",
    ]
    if o.dequant_scratch_bytes:
        lines.append(
            f"  GGUF dequant {_gib(o.dequant_scratch_bytes)}  (gate+up projection at fp16)"
        )
    lines += [
        f"  total        {_gib(o.total_bytes)}",
        "Budget",
        f"  {inp.gpu.total_gib:.2f} GiB x {inp.gpu_memory_utilization:g} = "
        f"{_gib(plan.budget_bytes)}",
        f"  - {_gib(w.total_bytes)} weights - {_gib(o.total_bytes)} overhead = "
        f"{_gib(plan.kv_pool_bytes)} for the KV cache",
        f"  / {plan.kv_bytes_per_token:,} B per token = {plan.kv_tokens:,} tokens",
        "",
        *_verdict(plan),
    ]
    if speed is not None:
        shown = f"{speed:.1f}" if speed < 10 else f"{speed:.0f}"
        lines.append(f"  decode, one stream: at most ~{shown} tokens/s (bandwidth bound)")
    lines += ["", "vLLM"]
    lines.append(
        f"  {shlex.join(['vllm', 'serve', *args])}" if args else "  (no configuration fits)"
    )
    lines += ["", "Assumptions", *(f"  - {n}" for n in assumptions(plan, subject))]
    return "\n".join(lines)
