"""`gateway eval`: run a suite of cases against models the gateway serves, through its
OpenAI API with the user's key, and print the side-by-side table (or JSON)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from gateway.client_options import client_options, required_api_key
from gateway.eval.cases import BUILTIN, Case, CaseError, builtin_cases, load_cases
from gateway.eval.client import EvalApiError, EvalClient, api_root, post_json
from gateway.eval.progress import Progress
from gateway.eval.render import notes, table
from gateway.eval.report import ModelReport, last_user_message
from gateway.eval.runner import RunAborted, check_served, run_cases
from gateway.eval.scoring import Attempt, Requirement, parse_requirement
from gateway.eval.speed import measure

_SPEED_REQUESTS_C1 = 3


@dataclass(frozen=True)
class Plan:
    cases: list[Case]
    repeat: int
    concurrency: int
    timeout_s: float
    streams: int
    speed_tokens: int
    speed: bool


@click.command("eval")
@click.option("--model", "models", multiple=True, required=True, help="A served model; repeat.")
@click.option(
    "--cases",
    "case_files",
    multiple=True,
    help="A JSONL case file; repeat. `builtin` is the shipped suite (the default).",
)
@click.option("--repeat", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Run every case this many times (noisy cases).")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Cases in flight at once.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help="Seconds one request may take.")  # fmt: skip
@click.option("--speed/--no-speed", default=True, show_default=True,
              help="Measure TTFT and tokens/s after the cases.")  # fmt: skip
@click.option("--streams", type=click.IntRange(1, 256), default=4, show_default=True,
              help="N for the speed test at N concurrent streams.")  # fmt: skip
@click.option("--speed-tokens", type=click.IntRange(2, 4096), default=64, show_default=True,
              help="Tokens each speed stream decodes.")  # fmt: skip
@click.option("--profile", help="A label stored with the result, e.g. the deploy profile.")
@click.option("--require", "requirements", multiple=True,
              help='A threshold, e.g. "json_valid>=0.95"; exit 1 when missed. Repeat.')  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@client_options
@click.option(
    "--admin-key",
    envvar="GATEWAY_ADMIN_KEY",
    help="With the admin key (GATEWAY_ADMIN_KEY) results are stored at /admin/evals.",
)
@click.option("--store/--no-store", default=True, show_default=True,
              help="Store results when an admin key is given.")  # fmt: skip
def eval_command(
    models: tuple[str, ...],
    case_files: tuple[str, ...],
    repeat: int,
    concurrency: int,
    timeout: float,
    speed: bool,
    streams: int,
    speed_tokens: int,
    profile: str | None,
    requirements: tuple[str, ...],
    as_json: bool,
    base_url: str,
    api_key: str | None,
    admin_key: str | None,
    store: bool,
) -> None:
    """Measure served models on a suite of cases: JSON validity with and without
    response_format, tool calls, instructions, accuracy, the chat template, and speed."""
    api_key = required_api_key(api_key)
    try:
        needs = [parse_requirement(r) for r in requirements]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--require") from None
    files = case_files or (BUILTIN,)
    try:
        cases = _load(files)
    except CaseError as exc:
        raise click.ClickException(str(exc)) from None
    plan = Plan(cases, repeat, concurrency, timeout, streams, speed_tokens, speed)
    users = {c.id: last_user_message(c.messages) for c in cases}
    suite = ",".join(Path(f).name if f != BUILTIN else BUILTIN for f in files)
    reports = [ModelReport(m, profile, suite, users=users) for m in dict.fromkeys(models)]
    progress = Progress()
    interrupted = False
    try:
        asyncio.run(_run(base_url, api_key, plan, reports, progress))
    except KeyboardInterrupt:
        interrupted = True
        for report in reports:
            report.interrupted = len(report.attempts) < len(cases) * repeat
        progress.note("interrupted: showing the cases that finished")
    except RunAborted as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.finish()
    results = [r.to_json() for r in reports if r.attempts or r.speed]
    missed = [
        f"{r['model']}: {why}" for r in results for n in needs if (why := n.missed(r["summary"]))
    ]
    if admin_key and store and results:
        _store(api_root(base_url), admin_key, results, progress)
    if as_json:
        out = {"results": results, "requirements": _requirements(needs, missed)}
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    elif results:
        click.echo(table(results))
        for line in notes(results):
            # Never break inside a flag such as --enable-auto-tool-choice.
            click.echo("\n" + textwrap.fill(line, 100, break_on_hyphens=False))
    for why in missed:
        click.echo(f"requirement missed: {why}", err=True)
    if interrupted:
        sys.exit(130)
    if missed:
        sys.exit(1)


def _load(files: tuple[str, ...]) -> list[Case]:
    cases = [c for f in files for c in (builtin_cases() if f == BUILTIN else load_cases(Path(f)))]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseError(f"case id {case.id!r} appears in more than one file")
        seen.add(case.id)
    return cases


def _requirements(needs: list[Requirement], missed: list[str]) -> dict[str, Any]:
    return {"asked": [str(n) for n in needs], "missed": missed}


async def _run(
    base_url: str,
    api_key: str,
    plan: Plan,
    reports: list[ModelReport],
    progress: Progress,
) -> None:
    client = EvalClient(base_url, api_key, plan.timeout_s)
    try:
        await check_served(client, [r.model for r in reports])
        for report in reports:
            await _run_model(client, plan, report, progress)
    finally:
        await client.close()


async def _run_model(
    client: EvalClient, plan: Plan, report: ModelReport, progress: Progress
) -> None:
    progress.start(report.model, len(plan.cases) * plan.repeat)

    def finished(attempt: Attempt) -> None:
        report.attempts.append(attempt)
        progress.step(attempt.passed)

    await run_cases(
        client,
        report.model,
        plan.cases,
        repeat=plan.repeat,
        concurrency=plan.concurrency,
        on_attempt=finished,
    )
    progress.finish()
    if not plan.speed:
        return
    progress.note(f"{report.model}: measuring speed (1 and {plan.streams} streams)")
    try:
        for seed, (concurrency, requests) in enumerate(
            sorted({(1, _SPEED_REQUESTS_C1), (plan.streams, plan.streams)})
        ):
            report.speed.append(
                await measure(client, report.model, concurrency, requests, plan.speed_tokens, seed)
            )
    except EvalApiError as exc:
        progress.note(f"{report.model}: speed not measured ({exc})")


def _store(root: str, admin_key: str, results: list[dict[str, Any]], progress: Progress) -> None:
    for result in results:
        try:
            stored = asyncio.run(post_json(root + "/admin/evals", admin_key, result))
        except EvalApiError as exc:
            progress.note(f"{result['model']}: result not stored ({exc})")
            continue
        progress.note(f"{result['model']}: stored as {stored.get('id')} (see /ui/evals)")
