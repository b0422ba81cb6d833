"""The one place secrets are masked.

Every log line, error message and dry-run output passes through ``redact``.
A secret is registered the moment it enters the program, and its common
encodings (``repr``, JSON string, URL-encoded) are masked too, because library
error texts quote values in those forms.
"""

from __future__ import annotations

import json
import threading
import urllib.parse

MASK = "********"

_lock = threading.Lock()
_forms: list[str] = []


def _encodings(secret: str) -> set[str]:
    return {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
        urllib.parse.quote(secret),
    }


MIN_LENGTH = 4  # shorter values would mask ordinary text everywhere


def register(secret: str | None) -> None:
    """Mask ``secret`` (and its encodings) in everything printed from now on.

    Values shorter than ``MIN_LENGTH`` are not registered: callers reject such
    API keys outright, and a three-character header value is no secret.
    """
    if not secret or len(secret.strip()) < MIN_LENGTH:
        return
    with _lock:
        new = _encodings(secret) - set(_forms)
        # Longest first, so a form that contains another is masked whole.
        _forms.extend(f for f in new if f)
        _forms.sort(key=len, reverse=True)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        forms = list(_forms)
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def forget_all() -> None:
    """Drop every registered secret (one process can run several commands in tests)."""
    with _lock:
        _forms.clear()
