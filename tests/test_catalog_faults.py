"""The fault catalog: what the step does on a bad day, one row per fault.

Each row names a fault of one of the four things the step talks to (the
deployed app, Bugster's receiver, Secret Manager and the metadata server), sets
it up on servers this file starts on 127.0.0.1, runs the real CLI, and checks,
in this order: the exact exit code, the exact number of POSTs that reached a
receiver (0 for app and secret faults, which stop before sending), and one key
phrase of what the user was told. Every run is also scanned for the key by the
``cli`` fixture.

Names that must not resolve are under ``.invalid``. Nothing here measures time:
a cut that should happen shows in the exit code and the message. Rows the
product does not meet yet are in ``KNOWN_BUGS`` and run as strict xfails.

Not in the catalog because of their cost: a metadata token endpoint answering
5xx (google-auth retries it with backoff for about 15 s before giving up), and a
Secret Manager endpoint that refuses or hangs (retried for the fixed 30 s
deadline, like the 500 row, which is the one such row kept).
"""

from __future__ import annotations

import functools
import json
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
import trustme

from sandbox import AppServer, BugsterReceiver, MetadataFake, Reply, SecretManagerFake
from sandbox.servers import SKIP_MESSAGE, google_error
from tests.conftest import API_KEY, FAST, FULL_SHA
from tests.test_probe_hardened import (
    RawServer,
    TLSApp,
    close_unanswered,
    read_request,
    refused_url,
    reset,
)

IDS = ("--project-id=proj-1", "--organization-id=org_abc", f"--commit-sha={FULL_SHA}")
SECRET = "projects/acme/secrets/bugster-key"
UNKNOWN = "the outcome is unknown"
NOTED_WITHIN = 5.0  # seconds for the receiver to note a request the CLI gave up on
NOT_HTTP = b"this is not HTTP\r\n\r\n"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


# --- servers of this file -----------------------------------------------------


@functools.cache
def ca() -> trustme.CA:
    return trustme.CA()


def ca_file(tmp_path) -> str:
    path = tmp_path / "catalog-ca.pem"
    ca().cert_pem.write_to_path(str(path))
    return str(path)


class Heads:
    """The request lines a raw server read, so its POSTs can be counted."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._lock = threading.Lock()

    def read(self, conn: socket.socket) -> bool:
        """Read a request's head and note its request line; False if none came."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return False
            data += chunk
        with self._lock:
            self.lines.append(data.split(b"\r\n", 1)[0])
        return True

    @property
    def posts(self) -> int:
        with self._lock:
            return sum(line.startswith(b"POST ") for line in self.lines)

    def then_reset(self, conn: socket.socket) -> None:
        if self.read(conn):
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )

    def then_close(self, conn: socket.socket) -> None:
        self.read(conn)

    def then_garbage(self, conn: socket.socket) -> None:
        if self.read(conn):
            conn.sendall(NOT_HTTP)


def not_http(conn: socket.socket) -> None:
    """Answer a request with a line that is not an HTTP status line."""
    if read_request(conn):
        conn.sendall(NOT_HTTP)


class _CountingTLSHandler(BaseHTTPRequestHandler):
    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def _answer(self) -> None:
        self.server.methods.append(self.command)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, format, *args) -> None:
        """Quiet."""


class TLSReceiver(TLSApp):
    """``TLSApp`` that also answers POST, and notes each method it served."""

    def __init__(self, cert: trustme.LeafCert) -> None:
        self.methods: list[str] = []
        super().__init__(cert)
        self.RequestHandlerClass = _CountingTLSHandler  # before any connection

    @property
    def posts(self) -> int:
        return self.methods.count("POST")


# --- the rig: what a row arranges --------------------------------------------


@dataclass
class Rig:
    """The servers of one row and the CLI's environment.

    ``receiver`` is Bugster; ``api_url`` may point elsewhere (a raw or TLS
    server), whose POSTs are then counted through ``count``. The key comes from
    ``BUGSTER_API_KEY`` unless ``secret()`` switches to Secret Manager.
    """

    receiver: BugsterReceiver
    app: AppServer
    secret_manager: SecretManagerFake
    metadata: MetadataFake
    monkeypatch: pytest.MonkeyPatch
    tmp_path: object
    stack: ExitStack
    api_url: str = ""
    env: dict[str, str] = field(default_factory=lambda: {"BUGSTER_API_KEY": API_KEY})
    counters: list[Callable[[], int]] = field(default_factory=list)
    checks: list[Callable[[], None]] = field(default_factory=list)
    elsewhere: bool = False  # the webhook goes to another server than ``receiver``

    def __post_init__(self) -> None:
        self.api_url = self.api_url or self.receiver.url

    def start(self, server):
        return self.stack.enter_context(server)

    def count(self, counter: Callable[[], int]) -> None:
        self.counters.append(counter)

    def then(self, check: Callable[[], None]) -> None:
        """Another assertion, made after the row's own."""
        self.checks.append(check)

    def receiving(self, server, counter: Callable[[], int]) -> None:
        """Send the webhook to ``server`` instead, counting its POSTs."""
        self.api_url = server.url
        self.elsewhere = True
        self.count(counter)

    def secret(
        self, value: str | None = API_KEY + "\n", state: str = "ENABLED"
    ) -> list[str]:
        """The key from Secret Manager (and not from BUGSTER_API_KEY); ``value``
        None adds no secret at all."""
        if value is not None:
            self.secret_manager.add(SECRET, value, state=state)
        self.env = {}
        return [f"--api-key-secret={SECRET}", "--state=in_progress"]

    def posts(self) -> int:
        receiver_posts = sum(r.method == "POST" for r in self.receiver.requests)
        return receiver_posts + sum(counter() for counter in self.counters)


@pytest.fixture
def rig(receiver, app, secret_manager, metadata, monkeypatch, tmp_path):
    with ExitStack() as stack:
        yield Rig(receiver, app, secret_manager, metadata, monkeypatch, tmp_path, stack)


def probe(url: str, *args: str) -> list[str]:
    """Args for a success run whose probe polls ``url``: short deadline."""
    return ["--state=success", f"--environment-url={url}", "--timeout=0.8", *args]


def in_progress(*args: str) -> list[str]:
    """Args for a run with no probe: straight to the webhook."""
    return ["--state=in_progress", *args]


def scripted(*replies: Reply, args: Sequence[str] = ()) -> Callable[[Rig], list[str]]:
    """A receiver row: these answers first, then the receiver's own."""

    def arrange(rig: Rig) -> list[str]:
        rig.receiver.set_script(list(replies))
        return in_progress(*args)

    return arrange


def detail(status: int, text: str, **headers: str) -> Reply:
    return Reply(status, headers=headers, body={"detail": text})


def json_reply(status: int, body: bytes | str, **headers: str) -> Reply:
    return Reply(
        status, headers={"Content-Type": "application/json", **headers}, body=body
    )


def processed(**extra) -> dict:
    return {
        "status": "processed",
        "message": "Custom integration event processed",
        **extra,
    }


def assert_no_requests(server) -> None:
    assert server.requests == [], f"{server} got requests"


# --- the deployed app ---------------------------------------------------------


def app_refused(rig: Rig) -> list[str]:
    return probe(refused_url())


def app_raw(serve: Callable | None = None, *, hang: bool = False, args=()):
    def arrange(rig: Rig) -> list[str]:
        server = rig.start(RawServer(serve, hang=hang))
        return probe(server.url, *args)

    return arrange


def app_script(*replies: Reply, args: Sequence[str] = ()):
    def arrange(rig: Rig) -> list[str]:
        rig.app.set_script(list(replies))
        return probe(rig.app.url, *args)

    return arrange


def app_redirect_elsewhere(rig: Rig) -> list[str]:
    other = rig.start(AppServer())
    rig.app.set_script([Reply(302, headers={"Location": f"{other.url}/login"})])
    rig.then(lambda: assert_no_requests(other))
    return probe(rig.app.url)


def app_redirect_loop(rig: Rig) -> list[str]:
    rig.app.route("/a", Reply(307, headers={"Location": "/b"}))
    rig.app.route("/b", Reply(307, headers={"Location": "/a"}))
    return probe(rig.app.url + "/a")


def app_tls(*names: str, trusted: bool):
    def arrange(rig: Rig) -> list[str]:
        server = rig.start(TLSApp(ca().issue_cert(*names)))
        args = [f"--ca-bundle={ca_file(rig.tmp_path)}"] if trusted else []
        return probe(server.url, *args)

    return arrange


def app_dns_failure(rig: Rig) -> list[str]:
    return probe("http://bugster-step-catalog.invalid/", "--no-proxy")


TRICKLED = Reply(200, body="." * 5000 + "READY", trickle=0.02)

APP = [
    ("refused", app_refused, 3, 0, "last: refused"),
    ("reset after the request", app_raw(reset), 3, 0, "last: reset"),
    (
        "closed without an answer",
        app_raw(close_unanswered),
        3,
        0,
        "reset: closed without an answer",
    ),
    (
        "hang after accept",
        app_raw(hang=True, args=["--attempt-timeout=0.3"]),
        3,
        0,
        "last: read timeout: no complete answer within 0.3s",
    ),
    (
        "trickled body with --expect-text",
        app_script(TRICKLED, args=["--expect-text=READY", "--attempt-timeout=0.3"]),
        3,
        0,
        "body still arriving at the 0.3s cut",
    ),
    (
        "503, 502, 504, 500 then ready",
        app_script(Reply(503), Reply(502), Reply(504), Reply(500), Reply(200)),
        0,
        1,
        "after 6 attempts",
    ),
    (
        "429 with Retry-After: 1 then ready",
        app_script(
            Reply(429, headers={"Retry-After": "1"}), Reply(200), args=["--timeout=5"]
        ),
        0,
        1,
        "HTTP 429, expected 2xx; next attempt in 1.0s",
    ),
    (
        "redirect to another host",
        app_redirect_elsewhere,
        3,
        0,
        "redirect to another host",
    ),
    ("redirect loop", app_redirect_loop, 3, 0, "too many redirects"),
    (
        "TLS unknown CA",
        app_tls("localhost", "127.0.0.1", trusted=False),
        3,
        0,
        "certificate verify failed: unknown CA",
    ),
    (
        "TLS hostname mismatch",
        app_tls("shop.invalid", trusted=True),
        3,
        0,
        "certificate verify failed: hostname mismatch",
    ),
    ("DNS failure on .invalid", app_dns_failure, 3, 0, "dns failure"),
    (
        "401 protected",
        app_script(Reply(401, body="login required")),
        3,
        0,
        "--header 'Name: value'",
    ),
    # Beyond the list.
    (
        "answer that is not HTTP",
        app_raw(not_http),
        3,
        0,
        "last: connection error: BadStatusLine",
    ),
    (
        "--expect-text only after the first MiB",
        app_script(
            Reply(200, body="x" * (1024 * 1024) + "READY"), args=["--expect-text=READY"]
        ),
        3,
        0,
        "body lacks 'READY'",
    ),
]


# --- Bugster's receiver -------------------------------------------------------


def receiver_refused(rig: Rig) -> list[str]:
    rig.receiver.stop()
    return in_progress("--retries=3")


def receiver_raw(then: str, *args: str):
    def arrange(rig: Rig) -> list[str]:
        heads = Heads()
        server = rig.start(RawServer(getattr(heads, then)))
        rig.receiving(server, lambda: heads.posts)
        return in_progress("--retries=3", *args)

    return arrange


def receiver_redirect(status: int):
    def arrange(rig: Rig) -> list[str]:
        other = rig.start(BugsterReceiver(API_KEY))
        rig.count(lambda: sum(r.method == "POST" for r in other.requests))
        rig.receiver.set_script(
            [Reply(status, headers={"Location": other.webhook_url})]
        )
        return in_progress()

    return arrange


def receiver_wrong_path(rig: Rig) -> list[str]:
    rig.api_url = rig.receiver.url + "/api/v2"
    return in_progress()


def receiver_skip(*args: str):
    def arrange(rig: Rig) -> list[str]:
        rig.receiver.skip = True
        return in_progress(*args)

    return arrange


def receiver_tls_unknown_ca(rig: Rig) -> list[str]:
    server = rig.start(TLSReceiver(ca().issue_cert("127.0.0.1")))
    rig.receiving(server, lambda: server.posts)
    return in_progress("--retries=3")


def receiver_dns_failure(rig: Rig) -> list[str]:
    # Without the suite's refused proxy, so the name really is looked up.
    for name in PROXY_VARIABLES:
        rig.monkeypatch.delenv(name, raising=False)
    rig.api_url = "http://bugster-step-catalog.invalid"
    return in_progress("--retries=2")


def receiver_trickled_answer(rig: Rig) -> list[str]:
    # About 60 bytes, one every 0.05 s: each read is quick, the whole answer
    # (some 3 s) is not. --request-timeout 0.5 should cut it (see KNOWN_BUGS).
    body = json.dumps(processed())
    rig.receiver.set_script([Reply(200, body=body, trickle=0.05)])
    return in_progress("--request-timeout=0.5", "--retry-max-time=1")


HUGE = 8 * 1024 * 1024
BAD_GATEWAY_PAGE = Reply(
    502, headers={"Content-Type": "text/html"}, body="<html>Bad Gateway</html>"
)

RECEIVER = [
    ("refused", receiver_refused, 6, 0, "nothing reached Bugster"),
    ("reset after the request", receiver_raw("then_reset"), 6, 1, UNKNOWN),
    (
        "hang, read timeout",
        scripted(Reply(200, delay=30), args=["--request-timeout=0.3"]),
        6,
        1,
        "read timed out",
    ),
    ("500", scripted(detail(500, "Internal Server Error")), 6, 1, UNKNOWN),
    (
        "502, 503, 504 then 200",
        scripted(Reply(502), Reply(503), Reply(504)),
        0,
        4,
        "in 4 attempts (HTTP 200)",
    ),
    (
        "503 x5",
        scripted(*[Reply(503)] * 5),
        6,
        5,
        "after 5 attempts, the last answer HTTP 503",
    ),
    (
        "429 with Retry-After: 1 then 200",
        scripted(detail(429, "slow down", **{"Retry-After": "1"})),
        0,
        2,
        "HTTP 429; retrying in 1.0s",
    ),
    ("408 then 200", scripted(Reply(408)), 0, 2, "HTTP 408; retrying"),
    (
        "401",
        scripted(detail(401, "Invalid API key")),
        4,
        1,
        "Bugster refused the API key (HTTP 401)",
    ),
    (
        "403",
        scripted(detail(403, "Forbidden")),
        4,
        1,
        "Bugster refused the API key (HTTP 403)",
    ),
    (
        "404 wrong path",
        receiver_wrong_path,
        5,
        1,
        "Bugster rejected the event (HTTP 404)",
    ),
    (
        "422",
        scripted(detail(422, "Unknown project")),
        5,
        1,
        "(HTTP 422): Unknown project",
    ),
    ("301 redirect", receiver_redirect(301), 5, 1, "answered HTTP 301 (a redirect to"),
    ("302 redirect", receiver_redirect(302), 5, 1, "answered HTTP 302 (a redirect to"),
    ("307 redirect", receiver_redirect(307), 5, 1, "answered HTTP 307 (a redirect to"),
    (
        "malformed JSON 200",
        scripted(json_reply(200, b'{"message": "ok",')),
        0,
        1,
        "(HTTP 200)",
    ),
    ("empty 200 body", scripted(Reply(200, body=b"")), 0, 1, "(HTTP 200)"),
    (
        "huge 200 body (8 MiB of JSON)",
        scripted(Reply(200, body=processed(pad="." * HUGE))),
        0,
        1,
        "(HTTP 200)",
    ),
    (
        "wrong content type text/html 200",
        scripted(
            Reply(200, headers={"Content-Type": "text/html"}, body="<html>ok</html>")
        ),
        0,
        1,
        "(HTTP 200)",
    ),
    (
        "HTML error page 502 x3",
        scripted(*[BAD_GATEWAY_PAGE] * 3, args=["--retries=3"]),
        6,
        3,
        "the last answer HTTP 502 (<html>Bad Gateway</html>)",
    ),
    ("skip message", receiver_skip(), 0, 1, "Bugster skipped the event"),
    (
        "skip message with --fail-on-skip",
        receiver_skip("--fail-on-skip"),
        5,
        1,
        SKIP_MESSAGE,
    ),
    # Beyond the list.
    ("closed without an answer", receiver_raw("then_close"), 6, 1, UNKNOWN),
    (
        "closed without an answer, --retry-ambiguous",
        receiver_raw("then_close", "--retry-ambiguous"),
        6,
        3,
        UNKNOWN,
    ),
    ("answer that is not HTTP", receiver_raw("then_garbage"), 6, 1, UNKNOWN),
    (
        "500 then 200 with --retry-ambiguous",
        scripted(Reply(500), args=["--retry-ambiguous"]),
        0,
        2,
        "in 2 attempts",
    ),
    ("501", scripted(Reply(501)), 6, 1, "the last answer HTTP 501"),
    ("204 no content", scripted(Reply(204)), 0, 1, "(HTTP 204)"),
    (
        "429 with Retry-After: 3600 under --retry-max-time 1",
        scripted(
            *[Reply(429, headers={"Retry-After": "3600"})] * 5,
            args=["--retry-max-time=1"],
        ),
        6,
        2,
        "after 2 attempts, the last answer HTTP 429",
    ),
    ("trickled answer", receiver_trickled_answer, 6, 1, "read timed out"),
    ("TLS unknown CA", receiver_tls_unknown_ca, 6, 0, "TLS to https://127.0.0.1:"),
    ("DNS failure on .invalid", receiver_dns_failure, 6, 0, "nothing reached Bugster"),
]


# --- Secret Manager -----------------------------------------------------------


def sm_missing(rig: Rig) -> list[str]:
    return rig.secret(value=None)


def sm_denied(rig: Rig) -> list[str]:
    args = rig.secret()
    rig.secret_manager.deny(SECRET)
    return args


def sm_state(state: str):
    return lambda rig: rig.secret(state=state)


def sm_corrupt(rig: Rig) -> list[str]:
    args = rig.secret()
    rig.secret_manager.corrupt_crc(SECRET)
    return args


def sm_script(*replies: Reply, value: str = API_KEY + "\n"):
    def arrange(rig: Rig) -> list[str]:
        args = rig.secret(value=value)
        rig.secret_manager.set_script(list(replies))
        return args

    return arrange


def sm_script_timed(seconds: float, *replies: Reply):
    def arrange(rig: Rig) -> list[str]:
        return [*sm_script(*replies)(rig), f"--secret-manager-timeout={seconds:g}"]

    return arrange


def sm_token_rejected(rig: Rig) -> list[str]:
    args = rig.secret()
    rig.secret_manager.token = "another-token"  # the metadata token is stale
    return args


SECRET_MANAGER = [
    (
        "404 secret not found",
        sm_missing,
        4,
        0,
        f"secret not found: {SECRET}/versions/latest",
    ),
    ("403 permission denied", sm_denied, 4, 0, "roles/secretmanager.secretAccessor"),
    ("disabled version", sm_state("DISABLED"), 4, 0, "is disabled or destroyed"),
    ("destroyed version", sm_state("DESTROYED"), 4, 0, "is disabled or destroyed"),
    ("corrupted CRC32C", sm_corrupt, 4, 0, "failed its CRC32C check"),
    (
        "503 then OK",
        sm_script(google_error(503, "UNAVAILABLE", "try again")),
        0,
        1,
        "(HTTP 200)",
    ),
    (
        "429 then OK",
        sm_script(google_error(429, "RESOURCE_EXHAUSTED", "quota")),
        0,
        1,
        "(HTTP 200)",
    ),
    (
        "500 x many, gives up at --secret-manager-timeout",
        sm_script_timed(3, *[google_error(500, "INTERNAL", "boom")] * 200),
        4,
        0,
        "Secret Manager did not answer",
    ),
    (
        "malformed JSON 200",
        sm_script(json_reply(200, b'{"name": "x", "payload": {')),
        4,
        0,
        f"Secret Manager refused {SECRET}",
    ),
    # Beyond the list.
    (
        "401, the token expired or revoked",
        sm_token_rejected,
        4,
        0,
        "Google rejected the credentials",
    ),
    (
        "HTML login page 200 (a proxy)",
        sm_script(
            Reply(200, headers={"Content-Type": "text/html"}, body="<html>login</html>")
        ),
        4,
        0,
        f"Secret Manager refused {SECRET}",
    ),
    (
        "200 with no payload",
        sm_script(Reply(200, body={"name": f"{SECRET}/versions/1"})),
        2,
        0,
        "is empty",
    ),
]


# --- the metadata server ------------------------------------------------------


def token_reply(reply: Reply):
    def arrange(rig: Rig) -> list[str]:
        rig.monkeypatch.setattr(rig.metadata, "token_reply", reply)
        return rig.secret()

    return arrange


def metadata_unreachable(rig: Rig) -> list[str]:
    # google-auth reads GCE_METADATA_IP at each ping (test_apikey explains).
    rig.monkeypatch.setenv("GCE_METADATA_IP", refused_url().removeprefix("http://"))
    return rig.secret()


METADATA = [
    (
        "token 403, credentials revoked",
        token_reply(Reply(403, body="denied\n")),
        4,
        0,
        "Google rejected the credentials",
    ),
    (
        "token 404, service account gone",
        token_reply(Reply(404, body="Not Found\n")),
        4,
        0,
        "Google rejected the credentials",
    ),
    (
        "token malformed JSON",
        token_reply(json_reply(200, b'{"access_token": ')),
        4,
        0,
        "Google rejected the credentials",
    ),
    ("unreachable", metadata_unreachable, 4, 0, "no Google credentials"),
    # Beyond the list.
    (
        "token JSON without access_token",
        token_reply(Reply(200, body={"expires_in": 3599, "token_type": "Bearer"})),
        4,
        0,
        "Google rejected the credentials",
    ),
    (
        "token that expires at once",
        token_reply(
            Reply(
                200,
                body={
                    "access_token": "sandbox-token",
                    "expires_in": 0,
                    "token_type": "Bearer",
                },
            )
        ),
        0,
        1,
        "(HTTP 200)",
    ),
]


# --- the catalog --------------------------------------------------------------

#: Rows whose expected outcome the product does not meet yet: id -> reason.
KNOWN_BUGS: dict[str, str] = {}


@dataclass(frozen=True)
class Fault:
    arrange: Callable[[Rig], list[str]]
    code: int
    posts: int
    says: str


def _rows():
    for area, rows in (
        ("app", APP),
        ("receiver", RECEIVER),
        ("secret manager", SECRET_MANAGER),
        ("metadata", METADATA),
    ):
        for what, arrange, code, posts, says in rows:
            plural = "" if posts == 1 else "s"
            name = f"{area}: {what} -> exit {code} after {posts} POST{plural}"
            marks = ()
            if name in KNOWN_BUGS:
                marks = pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name])
            yield pytest.param(Fault(arrange, code, posts, says), id=name, marks=marks)


CATALOG = list(_rows())


@pytest.mark.parametrize("fault", CATALOG)
def test_fault(cli, rig, fault):
    args = fault.arrange(rig)
    run = cli(
        "notify",
        *IDS,
        f"--api-url={rig.api_url}",
        f"--secret-manager-endpoint={rig.secret_manager.url}",
        *FAST,
        *args,
        env=rig.env,
    )

    assert run.code == fault.code, run.err
    if not rig.elsewhere:  # the CLI may give up before the receiver notes a POST
        rig.receiver.wait_for_requests(fault.posts, timeout=NOTED_WITHIN)
    assert rig.posts() == fault.posts, run.err
    assert fault.says in run.err, run.err
    for check in rig.checks:
        check()
    assert "Traceback" not in run.output


def test_catalog_covers_each_area_and_has_at_least_34_rows():
    areas = [param.id.split(":")[0] for param in CATALOG]

    assert len(CATALOG) >= 34
    for area in ("app", "receiver", "secret manager", "metadata"):
        assert areas.count(area) >= 4, area
    assert len({param.id for param in CATALOG}) == len(CATALOG)
