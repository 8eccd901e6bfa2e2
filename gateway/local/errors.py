"""Errors of the local stack (models prepared from PyPI, vLLM CPU engines as child processes).

    LocalStackError             anything `gateway up` cannot get running
    ├── ModelPrepError          a model could not be located, downloaded or converted
    └── EngineError             a vLLM child process misbehaved
        └── EngineStartError    it exited, or never answered /health, before it was ready

Messages name the cause and, for engines, carry the tail of the engine's log, because the
log is where vLLM says why it died.
"""

from __future__ import annotations


class LocalStackError(Exception):
    pass


class ModelPrepError(LocalStackError):
    pass


class EngineError(LocalStackError):
    pass


class EngineStartError(EngineError):
    pass
