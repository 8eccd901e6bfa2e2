"""Turn what the user typed (--model, --quant) into an architecture, a quant and a vLLM target.

This is the planner's edge: it reads a model folder's config.json and weight sizes; the
arithmetic in planner.py never touches the filesystem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gateway.plan.catalog import (
    Architecture,
    Catalog,
    CatalogError,
    CatalogModel,
    architecture_from_hf_config,
)
from gateway.plan.quant import Quant, find_quant, quant_choices, quant_from_hf_config

DEFAULT_MODELS_DIR = "/models"  # where the compose stack mounts pulled models


class ResolveError(ValueError):
    """Input the planner cannot use; the message says what would be accepted."""


@dataclass(frozen=True)
class ServeTarget:
    model_ref: str  # the first argument of `vllm serve`
    served_name: str
    tokenizer: str | None = None
    hf_config_path: str | None = None


@dataclass(frozen=True)
class Subject:
    arch: Architecture
    quant: Quant
    weights_bytes: int | None
    weights_source: str
    target: ServeTarget


def _quant(name: str) -> Quant:
    found = find_quant(name)
    if found is None:
        raise ResolveError(
            f"unknown quantization {name!r}; choose one of: {', '.join(quant_choices())}"
        )
    return found


def _model_choices(catalog: Catalog) -> str:
    chat = sorted(k for k, a in catalog.architectures.items() if a.kind == "chat")
    pullable = sorted(k for k, m in catalog.models.items() if m.arch.kind == "chat")
    return (
        f"built-in models: {', '.join(chat)}; catalog checkpoints: {', '.join(pullable)}; "
        "or a folder holding a Hugging Face config.json"
    )


def _target_for(model: CatalogModel, models_dir: str) -> ServeTarget:
    folder = f"{models_dir.rstrip('/')}/{model.name}"
    if model.serve_file:
        # A GGUF file has no HF config or fast tokenizer: both come from the companion files
        # that `models pull` puts beside it.
        return ServeTarget(f"{folder}/{model.serve_file}", model.arch.key, folder, folder)
    return ServeTarget(folder, model.arch.key)


def _from_catalog_model(model: CatalogModel, quant: str | None, models_dir: str) -> Subject:
    own = _quant(model.quant)
    if quant is not None and _quant(quant).key != own.key:
        raise ResolveError(
            f"{model.name} is a {own.key} checkpoint; to plan another quantization use "
            f"--model {model.arch.key} --quant {quant}"
        )
    source = f"size of {model.download.repo} ({model.size_gb:g} GB)"
    return Subject(model.arch, own, model.size_bytes, source, _target_for(model, models_dir))


def _from_architecture(
    arch: Architecture, quant: str | None, catalog: Catalog, models_dir: str
) -> Subject:
    if quant is None:
        raise ResolveError(
            f"--quant is required for {arch.key}; choose one of: {', '.join(quant_choices())}"
        )
    q = _quant(quant)
    for model in catalog.models.values():
        if model.arch.key == arch.key and model.quant == q.key:
            return _from_catalog_model(model, None, models_dir)
    if q.key in ("bf16", "fp16", "fp8"):
        target = ServeTarget(arch.hf_repo, arch.key)
    else:
        # The catalog has no such checkpoint; say so rather than invent a repository name.
        target = ServeTarget(f"<{q.label} checkpoint of {arch.hf_repo}>", arch.key)
    return Subject(arch, q, None, "computed from the model's shape", target)


def _from_folder(folder: Path, quant: str | None) -> Subject:
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResolveError(f"{folder} has no config.json") from exc
    except json.JSONDecodeError as exc:
        raise ResolveError(f"{config_path} is not valid JSON: {exc}") from exc
    try:
        arch = architecture_from_hf_config(folder.name, config)
    except CatalogError as exc:
        raise ResolveError(str(exc)) from exc
    declared = quant_from_hf_config(config)
    if quant is None and declared is None:
        raise ResolveError(
            f"cannot tell the quantization of {folder}; pass --quant ({', '.join(quant_choices())})"
        )
    q = _quant(quant or str(declared))
    shards = list(folder.glob("*.safetensors"))
    measured = sum(p.stat().st_size for p in shards) if shards and q.key == declared else None
    source = f"files on disk in {folder}" if measured else "computed from the model's shape"
    return Subject(arch, q, measured, source, ServeTarget(str(folder), folder.name))


def resolve_model(
    value: str, quant: str | None, catalog: Catalog, models_dir: str = DEFAULT_MODELS_DIR
) -> Subject:
    folder = Path(value).expanduser()
    key = value.strip().lower()
    if folder.is_dir():
        subject = _from_folder(folder, quant)
    elif key in catalog.models:
        subject = _from_catalog_model(catalog.models[key], quant, models_dir)
    elif key in catalog.architectures:
        subject = _from_architecture(catalog.architectures[key], quant, catalog, models_dir)
    else:
        raise ResolveError(f"unknown model {value!r}; {_model_choices(catalog)}")
    if subject.arch.kind != "chat":
        raise ResolveError(
            f"{value} is an embedding model: it keeps no KV cache, so there is nothing to plan "
            f"beyond its weights; {_model_choices(catalog)}"
        )
    return subject
