"""`gateway plan` with several --model: the engine group's options and output."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from gateway.plan.group import (
    DEFAULT_BESIDE_UTILIZATION,
    DEFAULT_HOST_RAM_RESERVE_GIB,
    GroupInput,
    plan_group,
)
from gateway.plan.hardware import GIB, Gpu
from gateway.plan.planner import PlanInput
from gateway.plan.render_group import group_json, group_text
from gateway.plan.resolve import Subject

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GroupOptions:
    host_ram_gib: float | None
    sleep_level: int
    beside_utilization: float
    host_ram_reserve_gib: float


def group_options(command: F) -> F:
    """The options only a group plan reads."""
    for option in reversed(
        [
            click.option(
                "--host-ram",
                type=click.FloatRange(min=1),
                default=None,
                metavar="GiB",
                help="Group: the box's host RAM (level-1 sleep keeps the sleeping weights there).",
            ),
            click.option(
                "--sleep-level",
                type=click.IntRange(1, 2),
                default=1,
                show_default=True,
                help="Group: 1 keeps weights in host RAM (fast wake); 2 reloads them from disk.",
            ),
            click.option(
                "--beside-utilization",
                type=click.FloatRange(0, 0.5),
                default=DEFAULT_BESIDE_UTILIZATION,
                show_default=True,
                help="Group: the share of the card the embedding engine beside it takes (0: none).",
            ),
            click.option(
                "--host-ram-reserve",
                type=click.FloatRange(min=0),
                default=DEFAULT_HOST_RAM_RESERVE_GIB,
                show_default=True,
                metavar="GiB",
                help="Group: host RAM for the OS, the stack and the engine processes themselves.",
            ),
        ]
    ):
        command = option(command)
    return command


def per_model(values: Sequence[T], models: int, flag: str) -> list[T]:
    """One value for every model, or one per model in order."""
    if len(values) == 1:
        return list(values) * models
    if len(values) == models:
        return list(values)
    raise click.BadParameter(
        f"give it once (for every model) or once per --model ({models}), not {len(values)} times",
        param_hint=flag,
    )


def run_group(
    members: Sequence[PlanInput],
    subjects: Sequence[Subject],
    gpu: Gpu,
    options: GroupOptions,
    as_json: bool,
) -> None:
    if options.host_ram_gib is None:
        raise click.BadParameter(
            "a group needs the box's host RAM in GiB (e.g. --host-ram 64): level-1 sleep keeps "
            "the sleeping models' weights there",
            param_hint="--host-ram",
        )
    keys = [s.arch.key for s in subjects]
    if len(set(keys)) != len(keys):
        raise click.BadParameter("each model of a group once", param_hint="--model")
    group = plan_group(
        GroupInput(
            members=tuple(members),
            gpu=gpu,
            host_ram_bytes=int(options.host_ram_gib * GIB),
            sleep_level=options.sleep_level,
            beside_utilization=options.beside_utilization,
            host_ram_reserve_bytes=int(options.host_ram_reserve_gib * GIB),
        )
    )
    if as_json:
        click.echo(json.dumps(group_json(group, subjects), indent=2))
    else:
        click.echo(group_text(group, subjects))
    if not group.fits:
        # The plan is printed either way; the exit code lets a script refuse it.
        raise click.exceptions.Exit(1)
