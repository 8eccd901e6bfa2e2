"""The audio form's model field, read and replaced in place. Pure."""

from __future__ import annotations

import pytest

from gateway.api.audio_form import read_form, with_model
from gateway.errors import InvalidRequest, UnsupportedMediaType

TYPE = b"multipart/form-data; boundary=xx"


def form(*parts: tuple[str, bytes]) -> bytes:
    body = b""
    for name, value in parts:
        filename = '; filename="a.wav"' if name == "file" else ""
        body += f'--xx\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'.encode()
        body += value + b"\r\n"
    return body + b"--xx--\r\n"


def test_model_and_stream_are_read_and_the_model_replaced() -> None:
    raw = form(("file", b"RIFF\r\n--x\r\n" * 100), ("model", b"whisper-1"), ("stream", b"true"))
    found = read_form(raw, TYPE)
    assert (found.model, found.stream) == ("whisper-1", True)
    replaced = with_model(raw, found, "openai/whisper-large-v3")
    assert read_form(replaced, TYPE).model == "openai/whisper-large-v3"
    assert replaced.replace(b"openai/whisper-large-v3", b"whisper-1") == raw


def test_refusals() -> None:
    with pytest.raises(UnsupportedMediaType):
        read_form(b"{}", b"application/json")
    with pytest.raises(InvalidRequest, match="model"):
        read_form(form(("file", b"RIFF")), TYPE)
    with pytest.raises(InvalidRequest, match="closing boundary"):
        read_form(form(("model", b"m"))[:-8], TYPE)
    with pytest.raises(InvalidRequest, match="too long"):
        read_form(form(("model", b"m" * 5000)), TYPE)
