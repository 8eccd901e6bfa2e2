"""Vector stores: list and create, upload files (with progress), watch ingestion, search.

Uploads pass through untouched: the browser's multipart body streams into `POST /v1/files`
as it arrives (the console never buffers or parses it), then the file is attached with
`POST /v1/vector_stores/{id}/files` and its ingestion is polled until it settles.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.ui.client import ApiError
from gateway.ui.render import page
from gateway.ui.web import Console, Posted, SignedIn, read_form, redirect

router = APIRouter()

FILES_SHOWN = 100
SEARCH_RESULTS = 5
POLL_S = 1


def _store_path(store_id: str) -> str:
    return f"/v1/vector_stores/{quote(store_id, safe='')}"


@router.get("/ui/stores", response_class=HTMLResponse)
async def stores_page(console: SignedIn) -> Response:
    stores: list[dict[str, Any]] = []
    error = None
    try:
        stores = (await console.api.get("/v1/vector_stores", limit=100))["data"]
    except ApiError as exc:
        error = exc.message
    return page(console, "stores.html", nav="stores", stores=stores, error=error)


@router.post("/ui/stores", response_class=HTMLResponse)
async def create_store(console: Posted) -> Response:
    form = await read_form(console.request)
    name = form.get("name").strip()[:256]
    try:
        store = await console.api.post("/v1/vector_stores", {"name": name})
    except ApiError as exc:
        return page(console, "stores.html", 400, nav="stores", stores=[], error=exc.message)
    return redirect(f"{console.base}/stores/{quote(store['id'], safe='')}")


async def _files(console: Console, store_id: str) -> tuple[list[dict[str, Any]], bool]:
    """The store's files (newest first) with their names; whether more exist."""
    listing = await console.api.get(
        _store_path(store_id) + "/files", limit=FILES_SHOWN, order="desc"
    )
    names = {f["id"]: f for f in (await console.api.get("/v1/files"))["data"]}
    files = [
        {**item, "filename": names.get(item["id"], {}).get("filename", item["id"])}
        for item in listing["data"]
    ]
    return files, bool(listing.get("has_more"))


def _files_fragment(
    console: Console, store_id: str, files: list[dict[str, Any]], more: bool, problem: str | None
) -> Response:
    busy = any(f["status"] == "in_progress" for f in files)
    return page(
        console,
        "store_files.html",
        store_id=store_id,
        files=files,
        more=more,
        busy=busy,
        poll=POLL_S,
        problem=problem,
    )


@router.get("/ui/stores/{store_id}", response_class=HTMLResponse)
async def store_page(store_id: str, console: SignedIn) -> Response:
    try:
        store = await console.api.get(_store_path(store_id))
        files, more = await _files(console, store_id)
    except ApiError as exc:
        status = 404 if exc.status == 404 else 502
        return page(console, "stores.html", status, nav="stores", stores=[], error=exc.message)
    busy = any(f["status"] == "in_progress" for f in files)
    return page(
        console,
        "store.html",
        nav="stores",
        store=store,
        store_id=store_id,
        files=files,
        more=more,
        busy=busy,
        poll=POLL_S,
        results=None,
    )


@router.get("/ui/stores/{store_id}/files", response_class=HTMLResponse)
async def store_files(store_id: str, console: SignedIn) -> Response:
    try:
        files, more = await _files(console, store_id)
    except ApiError as exc:
        return _files_fragment(console, store_id, [], False, exc.message)
    return _files_fragment(console, store_id, files, more, None)


@router.post("/ui/stores/{store_id}/files", response_class=HTMLResponse)
async def upload(store_id: str, console: Posted) -> Response:
    request = console.request
    headers = {"content-type": request.headers.get("content-type", "")}
    if "content-length" in request.headers:
        headers["content-length"] = request.headers["content-length"]
    problem = None
    try:
        created, _ = await console.api.call(
            "POST", "/v1/files", content=request.stream(), headers=headers
        )
        await console.api.post(_store_path(store_id) + "/files", {"file_id": created["id"]})
    except ApiError as exc:
        problem = f"Upload failed: {exc.message}"
    try:
        files, more = await _files(console, store_id)
    except ApiError as exc:
        files, more, problem = [], False, problem or exc.message
    return _files_fragment(console, store_id, files, more, problem)


@router.post("/ui/stores/{store_id}/search", response_class=HTMLResponse)
async def search(store_id: str, console: Posted) -> Response:
    form = await read_form(console.request)
    query = form.get("query").strip()
    results: list[dict[str, Any]] = []
    problem = None
    if not query:
        problem = "Type something to search for."
    else:
        try:
            answer = await console.api.post(
                _store_path(store_id) + "/search",
                {"query": query, "max_num_results": SEARCH_RESULTS},
            )
            results = answer["data"]
        except ApiError as exc:
            problem = exc.message
    return page(console, "store_search.html", query=query, results=results, problem=problem)


@router.post("/ui/stores/{store_id}/delete", response_class=HTMLResponse)
async def delete_store(store_id: str, console: Posted) -> Response:
    try:
        await console.api.delete(_store_path(store_id))
    except ApiError as exc:
        return page(console, "stores.html", 400, nav="stores", stores=[], error=exc.message)
    return redirect(f"{console.base}/stores")
