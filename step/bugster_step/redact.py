"""The one place secrets are masked.

Every log line, error message and dry-run output passes through ``redact``.
A secret is registered the moment it enters the program, and its common
encodings (``repr``, JSON string, URL-encoded) are masked too, because library
error texts quote values in those forms.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import urllib.parse

MASK = "********"

_lock = threading.Lock()
_forms: list[str] = []


def _encodings(secret: str) -> set[str]:
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    with contextlib.suppress(UnicodeEncodeError):
        forms.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    forms.add(json.dumps(secret)[1:-1].replace("/", "\\/"))  # JSON may escape "/"
    for quote in (
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote_plus(s, safe=""),
        urllib.parse.quote,
    ):
        try:
            forms.add(quote(secret))
        except UnicodeEncodeError:  # lone surrogates from a non-UTF-8 environment
            continue
    return forms


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


def register_url_credentials(url: str | None) -> None:
    """Mask the password of ``https://user:password@host/`` wherever it shows."""
    if not url:
        return
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        register(password)
        register(urllib.parse.unquote(password))


def redact(text: str) -> str:
    """``text`` with every registered form masked, in any letter case (percent
    escapes are case-insensitive, and some services lowercase what they echo)."""
    if not text:
        return text
    with _lock:
        forms = list(_forms)
    if not forms:
        return text
    pattern = re.compile("|".join(re.escape(f) for f in forms), re.IGNORECASE)
    return pattern.sub(MASK, text)


def forget_all() -> None:
    """Drop every registered secret (one process can run several commands in tests)."""
    with _lock:
        _forms.clear()
