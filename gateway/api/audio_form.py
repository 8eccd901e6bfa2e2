"""The few fields of an audio request's multipart form the gateway needs (`model`, to
check access and route; `stream`), read from the body it already holds, and the model
replaced in place when an alias names it. Pure.

The audio part itself is never copied: the parser reports where each value lies in the
body, and only short text fields are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from gateway.errors import InvalidRequest, UnsupportedMediaType

_WANTED = frozenset({b"model", b"stream"})
_MAX_FIELD_BYTES = 1024  # a model name or a boolean


@dataclass(slots=True)
class _Form:
    fields: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    header_field: bytes = b""
    header_value: bytes = b""
    name: bytes | None = None
    value: bytearray = field(default_factory=bytearray)
    start: int = -1
    end: int = -1
    ended: bool = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add_field(d[s:e]),
            "on_header_value": lambda d, s, e: self._add_value(d[s:e]),
            "on_header_end": self._header_end,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self.name, self.value, self.start, self.end = None, bytearray(), -1, -1

    def _add_field(self, data: bytes) -> None:
        self.header_field += data

    def _add_value(self, data: bytes) -> None:
        self.header_value += data

    def _header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            _, options = parse_options_header(self.header_value)
            name = options.get(b"name")
            self.name = name if name in _WANTED else None
        self.header_field = self.header_value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.name is None:
            return
        if self.start < 0:
            self.start = start
        self.end = end
        self.value += data[start:end]
        if len(self.value) > _MAX_FIELD_BYTES:
            raise InvalidRequest(f"The form field `{self.name.decode()}` is too long.")

    def _part_end(self) -> None:
        if self.name is not None and self.name.decode() not in self.fields:
            text = self.value.decode("utf-8", "replace").strip()
            self.fields[self.name.decode()] = (text, self.start, self.end)

    def _end(self) -> None:
        self.ended = True


@dataclass(frozen=True, slots=True)
class AudioForm:
    model: str
    stream: bool
    model_span: tuple[int, int]  # where the model's value lies in the body


def read_form(raw: bytes, content_type: bytes | None) -> AudioForm:
    kind, options = parse_options_header(content_type or b"")
    if kind != b"multipart/form-data":
        raise UnsupportedMediaType(
            "Send audio as multipart/form-data (a `file` part and a `model` field), as the "
            "OpenAI SDKs do."
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidRequest("The multipart/form-data Content-Type has no boundary.")
    form = _Form()
    try:
        parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
        parser.write(raw)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"The multipart body is malformed ({exc}).") from None
    if not form.ended:
        raise InvalidRequest("The multipart body ends before its closing boundary.")
    model = form.fields.get("model")
    if model is None or not model[0] or model[1] < 0:
        raise InvalidRequest("You must provide a model parameter (a form field).", param="model")
    if raw[model[1] : model[2]].strip() != model[0].encode():
        raise InvalidRequest("The `model` form field is malformed.", param="model")
    stream = form.fields.get("stream", ("false", 0, 0))[0].lower() == "true"
    return AudioForm(model[0], stream, (model[1], model[2]))


def with_model(raw: bytes, form: AudioForm, model: str) -> bytes:
    start, end = form.model_span
    return raw[:start] + model.encode() + raw[end:]
