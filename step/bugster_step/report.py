"""The run's result for later pipeline steps: a JSON or dotenv file, and GitHub
Actions outputs. Every value passes the redactor; the key is never among them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from bugster_step import redact
from bugster_step.log import log

FORMATS = ("json", "dotenv")
# Not BUGSTER_: GitLab hands dotenv variables to later jobs, where names like
# BUGSTER_COMMIT_SHA would be read back as this step's own settings.
DOTENV_PREFIX = "BUGSTER_RESULT_"


def _clean(value: object) -> object:
    if isinstance(value, str):
        # One line per value: dotenv and GITHUB_OUTPUT lines cannot hold newlines.
        return redact.redact(" ".join(value.split()))
    return value


def _line_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(facts: Mapping[str, object], fmt: str) -> str:
    clean = {name: _clean(value) for name, value in facts.items()}
    if fmt == "json":
        return json.dumps(clean, indent=2, sort_keys=False) + "\n"
    lines = [
        f"{DOTENV_PREFIX}{name.upper()}={_line_value(value)}"
        for name, value in clean.items()
        if value is not None
    ]
    return "\n".join(lines) + "\n"


def write_file(path: str, facts: Mapping[str, object], fmt: str) -> bool:
    """Write the result to ``path``; a failure is logged, never raised."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(render(facts, fmt))
    except OSError as exc:
        log.error("could not write the result to %s: %s", path, exc.strerror or exc)
        return False
    log.info("result written to %s (%s)", path, fmt)
    return True


def append_github_output(
    environ: Mapping[str, str], facts: Mapping[str, object]
) -> None:
    """Append the facts as step outputs when GitHub Actions gives GITHUB_OUTPUT."""
    path = environ.get("GITHUB_OUTPUT")
    if not path:
        return
    lines = [
        f"{name}={_line_value(_clean(value))}"
        for name, value in facts.items()
        if value is not None
    ]
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    except OSError as exc:
        log.error("could not append to GITHUB_OUTPUT %s: %s", path, exc.strerror or exc)


def publish(
    facts: Mapping[str, object],
    *,
    path: str | None,
    fmt: str,
    environ: Mapping[str, str] = os.environ,
) -> None:
    if path:
        write_file(path, facts, fmt)
    append_github_output(environ, facts)
