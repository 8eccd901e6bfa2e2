"""`gateway plan` and `gateway models pull|list`: click commands, mapping flags to the planner.

Bad input is a click.BadParameter, so click prints the message and exits 2 with no traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gateway.plan import planner
from gateway.plan.catalog import Catalog, CatalogError, load_catalog
from gateway.plan.cli_group import GroupOptions, group_options, per_model, run_group
from gateway.plan.hardware import gpu_choices, parse_gpu
from gateway.plan.planner import DEFAULT_UTILIZATION, KV_DTYPE_BYTES, PlanInput
from gateway.plan.pull import PullError, pull_model, read_manifest
from gateway.plan.render import to_json, to_text
from gateway.plan.resolve import ResolveError, resolve_model

DEFAULT_DEST = Path.home() / ".cache" / "gateway" / "models"


def _catalog() -> Catalog:
    try:
        return load_catalog()
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("plan")
@click.option(
    "--model",
    "model",
    required=True,
    multiple=True,
    metavar="NAME|HF_DIR",
    help="A built-in model, a catalog checkpoint, or a folder with a config.json. Give it "
    "twice or more to plan an engine group: the models share the GPU, one awake at a time.",
)
@click.option(
    "--quant",
    default=None,
    metavar="Q",
    help="Quantization (awq, gptq, fp8, bf16, iq2_m, ...); implied by checkpoints.",
)
@click.option(
    "--gpu",
    required=True,
    metavar="NAME|GiB",
    help=f"One of {', '.join(gpu_choices())}, or a size such as 24 or 48GiB.",
)
@click.option(
    "--context",
    type=click.IntRange(min=16),
    required=True,
    multiple=True,
    help="Tokens per sequence (prompt + completion): vLLM's --max-model-len. For a group, "
    "one for every model or one per --model, in order.",
)
@click.option(
    "--kv-cache-dtype",
    type=click.Choice(sorted(KV_DTYPE_BYTES)),
    default=("auto",),
    multiple=True,
    show_default=True,
    help="fp8 halves the KV cache. For a group, one for every model or one per --model.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sequences of the full context to hold at once.",
)
@click.option(
    "--gpu-memory-utilization",
    type=click.FloatRange(0.05, 0.99),
    default=DEFAULT_UTILIZATION,
    show_default=True,
    help="The share of VRAM vLLM may take (a group works out each model's own).",
)
@group_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(
    model: tuple[str, ...],
    quant: str | None,
    gpu: str,
    context: tuple[int, ...],
    kv_cache_dtype: tuple[str, ...],
    concurrency: int,
    gpu_memory_utilization: float,
    host_ram: float | None,
    sleep_level: int,
    beside_utilization: float,
    host_ram_reserve: float,
    as_json: bool,
) -> None:
    """Check, with the arithmetic shown, whether a model fits a GPU under vLLM.

    Prints the weights, the KV cache per token, the overhead, the budget, the largest context
    and concurrency that fit, the --cpu-offload-gb needed otherwise, and the vLLM arguments.

    With several --model: an engine group on one GPU. Prints each model's awake budget (its
    --gpu-memory-utilization), what each keeps on the card asleep, and the host RAM that
    sleep level 1 needs; exits 1 when the group does not fit (the GPU or --host-ram).
    """
    catalog = _catalog()
    gpu_spec = parse_gpu(gpu)
    if gpu_spec is None:
        raise click.BadParameter(
            f"unknown GPU {gpu!r}; choose one of {', '.join(gpu_choices())} or give a size "
            "such as 24 (GiB), 48GiB or 24GB",
            param_hint="--gpu",
        )
    contexts = per_model(context, len(model), "--context")
    dtypes = per_model(kv_cache_dtype, len(model), "--kv-cache-dtype")
    inputs = []
    subjects = []
    for name, ctx, dtype in zip(model, contexts, dtypes, strict=True):
        try:
            subject = resolve_model(name, quant, catalog)
        except ResolveError as exc:
            raise click.BadParameter(str(exc), param_hint="--model/--quant") from exc
        limit = subject.arch.max_position_embeddings
        if ctx > limit:
            raise click.BadParameter(
                f"{subject.arch.key} supports at most {limit:,} tokens (max_position_embeddings)",
                param_hint="--context",
            )
        subjects.append(subject)
        inputs.append(
            PlanInput(
                arch=subject.arch,
                quant=subject.quant,
                gpu=gpu_spec,
                context=ctx,
                concurrency=concurrency,
                kv_cache_dtype=dtype,
                gpu_memory_utilization=gpu_memory_utilization,
                weights_bytes=subject.weights_bytes,
            )
        )
    if len(inputs) > 1:
        options = GroupOptions(host_ram, sleep_level, beside_utilization, host_ram_reserve)
        run_group(inputs, subjects, gpu_spec, options, as_json)
        return
    if host_ram is not None:
        raise click.BadParameter("is for a group (two --model or more)", param_hint="--host-ram")
    result = planner.plan(inputs[0])
    if as_json:
        click.echo(json.dumps(to_json(result, subjects[0]), indent=2))
    else:
        click.echo(to_text(result, subjects[0]))


@click.group("models")
def models() -> None:
    """List and download the models in the catalog (models/catalog.yaml)."""


_dest_option = click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GATEWAY_MODELS_DIR",
    default=DEFAULT_DEST,
    show_default="~/.cache/gateway/models",
    help="Folder (the compose stack's models volume) that holds one sub-folder per model. "
    "Env: GATEWAY_MODELS_DIR.",
)


@models.command("list")
@_dest_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_models(dest: Path, as_json: bool) -> None:
    """Show the catalog's checkpoints and which of them are pulled into --dest."""
    rows = []
    for name, m in sorted(_catalog().models.items()):
        manifest = read_manifest(dest, name)
        rows.append(
            {
                "name": name,
                "kind": m.arch.kind,
                "quant": m.quant,
                "size_gb": m.size_gb,
                "repo": m.download.repo,
                "revision": m.download.revision,
                "licence": m.licence,
                "context": m.arch.max_position_embeddings,
                "pulled": manifest is not None,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(
        f"{'NAME':<22} {'QUANT':<6} {'SIZE':>8} {'CONTEXT':>8}  {'LICENCE':<11} PULLED  REPO"
    )
    for r in rows:
        click.echo(
            f"{r['name']:<22} {r['quant']:<6} {r['size_gb']:>6.2f}GB {r['context']:>8}  "
            f"{r['licence']:<11} {'yes' if r['pulled'] else 'no':<7} {r['repo']}"
        )


@models.command("pull")
@click.argument("name")
@_dest_option
@click.option("--revision", default=None, help="Commit, branch or tag instead of the catalog's.")
@click.option(
    "--endpoint",
    envvar="HF_ENDPOINT",
    default=None,
    help="Hub endpoint, for a mirror. Env: HF_ENDPOINT.",
)
def pull(name: str, dest: Path, revision: str | None, endpoint: str | None) -> None:
    """Download a catalog model into DEST/NAME (resumable; token from HF_TOKEN)."""
    catalog = _catalog()
    model = catalog.models.get(name.lower())
    if model is None:
        raise click.BadParameter(
            f"unknown model {name!r}; choose one of {', '.join(sorted(catalog.models))}",
            param_hint="NAME",
        )
    click.echo(
        f"Pulling {model.name}: {model.download.repo} ({model.size_gb:g} GB, licence "
        f"{model.licence}) into {dest / model.name}"
    )
    try:
        result = pull_model(
            model,
            dest,
            token=os.environ.get("HF_TOKEN") or None,
            revision=revision,
            endpoint=endpoint,
        )
    except PullError as exc:
        raise click.ClickException(str(exc)) from exc
    for repo, commit in result.commits.items():
        click.echo(f"  {repo} @ {commit}")
    click.echo(f"Done: {result.path}")
