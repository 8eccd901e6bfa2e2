"""The planner's arithmetic against cases worked out by hand (the working is in the comments)."""

from __future__ import annotations

import math

import pytest

from gateway.plan.catalog import Architecture, Catalog, load_catalog
from gateway.plan.hardware import GIB, GPUS, parse_gpu
from gateway.plan.planner import PlanInput, kv_bytes_per_token, overhead, plan, weight_bytes
from gateway.plan.quant import Quant, find_quant


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def q(name: str) -> Quant:
    found = find_quant(name)
    assert found is not None
    return found


def arch(catalog: Catalog, key: str) -> Architecture:
    return catalog.architectures[key]


def test_kv_bytes_per_token_by_hand(catalog: Catalog) -> None:
    # 2 (K and V) x layers x KV heads x head dim x bytes
    assert kv_bytes_per_token(arch(catalog, "llama-3.1-70b"), "auto") == 2 * 80 * 8 * 128 * 2
    assert kv_bytes_per_token(arch(catalog, "llama-3.1-70b"), "auto") == 327_680
    assert kv_bytes_per_token(arch(catalog, "llama-3.1-70b"), "fp8") == 163_840
    assert kv_bytes_per_token(arch(catalog, "llama-3.1-8b"), "auto") == 131_072  # 2*32*8*128*2
    assert kv_bytes_per_token(arch(catalog, "qwen2.5-32b"), "auto") == 262_144  # 2*64*8*128*2
    assert kv_bytes_per_token(arch(catalog, "qwen2.5-72b"), "fp8") == 163_840  # 2*80*8*128*1


def test_awq_weights_of_llama_70b_by_hand(catalog: Catalog) -> None:
    w = weight_bytes(arch(catalog, "llama-3.1-70b"), q("awq"))
    # projections: 80 layers x (8192*8192 + 2*8192*1024 + 8192*8192 + 3*8192*28672)
    #   = 80 x 855,638,016 = 68,451,041,280 weights at 4 + 20/128 bits
    assert w.linear_bytes == 68_451_041_280 * 4.15625 / 8 == 35_562_455_040
    # embeddings + lm_head 2 x 128256 x 8192, norms 80 x 2 x 8192 + 8192, at 2 bytes
    assert w.other_bytes == (2 * 128_256 * 8192 + 161 * 8192) * 2 == 4_205_330_432
    assert w.total_bytes / GIB == pytest.approx(37.04, abs=0.01)  # DESIGN.md: "~37 GiB"


def test_llama_8b_bf16_on_rtx4090_by_hand(catalog: Catalog) -> None:
    p = plan(PlanInput(arch(catalog, "llama-3.1-8b"), q("bf16"), GPUS["rtx4090"], context=8192))
    # budget: 24,564 MiB = 25,757,220,864 B x 0.9 = 23,181,498,777 (floored)
    assert p.budget_bytes == 23_181_498_777
    # weights: 8,030,261,248 params x 2 B = the published 16.06 GB checkpoint
    assert p.weights.total_bytes == 16_060_522_496
    # activations 2048 x (3*14336 + 6*4096) x 2 = 276,824,064
    # sampler 256 x 128,256 x 12 = 394,002,432
    # non-torch 0.3 GiB = 322,122,547; graphs 0.25 GiB + 32 x 0.01 GiB = 612,032,832
    assert p.overhead.activation_bytes == 276_824_064
    assert p.overhead.sampler_bytes == 394_002_432
    assert p.overhead.total_bytes == 276_824_064 + 394_002_432 + 322_122_547 + 612_032_832
    # KV pool 23,181,498,777 - 16,060,522,496 - 1,604,981,875 = 5,515,994,406 B
    assert p.kv_pool_bytes == 5_515_994_406
    # blocks of 16 tokens x 131,072 B = 2,097,152 B: 2,630 blocks = 42,080 tokens
    assert p.kv_tokens == 42_080
    assert p.max_context_tokens == 42_080
    assert p.max_concurrency == 5  # 42,080 // 8,192
    assert p.fits and p.cpu_offload_gib == 0
    # decode bound 1008e9 / 16,060,522,496 = 62.8 tokens/s
    assert p.decode_tokens_per_s_bound == pytest.approx(62.76, abs=0.01)


def test_llama_70b_awq_on_rtx5090_needs_offload(catalog: Catalog) -> None:
    p = plan(
        PlanInput(
            arch(catalog, "llama-3.1-70b"), q("awq"), GPUS["rtx5090"], 8192, kv_cache_dtype="fp8"
        )
    )
    assert not p.fits
    assert p.kv_tokens == 0 and p.max_context_tokens == 0
    # 37.04 weights + 2.23 overhead + 8192 x 163,840 B (1.25) - 28.66 budget = 11.86 GiB short
    assert p.kv_needed_bytes == 8192 * 163_840
    short = p.weights.total_bytes + p.overhead.total_bytes + p.kv_needed_bytes - p.budget_bytes
    assert short / GIB == pytest.approx(11.86, abs=0.01)
    # rounded up after 0.5 GiB of margin for the overhead estimate: ceil(12.36) = 13
    assert p.cpu_offload_gib == 13
    # 24.04 GiB read from VRAM at 1792 GB/s + 13 GiB over PCIe at 50 GB/s: ~3.4 tokens/s
    seconds = (p.weights.total_bytes - 13 * GIB) / 1792e9 + 13 * GIB / 50e9
    assert p.decode_tokens_per_s_bound == pytest.approx(1 / seconds)
    assert p.decode_tokens_per_s_bound == pytest.approx(3.4, abs=0.05)


def test_iq2m_70b_fits_rtx5090_whole(catalog: Catalog) -> None:
    model = catalog.models["llama-3.3-70b-iq2m"]
    p = plan(
        PlanInput(
            model.arch,
            q("iq2_m"),
            GPUS["rtx5090"],
            16384,
            kv_cache_dtype="fp8",
            weights_bytes=model.size_bytes,
        )
    )
    # i-quants dequantize the fused gate+up projection for prefill: 2 x 28672 x 8192 x 2 B
    assert p.overhead.dequant_scratch_bytes == 2 * 28672 * 8192 * 2
    assert p.weights.total_bytes == 24_120_000_000
    assert p.fits and p.cpu_offload_gib == 0
    assert 16384 <= p.kv_tokens < 2 * 16384


def test_plain_gib_gpu_and_block_rounding(catalog: Catalog) -> None:
    gpu = parse_gpu("48")
    assert gpu is not None and gpu.total_bytes == 48 * GIB
    p = plan(PlanInput(arch(catalog, "qwen2.5-32b"), q("awq"), gpu, context=100, concurrency=3))
    # 100 tokens occupy 7 blocks = 112 tokens per sequence
    assert p.kv_needed_bytes == 3 * 112 * 262_144
    assert p.budget_bytes == int(48 * GIB * 0.9)
    assert p.decode_tokens_per_s_bound is None  # no bandwidth known for a bare size


def test_context_capped_by_the_model(catalog: Catalog) -> None:
    p = plan(PlanInput(arch(catalog, "qwen2.5-32b"), q("awq"), parse_gpu("80GiB"), 32768))  # type: ignore[arg-type]
    assert p.kv_tokens > 32768
    assert p.max_context_tokens == 32768  # max_position_embeddings


def test_kv_too_large_for_any_offload(catalog: Catalog) -> None:
    p = plan(
        PlanInput(arch(catalog, "llama-3.1-70b"), q("awq"), GPUS["rtx4090"], 131072, concurrency=4)
    )
    # 4 x 131,072 x 327,680 B = 160 GiB of KV cache: no amount of weight offload helps
    assert p.kv_needed_bytes == 160 * GIB
    assert not p.fits and p.cpu_offload_gib is None
    assert p.decode_tokens_per_s_bound is None


def test_fp8_kv_doubles_the_tokens(catalog: Catalog) -> None:
    base = PlanInput(arch(catalog, "llama-3.1-8b"), q("bf16"), GPUS["rtx4090"], 8192)
    auto, fp8 = plan(base), plan(PlanInput(**{**base.__dict__, "kv_cache_dtype": "fp8"}))
    assert fp8.kv_tokens == pytest.approx(2 * auto.kv_tokens, abs=16)


def test_utilization_moves_the_budget_only(catalog: Catalog) -> None:
    a = arch(catalog, "llama-3.1-8b")
    lo = plan(PlanInput(a, q("bf16"), GPUS["rtx4090"], 8192, gpu_memory_utilization=0.8))
    hi = plan(PlanInput(a, q("bf16"), GPUS["rtx4090"], 8192, gpu_memory_utilization=0.9))
    assert hi.kv_pool_bytes - lo.kv_pool_bytes == hi.budget_bytes - lo.budget_bytes
    assert hi.budget_bytes - lo.budget_bytes == pytest.approx(0.1 * 24_564 * 2**20, abs=2)


def test_overhead_grows_with_the_model(catalog: Catalog) -> None:
    small = overhead(arch(catalog, "llama-3.1-8b"), q("awq")).total_bytes
    large = overhead(arch(catalog, "llama-3.1-70b"), q("awq")).total_bytes
    assert small < large < 3 * GIB
    assert math.isclose(large / GIB, 2.23, abs_tol=0.01)
