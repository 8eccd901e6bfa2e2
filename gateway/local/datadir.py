"""The folder where `gateway up` keeps its state, and the secrets in it.

    <data dir>/
      postgres/      the embedded Postgres cluster (keys, usage, documents)
      logs/          chat-engine.log, embedding-engine.log, gateway.log (+ .1: the run before)
      admin-key      GATEWAY_ADMIN_KEY, generated on the first run (0600)
      engine-key     the local engines' API key (VLLM_API_KEY), which only the gateway
                     holds (GATEWAY_UPSTREAM_API_KEY), generated on the first run (0600)
      api-key        the secret of the key `gateway up` made for you (0600)
      up.lock        held while a `gateway up` runs on this folder

The default is the user's data folder (XDG_DATA_HOME, else ~/.local/share), not the current
directory: the database and keys must be the same wherever the command is run from, and a
`./.gateway` folder would sooner or later be committed to someone's repository, secrets and all.
Converted models are a cache that can be rebuilt, so they live in the model cache instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.local.errors import LocalStackError

DATA_DIR_ENV = "GATEWAY_DATA_DIR"
SECRET_MODE = 0o600


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "gateway"


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def admin_key_file(self) -> Path:
        return self.root / "admin-key"

    @property
    def engine_key_file(self) -> Path:
        return self.root / "engine-key"

    @property
    def api_key_file(self) -> Path:
        return self.root / "api-key"

    @property
    def lock_file(self) -> Path:
        return self.root / "up.lock"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)

    def fresh_log(self, name: str) -> Path:
        """This run's log for `name`; the previous run's is kept as `<name>.log.1`."""
        path = self.log(name)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
        return path


def read_secret(path: Path) -> str | None:
    """The secret in `path`, or None if there is none yet. Loose permissions are tightened:
    a key readable by other users of the box is a key they can use."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if mode & 0o077:
        path.chmod(SECRET_MODE)
    return text or None


def write_secret(path: Path, value: str) -> None:
    """Write atomically, created 0600 from the start (never briefly world-readable)."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    staging.replace(path)


def admin_key(data: DataDir) -> str:
    """The admin key of this data dir, generated on first use."""
    return _generated_secret(data.admin_key_file, "sk-admin-")


def engine_key(data: DataDir) -> str:
    """The key the local engines require, generated on first use. vLLM's port is on
    loopback, but every local user can reach loopback: without it they would skip the
    gateway's keys, limits and metering."""
    return _generated_secret(data.engine_key_file, "sk-engine-")


def _generated_secret(path: Path, prefix: str) -> str:
    existing = read_secret(path)
    if existing is not None:
        return existing
    value = prefix + secrets.token_urlsafe(32)
    write_secret(path, value)
    return value


@contextmanager
def exclusive(data: DataDir) -> Iterator[None]:
    """Held for a whole run: two stacks on one data dir would share (and fight over) its
    Postgres and each other's keys. The kernel drops the lock if we die, however we die."""
    data.create()
    with data.lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LocalStackError(
                f"another `gateway up` (pid {holder}) is already running with {data.root}. "
                "Stop it first, or pass a different --data-dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
