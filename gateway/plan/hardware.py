"""GPUs the planner knows by name, and plain sizes for the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Gpu:
    key: str
    name: str
    total_bytes: int  # what the driver reports as total, which is what vLLM multiplies
    bandwidth_gbs: float | None = None  # memory bandwidth, GB/s (spec sheet)
    pcie_gbs: float | None = None  # effective host-to-device bandwidth assumed, GB/s
    note: str = ""

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB


# Totals are nvidia-smi's "MiB total", not the marketing GB: a "32 GB" RTX 5090 reports
# 32,607 MiB = 31.84 GiB. PCIe figures are what a x16 link sustains in practice (about 80% of
# the 64 GB/s of PCIe 5.0 or 32 GB/s of PCIe 4.0); they bound --cpu-offload-gb speed.
GPUS: dict[str, Gpu] = {
    g.key: g
    for g in (
        Gpu("rtx5090", "NVIDIA GeForce RTX 5090", 32_607 * MIB, 1792, 50, "Blackwell, sm_120"),
        Gpu("rtx4090", "NVIDIA GeForce RTX 4090", 24_564 * MIB, 1008, 25, "Ada, sm_89"),
        Gpu("rtx3090", "NVIDIA GeForce RTX 3090", 24_576 * MIB, 936, 25, "Ampere, sm_86"),
    )
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g)?\s*$", re.IGNORECASE)


def parse_gpu(value: str) -> Gpu | None:
    """A known name (rtx5090, "RTX 5090") or a size: 24 and 24GiB are GiB, 24GB is 10^9."""
    key = re.sub(r"[\s_-]", "", value.lower())
    if key in GPUS:
        return GPUS[key]
    match = _SIZE.match(value)
    if not match:
        return None
    amount = float(match.group(1))
    unit = (match.group(2) or "gib").lower()
    total = amount * (1e9 if unit == "gb" else GIB)
    if total <= 0:
        return None
    label = "GB" if unit == "gb" else "GiB"
    return Gpu(key=f"{amount:g}{label}", name=f"a {amount:g} {label} GPU", total_bytes=int(total))


def gpu_choices() -> list[str]:
    return sorted(GPUS)
