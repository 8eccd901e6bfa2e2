"""Download catalog checkpoints from the Hugging Face Hub into the models folder (or volume).

Each model lands in <dest>/<name>/ exactly as vLLM will read it. Downloads go through
huggingface_hub's snapshot_download: resumable (an interrupted file continues from its
.incomplete part on the next run), with progress bars, and authenticated by HF_TOKEN.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from gateway.plan.catalog import CatalogModel, Download

MANIFEST = ".gateway-pull.json"


class PullError(RuntimeError):
    """A download that cannot proceed; the message says what to do about it."""


@dataclass(frozen=True)
class PullResult:
    name: str
    path: Path
    commits: dict[str, str]  # repo -> commit downloaded


def manifest_path(dest_root: Path, name: str) -> Path:
    return dest_root / name / MANIFEST


def read_manifest(dest_root: Path, name: str) -> dict[str, object] | None:
    try:
        return dict(json.loads(manifest_path(dest_root, name).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _check_space(model: CatalogModel, target: Path) -> None:
    missing = model.size_bytes - _bytes_under(target)
    free = shutil.disk_usage(target).free
    if missing > free:
        raise PullError(
            f"{model.name} needs about {missing / 1e9:.1f} GB more, but {target} has "
            f"{free / 1e9:.1f} GB free"
        )


def _explain(exc: Exception, download: Download) -> PullError:
    page = f"https://huggingface.co/{download.repo}"
    if isinstance(exc, GatedRepoError):
        return PullError(
            f"{download.repo} is gated: accept its licence at {page} with your account, then "
            f"set HF_TOKEN to a token of that account"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return PullError(f"{download.repo} was not found (or is private and HF_TOKEN is unset)")
    if isinstance(exc, RevisionNotFoundError):
        return PullError(f"{download.repo} has no revision {download.revision!r}")
    if isinstance(exc, LocalEntryNotFoundError):
        return PullError(f"cannot reach the Hub for {download.repo}: {exc}")
    return PullError(f"downloading {download.repo} failed: {exc}")


def _fetch(download: Download, target: Path, token: str | None, endpoint: str | None) -> str:
    """Resolve the revision to a commit first, so every file comes from the same commit."""
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(
            download.repo, revision=download.revision
        )
        commit = info.sha
        if commit is None:
            raise PullError(f"the Hub returned no commit for {download.repo}@{download.revision}")
        snapshot_download(
            repo_id=download.repo,
            revision=commit,
            local_dir=target,
            allow_patterns=list(download.files),
            token=token,
            endpoint=endpoint,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError) as exc:
        raise _explain(exc, download) from exc
    return commit


def pull_model(
    model: CatalogModel,
    dest_root: Path,
    *,
    token: str | None,
    revision: str | None = None,
    endpoint: str | None = None,
) -> PullResult:
    target = dest_root / model.name
    target.mkdir(parents=True, exist_ok=True)
    _check_space(model, target)
    main = replace(model.download, revision=revision or model.download.revision)
    commits: dict[str, str] = {}
    for download in (main, *model.companions):
        commits[download.repo] = _fetch(download, target, token, endpoint)
    manifest = {
        "name": model.name,
        "repo": main.repo,
        "revision": main.revision,
        "commits": commits,
        "files": sorted(
            str(p.relative_to(target))
            for p in target.rglob("*")
            if p.is_file() and ".cache" not in p.relative_to(target).parts and p.name != MANIFEST
        ),
        "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest_path(dest_root, model.name).write_text(json.dumps(manifest, indent=2) + "\n")
    return PullResult(model.name, target, commits)
