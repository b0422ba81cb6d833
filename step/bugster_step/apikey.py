"""Where the Bugster API key comes from: exactly one of four sources.

The key is registered with the redactor the moment it is read, before it is
checked, so not even a validation message can show it. Google's libraries are
imported only on the Secret Manager path: a run with the key in the
environment never loads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from bugster_step import redact
from bugster_step.choices import SHELL_PLACEHOLDER, UNPRINTABLE
from bugster_step.errors import ConfigError
from bugster_step.log import log

# Shown when no source is configured.
NO_SOURCE = (
    "no Bugster API key: set exactly one of BUGSTER_API_KEY (on Cloud Build via "
    "availableSecrets and secretEnv), --api-key-file / BUGSTER_API_KEY_FILE, "
    "--api-key-secret / BUGSTER_API_KEY_SECRET (Secret Manager), or --api-key "
    "(visible in logs; last resort)"
)
# Shown when the key arrives through a flag, which build logs and ps can show.
FLAG_WARNING = (
    "--api-key puts the key on the command line, where build logs and process "
    "lists can show it; prefer BUGSTER_API_KEY from a secret, or --api-key-secret"
)

MAX_KEY_LENGTH = 4096  # no HTTP server takes a longer header value
MIN_KEY_LENGTH = 8  # shorter values are not keys, and would mask half of every log
# A shell placeholder, or a Cloud Build user substitution's name (_BUGSTER_API_KEY).
_PLACEHOLDER = re.compile(rf"^(?:{SHELL_PLACEHOLDER}|_[A-Z][A-Z0-9_]*)$")

_SECRET_ID = r"[A-Za-z0-9_-]{1,255}"  # noqa: S105 (a pattern, not a secret)
_VERSION = r"(?:latest|[1-9][0-9]*)"
_PROJECT = r"[a-z0-9][a-z0-9.:-]{0,62}"
_FULL_NAME = re.compile(
    rf"^projects/(?P<project>{_PROJECT})"
    rf"(?:/locations/(?P<location>[a-z0-9-]{{1,63}}))?"
    rf"/secrets/(?P<secret>{_SECRET_ID})"
    rf"(?:/versions/(?P<version>{_VERSION}))?$"
)
_SHORT_NAME = re.compile(rf"^(?P<secret>{_SECRET_ID})(?:@(?P<version>{_VERSION}))?$")


@dataclass(frozen=True)
class KeySource:
    """One configured way to get the key; ``origin`` names the flag or variable."""

    kind: str  # "value", "file" or "secret"
    value: str
    origin: str


@dataclass(frozen=True)
class SecretName:
    project: str | None
    secret: str
    version: str
    location: str | None = None

    def resource(self, project: str) -> str:
        where = f"projects/{project}"
        if self.location:
            where += f"/locations/{self.location}"
        return f"{where}/secrets/{self.secret}/versions/{self.version}"


def choose_source(sources: list[KeySource]) -> KeySource:
    if not sources:
        raise ConfigError(NO_SOURCE)
    if len(sources) > 1:
        names = " and ".join(s.origin for s in sources)
        raise ConfigError(
            f"the API key is configured twice ({names}); keep exactly one source"
        )
    return sources[0]


def check_key(raw: str, origin: str) -> str:
    """The key without surrounding whitespace, or a usage error that never echoes it."""
    redact.register(raw)
    key = raw.strip()
    redact.register(key)
    if not key:
        raise ConfigError(f"the API key from {origin} is empty")
    if _PLACEHOLDER.match(key):
        raise ConfigError(
            f"the API key from {origin} looks like an unexpanded placeholder, not a key",
            hint="on Cloud Build, list the secret under secretEnv and, inside args, "
            "write the variable with a double dollar sign (a single one is a substitution)",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ConfigError(
            f"the API key from {origin} is {len(key)} characters long, too long to be "
            "a Bugster API key",
            hint="check that the secret or file holds only the key",
        )
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"the API key from {origin} is too short to be a Bugster API key",
            hint="copy the whole key from Bugster's Settings > API Keys",
        )
    if not key.isascii():
        raise ConfigError(
            f"the API key from {origin} contains non-ASCII characters",
            hint="a key is printable ASCII; an invisible character may have come "
            "with a copy and paste",
        )
    if UNPRINTABLE.search(key):
        raise ConfigError(
            f"the API key from {origin} contains whitespace or control characters",
            hint="a key is one line of printable characters; check how the secret was created",
        )
    return key


def read_key_file(path: str, origin: str) -> str:
    try:
        if (
            os.path.exists(path)
            and not os.path.isdir(path)
            and not os.path.isfile(path)
        ):
            # A FIFO would block forever, a device never ends.
            raise ConfigError(
                f"the API key file named by {origin} is not a regular file"
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_LENGTH * 4 + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"the API key file named by {origin} does not exist"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"the API key file named by {origin} is a directory"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"the API key file named by {origin} cannot be read: {exc.strerror}"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"the API key file named by {origin} is not UTF-8 text"
        ) from None


def parse_secret_name(text: str, origin: str) -> SecretName:
    text = text.strip()
    full = _FULL_NAME.match(text)
    if full:
        return SecretName(
            project=full["project"],
            secret=full["secret"],
            version=full["version"] or "latest",
            location=full["location"],
        )
    short = _SHORT_NAME.match(text)
    if short:
        return SecretName(None, short["secret"], short["version"] or "latest")
    raise ConfigError(
        # The value is not echoed: a key pasted into the wrong variable lands here.
        f"{origin} is not a Secret Manager secret name",
        hint="use projects/P/secrets/S/versions/V, projects/P/secrets/S (latest), "
        "or a short S or S@V with --gcp-project",
    )


def resolve(
    source: KeySource,
    *,
    fetch_secret: Callable[[SecretName], str] | None = None,
) -> str:
    """The key itself, from whichever source was chosen."""
    if source.kind == "value":
        if source.origin.startswith("--"):
            log.warning(FLAG_WARNING)
        return check_key(source.value, source.origin)
    if source.kind == "file":
        return check_key(read_key_file(source.value, source.origin), source.origin)
    name = parse_secret_name(source.value, source.origin)
    if fetch_secret is None:
        raise ConfigError("Secret Manager is not configured")
    return check_key(fetch_secret(name), source.origin)


def missing_project_error(name: SecretName) -> ConfigError:
    return ConfigError(
        f"no Google Cloud project for the short secret name {name.secret!r}",
        hint="pass --gcp-project (GOOGLE_CLOUD_PROJECT) or the full name "
        "projects/P/secrets/S/versions/V",
    )
