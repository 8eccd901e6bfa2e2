"""The catalog's numbers against the models' published config.json (see fixtures/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.plan.catalog import (
    Catalog,
    CatalogError,
    architecture_from_hf_config,
    catalog_from_dict,
    load_catalog,
)
from gateway.plan.planner import weight_bytes
from gateway.plan.quant import find_quant

FIXTURES = Path(__file__).parent / "fixtures" / "published_configs"

# catalog architecture key -> published config fixture
PUBLISHED = {
    "llama-3.1-8b": "Llama-3.1-8B-Instruct.json",
    "llama-3.1-70b": "Llama-3.1-70B-Instruct.json",
    "llama-3.3-70b": "Llama-3.3-70B-Instruct.json",
    "qwen2.5-32b": "Qwen2.5-32B-Instruct.json",
    "qwen2.5-72b": "Qwen2.5-72B-Instruct.json",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2.json",
}
SHAPE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
    "qkv_bias",
    "kind",
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.mark.parametrize(("key", "fixture"), sorted(PUBLISHED.items()))
def test_architecture_matches_published_config(catalog: Catalog, key: str, fixture: str) -> None:
    published = architecture_from_hf_config(key, json.loads((FIXTURES / fixture).read_text()))
    ours = catalog.architectures[key]
    for field in SHAPE_FIELDS:
        assert getattr(ours, field) == getattr(published, field), field


def test_the_numbers_the_issue_quotes(catalog: Catalog) -> None:
    a = catalog.architectures
    assert (a["llama-3.1-70b"].num_hidden_layers, a["llama-3.1-70b"].num_key_value_heads) == (80, 8)
    assert (a["llama-3.1-70b"].head_dim, a["llama-3.1-70b"].max_position_embeddings) == (
        128,
        131072,
    )
    assert (a["llama-3.1-8b"].num_hidden_layers, a["llama-3.1-8b"].num_key_value_heads) == (32, 8)
    assert (a["qwen2.5-72b"].num_hidden_layers, a["qwen2.5-72b"].hidden_size) == (80, 8192)
    assert (a["qwen2.5-32b"].num_hidden_layers, a["qwen2.5-32b"].hidden_size) == (64, 5120)
    assert a["qwen2.5-32b"].head_dim == a["qwen2.5-72b"].head_dim == 128


@pytest.mark.parametrize(
    ("key", "published_billions"),
    [
        ("llama-3.1-8b", 8.03),
        ("llama-3.1-70b", 70.6),
        ("qwen2.5-32b", 32.76),
        ("qwen2.5-72b", 72.7),
    ],
)
def test_parameter_count_matches_model_card(
    catalog: Catalog, key: str, published_billions: float
) -> None:
    total = catalog.architectures[key].total_params / 1e9
    assert total == pytest.approx(published_billions, rel=0.005)


def test_bf16_sizes_match_published_checkpoints(catalog: Catalog) -> None:
    bf16 = find_quant("bf16")
    assert bf16 is not None
    # Llama-3.1-8B-Instruct's safetensors total 16.06 GB; Qwen2.5-32B's 65.53 GB.
    assert weight_bytes(catalog.architectures["llama-3.1-8b"], bf16).total_bytes / 1e9 == (
        pytest.approx(16.06, abs=0.01)
    )
    assert weight_bytes(catalog.architectures["qwen2.5-32b"], bf16).total_bytes / 1e9 == (
        pytest.approx(65.53, abs=0.01)
    )


def test_every_catalog_size_agrees_with_the_shape_formula(catalog: Catalog) -> None:
    for model in catalog.models.values():
        quant = find_quant(model.quant)
        assert quant is not None, model.name
        if model.arch.kind != "chat":
            continue
        computed = weight_bytes(model.arch, quant).total_bytes / 1e9
        # GGUF bits per weight are themselves derived from these files: within 1%.
        assert computed == pytest.approx(model.size_gb, rel=0.01), model.name


def test_pullable_entries_are_complete(catalog: Catalog) -> None:
    for model in catalog.models.values():
        assert "/" in model.download.repo and model.download.files, model.name
        assert model.licence and model.licence != "unknown", model.name
        quant = find_quant(model.quant)
        assert quant is not None, model.name
        if quant.gguf:
            assert model.serve_file in model.download.files
            # vLLM needs the HF config and tokenizer beside a GGUF file.
            companion_files = {f for c in model.companions for f in c.files}
            assert {"config.json", "tokenizer.json"} <= companion_files


def test_hf_config_defaults_follow_transformers() -> None:
    arch = architecture_from_hf_config(
        "tiny",
        {
            "architectures": ["MistralForCausalLM"],
            "hidden_size": 512,
            "intermediate_size": 1024,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "head_dim": None,
            "vocab_size": 1000,
            "max_position_embeddings": 4096,
        },
    )
    assert arch.head_dim == 64  # hidden / heads when absent or null
    assert arch.num_key_value_heads == 8  # no GQA unless stated
    assert arch.kind == "chat"


@pytest.mark.parametrize(
    "config",
    [
        {"text_config": {}},
        {"hidden_size": 8, "num_attention_heads": 1, "num_local_experts": 8},
        {"hidden_size": 8, "num_attention_heads": 1, "num_hidden_layers": 0},
    ],
)
def test_unsupported_configs_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(CatalogError):
        architecture_from_hf_config("x", config)


def test_model_with_unknown_arch_is_refused() -> None:
    with pytest.raises(CatalogError, match="unknown arch"):
        catalog_from_dict({"models": {"m": {"arch": "nope", "repo": "a/b", "files": ["x"]}}})
