"""The console end to end in a real browser, against a real gateway on Postgres.

One operator session, in order: sign in, create a key and copy it, use it (some requests
are refused with 429), revoke it, read the usage charts and the engine panel, create a
store, upload a good and a broken file and watch them settle, search, and chat with
file_search until a citation shows. Every page is screenshotted (tests/ui/artifacts/).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import RunningGateway
from tests.ui.browser import Watch, publish, shoot
from tests.ui.conftest import seed_usage

HANDBOOK = (
    "# Operations handbook\n\n"
    "The gateway listens on port 8080 and forwards requests to the vLLM engines.\n\n"
    "Backups of the Postgres database run nightly at three in the morning.\n"
)


async def _wait_for_usage(gw: RunningGateway, key_id: str, requests: int) -> None:
    async with gw.client(headers=admin_headers()) as admin:
        for _ in range(100):
            usage = (await admin.get("/admin/usage", params={"key_id": key_id})).json()
            if usage.get("requests", 0) >= requests:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("usage events never reached the database")


async def _use_key(gw: RunningGateway, secret: str) -> list[int]:
    """Two requests pass the key's rpm of 2; the third is a 429. One is streamed (TTFT)."""
    statuses = []
    async with gw.client(headers={"authorization": f"Bearer {secret}"}) as client:
        for stream in (True, False, False):
            body: dict[str, Any] = {
                "model": "fake-model",
                "messages": [{"role": "user", "content": "hello"}],
                "stream": stream,
            }
            response = await client.post("/v1/chat/completions", json=body)
            statuses.append(response.status_code)
    return statuses


async def _history(gw: RunningGateway, database_url: str) -> None:
    """A day of other keys' traffic on other models, for charts with shape."""
    ids = []
    async with gw.client(headers=admin_headers()) as admin:
        for name in ("laptop", "nightly-batch"):
            ids.append((await create_key(admin, name)).id)
    seed_usage(database_url, ids, ["llama-3.3-70b", "qwen2.5-32b"])


async def test_operator_session(
    browser: Any, console_gateway: RunningGateway, database_url: str
) -> None:
    gw = console_gateway
    await _history(gw, database_url)
    context = await browser.new_context(
        base_url=gw.url, viewport={"width": 1280, "height": 900}, color_scheme="light"
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw.url)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch(page)
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

    # Sign in, by keyboard: the key field has focus, Enter submits.
    await page.goto("/ui")
    assert page.url.endswith("/ui/login?next=/ui/keys")
    await shoot(page, "01-sign-in")
    await page.keyboard.type(ADMIN_KEY)
    await page.keyboard.press("Enter")
    await page.wait_for_url(gw.url + "/ui/keys")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"

    # Create a key with limits; copy it once.
    await page.get_by_label("Name", exact=True).fill("open-webui")
    await page.get_by_label("fake-model").check()
    await page.get_by_label("Requests per minute").fill("2")
    await page.get_by_role("button", name="Create key").click()
    secret_box = page.locator("#new-key-value")
    await secret_box.wait_for()
    secret = await secret_box.input_value()
    assert secret.startswith("sk-")
    await page.get_by_role("button", name="Copy", exact=True).click()
    await page.get_by_text("Copied to the clipboard.").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await page.reload()
    assert secret not in await page.content()  # shown once, never again
    row = page.locator("#keys tbody tr", has_text="open-webui")
    await row.get_by_text("2 rpm").wait_for()
    key_id = (await row.get_attribute("id") or "").removeprefix("key-")
    await shoot(page, "02-keys-created")

    assert await _use_key(gw, secret) == [200, 200, 429]
    await _wait_for_usage(gw, key_id, 3)

    # Revoke it (the confirm dialog is accepted): it is marked revoked and stops working.
    await row.get_by_role("button", name="Revoke open-webui").click()
    await page.locator(f"#key-{key_id}[data-status=revoked]").wait_for()
    async with gw.client(headers={"authorization": f"Bearer {secret}"}) as client:
        assert (await client.get("/v1/models")).status_code == 401
    await page.reload()
    assert secret not in await page.content()
    await shoot(page, "03-keys-revoked")

    # Usage: four charts with data, and the totals table.
    await page.get_by_role("link", name="Usage").click()
    await page.wait_for_url("**/ui/usage")
    await page.locator("figure.chart .uplot canvas").first.wait_for()
    assert await page.locator("figure.chart .uplot").count() == 4
    totals = page.locator("section table tbody tr", has_text="fake-model")
    await totals.wait_for()
    assert (await totals.locator("td").all_inner_texts())[:3] == ["3", "20", "1"]
    await page.get_by_label("Lines by").select_option("key")
    await page.get_by_role("button", name="Show").click()
    await page.locator("section table tbody tr", has_text="open-webui").wait_for()
    await page.locator("figure.chart .uplot canvas").first.wait_for()
    usage_shot = await shoot(page, "04-usage")

    # Engines: health, queue and KV cache from the gauge engine's /metrics.
    await page.get_by_role("link", name="Engines").click()
    gauges = page.locator("tr", has_text="gauge-model")
    await gauges.wait_for()
    assert await gauges.locator("[data-metric=running]").inner_text() == "3"
    assert await gauges.locator("[data-metric=waiting]").inner_text() == "7"
    assert "42%" in await gauges.locator("[data-metric=kv]").inner_text()
    assert await page.locator("tr", has_text="fake-model").get_by_text("no metrics").count() == 1
    await shoot(page, "05-engines")

    # Vector stores: create, upload a good and a broken file, watch both settle.
    await page.get_by_role("link", name="Vector stores").click()
    await page.get_by_label("Name").fill("handbook")
    await page.get_by_role("button", name="Create store").click()
    await page.wait_for_url("**/ui/stores/vs_*")
    upload = page.locator("#upload-file")
    await upload.set_input_files(
        {"name": "handbook.md", "mimeType": "text/markdown", "buffer": HANDBOOK.encode()}
    )
    await page.get_by_role("button", name="Upload and add").click()
    await page.locator("#files tr[data-status=completed]", has_text="handbook.md").wait_for()
    await upload.set_input_files(
        {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 not really"}
    )
    await page.get_by_role("button", name="Upload and add").click()
    failed = page.locator("#files tr[data-status=failed]", has_text="broken.pdf")
    await failed.wait_for()
    assert await failed.locator(".error").count() == 1

    # Search it.
    await page.get_by_label("Query").fill("which port does the gateway listen on")
    await page.get_by_role("button", name="Search").click()
    first = page.locator("#results li").first
    await first.wait_for()
    assert "handbook.md" in await first.inner_text()
    assert "port 8080" in await first.inner_text()
    await shoot(page, "06-store")

    # Playground: file_search over the store, and the citation under the answer.
    await page.get_by_role("link", name="Playground").click()
    await page.get_by_label("Model").select_option("fake-model")
    await page.get_by_label("File search").select_option(label="handbook")
    await page.get_by_label("Message").fill("Which port does the gateway listen on?")
    await page.get_by_role("button", name="Send").click()
    sources = page.locator("#conversation .turn.assistant .citations li")
    await sources.first.wait_for()
    assert "handbook.md" in await sources.first.inner_text()
    assert await page.get_by_label("Message").input_value() == ""  # ready for the next turn
    await page.get_by_label("Message").fill("And when do backups run?")
    await page.keyboard.press("Control+Enter")
    await page.locator("#conversation .turn.assistant").nth(1).wait_for()
    await shoot(page, "07-playground")

    # Sign out: back to the sign-in page, and the console is closed.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(gw.url + "/ui/login")
    await page.goto("/ui/keys")
    assert "/ui/login" in page.url

    assert watch.problems == []
    publish(usage_shot)
    await context.close()


async def test_phone_width_and_dark_mode(
    browser: Any, console_gateway: RunningGateway, database_url: str
) -> None:
    gw = console_gateway
    await _history(gw, database_url)
    context = await browser.new_context(
        base_url=gw.url, viewport={"width": 375, "height": 740}, color_scheme="dark"
    )
    page = await context.new_page()
    watch = Watch(page)
    await page.goto("/ui/login")
    await page.get_by_label("Admin key").fill(ADMIN_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(gw.url + "/ui/keys")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"  # the dark palette
    for name in ("keys", "usage", "engines", "stores", "evals", "playground"):
        await page.goto(f"/ui/{name}")
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"/ui/{name} is {overflow}px too wide for a phone"
        await shoot(page, f"phone-dark-{name}")
    assert watch.problems == []
    await context.close()


async def test_no_script_sign_in_and_key_creation(console_gateway: RunningGateway) -> None:
    """Plain forms work without JavaScript (here, without a browser at all)."""
    async with httpx.AsyncClient(base_url=console_gateway.url, follow_redirects=True) as client:
        from tests.ui.conftest import hidden, sign_in

        page = await sign_in(client)
        assert page.url.path == "/ui/keys"
        created = await client.post(
            "/ui/keys",
            data={"name": "no-js", "csrf_token": hidden(page.text, "csrf_token")},
        )
        assert created.status_code == 200
        assert "Key “no-js” created" in created.text
