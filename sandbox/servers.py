"""Local stand-ins for everything bugster-step talks to, for tests and the demo.

Each server binds 127.0.0.1 on a free port, answers from a daemon thread,
records every request it gets, and never logs to stderr. All of them share
``_SandboxServer``: start on construction, ``url``/``host_port``, ``stop()``,
use as a context manager, ``requests`` and ``wait_for_requests(n, timeout)``
so a test can wait for traffic without sleeping.

- ``AppServer``: the deployed app the readiness probe polls.
- ``BugsterReceiver``: Bugster's custom-integration webhook, validating as
  strictly as its documentation reads (one of commit_sha/branch, and so on).
- ``SecretManagerFake``: Secret Manager v1 REST, enough for the real
  ``SecretManagerServiceClient(transport="rest")`` to access secret versions.
- ``MetadataFake``: the GCE metadata server, enough for google-auth's
  Application Default Credentials to find a project and mint a token.
- ``google_env`` / ``scrub_env`` / ``isolated_env``: the environment a process
  needs so that google libraries talk to these fakes and nothing else.

Nothing here needs a third-party package.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
#: The access token the metadata fake mints and Secret Manager fake expects.
SANDBOX_TOKEN = "sandbox-token"
WEBHOOK_PATH = "/webhooks/integrations/custom"


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``body`` may be bytes (sent as is), str (UTF-8 text) or a dict/list (JSON).
    ``delay`` holds the answer back that many seconds; ``stop()`` cuts the wait
    short and drops the connection unanswered.

    ``trickle`` sends the body ``trickle_size`` bytes at a time, that many
    seconds apart (the status line and headers go at once, unless
    ``trickle_head`` trickles them too): a slow or stalling upstream. ``stop()``
    or the client hanging up ends it.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | dict | list | None = b""
    delay: float = 0.0
    trickle: float = 0.0
    trickle_size: int = 1
    trickle_head: bool = False

    def encoded(self) -> tuple[bytes, str]:
        """The body as bytes and the Content-Type it implies."""
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body or b"", "application/octet-stream"


@dataclass(frozen=True)
class RecordedRequest:
    """What a sandbox server received, and the status it answered with.

    ``headers`` has lowercased names; ``header()`` looks one up in any case.
    ``received`` is ``time.monotonic()`` when the request line was read.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received: float
    status: int | None = None

    @property
    def route(self) -> str:
        """The path without its query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


class _Script:
    """Replies handed out one per request; callers hold the server's lock."""

    def __init__(self, replies: Iterable[Reply] | None, *, repeat_last: bool):
        self._replies = list(replies or ())
        self._repeat_last = repeat_last

    def next(self) -> Reply | None:
        if not self._replies:
            return None
        if self._repeat_last and len(self._replies) == 1:
            return self._replies[0]
        return self._replies.pop(0)


class _Handler(BaseHTTPRequestHandler):
    def version_string(self) -> str:
        return "sandbox/1"

    def _dispatch(self) -> None:
        self.server.owner._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the recorded requests instead."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, owner: _SandboxServer, host: str = LOOPBACK, port: int = 0
    ) -> None:
        if host not in (LOOPBACK, LOOPBACK6):
            raise ValueError(f"sandbox servers bind {LOOPBACK} or {LOOPBACK6} only")
        self.owner = owner
        self.address_family = socket.AF_INET6 if host == LOOPBACK6 else socket.AF_INET
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer would look its address up in DNS (getfqdn); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer (a timeout under test) is routine.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            self.owner._note_error(traceback.format_exc())


class _SandboxServer:
    """Serves ``_respond(request) -> Reply`` on 127.0.0.1 from a daemon thread.

    ``host`` may be ``::1`` instead, and ``port`` a chosen one (0: a free one).
    """

    #: Headers added to every answer unless the Reply sets them.
    always_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self._cond = threading.Condition()
        self._recorded: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self.errors: list[str] = []
        self.started = time.monotonic()
        self.host = host
        self._httpd = _HTTPServer(self, host, port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def stop(self) -> None:
        """Stop serving; idempotent. Pending delayed replies are dropped."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._cond:
            return list(self._recorded)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` requests were recorded; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._recorded) >= n, timeout)

    def _respond(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        request = _read_request(handler)
        try:
            reply = self._respond(request)
        except Exception:
            # A bug in the fake itself: answer 500 with the traceback, keep it.
            reply = Reply(500, body=self._note_error(traceback.format_exc()))
        self._record(replace(request, status=reply.status))

        if reply.delay and self._stopping.wait(reply.delay):
            return
        self._write(handler, reply)

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self._recorded.append(request)
            self._cond.notify_all()

    def _note_error(self, text: str) -> str:
        with self._cond:
            self.errors.append(text)
        return text

    def _write(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        payload, content_type = reply.encoded()
        defaults = {"Content-Type": content_type, "Content-Length": str(len(payload))}
        headers = {}  # lowercased name -> (name as given, value); Reply wins
        for given in (defaults, self.always_headers, reply.headers):
            headers.update({name.lower(): (name, v) for name, v in given.items()})

        if handler.command == "HEAD" or reply.status in (204, 304):
            payload = b""
        if reply.trickle:
            self._trickle(handler, reply, headers.values(), payload)
            return

        handler.send_response(reply.status)
        for name, value in headers.values():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _trickle(self, handler, reply: Reply, headers, payload: bytes) -> None:
        """Write the answer a few bytes at a time; stop() or a hang-up ends it."""
        phrase = handler.responses.get(reply.status, ("",))[0]
        lines = [
            f"{handler.protocol_version} {reply.status} {phrase}",
            f"Server: {handler.version_string()}",
            f"Date: {handler.date_time_string()}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        handler.close_connection = True
        if not reply.trickle_head:
            handler.wfile.write(head)
            head = b""
        rest = head + payload
        size = max(1, reply.trickle_size)
        for start in range(0, len(rest), size):
            if self._stopping.wait(reply.trickle):
                return
            handler.wfile.write(rest[start : start + size])


def _read_request(handler: BaseHTTPRequestHandler) -> RecordedRequest:
    received = time.monotonic()
    headers = {
        name.lower(): ", ".join(handler.headers.get_all(name, []))
        for name in handler.headers
    }
    body = _read_body(handler, headers)
    return RecordedRequest(
        method=handler.command,
        path=handler.path,
        headers=headers,
        body=body,
        json=_json_or_none(body),
        received=received,
    )


def _read_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while size := int(handler.rfile.readline().split(b";")[0], 16):
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        handler.rfile.readline()
        return b"".join(chunks)
    length = int(headers.get("content-length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


# --- the deployed app -------------------------------------------------------


class AppServer(_SandboxServer):
    """The deployed app the readiness probe polls (GET and HEAD).

    Precedence per request: a ``route()`` for that exact path, else the
    ``script`` (one Reply per request, the last repeating forever), else
    ``ready_after``: 503 "starting" until that many seconds after the server
    was constructed (not after the first request), then 200 ``ready_body``.
    With none of these it is ready at once. ``clock`` lets a test move time.
    ``host`` (``127.0.0.1`` or ``::1``) and ``port`` choose where it listens.
    """

    def __init__(
        self,
        script: Iterable[Reply] | None = None,
        ready_after: float | None = None,
        ready_body: str = "ok",
        clock: Callable[[], float] = time.monotonic,
        *,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        if script and ready_after is not None:
            raise ValueError("give script or ready_after, not both")
        self.ready_body = ready_body
        self._clock = clock
        self._ready_from = clock() + (ready_after or 0)
        self._script = _Script(script, repeat_last=True)
        self._routes: dict[str, _Script] = {}
        super().__init__(host, port)

    def set_script(self, replies: Iterable[Reply] | None) -> None:
        """Replace the script from the next request on (None or [] clears it)."""
        with self._cond:
            self._script = _Script(replies, repeat_last=True)

    def route(self, path: str, replies: Reply | Iterable[Reply]) -> None:
        """Answer requests for ``path`` (query ignored) from their own script."""
        if isinstance(replies, Reply):
            replies = [replies]
        with self._cond:
            self._routes[path] = _Script(replies, repeat_last=True)

    def _respond(self, request: RecordedRequest) -> Reply:
        with self._cond:
            routed = self._routes.get(request.route)
            reply = routed.next() if routed else self._script.next()
        if reply is not None:
            return reply
        if self._clock() < self._ready_from:
            return Reply(503, body="starting\n")
        return Reply(200, body=self.ready_body)


# --- Bugster's webhook ------------------------------------------------------

_EVENT_FIELDS = frozenset(
    {
        "project_id",
        "organization_id",
        "environment_url",
        "deployment_state",
        "commit_sha",
        "branch",
        "environment",
    }
)
DEPLOYMENT_STATES = ("success", "in_progress", "cancelled", "error")
SKIP_MESSAGE = "Skipping event: Repository does not have .bugster configuration folder"


def _detail(status: int, detail: str, **headers: str) -> Reply:
    return Reply(status, headers=headers, body={"detail": detail})


def event_problem(event: Any) -> str | None:
    """Why ``event`` breaks the webhook contract, or None if it is valid."""
    if not isinstance(event, dict):
        return "Request body must be a JSON object"
    unknown = sorted(set(event) - _EVENT_FIELDS)
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}"
    for name, value in event.items():
        if not isinstance(value, str) or not value.strip():
            return f"Field '{name}' must be a non-empty string"
    for name in ("project_id", "organization_id"):
        if name not in event:
            return f"Field '{name}' is required"

    state = event.get("deployment_state", "success")
    if state not in DEPLOYMENT_STATES:
        return (
            f"Field 'deployment_state' must be one of: {', '.join(DEPLOYMENT_STATES)}"
        )
    if state == "success" and "environment_url" not in event:
        return "Field 'environment_url' is required when deployment_state is success"
    if ("commit_sha" in event) == ("branch" in event):
        return "Send exactly one of 'commit_sha' or 'branch'"
    return None


class BugsterReceiver(_SandboxServer):
    """Bugster's ``POST /webhooks/integrations/custom``, strict to the contract.

    Checks, in order: path (404) and method (405); then the next ``script``
    Reply if any is left (scripted faults apply only to POSTs on the webhook
    path, so a step posting to the wrong URL still sees a 404); then
    ``X-API-KEY`` (401); then Content-Type, JSON and fields (422). A valid
    event gets 200 "processed", or "skipped" while ``skip`` is true.
    """

    def __init__(
        self,
        api_key: str,
        script: Iterable[Reply] | None = None,
        skip: bool = False,
    ) -> None:
        self.api_key = api_key
        self.skip = skip
        self._script = _Script(script, repeat_last=False)
        super().__init__()

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def accepted(self) -> list[RecordedRequest]:
        """Recorded requests that were answered 2xx (scripted ones included)."""
        return [r for r in self.requests if r.status and 200 <= r.status < 300]

    def set_script(self, replies: Iterable[Reply] | None) -> None:
        with self._cond:
            self._script = _Script(replies, repeat_last=False)

    def _respond(self, request: RecordedRequest) -> Reply:
        if request.route != WEBHOOK_PATH:
            return _detail(404, "Not Found")
        if request.method != "POST":
            return _detail(405, "Method Not Allowed", Allow="POST")
        with self._cond:
            scripted = self._script.next()
        return scripted or self._process(request)

    def _process(self, request: RecordedRequest) -> Reply:
        given = request.header("x-api-key")
        if not given:
            return _detail(401, "Missing API key: send it in the X-API-KEY header")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            return _detail(401, "Invalid API key")

        content_type = request.header("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return _detail(422, "Content-Type must be application/json")
        if request.json is None:
            return _detail(422, "Request body is not valid JSON")
        problem = event_problem(request.json)
        if problem:
            return _detail(422, problem)

        return Reply(200, body=self._outcome(request.json))

    def _outcome(self, event: dict) -> dict:
        if self.skip:
            return {"status": "skipped", "message": SKIP_MESSAGE}
        message = (
            "Custom integration event processed for "
            f"org: {event['organization_id']}, project: {event['project_id']}"
        )
        return {"status": "processed", "message": message}


# --- Secret Manager ---------------------------------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as Secret Manager puts in ``dataCrc32c``."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_SECRET_NAME = r"projects/[^/]+(?:/locations/[^/]+)?/secrets/[^/]+"
_SECRET_RE = re.compile(_SECRET_NAME)
_ACCESS_RE = re.compile(rf"/v1/({_SECRET_NAME})/versions/([^/:]+):access")
VERSION_STATES = ("ENABLED", "DISABLED", "DESTROYED")
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access "
    "token, login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def google_error(code: int, status: str, message: str) -> Reply:
    """An error in the JSON shape Google APIs use (and api_core parses)."""
    return Reply(
        code,
        headers={"Content-Type": "application/json; charset=UTF-8"},
        body={"error": {"code": code, "message": message, "status": status}},
    )


@dataclass
class _Version:
    data: bytes
    state: str


class SecretManagerFake(_SandboxServer):
    """Secret Manager v1 REST ``GET /v1/{version}:access``, global or regional.

    Point the real client at it with
    ``SecretManagerServiceClient(transport="rest",
    client_options={"api_endpoint": fake.url})``. Requests need
    ``Authorization: Bearer <token>`` (else 401). ``latest`` is the highest
    version number, as in the real service where numbers only grow; if that
    version is disabled the answer is FAILED_PRECONDITION, not an older one.
    Names come back as given (the real service swaps the project id for its
    number). A ``script`` Reply, if any is left, answers before anything else.
    """

    def __init__(
        self, token: str = SANDBOX_TOKEN, script: Iterable[Reply] | None = None
    ) -> None:
        self.token = token
        self._secrets: dict[str, dict[int, _Version]] = {}
        self._denied: set[str] = set()
        self._corrupt: set[str] = set()
        self._script = _Script(script, repeat_last=False)
        super().__init__()

    def add(
        self,
        name: str,
        value: bytes | str,
        version: int | None = None,
        state: str = "ENABLED",
    ) -> str:
        """Add a version to secret ``name``; returns the version's full name."""
        if not _SECRET_RE.fullmatch(name):
            raise ValueError(f"not a secret name: {name!r}")
        if state not in VERSION_STATES:
            raise ValueError(f"state must be one of {VERSION_STATES}")
        data = value.encode() if isinstance(value, str) else bytes(value)
        with self._cond:
            versions = self._secrets.setdefault(name, {})
            number = version or max(versions, default=0) + 1
            if number in versions:
                raise ValueError(f"{name}/versions/{number} already exists")
            versions[number] = _Version(data, state)
        return f"{name}/versions/{number}"

    def set_state(self, version_name: str, state: str) -> None:
        """Enable, disable or destroy an existing version."""
        secret, _, number = version_name.rpartition("/versions/")
        if state not in VERSION_STATES:
            raise ValueError(f"state must be one of {VERSION_STATES}")
        with self._cond:
            self._secrets[secret][int(number)].state = state

    def deny(self, name: str) -> None:
        """Answer PERMISSION_DENIED for every version of secret ``name``."""
        with self._cond:
            self._denied.add(name)

    def corrupt_crc(self, name: str) -> None:
        """Serve a wrong ``dataCrc32c`` for every version of secret ``name``."""
        with self._cond:
            self._corrupt.add(name)

    def set_script(self, replies: Iterable[Reply] | None) -> None:
        with self._cond:
            self._script = _Script(replies, repeat_last=False)

    def _respond(self, request: RecordedRequest) -> Reply:
        with self._cond:
            scripted = self._script.next()
        if scripted:
            return scripted
        if request.header("authorization") != f"Bearer {self.token}":
            return google_error(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE)
        match = _ACCESS_RE.fullmatch(unquote(request.route))
        if not match or request.method != "GET":
            return google_error(404, "NOT_FOUND", "Method not found.")
        return self._access(*match.groups())

    def _access(self, secret: str, version: str) -> Reply:
        with self._cond:
            if secret in self._denied:
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission 'secretmanager.versions.access' denied for resource "
                    f"'{secret}/versions/{version}' (or it may not exist).",
                )
            versions = self._secrets.get(secret)
            if not versions:
                return google_error(
                    404,
                    "NOT_FOUND",
                    f"Secret [{secret}] not found or has no versions.",
                )
            number = max(versions) if version == "latest" else _int_or_none(version)
            found = versions.get(number)
            crc_offset = 1 if secret in self._corrupt else 0
        full_name = f"{secret}/versions/{number or version}"

        if found is None:
            return google_error(
                404, "NOT_FOUND", f"Secret Version [{full_name}] not found."
            )
        if found.state != "ENABLED":
            return google_error(
                400,
                "FAILED_PRECONDITION",
                f"Secret Version [{full_name}] is in {found.state} state.",
            )
        payload = {
            "data": base64.b64encode(found.data).decode(),
            "dataCrc32c": str((crc32c(found.data) + crc_offset) % 2**32),
        }
        return Reply(200, body={"name": full_name, "payload": payload})


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


# --- GCE metadata server ----------------------------------------------------

_METADATA_ROOT = "/computeMetadata/v1/"
_ACCOUNT_RE = re.compile(r"instance/service-accounts/([^/]+)/(.*)")
_METADATA_TEXT = "application/text"


def _text(body: str) -> Reply:
    return Reply(200, headers={"Content-Type": _METADATA_TEXT}, body=body)


class MetadataFake(_SandboxServer):
    """The GCE metadata server, as google-auth's ADC uses it.

    Serves the ping at ``/``, ``project/project-id``,
    ``project/numeric-project-id``, ``universe/universe-domain``, and for the
    service account (``default`` or its email) the recursive info, ``email``,
    ``scopes`` and ``token``. Requests without ``Metadata-Flavor: Google`` get
    403; every answer carries that header. Set ``token_reply`` (or pass
    ``token_status``) to make the token endpoint fail.
    """

    always_headers: ClassVar[Mapping[str, str]] = {"Metadata-Flavor": "Google"}

    def __init__(
        self,
        project_id: str = "sandbox-gcp-project",
        email: str = "builder@sandbox-gcp-project.iam.gserviceaccount.com",
        token: str = SANDBOX_TOKEN,
        token_status: int = 200,
        token_reply: Reply | None = None,
        project_number: str = "123456789012",
        universe_domain: str = "googleapis.com",
    ) -> None:
        self.project_id = project_id
        self.email = email
        self.token = token
        self.project_number = project_number
        self.universe_domain = universe_domain
        self.scopes = ["https://www.googleapis.com/auth/cloud-platform"]
        if token_reply is None and token_status != 200:
            token_reply = Reply(token_status, body=f"sandbox: token {token_status}\n")
        self.token_reply = token_reply
        super().__init__()

    @property
    def token_requests(self) -> int:
        return sum(r.route.endswith("/token") for r in self.requests)

    def _respond(self, request: RecordedRequest) -> Reply:
        if request.header("metadata-flavor") != "Google":
            return Reply(403, body="Missing required header: Metadata-Flavor: Google\n")
        if request.route == "/":
            return _text("computeMetadata/\n")
        if not request.route.startswith(_METADATA_ROOT):
            return Reply(404, body="Not Found\n")

        path = request.route[len(_METADATA_ROOT) :]
        simple = {
            "project/project-id": self.project_id,
            "project/numeric-project-id": self.project_number,
            "universe/universe-domain": self.universe_domain,
            "instance/service-accounts/": f"default/\n{self.email}/\n",
        }
        if path in simple:
            return _text(simple[path])
        match = _ACCOUNT_RE.fullmatch(path)
        if match and match.group(1) in ("default", self.email):
            return self._account(match.group(2), request)
        return Reply(404, body="Not Found\n")

    def _account(self, leaf: str, request: RecordedRequest) -> Reply:
        if leaf == "token":
            return self.token_reply or Reply(
                200,
                body={
                    "access_token": self.token,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                },
            )
        if leaf == "" and request.query.get("recursive") == ["true"]:
            info = {"aliases": ["default"], "email": self.email, "scopes": self.scopes}
            return Reply(200, body=info)
        listing = {
            "": "aliases\nemail\nidentity\nscopes\ntoken\n",
            "email": self.email,
            "scopes": "".join(f"{scope}\n" for scope in self.scopes),
            "aliases": "default\n",
        }
        if leaf in listing:
            return _text(listing[leaf])
        return Reply(404, body="Not Found\n")


# --- environment for processes that import google libraries ---------------

#: Prefixes of variables that steer google-auth or gcloud; all are removed.
GOOGLE_ENV_PREFIXES = ("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "GCE_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def scrub_env(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without google/gcloud settings or proxies."""
    return {
        name: value
        for name, value in environ.items()
        if not name.upper().startswith(GOOGLE_ENV_PREFIXES)
        and name.upper() not in (*_PROXY_VARS, "NO_GCE_CHECK")
    }


def _refused_loopback_address() -> str:
    """A 127.0.0.1 port nothing listens on (free a moment ago)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return f"{LOOPBACK}:{probe.getsockname()[1]}"


def google_env(metadata: MetadataFake, tmpdir: str | os.PathLike) -> dict[str, str]:
    """Variables to set (over ``scrub_env``) so google libraries use the fakes.

    - GCE_METADATA_HOST / GCE_METADATA_IP: the metadata fake. google-auth reads
      HOST once, when ``google.auth.compute_engine._metadata`` is imported, and
      IP at each ping, so set these before the process imports google.
    - GCE_METADATA_MTLS_MODE=none and GOOGLE_API_USE_CLIENT_CERTIFICATE=false:
      plain HTTP to the fake, no hunting for client certificates.
    - CLOUDSDK_CONFIG: an empty directory, so no gcloud credentials are found.
    - HTTP(S)_PROXY: a refused 127.0.0.1 port, with NO_PROXY for loopback. A
      request meant for any other host fails at once instead of leaving the
      machine, while the sandbox servers are reached directly.
    """
    config = Path(tmpdir) / "gcloud-config"
    config.mkdir(parents=True, exist_ok=True)
    if any(config.iterdir()):
        raise ValueError(f"{config} must be empty")
    trap = f"http://{_refused_loopback_address()}"
    loopback = f"{LOOPBACK},localhost,::1"
    return {
        "GCE_METADATA_HOST": metadata.host_port,
        "GCE_METADATA_IP": metadata.host_port,
        "GCE_METADATA_MTLS_MODE": "none",
        "GOOGLE_API_USE_CLIENT_CERTIFICATE": "false",
        "CLOUDSDK_CONFIG": str(config),
        "HTTP_PROXY": trap,
        "HTTPS_PROXY": trap,
        "http_proxy": trap,
        "https_proxy": trap,
        "NO_PROXY": loopback,
        "no_proxy": loopback,
    }


def isolated_env(
    metadata: MetadataFake,
    tmpdir: str | os.PathLike,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A whole environment for ``subprocess.run(env=...)``: scrubbed, then set."""
    return {
        **scrub_env(os.environ if base is None else base),
        **google_env(metadata, tmpdir),
    }
