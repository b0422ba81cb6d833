"""Exit statuses and the one error hierarchy the CLI converts at its edge.

Nothing here imports click: the modules that fetch keys, read the CI, probe and
post raise these, and ``cli.py`` turns them into a message and an exit status.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    DELIVERED = 0
    INTERNAL_ERROR = 1
    USAGE = 2
    NOT_READY = 3
    API_KEY = 4
    REJECTED = 5
    UNDELIVERED = 6


class StepError(Exception):
    """A failure the user can act on; ``hint`` says how."""

    exit_status = ExitStatus.INTERNAL_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(StepError):
    """Bad or missing settings: nothing was sent."""

    exit_status = ExitStatus.USAGE


class NotReadyError(StepError):
    """The deployment did not pass the readiness probe before the deadline."""

    exit_status = ExitStatus.NOT_READY

    def __init__(self, message: str, hint: str | None = None, attempts=()) -> None:
        super().__init__(message, hint)
        self.attempts = list(attempts)


class ApiKeyError(StepError):
    """The API key could not be had, or Bugster refused it."""

    exit_status = ExitStatus.API_KEY


class RejectedError(StepError):
    """Bugster answered and refused the event."""

    exit_status = ExitStatus.REJECTED


class UndeliveredError(StepError):
    """Not delivered after retries, or sent with an outcome we cannot know."""

    exit_status = ExitStatus.UNDELIVERED

    def __init__(
        self, message: str, hint: str | None = None, *, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.outcome_unknown = outcome_unknown


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; a BaseException so no ``except Exception`` eats it."""

    def __init__(self, signum: int, message: str = "interrupted") -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
