"""`gateway models pull` against a fake Hub on loopback: the real huggingface_hub code path."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from huggingface_hub import constants

from gateway.plan.catalog import CATALOG_ENV, default_catalog_path, load_catalog
from gateway.plan.cli import models
from gateway.plan.pull import MANIFEST, PullError, pull_model
from tests.plan.fakehub import FakeHub, running

GGUF_REPO = "bartowski/Llama-3.3-70B-Instruct-GGUF"
GGUF_FILE = "Llama-3.3-70B-Instruct-IQ2_M.gguf"
BASE_REPO = "meta-llama/Llama-3.3-70B-Instruct"
TOKEN = "hf_test_token"


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI may export HF_HUB_OFFLINE for the engines; these tests only talk to loopback.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    gguf = tmp_path / "hub" / "gguf"
    gguf.mkdir(parents=True)
    (gguf / GGUF_FILE).write_bytes(os.urandom(24_000_000))
    (gguf / "Llama-3.3-70B-Instruct-IQ2_XS.gguf").write_bytes(b"not wanted")
    (gguf / "README.md").write_text("card")
    base = tmp_path / "hub" / "base"
    base.mkdir()
    for name in (
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ):
        (base / name).write_text(json.dumps({"name": name}))
    (base / "model-00001-of-00030.safetensors").write_bytes(b"not wanted either")
    fake = FakeHub(token=TOKEN)
    fake.add(GGUF_REPO, gguf)
    fake.add(BASE_REPO, base, gated=True)
    with running(fake):
        yield fake


@pytest.fixture
def small_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real catalog, with the GGUF entry's size shrunk to what the fake repo holds."""
    raw = yaml.safe_load(default_catalog_path().read_text())
    raw["models"]["llama-3.3-70b-iq2m"]["size_gb"] = 0.024
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(CATALOG_ENV, str(path))
    return path


def pull(hub: FakeHub, dest: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        models, ["pull", "llama-3.3-70b-iq2m", "--dest", str(dest), "--endpoint", hub.url, *extra]
    )


def test_pull_fetches_the_file_and_its_tokenizer(
    hub: FakeHub, small_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    dest = tmp_path / "models"
    result = pull(hub, dest)
    assert result.exit_code == 0, result.output
    target = dest / "llama-3.3-70b-iq2m"
    assert (target / GGUF_FILE).read_bytes() == (
        hub.repos[GGUF_REPO].folder / GGUF_FILE
    ).read_bytes()
    assert json.loads((target / "tokenizer.json").read_text()) == {"name": "tokenizer.json"}
    # only what the catalog names: no other quant, no bf16 shards, no README
    assert not (target / "Llama-3.3-70B-Instruct-IQ2_XS.gguf").exists()
    assert not list(target.glob("*.safetensors"))
    assert not (target / "README.md").exists()
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["commits"] == {
        GGUF_REPO: hub.repos[GGUF_REPO].commit,
        BASE_REPO: hub.repos[BASE_REPO].commit,
    }
    assert GGUF_FILE in manifest["files"] and "config.json" in manifest["files"]
    # every file came from the resolved commit, and the token went to the gated repo
    resolved = [p for m, p, _ in hub.requests if "/resolve/" in p]
    assert resolved and all(
        hub.repos[GGUF_REPO].commit in p or hub.repos[BASE_REPO].commit in p for p in resolved
    )
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for h in hub.gets("tokenizer.json"))
    assert hub.repos[GGUF_REPO].commit in result.output

    listed = CliRunner().invoke(models, ["list", "--dest", str(dest), "--json"])
    pulled = {r["name"]: r["pulled"] for r in json.loads(listed.output)}
    assert pulled["llama-3.3-70b-iq2m"] is True


def test_pull_resumes_an_interrupted_download(
    hub: FakeHub, small_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    # The first GET drops the connection after 12 MB; huggingface_hub has written the whole
    # chunks it received (10 MiB) to the .incomplete file and asks for the rest.
    hub.cut_after[GGUF_FILE] = 12_000_000
    dest = tmp_path / "models"
    result = pull(hub, dest)
    assert result.exit_code == 0, result.output
    ranges = [h.get("range") for h in hub.gets(GGUF_FILE)]
    assert ranges == [None, f"bytes={constants.DOWNLOAD_CHUNK_SIZE}-"]
    target = dest / "llama-3.3-70b-iq2m" / GGUF_FILE
    assert target.read_bytes() == (hub.repos[GGUF_REPO].folder / GGUF_FILE).read_bytes()

    # a second pull finds everything in place and downloads nothing again
    again = pull(hub, dest)
    assert again.exit_code == 0, again.output
    assert len(hub.gets(GGUF_FILE)) == 2


def test_gated_repo_without_token_says_what_to_do(
    hub: FakeHub, small_catalog: Path, tmp_path: Path
) -> None:
    result = pull(hub, tmp_path / "models")
    assert result.exit_code == 1
    assert f"{BASE_REPO} is gated" in result.output and "HF_TOKEN" in result.output
    assert "Traceback" not in result.output


def test_not_enough_disk_is_refused_before_downloading(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Usage:
        free = 1_000_000_000

    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage())
    model = load_catalog().models["llama-3.3-70b-iq2m"]  # the real 24.12 GB entry
    with pytest.raises(PullError, match=r"needs about 24\.1 GB more"):
        pull_model(model, tmp_path, token=TOKEN, endpoint=hub.url)
    assert not hub.requests
