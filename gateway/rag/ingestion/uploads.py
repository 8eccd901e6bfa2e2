"""`POST /v1/files`: a multipart upload spooled to disk while the client sends.

The body is parsed as it arrives (python-multipart's push parser); the file part goes to a
nameless spool file (gateway.rag.ingestion.spool) in ~1 MiB writes and nothing touches the
database meanwhile, however slowly the client sends. Only a complete, valid upload is
then written into Postgres (gateway.rag.ingestion.file_store), in one short transaction,
so a file row exists only whole; a client that leaves, a file over the limit or a malformed form
leaves nothing behind.

A malformed form is a 400 that says what is wrong: bad framing, a body cut before its
closing boundary, no `file` part or two of them, too many or too large other fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gateway.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, UploadAbandoned
from gateway.rag.ingestion.spool import BLOCK_BYTES, Spool

FILE_PURPOSES = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals", "assistants_output"}
)

# The form OpenAI's SDKs send has `purpose` and at most two `expires_after[...]` fields
# besides the file: these bounds leave room for any client and keep a hostile form's
# fields and part headers from growing memory.
MAX_FIELDS = 16
MAX_FIELDS_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
# Multipart framing around the file: boundaries, part headers, the other fields.
FRAMING_ALLOWANCE = 64 * 1024
_FORM_HINT = "Upload files as multipart/form-data with a `file` part and a `purpose` field."


@dataclass(frozen=True, slots=True)
class Received:
    filename: str
    purpose: str
    size: int
    sha256: str


@dataclass
class _Form:
    """State the parser's (synchronous) callbacks fill in; the coroutine drains `pending`."""

    fields: dict[str, bytes] = field(default_factory=dict)
    field_count: int = 0
    field_bytes: int = 0
    filename: str | None = None
    file_started: bool = False
    file_done: bool = False
    ended: bool = False  # the closing boundary was seen
    in_file: bool = False
    pending: bytearray = field(default_factory=bytearray)
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    _name: str = ""
    _value: bytearray = field(default_factory=bytearray)
    _header: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _header_bytes: int = 0
    _disposition: bytes = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_data(self._header, d[s:e]),
            "on_header_value": lambda d, s, e: self._header_data(self._header_value, d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._header_bytes = 0
        self._value.clear()

    def _header_data(self, into: bytearray, data: bytes) -> None:
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise InvalidRequest(f"A part's headers exceed {MAX_HEADER_BYTES} bytes.")
        into.extend(data)

    def _header_end(self) -> None:
        if bytes(self._header).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if self._name != "file":
            self.field_count += 1
            if self.field_count > MAX_FIELDS:
                raise InvalidRequest(f"The form has more than {MAX_FIELDS} fields besides `file`.")
            return
        if filename is None:
            raise InvalidRequest(
                'The `file` part needs a filename (Content-Disposition: form-data; name="file"; '
                'filename="...").',
                param="file",
            )
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
            return
        self.field_bytes += end - start
        if self.field_bytes > MAX_FIELDS_BYTES:
            raise InvalidRequest(
                f"The form's fields besides `file` exceed {MAX_FIELDS_BYTES} bytes in all."
            )
        self._value.extend(data[start:end])

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.file_done = True
        elif self._name:
            self.fields[self._name] = bytes(self._value)

    def _end(self) -> None:
        self.ended = True


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType(_FORM_HINT)
    if not boundary:
        raise InvalidRequest("The multipart/form-data Content-Type has no boundary. " + _FORM_HINT)
    return boundary


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file exceeds this gateway's upload limit of {limit} bytes "
        "(GATEWAY_MAX_UPLOAD_BYTES).",
        param="file",
    )


def check_declared_size(request: Request, max_bytes: int) -> None:
    """413 at once for a Content-Length no valid upload can have, before reading a byte."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + FRAMING_ALLOWANCE:
        raise too_large(max_bytes)


async def receive_upload(request: Request, spool: Spool, max_bytes: int) -> Received:
    """Parse the form, the file into `spool`; raises 400/413/415 (the spool is then
    discarded by its owner). The caller has refused a declared size over the limit."""
    boundary = _boundary(request)
    form = _Form()
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
    try:
        async for piece in request.stream():
            parser.write(piece)
            if form.size > max_bytes:
                raise too_large(max_bytes)
            while len(form.pending) >= BLOCK_BYTES:
                await spool.write(bytes(form.pending[:BLOCK_BYTES]))
                del form.pending[:BLOCK_BYTES]
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"The multipart body is malformed ({exc}). {_FORM_HINT}") from None
    except ClientDisconnect:
        raise UploadAbandoned("The client closed the connection before the upload ended.") from None
    if not form.file_started:
        raise InvalidRequest("The upload has no `file` part. " + _FORM_HINT, param="file")
    if not (form.file_done and form.ended):
        raise InvalidRequest(
            "The upload ended before the multipart body's closing boundary: it was cut short.",
            param="file",
        )
    if form.pending:
        await spool.write(bytes(form.pending))
        form.pending.clear()
    purpose = form.fields.get("purpose", b"").decode("utf-8", "replace")
    if purpose not in FILE_PURPOSES:
        raise InvalidRequest(
            f"Invalid purpose {purpose!r}: expected one of {sorted(FILE_PURPOSES)}.",
            param="purpose",
        )
    assert form.filename is not None
    return Received(form.filename, purpose, form.size, form.digest.hexdigest())
