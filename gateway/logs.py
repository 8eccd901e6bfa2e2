"""Structured logging: one JSON object per line (or plain text for people at a console)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
# uvicorn adds `color_message`, a duplicate of `msg` with terminal escapes.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",
}


class _Seconds:
    """The `%Y-%m-%dT%H:%M:%S` part of the last second formatted: every line of a busy
    second shares it, so `strftime` runs once a second instead of once a line."""

    __slots__ = ("second", "text")

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def format(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        return self.text


_SECONDS = _Seconds()


def _timestamp(created: float) -> str:
    return f"{_SECONDS.format(created)}.{int(created % 1 * 1000):03d}Z"


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours (which carries the request id).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def printable(text: str) -> str:
    """`text` with control and other unprintable characters escaped (`\\x1b`, `\\u2028`)."""
    if text.isprintable():
        return text  # the common case, at C speed
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


AccessLog = Callable[[str, dict[str, Any]], None]


def access_log(fmt: str) -> AccessLog:
    """A writer for the one line per request, in the same shape as the other log lines.

    It skips the logging module (record, handler lock, formatter): on a gateway that
    answers thousands of requests a second that machinery alone cost a fifth of the
    throughput.
    """
    stream = sys.stderr

    def write_json(message: str, fields: dict[str, Any]) -> None:
        entry = {
            "ts": _timestamp(time.time()),
            "level": "info",
            "logger": "gateway.access",
            "msg": message,
        }
        entry.update(fields)
        stream.write(orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE).decode())

    def write_console(message: str, fields: dict[str, Any]) -> None:
        extras = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        stream.write(f"info    gateway.access: {message}  {extras}\n")

    return write_json if fmt == "json" else write_console
