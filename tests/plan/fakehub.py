"""A Hugging Face Hub on loopback that serves local folders, for pulling without a network.

It answers the handful of routes huggingface_hub's snapshot_download uses (repo info, tree
listing, HEAD and ranged GET on resolve/), so tests drive the real download code.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class FakeRepo:
    folder: Path
    commit: str
    gated: bool = False  # answers like a gated repo unless the token is right


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    token: str | None = None  # the token a gated repo accepts
    # path -> bytes to send before dropping the connection, once
    cut_after: dict[str, int] = field(default_factory=dict)
    # (method, path, headers with lower-case names)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def add(self, repo_id: str, folder: Path, *, gated: bool = False) -> FakeRepo:
        commit = hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()
        self.repos[repo_id] = FakeRepo(folder, commit, gated)
        return self.repos[repo_id]

    def gets(self, suffix: str) -> list[dict[str, str]]:
        return [h for m, p, h in self.requests if m == "GET" and p.endswith(suffix)]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _json(self, payload: object, status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _repo(self, parts: list[str]) -> tuple[str, FakeRepo] | None:
            repo_id = "/".join(parts[:2])
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound")
                return None
            if repo.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
                self._error(401, "GatedRepo")
                return None
            return repo_id, repo

        def _serve(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(
                (self.command, path, {k.lower(): v for k, v in self.headers.items()})
            )
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"]:
                found = self._repo(parts[2:])
                if found is None:
                    return
                repo_id, repo = found
                files = _files(repo.folder)
                if parts[4] == "revision":
                    siblings = [{"rfilename": str(p.relative_to(repo.folder))} for p in files]
                    return self._json({"id": repo_id, "sha": repo.commit, "siblings": siblings})
                if parts[4] == "tree":
                    return self._json(
                        [
                            {
                                "type": "file",
                                "path": str(p.relative_to(repo.folder)),
                                "size": p.stat().st_size,
                                "oid": hashlib.sha1(
                                    p.read_bytes(), usedforsecurity=False
                                ).hexdigest(),
                            }
                            for p in files
                        ]
                    )
            if len(parts) >= 5 and parts[2] == "resolve":
                found = self._repo(parts[:2])
                if found is None:
                    return
                _, repo = found
                file = repo.folder / "/".join(parts[4:])
                if not file.is_file():
                    return self._error(404, "EntryNotFound")
                return self._file(file, repo.commit, head, "/".join(parts[4:]))
            self._error(404, "RepoNotFound")

        def _file(self, file: Path, commit: str, head: bool, name: str) -> None:
            data = file.read_bytes()
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes="):
                start = int(ranged[6:].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"')
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            cut = hub.cut_after.pop(name, None)
            if cut is not None:
                self.wfile.write(data[start : start + cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data[start:])

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

    return Handler


@contextmanager
def running(hub: FakeHub) -> Iterator[FakeHub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
