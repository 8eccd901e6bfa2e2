"""The model catalog: architectures the planner knows and checkpoints `models pull` fetches.

Parsing is pure (dicts in, frozen dataclasses out); `load_catalog` is the only function here
that touches the filesystem.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATALOG_ENV = "GATEWAY_MODEL_CATALOG"
# Families whose HF configs leave these implicit; anything else must state them.
_QKV_BIAS_MODEL_TYPES = frozenset({"qwen2", "bert", "xlm-roberta"})
_MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size")


class CatalogError(ValueError):
    """The catalog file or a model's config.json cannot be used."""


@dataclass(frozen=True)
class Architecture:
    """The shape of a dense transformer, as its config.json states it."""

    key: str
    hf_repo: str
    kind: str  # "chat" or "embedding"
    licence: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    qkv_bias: bool

    @property
    def linear_params(self) -> int:
        """Weights of the per-layer projections: the part that quantization shrinks."""
        h, d = self.hidden_size, self.head_dim
        q_out = self.num_attention_heads * d
        kv_out = self.num_key_value_heads * d
        attention = h * q_out + 2 * h * kv_out + q_out * h
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        return self.num_hidden_layers * (attention + mlp)

    @property
    def other_params(self) -> int:
        """Embeddings, lm_head, norms and biases: kept at 16 bits by AWQ, GPTQ and FP8."""
        h, d = self.hidden_size, self.head_dim
        bias = (self.num_attention_heads + 2 * self.num_key_value_heads) * d if self.qkv_bias else 0
        norms = self.num_hidden_layers * 2 * h + h
        heads = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_hidden_layers * bias + norms + heads

    @property
    def total_params(self) -> int:
        return self.linear_params + self.other_params


@dataclass(frozen=True)
class Download:
    repo: str
    revision: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class CatalogModel:
    """A checkpoint that `gateway models pull NAME` can download."""

    name: str
    arch: Architecture
    quant: str
    download: Download
    size_gb: float
    licence: str
    serve_file: str | None = None
    companions: tuple[Download, ...] = ()

    @property
    def size_bytes(self) -> int:
        return round(self.size_gb * 1e9)


@dataclass(frozen=True)
class Catalog:
    architectures: dict[str, Architecture]
    models: dict[str, CatalogModel]


def _int(raw: dict[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def architecture_from_dict(key: str, raw: dict[str, Any]) -> Architecture:
    where = f"architecture {key!r}"
    kind = raw.get("kind", "chat")
    if kind not in ("chat", "embedding"):
        raise CatalogError(f"{where}: kind must be 'chat' or 'embedding', got {kind!r}")
    return Architecture(
        key=key,
        hf_repo=str(raw.get("hf_repo", key)),
        kind=kind,
        licence=str(raw.get("licence", "unknown")),
        hidden_size=_int(raw, "hidden_size", where),
        intermediate_size=_int(raw, "intermediate_size", where),
        num_hidden_layers=_int(raw, "num_hidden_layers", where),
        num_attention_heads=_int(raw, "num_attention_heads", where),
        num_key_value_heads=_int(raw, "num_key_value_heads", where),
        head_dim=_int(raw, "head_dim", where),
        vocab_size=_int(raw, "vocab_size", where),
        max_position_embeddings=_int(raw, "max_position_embeddings", where),
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        qkv_bias=bool(raw.get("qkv_bias", False)),
    )


def architecture_from_hf_config(key: str, config: dict[str, Any]) -> Architecture:
    """Read a Hugging Face config.json the way transformers fills in its defaults."""
    where = f"config.json of {key}"
    if "text_config" in config and "hidden_size" not in config:
        raise CatalogError(f"{where}: multimodal configs (text_config) are not supported")
    if any(config.get(k) for k in _MOE_KEYS):
        raise CatalogError(f"{where}: mixture-of-experts models are not modelled by the planner")
    heads = _int(config, "num_attention_heads", where)
    hidden = _int(config, "hidden_size", where)
    # head_dim is absent (or null) in many configs; transformers then uses hidden / heads.
    head_dim = config.get("head_dim") or hidden // heads
    model_type = str(config.get("model_type", ""))
    architectures = config.get("architectures") or []
    is_embedding = model_type in ("bert", "xlm-roberta") or any(
        not str(a).endswith("ForCausalLM") for a in architectures
    )
    return architecture_from_dict(
        key,
        {
            "hf_repo": key,
            "kind": "embedding" if is_embedding else "chat",
            "hidden_size": hidden,
            "intermediate_size": config.get("intermediate_size"),
            "num_hidden_layers": config.get("num_hidden_layers"),
            "num_attention_heads": heads,
            "num_key_value_heads": config.get("num_key_value_heads") or heads,
            "head_dim": head_dim,
            "vocab_size": config.get("vocab_size"),
            "max_position_embeddings": config.get("max_position_embeddings"),
            "tie_word_embeddings": config.get("tie_word_embeddings", False),
            "qkv_bias": config.get("attention_bias", model_type in _QKV_BIAS_MODEL_TYPES),
        },
    )


def _download_from_dict(raw: dict[str, Any], where: str) -> Download:
    repo = raw.get("repo")
    files = raw.get("files")
    if not isinstance(repo, str) or "/" not in repo:
        raise CatalogError(f"{where}: 'repo' must be 'owner/name', got {repo!r}")
    if not isinstance(files, list) or not files:
        raise CatalogError(f"{where}: 'files' must be a non-empty list of names or patterns")
    return Download(repo=repo, revision=str(raw.get("revision", "main")), files=tuple(files))


def catalog_from_dict(raw: dict[str, Any]) -> Catalog:
    archs_raw = raw.get("architectures") or {}
    models_raw = raw.get("models") or {}
    architectures = {k: architecture_from_dict(k, v) for k, v in archs_raw.items()}
    models: dict[str, CatalogModel] = {}
    for name, entry in models_raw.items():
        where = f"model {name!r}"
        arch_key = entry.get("arch")
        if arch_key not in architectures:
            raise CatalogError(f"{where}: unknown arch {arch_key!r}")
        models[name] = CatalogModel(
            name=name,
            arch=architectures[arch_key],
            quant=str(entry.get("quant", "")),
            download=_download_from_dict(entry, where),
            size_gb=float(entry.get("size_gb", 0.0)),
            licence=str(entry.get("licence", architectures[arch_key].licence)),
            serve_file=entry.get("serve_file"),
            companions=tuple(
                _download_from_dict(c, f"{where} companion") for c in entry.get("companions", [])
            ),
        )
    return Catalog(architectures=architectures, models=models)


def default_catalog_path() -> Path:
    """Where the catalog is: $GATEWAY_MODEL_CATALOG, the checkout's models/catalog.yaml, or
    <prefix>/share/gateway/models/catalog.yaml.

    A wheel does not carry the top-level models/ folder: the container image copies the file
    and sets the variable; an installed wheel finds it under share/ if packaging puts it there.
    """
    override = os.environ.get(CATALOG_ENV)
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[2] / "models" / "catalog.yaml"
    installed = Path(sys.prefix) / "share" / "gateway" / "models" / "catalog.yaml"
    return installed if not checkout.is_file() and installed.is_file() else checkout


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or default_catalog_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"model catalog not found at {path} (set {CATALOG_ENV})") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: expected a mapping at the top level")
    return catalog_from_dict(raw)
