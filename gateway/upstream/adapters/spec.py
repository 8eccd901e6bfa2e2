"""What an adapter is, as configuration and as an admin request: value objects, no I/O.

An adapter is named like a model (clients send its name as `model`), lives in a folder
under the models directory, and belongs to the base model it was trained on: it is loaded
on every engine serving that base model, so that balancing between replicas stays valid.
"""

from __future__ import annotations

import posixpath
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Like a served model id: letters, digits and `._-:/`, no spaces or control characters
# (it travels in JSON bodies, URLs, metric labels and usage rows).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class AdapterSpec(BaseModel):
    """`lora_adapters` in the YAML configuration, and the body of `POST /admin/adapters`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    # A folder holding adapter_config.json and adapter_model.safetensors, relative to the
    # models directory (GATEWAY_MODELS_DIR) or absolute inside it.
    path: str = Field(min_length=1, max_length=1024)
    # The served model id it applies to; it is loaded on every engine serving it.
    base_model: str = Field(min_length=1, max_length=256)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or "//" in value or value.endswith("/"):
            raise ValueError(
                "an adapter name is 1-128 letters, digits or `._:/-`, starting with a letter "
                "or digit"
            )
        return value


class AdapterPathError(ValueError):
    """The path leaves the models directory (or is no path at all)."""


def confined_path(models_dir: str, path: str) -> str:
    """The adapter folder as the engine will read it: `path` joined to `models_dir`,
    refused if it is absolute outside the directory or climbs out of it with `..`.

    Lexical on purpose: the gateway need not see the models volume (the engines mount it,
    the gateway may not), so it cannot resolve links there; vLLM reports a missing folder.
    """
    if "\x00" in path or any(ord(c) < 32 for c in path):
        raise AdapterPathError("the path contains control characters")
    root = posixpath.normpath(models_dir)
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        raise AdapterPathError(f"`..` is not allowed in an adapter path; give it inside {root}")
    joined = posixpath.normpath(posixpath.join(root, path))
    if joined == root or not joined.startswith(root.rstrip("/") + "/"):
        raise AdapterPathError(
            f"adapter paths must be inside the models directory {root} (GATEWAY_MODELS_DIR)"
        )
    return joined
