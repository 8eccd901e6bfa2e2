"""A group plan (gateway/plan/group.py) as text that shows its arithmetic, and as JSON."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from gateway.plan.group import MARGIN_BYTES, GroupPlan, MemberPlan
from gateway.plan.hardware import GIB
from gateway.plan.planner import CUDA_CONTEXT_GIB
from gateway.plan.render import to_json, vllm_args
from gateway.plan.resolve import Subject

SLEEP_FLAG = "--enable-sleep-mode"
# vLLM serves /sleep, /wake_up and /is_sleeping only with this in its environment.
SLEEP_ENV = {"VLLM_SERVER_DEV_MODE": "1"}


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def member_args(member: MemberPlan, subject: Subject) -> list[str]:
    """The member's `vllm serve` arguments: its plan at the awake utilization, in sleep mode."""
    if not member.plan.fits:
        return []  # no --cpu-offload-gb in a group: it would not be a plan for sleep mode
    return [*vllm_args(member.plan, subject.target), SLEEP_FLAG]


def refusals(group: GroupPlan) -> list[str]:
    """Why the group does not fit, each with what to change; empty when it fits."""
    found = []
    for member in group.members:
        p, name = member.plan, member.plan.inp.arch.key
        if p.fits and member.utilization > 0:
            continue
        if p.max_context_tokens < 16:
            found.append(
                f"{name}: its weights and overhead alone exceed its awake budget "
                f"({_gib(p.budget_bytes)} at --gpu-memory-utilization {member.utilization:g}): "
                "choose a smaller quantization or model, or fewer models in the group"
            )
            continue
        found.append(
            f"{name}: {p.inp.context:,} tokens x {p.inp.concurrency} needs "
            f"{_gib(p.kv_needed_bytes)} of KV cache; its awake budget leaves "
            f"{_gib(p.kv_pool_bytes)} ({p.max_context_tokens:,} tokens): lower its context "
            f"to {p.max_context_tokens:,} or less"
            + (", use --kv-cache-dtype fp8" if p.inp.kv_cache_dtype != "fp8" else "")
            + ", or choose a smaller quantization"
        )
    if not group.fits_host_ram:
        inp = group.inp
        found.append(
            f"host RAM: sleep level 1 keeps every model's weights in pinned host RAM "
            f"({_gib(group.host_weights_bytes)}) and the rest of the box needs "
            f"{_gib(inp.host_ram_reserve_bytes)}: {_gib(group.host_needed_bytes)} in all, "
            f"but the box has {_gib(inp.host_ram_bytes)}. Add RAM, use --sleep-level 2 "
            "(no host RAM for weights: every wake reloads them from disk, slower), or put "
            "fewer or smaller models in the group"
        )
    return found


def group_text(group: GroupPlan, subjects: Sequence[Subject]) -> str:
    inp, gpu = group.inp, group.inp.gpu
    names = [m.plan.inp.arch.key for m in group.members]
    lines = [
        f"Group plan: {' + '.join(names)} | {gpu.name} ({gpu.total_gib:.2f} GiB) | one awake "
        f"at a time | sleep level {inp.sleep_level} | host RAM {_gib(inp.host_ram_bytes)}",
        "",
        "Beside the group",
        (
            f"  the embedding engine: {gpu.total_gib:.2f} GiB x {inp.beside_utilization:g} + "
            f"{CUDA_CONTEXT_GIB} GiB CUDA context = {_gib(group.beside_bytes)}"
            if group.beside_bytes
            else "  nothing (--beside-utilization 0)"
        ),
        "Asleep, each model keeps on the card (estimate: CUDA context + CUDA graphs + non-torch)",
    ]
    for member in group.members:
        lines.append(f"  {member.plan.inp.arch.key:<16} {_gib(member.asleep_bytes)}")
    lines.append(
        "Awake budget per model (the card - beside - the others asleep - its own context - "
        f"{MARGIN_BYTES / GIB:g} GiB margin for the estimates)"
    )
    for member in group.members:
        p = member.plan
        lines += [
            f"  {p.inp.arch.key:<16} {gpu.total_gib:.2f} GiB - {_gib(group.beside_bytes)} - "
            f"{_gib(member.others_asleep_bytes)} - {CUDA_CONTEXT_GIB} GiB - "
            f"{MARGIN_BYTES / GIB:g} GiB = "
            f"{_gib(member.awake_room_bytes)} -> --gpu-memory-utilization "
            f"{member.utilization:g} = {_gib(p.budget_bytes)}",
            f"  {'':<16} - {_gib(p.weights.total_bytes)} weights - "
            f"{_gib(p.overhead.total_bytes)} overhead = {_gib(p.kv_pool_bytes)} KV cache = "
            f"{p.kv_tokens:,} tokens; {p.inp.context:,} x {p.inp.concurrency} needs "
            f"{_gib(p.kv_needed_bytes)}",
        ]
    lines.append(f"Host RAM (sleep level {inp.sleep_level})")
    if inp.sleep_level == 1:
        weights = " + ".join(_gib(m.plan.weights.total_bytes) for m in group.members)
        lines.append(
            f"  sleeping weights, all at once during a switch: {weights} = "
            f"{_gib(group.host_weights_bytes)} (pinned: it cannot be swapped out)"
        )
    else:
        lines.append("  level 2 keeps no weights in host RAM: each wake reloads them from disk")
    lines += [
        f"  + {_gib(inp.host_ram_reserve_bytes)} reserve (OS, the stack, the engine processes)"
        f" = {_gib(group.host_needed_bytes)} of {_gib(inp.host_ram_bytes)}",
        "",
    ]
    problems = refusals(group)
    if problems:
        lines += ["DOES NOT FIT", *(f"  - {p}" for p in problems)]
    else:
        lines.append(
            "FITS: every model fits its awake budget and the box holds the sleeping weights"
        )
    lines += [
        "",
        "Start order: each engine sizes its memory at start, so start them one at a time and "
        "put each to sleep before the next starts (the embedding engine first).",
        "vLLM (each with VLLM_SERVER_DEV_MODE=1 in its environment)",
    ]
    for member, subject in zip(group.members, subjects, strict=True):
        args = member_args(member, subject)
        lines.append(f"  {shlex.join(['vllm', 'serve', *args])}" if args else "  (does not fit)")
    return "\n".join(lines)


def group_json(group: GroupPlan, subjects: Sequence[Subject]) -> dict[str, Any]:
    inp = group.inp
    members = []
    for member, subject in zip(group.members, subjects, strict=True):
        one = to_json(member.plan, subject)
        args = member_args(member, subject)
        one.update(
            awake_budget_gib=round(member.plan.budget_bytes / GIB, 2),
            asleep_gib=round(member.asleep_bytes / GIB, 2),
            vllm_args=args,
            vllm_command=shlex.join(["vllm", "serve", *args]) if args else None,
            vllm_env=SLEEP_ENV,
        )
        members.append(one)
    return {
        "group": [m.plan.inp.arch.key for m in group.members],
        "gpu": inp.gpu.name,
        "gpu_total_gib": round(inp.gpu.total_gib, 2),
        "sleep_level": inp.sleep_level,
        "beside_gib": round(group.beside_bytes / GIB, 2),
        "host_ram_gib": round(inp.host_ram_bytes / GIB, 2),
        "host_ram_weights_gib": round(group.host_weights_bytes / GIB, 2),
        "host_ram_needed_gib": round(group.host_needed_bytes / GIB, 2),
        "fits": group.fits,
        "refusals": refusals(group),
        "members": members,
    }
