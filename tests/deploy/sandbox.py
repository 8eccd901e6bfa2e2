"""Containers without Docker: Linux namespaces standing in for a compose network.

Each container is a network namespace on a bridge (its own loopback, an address, and an
/etc/hosts that names the others, as Docker's DNS does), and each process in it runs in a
private mount namespace (the image's paths bound in place) as the image's user. Needs
root and iproute2 (`ip netns`), util-linux (`unshare`, `setpriv`). Nothing is changed
outside the namespaces except /etc/netns/<name>/, removed again on close.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy import dns

SUBNET = "172.30.0"  # inside the sandbox's own namespaces: clashes with nothing outside
HOST = "host"  # the container standing for the machine itself (published ports)


def missing_tools() -> str | None:
    """Why this machine cannot run a sandbox, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns)"
    for tool in ("ip", "unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass(frozen=True)
class Mounts:
    """A container's file system, on top of the machine's own."""

    tmpfs: tuple[str, ...] = ()  # empty, private folders (e.g. the image's /opt)
    binds: tuple[tuple[str, str], ...] = ()  # (source on this machine, path inside)

    def script(self) -> str:
        lines = [f"mount -t tmpfs tmpfs {shlex.quote(t)}" for t in self.tmpfs]
        for source, target in self.binds:  # targets must exist (see `mountpoints`)
            lines.append(f"mount --bind {shlex.quote(source)} {shlex.quote(target)}")
        return "\n".join(lines)


@dataclass
class Container:
    name: str
    namespace: str
    address: str
    aliases: tuple[str, ...]


@dataclass
class Sandbox:
    """`containers`: name -> the DNS names it answers to (its service, for replicas too)."""

    containers_spec: Mapping[str, Sequence[str]]
    workdir: Path
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    containers: dict[str, Container] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bridge_namespace(self) -> str:
        return f"rh{self.id}-net"

    def __enter__(self) -> Sandbox:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self) -> None:
        net = self.bridge_namespace
        _ip("netns", "add", net)
        _ip("-n", net, "link", "set", "lo", "up")
        _ip("-n", net, "link", "add", "br0", "type", "bridge")
        _ip("-n", net, "link", "set", "br0", "up")
        for n, (name, aliases) in enumerate(self.containers_spec.items(), start=2):
            namespace = f"rh{self.id}-{n}"
            address = f"{SUBNET}.{n}"
            _ip("netns", "add", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            veth = f"v{self.id}{n}"
            _ip("-n", net, "link", "add", veth, "type", "veth", "peer", "eth0", "netns", namespace)
            _ip("-n", net, "link", "set", veth, "master", "br0", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            self.containers[name] = Container(name, namespace, address, (name, *aliases))
        names = self.workdir / "dns-names"
        names.write_text(
            "".join(
                f"{c.address} {' '.join(dict.fromkeys(c.aliases))}\n"
                for c in self.containers.values()
                if c.name != HOST
            )
        )
        for container in self.containers.values():
            folder = Path("/etc/netns") / container.namespace
            folder.mkdir(parents=True, exist_ok=True)
            # As in a container: itself in /etc/hosts, every other name from Docker's DNS.
            hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
            if container.name != HOST:
                hosts.append(f"{container.address}\t{container.name}")
                (folder / "resolv.conf").write_text(f"nameserver {dns.ADDRESS}\n")
                self._serve_dns(container, names)
            (folder / "hosts").write_text("\n".join(hosts) + "\n")

    def _serve_dns(self, container: Container, names: Path) -> None:
        _ip("-n", container.namespace, "addr", "add", f"{dns.ADDRESS}/32", "dev", "lo")
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).parents[2])}
        argv = [sys.executable, "-m", "tests.deploy.dns", str(names)]
        self.spawn(container.name, argv, env=env)

    def spawn(
        self,
        container: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        user: tuple[int, int] | None = None,
        workdir: str | None = None,
        mounts: Mounts = Mounts(),
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in `container` with exactly `env` (nothing inherited)."""
        script = [mounts.script()]
        if workdir:
            script.append(f"cd {shlex.quote(workdir)}")
        drop = ""
        if user is not None and user != (0, 0):
            drop = f"setpriv --reuid={user[0]} --regid={user[1]} --clear-groups -- "
        script.append(f'exec {drop}"$@"')
        command = [
            shutil.which("ip") or "ip",
            "netns",
            "exec",
            self.containers[container].namespace,
            shutil.which("unshare") or "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-ec",
            "\n".join(s for s in script if s),
            "sh",
            *argv,
        ]
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                command,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]
        self.processes.append(proc)
        return proc

    def run(
        self, container: str, argv: Sequence[str], *, timeout: float = 120, **kwargs: object
    ) -> tuple[int, str]:
        """Run to completion; (exit code, output)."""
        log = Path(f"/tmp/rh{self.id}-{uuid.uuid4().hex[:6]}.log")
        try:
            proc = self.spawn(container, argv, log=log, **kwargs)  # type: ignore[arg-type]
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise
            return code, log.read_text(errors="replace")
        finally:
            log.unlink(missing_ok=True)

    def close(self) -> None:
        for proc in self.processes:
            _kill(proc)
        namespaces = [c.namespace for c in self.containers.values()]
        for namespace in [*namespaces, self.bridge_namespace]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / namespace, ignore_errors=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _kill(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is not None:
            return
