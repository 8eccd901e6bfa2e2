"""Engine groups as configuration: engines that share one device, how many may be awake at
once, and how each is put to sleep and woken (gateway.config.Settings.engine_groups).

Plain value objects, no I/O: the settings validate them, the switching controller reads them.
Engines outside every group are not mentioned here and behave as before.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class GroupEngine(BaseModel):
    """One engine of a group: where it listens, the model it serves, how it is switched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    # The served model id (what clients name): known before the engine ever answers, since
    # a sleeping or stopped engine cannot be asked.
    model: str = Field(min_length=1)
    # `sleep`: vLLM's sleep API (CUDA; the engine runs with --enable-sleep-mode and
    # VLLM_SERVER_DEV_MODE=1). `process`: the gateway starts and stops the engine itself.
    control: Literal["sleep", "process"] = "sleep"
    # vLLM level 1 keeps the weights in host RAM (fast wake, costs RAM); 2 drops them.
    sleep_level: Literal[1, 2] = 1
    # `process` only: the command line that starts the engine, and its extra environment.
    command: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    log_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = _normalise_url(value)
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"engine url {value!r} must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _command_for_process(self) -> GroupEngine:
        if self.control == "process" and not self.command:
            raise ValueError(f"engine {self.url}: control `process` needs a `command`")
        if self.control == "sleep" and self.command:
            raise ValueError(f"engine {self.url}: `command` is only for control `process`")
        return self


class EngineGroup(BaseModel):
    """Engines sharing one device, of which at most `max_awake` hold it at a time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    engines: list[GroupEngine] = Field(min_length=1)
    max_awake: int = Field(1, ge=1)
    # How long the awake engine may take to finish its running requests before a switch;
    # past it the switch is called off (streams are never cut) and the waiters get 503.
    drain_timeout_s: float = Field(60.0, gt=0)
    # An engine just woken stays awake at least this long while others wait: no thrashing.
    min_residency_s: float = Field(30.0, ge=0)
    # Put an awake engine to sleep after this long without requests (0: never).
    idle_sleep_s: float = Field(0.0, ge=0)
    # Requests waiting for each sleeping model; beyond it, 503 with retry-after.
    queue_max: int = Field(32, ge=1)
    # One sleep, wake, start or stop may take this long before it counts as failed.
    switch_timeout_s: float = Field(300.0, gt=0)
    # After a failed switch, the model is refused (503, retry-after) this long, then tried
    # again; also the retry-after of a full queue.
    retry_after_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _distinct(self) -> EngineGroup:
        urls = [e.url for e in self.engines]
        models = [e.model for e in self.engines]
        if len(set(urls)) != len(urls):
            raise ValueError(f"engine group {self.name!r}: an engine url is listed twice")
        if len(set(models)) != len(models):
            raise ValueError(f"engine group {self.name!r}: a model is served by two engines")
        return self


def check_groups(groups: list[EngineGroup]) -> list[EngineGroup]:
    """Groups are disjoint: an engine, a model, a name belong to one group at most."""
    seen_urls: set[str] = set()
    seen_models: set[str] = set()
    names: set[str] = set()
    for group in groups:
        if group.name in names:
            raise ValueError(f"engine group name {group.name!r} is used twice")
        names.add(group.name)
        for engine in group.engines:
            if engine.url in seen_urls:
                raise ValueError(f"engine {engine.url} is in two engine groups")
            if engine.model in seen_models:
                raise ValueError(f"model {engine.model!r} is in two engine groups")
            seen_urls.add(engine.url)
            seen_models.add(engine.model)
    return groups
