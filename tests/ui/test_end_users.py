"""The console's end-user page: a trusted front end's people, their usage and limits."""

from __future__ import annotations

import re

import httpx

from tests.admin import admin_headers
from tests.api.test_end_users import ALICE, BOB, open_webui_headers
from tests.conftest import RunningGateway

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def _row(page: str, end_user: str) -> str:
    found = re.search(rf'<tr data-end-user="{re.escape(end_user)}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {end_user}"
    return found.group(1)


async def test_end_users_page_shows_people_and_sets_an_override(
    console: httpx.AsyncClient, console_gateway: RunningGateway
) -> None:
    csrf = console.csrf  # type: ignore[attr-defined]
    created = await console.post(
        "/ui/keys",
        data={
            "csrf_token": csrf,
            "name": "open-webui",
            "trusted_front_end": "1",
            "end_user_rpm": "2",
        },
    )
    assert created.status_code == 200, created.text
    shown_secret = re.search(r'id="new-key-value" readonly value="([^"]+)"', created.text)
    shown_id = re.search(r"Id <code>([^<]+)</code>", created.text)
    assert shown_secret and shown_id
    secret, key_id = shown_secret.group(1), shown_id.group(1)
    async with console_gateway.client() as client:
        for who, times in ((ALICE, 3), (BOB, 1)):
            for _ in range(times):
                await client.post(
                    "/v1/chat/completions", json=CHAT, headers=open_webui_headers(secret, *who)
                )
    await console_gateway.storage.usage.flush()

    keys_page = await console.get("/ui/keys")
    assert f"/keys/{key_id}/end-users" in keys_page.text
    page = await console.get(f"/ui/keys/{key_id}/end-users")
    assert page.status_code == 200
    alice = _row(page.text, "alice@example.com")
    assert re.search(r'data-label="Requests">3<', alice)
    assert re.search(r'data-label="Refused">1<', alice)  # her third was over her rpm
    assert "2 rpm" in alice and "override" not in alice
    bob = _row(page.text, "bob@example.com")
    assert re.search(r'data-label="Requests">1<', bob)

    changed = await console.post(
        f"/ui/keys/{key_id}/end-users",
        data={"csrf_token": csrf, "end_user": "bob@example.com", "rpm": "10"},
    )
    assert changed.status_code == 200
    bob = _row(changed.text, "bob@example.com")
    assert "10 rpm" in bob and "override" in bob
    async with console_gateway.client(headers=admin_headers()) as admin:
        api = await admin.get(f"/admin/keys/{key_id}/end-users/bob@example.com")
    assert api.json()["override"]["rpm"] == 10
    bad = await console.post(
        f"/ui/keys/{key_id}/end-users",
        data={"csrf_token": csrf, "end_user": "bob@example.com", "rpm": "-3"},
    )
    assert "whole number" in bad.text
    reset = await console.post(
        f"/ui/keys/{key_id}/end-users",
        data={"csrf_token": csrf, "end_user": "bob@example.com", "remove": "1"},
    )
    assert "override" not in _row(reset.text, "bob@example.com")
    # Without the CSRF token nothing changes.
    forged = await console.post(
        f"/ui/keys/{key_id}/end-users", data={"end_user": "bob@example.com", "rpm": "99"}
    )
    assert forged.status_code == 403
