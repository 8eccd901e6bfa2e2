"""`gateway eval` end to end: scripted fake engines behind a real gateway with real
Postgres. The scores are known from the script, so the table, the JSON, the thresholds and
the stored results can be checked exactly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner, Result

from gateway.eval.cli import eval_command
from tests.eval.conftest import ADMIN, CASES, EvalSetup


async def run_cli(setup: EvalSetup, *args: str, key: str | None = None) -> Result:
    argv = ["--base-url", setup.base_url, "--api-key", key or setup.key, *args]
    return await asyncio.to_thread(CliRunner().invoke, eval_command, argv)


def row(output: str, label: str) -> list[str]:
    found = [line for line in output.splitlines() if line.startswith(label)]
    assert found, f"no row {label!r} in:\n{output}"
    return found[0][len(label) :].split()


async def test_side_by_side_table_stored_and_threshold(eval_setup: EvalSetup) -> None:
    result = await run_cli(
        eval_setup,
        *("--model", "good", "--model", "broken", "--cases", str(CASES)),
        *("--repeat", "2", "--streams", "2", "--speed-tokens", "5", "--profile", "fp16"),
        *("--admin-key", ADMIN, "--require", "json_valid>=0.95"),
    )
    assert result.exit_code == 1, result.output  # broken misses the threshold
    out = result.stdout
    assert out.splitlines()[0].split() == ["metric", "good", "(fp16)", "broken", "(fp16)"]
    assert row(out, "JSON valid (instructions only)") == ["100%", "(4/4)", "0%", "(0/4)"]
    # Guided decoding lifts the broken model's JSON to valid: the headline row.
    assert row(out, "JSON valid (response_format)") == ["100%", "(4/4)", "100%", "(4/4)"]
    assert row(out, "tool calls valid") == ["100%", "(2/2)", "0%", "(0/2)"]
    assert row(out, "accuracy") == ["100%", "(2/2)", "0%", "(0/2)"]
    assert row(out, "instruction following") == ["100%", "(2/2)", "0%", "(0/2)"]
    assert row(out, "overall") == ["100%", "(16/16)", "38%", "(6/16)"]
    assert row(out, "chat template") == ["ok", "suspect"]
    assert "TTFT p50, 1 stream(s)" in out and "total tok/s, 2 streams" in out
    assert "broken (fp16): The model wrote chat role markers (<|im_start|>)" in out
    assert "--chat-template" in out
    assert "requirement missed: broken: json_valid>=0.95: got 0" in result.stderr
    assert "good: json_valid" not in result.stderr
    assert "stored as eval_" in result.stderr

    # Every request went through the gateway: 16 cases, 3 + 2 speed streams per model.
    bodies = eval_setup.broken.seen.bodies
    assert len(bodies) == 16 + 3 + 2
    assert sum(1 for b in bodies if b.get("stream")) == 5
    prompts = [b["messages"][0]["content"] for b in bodies if b.get("stream")]
    assert len({p[:12] for p in prompts}) == 5  # no shared prefix for the prefix cache

    async with eval_setup.gateway.client(headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        listed = (await admin.get("/admin/evals")).json()["data"]
        assert sorted(r["model"] for r in listed) == ["broken", "good"]
        assert {r["profile"] for r in listed} == {"fp16"}
        [run] = (await admin.get("/admin/evals", params={"model": "broken"})).json()["data"]
        assert run["summary"]["json_valid"] == 0.0 and run["summary"]["json_valid_guided"] == 1.0
        detail = (await admin.get(f"/admin/evals/{run['id']}")).json()
        book = [c for c in detail["result"]["cases"] if c["case_id"] == "book"]
        assert len(book) == 2 and not book[0]["passed"]
        assert book[0]["output"].startswith("```json")
        assert "not valid JSON" in book[0]["failures"][0]
        missing = await admin.get("/admin/evals/eval_nope")
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "run_id"
        # ... and was metered to the user's key, as any client's request is.
        for _ in range(50):
            usage = await admin.get("/admin/usage", params={"key_id": eval_setup.key_id})
            if usage.json()["requests"] == 2 * 21:
                break
            await asyncio.sleep(0.1)
        assert usage.json()["requests"] == 2 * 21


async def test_json_output_and_met_threshold(eval_setup: EvalSetup) -> None:
    result = await run_cli(
        eval_setup,
        *("--model", "good", "--cases", str(CASES), "--no-speed", "--json"),
        *("--require", "json_valid>=0.95", "--require", "overall==1"),
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    [good] = out["results"]
    assert good["summary"]["overall"] == 1.0 and good["speed"] == []
    assert good["rates"]["tool_calls"] == {"passed": 1, "total": 1}
    assert out["requirements"] == {"asked": ["json_valid>=0.95", "overall==1"], "missed": []}
    assert "stored" not in result.stderr  # no admin key given: nothing stored
    async with eval_setup.gateway.client(headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        assert (await admin.get("/admin/evals")).json()["data"] == []


async def test_builtin_suite_runs(eval_setup: EvalSetup) -> None:
    result = await run_cli(eval_setup, "--model", "broken", "--no-speed", "--concurrency", "8")
    assert result.exit_code == 0, result.output
    labels = ["JSON valid (instructions only)", "JSON valid (response_format)"]
    labels += ["tool calls valid", "instruction following", "accuracy", "chat-template probes"]
    for label in labels:
        assert row(result.stdout, label)
    # Every guided case asked for response_format json_schema.
    guided = [b for b in eval_setup.broken.seen.bodies if b.get("response_format")]
    assert len(guided) == 5
    assert all(b["response_format"]["type"] == "json_schema" for b in guided)


async def test_refusals_in_plain_words(eval_setup: EvalSetup, tmp_path: Path) -> None:
    bad_key = await run_cli(eval_setup, "--model", "good", key="sk-gw-wrong")
    assert bad_key.exit_code == 1 and "401" in bad_key.output
    unknown = await run_cli(eval_setup, "--model", "nope")
    assert unknown.exit_code == 1
    assert "not served by this gateway: nope (served: " in unknown.output
    bad_file = tmp_path / "mine.jsonl"
    bad_file.write_text('{"id": "a", "prompt": "x", "checks": [{"type": "number"}]}\n')
    broken_file = await run_cli(eval_setup, "--model", "good", "--cases", str(bad_file))
    assert broken_file.exit_code == 1
    assert f"{bad_file}:1: check number: `value` must be a number" in broken_file.output
    bad_need = await run_cli(eval_setup, "--model", "good", "--require", "json_valid=1")
    assert bad_need.exit_code == 2 and "METRIC OP NUMBER" in bad_need.output
    assert eval_setup.good.seen.bodies == []  # nothing was sent for any of these


async def test_admin_evals_routes_refuse_bad_input(eval_setup: EvalSetup) -> None:
    async with eval_setup.gateway.client() as client:
        anonymous = await client.get("/admin/evals")
        assert anonymous.status_code == 401
        user = await client.get(
            "/admin/evals", headers={"authorization": f"Bearer {eval_setup.key}"}
        )
        assert user.status_code == 403
        admin = {"authorization": f"Bearer {ADMIN}"}
        bad = await client.post("/admin/evals", headers=admin, json={"model": "m"})
        assert bad.status_code == 400 and "summary" in bad.json()["error"]["message"]
        extra = await client.post(
            "/admin/evals", headers=admin, json={"model": "m", "summary": {}, "x": 1}
        )
        assert extra.status_code == 400
        limit = await client.get("/admin/evals", headers=admin, params={"limit": 0})
        assert limit.status_code == 400
        ok = await client.post(
            "/admin/evals", headers=admin, json={"model": "m", "summary": {"overall": 0.5}}
        )
        assert ok.status_code == 201 and ok.json()["id"].startswith("eval_")
