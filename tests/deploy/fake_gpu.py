"""One GPU shared by the rehearsal's stand-in engines: what each holds, across processes.

A folder per card (the service's `device_ids`), a file per engine holding the share of the
card it takes now. The stand-ins apply vLLM's own rule at start (v0.19.1,
vllm/v1/worker/utils.py, request_memory: refuse to start when the free memory is less than
total x --gpu-memory-utilization) and at wake, so a compose file that starts two engines
on one card in the wrong order fails its rehearsal as it would fail on the card. What a
sleeping engine keeps on the card (its CUDA context and graphs) is not modelled.
"""

from __future__ import annotations

from pathlib import Path

ENV = "REHEARSAL_GPU_DIR"


class FakeGpu:
    def __init__(self, folder: Path, holder: str) -> None:
        self.folder = folder
        self.holder = holder
        folder.mkdir(parents=True, exist_ok=True)

    def free(self) -> float:
        """The share of the card nobody else holds."""
        held = sum(
            float(path.read_text() or 0)
            for path in self.folder.iterdir()
            if path.name != self.holder
        )
        return 1.0 - held

    def hold(self, share: float) -> None:
        (self.folder / self.holder).write_text(repr(share))

    def refusal(self, share: float) -> str | None:
        """vLLM's start-up error when `share` is more than is free, else None."""
        free = self.free()
        if free + 1e-9 >= share:
            return None
        return (
            f"ValueError: Free memory on device cuda:0 ({free:.2f} of the card) on startup is "
            f"less than desired GPU memory utilization ({share}). Decrease GPU memory "
            "utilization or reduce GPU memory used by other processes."
        )
