"""Object shapes as the OpenAI API returns them, ids, and validation of request fields.

Pure: rows in (mappings of column values), dicts out.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.errors import InvalidRequest
from gateway.rag import expiry
from gateway.rag.ingestion.chunking import ChunkingStrategy

FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(prefix: str) -> str:
    """`file-…`, `vs_…`, `vsfb_…`: 24 random base62 characters, like OpenAI's."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def file_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": ts(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def store_view(row: Mapping[Any, Any], now: datetime) -> dict[str, Any]:
    counts = {name: int(row[name] or 0) for name in FILE_STATUSES}
    expires_at = expiry.expires_at(row["expires_after"], row["last_active_at"])
    if expires_at is not None and expires_at <= now:
        status = "expired"
    else:
        status = "in_progress" if counts["in_progress"] else "completed"
    return {
        "id": row["id"],
        "object": "vector_store",
        "created_at": ts(row["created_at"]),
        "name": row["name"],
        "description": row["description"],
        "usage_bytes": int(row["usage_bytes"] or 0),
        "file_counts": {**counts, "total": sum(counts.values())},
        "status": status,
        "expires_after": row["expires_after"],
        "expires_at": ts(expires_at),
        "last_active_at": ts(row["last_active_at"]),
        "metadata": row["metadata"] or {},
    }


def vector_store_file_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    strategy = ChunkingStrategy(
        row["chunking_type"], row["max_chunk_tokens"], row["chunk_overlap_tokens"]
    )
    return {
        "id": row["file_id"],
        "object": "vector_store.file",
        "usage_bytes": int(row["usage_bytes"] or 0),
        "created_at": ts(row["created_at"]),
        "vector_store_id": row["vector_store_id"],
        "status": row["status"],
        "last_error": row["last_error"],
        "chunking_strategy": strategy.view(),
        "attributes": row["attributes"] or {},
    }


def batch_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    counts = {name: int(row[name] or 0) for name in FILE_STATUSES}
    if row["cancelled"]:
        status = "cancelled"
    elif counts["in_progress"]:
        status = "in_progress"
    elif counts["failed"] and not counts["completed"]:
        status = "failed"
    else:
        status = "completed"
    return {
        "id": row["id"],
        "object": "vector_store.files_batch",
        "created_at": ts(row["created_at"]),
        "vector_store_id": row["vector_store_id"],
        "status": status,
        "file_counts": {**counts, "total": sum(counts.values())},
    }


def list_view(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


# -- validation ---------------------------------------------------------------------------


def metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """OpenAI's Metadata: up to 16 string pairs, keys ≤ 64 and values ≤ 512 characters."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 16:
        raise InvalidRequest(f"{param} must be an object with at most 16 keys.", param=param)
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise InvalidRequest(f"{param} keys must be strings of at most 64 chars.", param=param)
        if not isinstance(item, str) or len(item) > 512:
            raise InvalidRequest(
                f"{param}.{key} must be a string of at most 512 characters.", param=param
            )
    return dict(value)


def attributes(value: Any, param: str = "attributes") -> dict[str, str | float | bool]:
    """Like metadata, but values may also be numbers or booleans."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 16:
        raise InvalidRequest(f"{param} must be an object with at most 16 keys.", param=param)
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise InvalidRequest(f"{param} keys must be strings of at most 64 chars.", param=param)
        if isinstance(item, str):
            if len(item) > 512:
                raise InvalidRequest(
                    f"{param}.{key} must be at most 512 characters.", param=f"{param}.{key}"
                )
        elif not isinstance(item, int | float | bool):
            raise InvalidRequest(
                f"{param}.{key} must be a string, number or boolean.", param=f"{param}.{key}"
            )
    return dict(value)


def expires_after(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or value.get("anchor") != "last_active_at"
        or not isinstance(value.get("days"), int)
        or not 1 <= value["days"] <= 365
    ):
        raise InvalidRequest(
            "expires_after must be {'anchor': 'last_active_at', 'days': 1..365}.",
            param="expires_after",
        )
    return {"anchor": "last_active_at", "days": value["days"]}


def optional_str(value: Any, param: str, max_len: int = 512) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise InvalidRequest(f"{param} must be a string of at most {max_len} chars.", param=param)
    return value


def string_list(value: Any, param: str, max_items: int = 2000) -> list[str]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > max_items
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise InvalidRequest(f"{param} must be an array of at most {max_items} ids.", param=param)
    return list(dict.fromkeys(value))
