"""Several chat models on one GPU, one awake at a time (an engine group): the arithmetic.

Pure functions only. What vLLM v0.19.1 does, which this mirrors:

- At start an engine refuses to run unless the free memory it measures is at least
  total x --gpu-memory-utilization (vllm/v1/worker/utils.py, request_memory), and sizes its
  KV cache from that budget minus its own weights and overhead. So the second engine of a
  group can only start once the first sleeps.
- A sleeping engine (--enable-sleep-mode) frees the memory vLLM's sleep allocator holds: the
  weights and the KV cache. Its CUDA context, CUDA graphs and non-torch buffers stay.
- Level 1 copies the weights into pinned host RAM (vllm/device_allocator/cumem.py, sleep);
  level 2 drops them and reloads them from disk on wake.

So each model's awake budget is the card minus what sits beside the group (the embedding
engine) minus what every other model keeps on the card while asleep, and level 1 needs host
RAM for every model's weights at once: during a switch all of them are asleep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.plan.hardware import GIB, Gpu
from gateway.plan.planner import CUDA_CONTEXT_BYTES, Plan, PlanInput, overhead, plan

# The OS, Docker, Postgres, Redis, the gateway and each engine process's own host memory
# (Python, torch, CUDA libraries): not measured here; `free -g` on the box tells.
DEFAULT_HOST_RAM_RESERVE_GIB = 8.0
# The compose stack's embedding engine takes this share of the card beside the group.
DEFAULT_BESIDE_UTILIZATION = 0.05
# Kept free beside each awake budget: what a sleeping engine keeps and the CUDA contexts
# are estimates, and vLLM refuses to start (a wake runs out of memory) when they are short.
MARGIN_BYTES = int(0.25 * GIB)


@dataclass(frozen=True)
class GroupInput:
    members: tuple[PlanInput, ...]  # gpu_memory_utilization is ignored: the group sets it
    gpu: Gpu
    host_ram_bytes: int
    sleep_level: int = 1
    beside_utilization: float = DEFAULT_BESIDE_UTILIZATION
    host_ram_reserve_bytes: int = int(DEFAULT_HOST_RAM_RESERVE_GIB * GIB)


@dataclass(frozen=True)
class MemberPlan:
    plan: Plan  # at the member's awake utilization
    asleep_bytes: int  # what it keeps on the card while asleep
    awake_room_bytes: int  # the card minus everything else and the margin, before rounding
    others_asleep_bytes: int

    @property
    def utilization(self) -> float:
        return self.plan.inp.gpu_memory_utilization


@dataclass(frozen=True)
class GroupPlan:
    inp: GroupInput
    members: tuple[MemberPlan, ...]
    beside_bytes: int  # the engines beside the group: their budget and CUDA context
    host_weights_bytes: int  # what the sleeping weights take in host RAM (level 1)
    host_needed_bytes: int  # with the reserve

    @property
    def fits_gpu(self) -> bool:
        return all(m.plan.fits and m.utilization > 0 for m in self.members)

    @property
    def fits_host_ram(self) -> bool:
        return self.host_needed_bytes <= self.inp.host_ram_bytes

    @property
    def fits(self) -> bool:
        return self.fits_gpu and self.fits_host_ram


def asleep_bytes(inp: PlanInput) -> int:
    """What a sleeping engine keeps on the card: the memory vLLM's sleep does not free."""
    extra = overhead(inp.arch, inp.quant)
    return CUDA_CONTEXT_BYTES + extra.cuda_graph_bytes + extra.non_torch_bytes


def beside_bytes(gpu: Gpu, utilization: float) -> int:
    if utilization <= 0:
        return 0
    return int(gpu.total_bytes * utilization) + CUDA_CONTEXT_BYTES


def _utilization(room: int, total: int) -> float:
    """The largest --gpu-memory-utilization, in hundredths, whose budget fits `room`."""
    return max(0.0, math.floor(room / total * 100) / 100)


def plan_group(inp: GroupInput) -> GroupPlan:
    if len(inp.members) < 2:
        raise ValueError("a group has two models or more")
    total = inp.gpu.total_bytes
    beside = beside_bytes(inp.gpu, inp.beside_utilization)
    asleep = [asleep_bytes(m) for m in inp.members]
    members = []
    for i, member in enumerate(inp.members):
        others = sum(asleep) - asleep[i]
        # Its own CUDA context lies outside its budget too.
        room = total - beside - others - CUDA_CONTEXT_BYTES - MARGIN_BYTES
        utilization = _utilization(room, total)
        awake = plan(
            PlanInput(
                member.arch,
                member.quant,
                inp.gpu,
                member.context,
                member.concurrency,
                member.kv_cache_dtype,
                utilization,
                member.weights_bytes,
            )
        )
        members.append(MemberPlan(awake, asleep[i], room, others))
    weights = sum(m.plan.weights.total_bytes for m in members) if inp.sleep_level == 1 else 0
    return GroupPlan(
        inp=inp,
        members=tuple(members),
        beside_bytes=beside,
        host_weights_bytes=weights,
        host_needed_bytes=weights + inp.host_ram_reserve_bytes,
    )
