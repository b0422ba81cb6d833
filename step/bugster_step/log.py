"""One logger to stderr, one line per event, every line redacted."""

from __future__ import annotations

import logging
import sys

from bugster_step.redact import redact

LOGGER_NAME = "bugster_step"
log = logging.getLogger(LOGGER_NAME)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.level = record.levelname.lower()
        return redact(super().format(record))

    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))


def setup(level: int, stream=None) -> logging.Handler:
    """Send our logger's records to stderr as ``bugster-step: level: message``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter("bugster-step: %(level)s: %(message)s"))
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return handler
