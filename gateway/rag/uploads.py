"""`POST /v1/files`: a multipart upload streamed into Postgres in ~1 MiB parts.

The body is parsed as it arrives (python-multipart's push parser) and each full part is
written at once, so an upload never sits whole in memory or on local disk, and every
replica reads the same bytes. One transaction covers the upload: a client that goes away
or a file over the size limit leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from gateway.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from gateway.rag.access import Caller
from gateway.rag.views import FILE_PURPOSES, new_id

PART_BYTES = 1 << 20
_MAX_FIELD_BYTES = 64 * 1024
# Multipart framing around the file: boundaries, part headers, the purpose field.
_FRAMING_ALLOWANCE = 64 * 1024


@dataclass
class _Form:
    """State the parser's (synchronous) callbacks fill in; the coroutine drains `pending`."""

    fields: dict[str, bytes] = field(default_factory=dict)
    filename: str | None = None
    file_started: bool = False
    file_done: bool = False
    in_file: bool = False
    pending: bytearray = field(default_factory=bytearray)
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    _name: str = ""
    _value: bytearray = field(default_factory=bytearray)
    _header: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _disposition: bytes = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._value.clear()

    def _header_end(self) -> None:
        if bytes(self._header).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if self._name == "file" and filename is not None:
            if self.file_started:
                raise InvalidRequest("Send exactly one `file` per upload.", param="file")
            self.file_started = self.in_file = True
            name = filename.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
            self.filename = name or "upload"

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            chunk = data[start:end]
            self.pending.extend(chunk)
            self.size += len(chunk)
            self.digest.update(chunk)
        else:
            self._value.extend(data[start:end])
            if len(self._value) > _MAX_FIELD_BYTES:
                raise InvalidRequest(f"The form field `{self._name}` is too large.")

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.file_done = True
        elif self._name:
            self.fields[self._name] = bytes(self._value)


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(
            "Upload files as multipart/form-data with a `file` part and a `purpose` field."
        )
    return boundary


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file exceeds this gateway's upload limit of {limit} bytes "
        "(GATEWAY_MAX_UPLOAD_BYTES).",
        param="file",
    )


async def receive_upload(
    request: Request, conn: AsyncConnection, caller: Caller, max_bytes: int
) -> dict[str, Any]:
    """Parse the upload into `files`/`file_parts` within `conn`'s transaction; the new
    row's columns. Raises 400/413/415 (the caller's transaction then rolls back)."""
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _FRAMING_ALLOWANCE:
        raise _too_large(max_bytes)
    form = _Form()
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
    file_id = new_id("file-")
    parts = 0
    row_written = False
    async for piece in request.stream():
        parser.write(piece)
        if form.size > max_bytes:
            raise _too_large(max_bytes)
        if form.file_started and not row_written:
            await conn.execute(
                text(
                    "INSERT INTO files (id, owner, filename, purpose, bytes) "
                    "VALUES (:id, :owner, :filename, '', 0)"
                ),
                {"id": file_id, "owner": caller.owner, "filename": form.filename},
            )
            row_written = True
        while len(form.pending) >= PART_BYTES:
            await _write_part(conn, file_id, parts, bytes(form.pending[:PART_BYTES]))
            del form.pending[:PART_BYTES]
            parts += 1
    parser.finalize()
    if not form.file_done:
        raise InvalidRequest("The upload has no `file` part.", param="file")
    if form.pending or parts == 0:
        await _write_part(conn, file_id, parts, bytes(form.pending))
        form.pending.clear()
    purpose = form.fields.get("purpose", b"").decode("utf-8", "replace")
    if purpose not in FILE_PURPOSES:
        raise InvalidRequest(
            f"Invalid purpose {purpose!r}: expected one of {sorted(FILE_PURPOSES)}.",
            param="purpose",
        )
    result = await conn.execute(
        text(
            "UPDATE files SET purpose = :purpose, bytes = :bytes, sha256 = :sha "
            "WHERE id = :id RETURNING *"
        ),
        {"id": file_id, "purpose": purpose, "bytes": form.size, "sha": form.digest.hexdigest()},
    )
    return dict(result.mappings().one())


async def _write_part(conn: AsyncConnection, file_id: str, part: int, data: bytes) -> None:
    await conn.execute(
        text("INSERT INTO file_parts (file_id, part, data) VALUES (:id, :part, :data)"),
        {"id": file_id, "part": part, "data": data},
    )
