"""The console's Evals pages: stored results side by side, and one run's failed cases with
the model's raw output (escaped). Results are posted as `gateway eval` posts them."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.eval.report import ModelReport
from gateway.eval.scoring import Attempt
from gateway.eval.speed import SpeedResult
from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import RunningGateway
from tests.ui.browser import Watch, shoot
from tests.ui.conftest import sign_in

RAW = '<script>alert(1)</script>```json\n{"title": "Dune"}'


def result(model: str, profile: str, json_ok: bool) -> dict[str, Any]:
    attempts = [
        Attempt(
            "book",
            "json_valid",
            json_ok,
            [] if json_ok else ["json_schema: not valid JSON"],
            '{"title": "Dune"}' if json_ok else RAW,
        ),
        Attempt("book-guided", "json_valid_guided", True, output='{"title": "Dune"}'),
        Attempt("probe", "chat_template", True, output="Earth" if json_ok else "<|im_start|>Earth"),
    ]
    speed = [SpeedResult(1, 3, 120.0, 25.0, 24.0)]
    return ModelReport(model, profile, "builtin", attempts, speed).to_json()


async def post(gw: RunningGateway, body: dict[str, Any]) -> str:
    async with gw.client(headers=admin_headers()) as client:
        response = await client.post("/admin/evals", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_side_by_side_and_failures(
    console: httpx.AsyncClient, console_gateway: RunningGateway
) -> None:
    empty = await console.get("/ui/evals")
    assert empty.status_code == 200 and "No stored runs yet" in empty.text
    await post(console_gateway, result("qwen-32b", "32b-awq", True))
    await post(console_gateway, result("llama-70b", "70b-offload", False))
    weak = await post(console_gateway, result("llama-70b", "70b-offload", False))  # newest

    listing = (await console.get("/ui/evals")).text
    compare = listing.split('id="eval-compare"')[1].split("</thead>")[0]
    assert compare.count('<th scope="col" class="num">') == 2  # one column per model/profile
    assert "llama-70b (70b-offload)" in listing and "qwen-32b (32b-awq)" in listing
    assert "0% (0/1)" in listing and "100% (1/1)" in listing
    assert listing.count('id="run-eval_') == 3

    detail = (await console.get(f"/ui/evals/{weak}")).text
    assert "Failed cases (1 of 3)" in detail and "json_schema: not valid JSON" in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;```json" in detail  # raw, escaped
    assert "<script>alert(1)" not in detail
    assert 'data-finding="role_markers"' in detail and "--chat-template" in detail

    missing = await console.get("/ui/evals/eval_nope")
    assert missing.status_code == 404 and "No eval run with id" in missing.text


async def test_evals_in_a_browser(browser: Any, console_gateway: RunningGateway) -> None:
    gw = console_gateway
    await post(gw, result("qwen-32b", "32b-awq", True))
    weak = await post(gw, result("llama-70b", "70b-offload", False))
    context = await browser.new_context(base_url=gw.url, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch(page)
    await page.goto("/ui/login")
    await page.get_by_label("Admin key").fill(ADMIN_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(gw.url + "/ui/keys")
    await page.get_by_role("link", name="Evals").click()
    await page.wait_for_url("**/ui/evals")
    row = page.locator("#eval-compare tbody tr", has_text="JSON valid (instructions only)")
    assert await row.locator("td").all_inner_texts() == ["0% (0/1)", "100% (1/1)"]
    await shoot(page, "evals-compare")
    await page.get_by_role("link", name=weak).click()
    await page.wait_for_url(f"**/ui/evals/{weak}")
    case = page.locator('section[data-case="book"]')
    assert (await case.locator("pre").inner_text()).startswith("<script>alert(1)</script>")
    await shoot(page, "evals-run")
    assert watch.problems == []
    await context.close()


async def test_console_sign_in_helper_still_applies(console_gateway: RunningGateway) -> None:
    async with console_gateway.client(follow_redirects=False) as client:
        assert (await sign_in(client)).status_code == 303
        assert (await client.get("/ui/evals")).status_code == 200
