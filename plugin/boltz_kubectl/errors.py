"""The plugin's one error type and its exit codes (kubectl's convention: 0 success, 1 error)."""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # bad input, API or store errors, a run that Failed (wait, results)
    USAGE = 2  # the command line itself (argparse's own code)
    TIMEOUT = 3  # wait / --wait gave up before the run finished


class PluginError(Exception):
    """An error the user can act on: printed as `error: <message>` (every line of `problems` below it), no
    traceback, and the process exits with `code`."""

    def __init__(self, message: str, problems: list[str] | None = None, code: ExitCode = ExitCode.ERROR):
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.code = code

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  - {p}" for p in self.problems)])


def validation_problems(error: Any, prefix: str, snake_case: bool = False) -> list[str]:
    """One line per error of a pydantic ValidationError: `<prefix><field path>: <message> (got <value>)`.

    snake_case: spell the path's keys as boltzgen does (`includeProximity` -> `include_proximity`), for errors in a
    design spec the user wrote in boltzgen's spelling."""
    lines = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                name = _CAMEL.sub(r"_\1", part).lower() if snake_case else part
                path += f".{name}" if path or prefix else name
        got = item.get("input")
        shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {str(got)[:80]!r})"
        message = "cannot be expressed: the CRD has no such field" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{prefix}{path}: {message}{shown}")
    return lines
