"""The values settings may take, and the checks every source of them shares.

Kept apart and nearly import-free so that the CLI can declare its options
without loading the probe, the webhook and requests' machinery (see
`make bench`), and so that a flag and a CI variable are held to one rule.
"""

import re
import urllib.parse

STATES = ("success", "in_progress", "cancelled", "error")
REFS = ("auto", "commit", "branch")
DEFAULT_API_URL = "https://api.bugster.app"

# Whitespace or control characters: never part of a key, an id or a branch.
UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f]")
# A shell or Cloud Build variable that was never expanded: $VAR, ${VAR}, $$VAR.
SHELL_PLACEHOLDER = r"\$\$?\{?[A-Za-z_][A-Za-z0-9_]*\}?"
PLACEHOLDER = re.compile(rf"^{SHELL_PLACEHOLDER}$")


def url_problem(text: str) -> str | None:
    """Why ``text`` is not an absolute http(s) URL with a host, or None if it is."""
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        return f"{text!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{text!r} is not an http:// or https:// URL with a host"
    if any(c.isspace() for c in text):
        return f"{text!r} contains whitespace"
    return None
