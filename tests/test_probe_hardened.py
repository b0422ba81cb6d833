"""The probe on a bad day: slow and hung servers, odd addresses, broken names,
proxies, TLS, and assertions on what the deployment answers.

Every server here is on 127.0.0.1 or ::1 and started by the test: ``AppServer``
(trickling when asked), a TLS app with a ``trustme`` CA, and ``RawServer`` for
faults below HTTP (a reset, a close without an answer, a hang). Names that must
not resolve are under ``.invalid`` (RFC 6761). Where a test needs a name to
resolve to several addresses, the probe is given a hosts table (``hosts``) in
place of getaddrinfo, with loopback addresses only.

Time bounds are generous upper limits that prove a cut happened, never
measurements of pacing.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from bugster_step import log as logmod
from bugster_step.errors import ConfigError, NotReadyError
from bugster_step.probe import Probe, ProbeOptions, describe
from sandbox import AppServer, Reply
from tests.conftest import FAST

PROBE_FAST = [arg for arg in FAST if not arg.startswith("--retry")]
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
CUT_BOUND = 5.0  # seconds: far above any cut tested here, far below a hang


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)"
)


@pytest.fixture(autouse=True)
def probe_log():
    """The step's log for direct Probe tests, debug lines included, as text."""
    stream = io.StringIO()
    logmod.setup(logging.DEBUG, stream)
    return stream


def hosts(table: dict[str, list[str]]) -> Callable:
    """A resolver with getaddrinfo's signature: names in ``table`` get those
    loopback addresses, in order, filtered by family; other names go to the
    system's resolver."""
    for addresses in table.values():
        assert set(addresses) <= set(LOOPBACK_ADDRESSES), addresses

    def resolve(host, port, family=0, kind=0, proto=0, flags=0):
        if host not in table:
            return socket.getaddrinfo(host, port, family, kind, proto, flags)
        answers = []
        for address in table[host]:
            af = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (socket.AF_UNSPEC, af):
                where = (address, port, 0, 0) if ":" in address else (address, port)
                answers.append((af, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", where))
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers

    return resolve


def make_probe(url: str, resolve: Callable = socket.getaddrinfo, **options) -> Probe:
    options = {"passes": 1, "timeout": 5.0, **options}
    return Probe(ProbeOptions(url=url, **options), resolve=resolve)


def one_attempt(probe: Probe, remaining: float = 30.0):
    """Run a single attempt; return it and the wall-clock seconds it took."""
    began = time.monotonic()
    attempt = probe.attempt(1, probe.clock(), remaining)
    return attempt, time.monotonic() - began


def probe_cli(cli, url: str, *args: str, env: dict[str, str] | None = None):
    return cli("probe", url, *PROBE_FAST, *args, env=env)


def last_line(run) -> str:
    return next(line for line in reversed(run.err.splitlines()) if ": error: " in line)


def attempt_lines(run) -> list[str]:
    return [line for line in run.err.splitlines() if ": attempt " in line]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --- servers below HTTP -----------------------------------------------------


def read_request(conn: socket.socket) -> bool:
    """Read up to the end of a request's headers; False if the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


def reset(conn: socket.socket) -> None:
    """Read the request, then reset the connection (RST, not FIN)."""
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_unanswered(conn: socket.socket) -> None:
    read_request(conn)


class RawServer:
    """TCP on 127.0.0.1; each connection goes to ``serve(conn)`` in a thread,
    then is closed. ``hang=True`` instead holds it, unanswered, until the
    client closes it. Counts connections, and notes any that arrived while an
    earlier one was still open."""

    def __init__(self, serve: Callable | None = None, hang: bool = False) -> None:
        self.serve, self.hang = serve, hang
        self.accepted = 0
        self.overlaps = 0
        self.open = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # how often the accept loop looks at stop()
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._sock.close()

    def wait_closed(self, timeout: float = CUT_BOUND) -> bool:
        """True once every connection so far has been closed by the client."""
        with self._cond:
            return self._cond.wait_for(lambda: self.open == 0, timeout)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with self._cond:
                self.accepted += 1
                # Allow the kernel a moment to deliver an earlier close.
                if not self._cond.wait_for(lambda: self.open == 0, 2.0):
                    self.overlaps += 1
                self.open += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                if self.hang:
                    read_request(conn)
                    while conn.recv(4096):
                        pass
                elif self.serve:
                    self.serve(conn)
            except OSError:
                pass
        with self._cond:
            self.open -= 1
            self._cond.notify_all()


# --- a TLS app --------------------------------------------------------------


class _OkHandler(BaseHTTPRequestHandler):
    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args) -> None:
        """Quiet."""


class TLSApp(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 answering 200 "ok", with ``cert`` from a trustme CA."""

    daemon_threads = True

    def __init__(self, cert: trustme.LeafCert) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        self.hits = 0
        super().__init__(("127.0.0.1", 0), _OkHandler)
        self.url = f"https://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def server_bind(self) -> None:
        # No DNS lookup of our own address (HTTPServer's getfqdn).
        socketserver.TCPServer.server_bind(self)

    def get_request(self):
        conn, address = self.socket.accept()
        wrapped = self.context.wrap_socket(
            conn, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def handle_error(self, request, client_address) -> None:
        """A client that rejects our certificate is what these tests are about."""

    def __enter__(self) -> TLSApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def ca_file(ca, tmp_path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def other_ca_file(tmp_path) -> str:
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_app(ca):
    with TLSApp(ca.issue_cert("localhost", "127.0.0.1")) as server:
        yield server


# --- each attempt cut at its wall-clock limit -------------------------------

TRICKLED_BODY = Reply(200, body="." * 5000 + "READY", trickle=0.02)


def test_body_trickling_past_the_attempt_timeout_is_cut_at_it():
    with AppServer(script=[TRICKLED_BODY]) as app:
        probe = make_probe(app.url, expect_text="READY", attempt_timeout=0.5)

        attempt, took = one_attempt(probe)

    assert took < CUT_BOUND
    assert (attempt.ready, attempt.error) == (False, "read timeout")
    assert attempt.detail == "body still arriving at the 0.5s cut"


def test_headers_trickling_past_the_attempt_timeout_are_cut_at_it():
    reply = Reply(200, headers={"X-Pad": "p" * 500}, trickle=0.02, trickle_head=True)
    with AppServer(script=[reply]) as app:
        attempt, took = one_attempt(make_probe(app.url, attempt_timeout=0.5))

    assert took < CUT_BOUND
    assert (attempt.error, attempt.detail) == (
        "read timeout",
        "no complete answer within 0.5s",
    )


def test_trickling_body_is_ready_without_expect_text_since_it_is_never_read():
    with AppServer(script=[TRICKLED_BODY]) as app:
        attempt, took = one_attempt(make_probe(app.url, attempt_timeout=30))

    assert attempt.ready
    assert took < CUT_BOUND


def test_overall_deadline_cuts_the_attempt_in_flight(cli):
    with AppServer(script=[TRICKLED_BODY]) as app:
        began = time.monotonic()
        run = probe_cli(
            cli, app.url, "--timeout=1", "--attempt-timeout=60", "--expect-text=READY"
        )
        took = time.monotonic() - began

        assert run.code == 3
        assert len(app.requests) == 1
    assert took < CUT_BOUND
    assert "not ready after 1 attempts" in last_line(run)
    assert "last: read timeout: body still arriving at the 1.0s cut" in last_line(run)


def test_a_cut_attempt_has_closed_its_connection_when_it_returns():
    with RawServer(hang=True) as server:
        attempt, took = one_attempt(make_probe(server.url, attempt_timeout=0.5))

        assert server.wait_closed()
        assert server.accepted == 1
    assert attempt.error == "read timeout"
    assert took < CUT_BOUND


def test_exactly_one_attempt_is_in_flight_at_any_time(cli):
    with RawServer(hang=True) as server:
        run = probe_cli(cli, server.url, "--timeout=2", "--attempt-timeout=0.3")

        assert run.code == 3
        assert server.wait_closed()
        assert server.accepted == len(attempt_lines(run)) > 1
        assert server.overlaps == 0


def test_a_resolver_that_never_answers_is_cut_too():
    answer = threading.Event()

    def stuck(*args):
        answer.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")

    try:
        attempt, took = one_attempt(
            make_probe("http://localhost:1/", resolve=stuck, attempt_timeout=0.5)
        )
    finally:
        answer.set()

    assert took < CUT_BOUND
    assert attempt.outcome() == "dns failure: no answer from the resolver within 0.5s"


# --- every address, or one family -------------------------------------------


def test_localhost_url_reaches_an_app_that_listens_on_127_0_0_1_only(cli, app):
    run = probe_cli(cli, f"http://localhost:{app.port}/")

    assert run.code == 0, run.err
    assert len(app.requests) == 2


@needs_ipv6
def test_every_address_is_tried_so_a_refusing_ipv6_loopback_falls_through(
    app, probe_log
):
    resolve = hosts({"localhost": ["::1", "127.0.0.1"]})
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", app.port))  # bound, not listening: ::1 refuses
        probe = make_probe(f"http://localhost:{app.port}/", resolve=resolve)

        result = probe.wait_until_ready()

    assert result.attempts[0].ready
    assert len(app.requests) == 1
    assert f"connecting to ::1 port {app.port}: " in probe_log.getvalue()


@needs_ipv6
def test_unreachable_address_falls_through_to_the_next(app, probe_log):
    # An IPv6 socket is IPv6-only, so a v4-mapped answer is unreachable at once.
    resolve = hosts({"localhost": ["::ffff:127.0.0.1", "127.0.0.1"]})

    result = make_probe(f"http://localhost:{app.port}/", resolve).wait_until_ready()

    assert result.attempts[0].ready
    assert len(app.requests) == 1
    assert "unreachable" in probe_log.getvalue().lower()


@needs_ipv6
def test_only_unreachable_addresses_are_an_unreachable_attempt(app):
    resolve = hosts({"localhost": ["::ffff:127.0.0.1"]})

    attempt, _ = one_attempt(make_probe(f"http://localhost:{app.port}/", resolve))

    assert (attempt.ready, attempt.error) == (False, "unreachable")


@pytest.fixture
def dual_stack():
    """The same port answered on 127.0.0.1 and on ::1, by two apps."""
    if not _has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    with AppServer() as v4, AppServer(host="::1", port=v4.port) as v6:
        yield v4, v6


@pytest.mark.parametrize(
    ("family", "used"),
    [(socket.AF_INET, "v4"), (socket.AF_INET6, "v6"), (socket.AF_UNSPEC, "v6")],
    ids=["ipv4", "ipv6", "either-takes-the-first-answer"],
)
def test_family_decides_which_addresses_are_tried(dual_stack, family, used):
    v4, v6 = dual_stack
    resolve = hosts({"localhost": ["::1", "127.0.0.1"]})
    probe = make_probe(f"http://localhost:{v4.port}/", resolve, family=family)

    assert probe.wait_until_ready().attempts[0].ready

    assert (len(v4.requests), len(v6.requests)) == ((1, 0) if used == "v4" else (0, 1))


@needs_ipv6
def test_ipv6_flag_reaches_an_app_on_ipv6_loopback(cli):
    with AppServer(host="::1") as app:
        run = probe_cli(cli, app.url, "--ipv6")

        assert run.code == 0, run.err
        assert len(app.requests) == 2


def test_ipv6_flag_with_an_ipv4_address_is_a_dns_failure_and_sends_nothing(cli, app):
    run = probe_cli(cli, app.url, "--ipv6", "--timeout=0.6")

    assert run.code == 3
    outcome = "dns failure: no IPv6 address for 127.0.0.1 (--ipv6)"
    assert f"last: {outcome}" in last_line(run)
    assert app.requests == []


def test_ipv4_flag_reaches_an_ipv4_app(cli, app):
    run = probe_cli(cli, f"http://localhost:{app.port}", "--ipv4")

    assert run.code == 0, run.err


def test_ipv4_and_ipv6_together_are_a_usage_error(cli, app):
    run = probe_cli(cli, app.url, "--ipv4", "--ipv6")

    assert run.code == 2
    assert "--ipv4 and --ipv6 exclude each other" in run.err
    assert app.requests == []


# --- each failure with its own class ----------------------------------------


@pytest.fixture
def fault(request, app, tls_app):
    """A URL that fails in the way named by the parameter."""
    kind = request.param
    if kind == "dns":
        yield "http://bugster-step-probe.invalid/", ["--no-proxy"]
    elif kind in ("reset", "closed"):
        with RawServer(reset if kind == "reset" else close_unanswered) as server:
            yield server.url, []
    elif kind == "refused":
        yield refused_url(), []
    elif kind == "timeout":
        app.set_script([Reply(200, delay=30)])
        yield app.url, ["--attempt-timeout=0.3"]
    elif kind == "tls":
        yield f"https://127.0.0.1:{app.port}/", []
    elif kind == "certificate":
        yield tls_app.url, []
    elif kind == "redirects":
        for n in range(12):
            app.route(f"/r{n}", Reply(307, headers={"Location": f"/r{n + 1}"}))
        yield app.url + "/r0", []


# The whole outcome, as a pattern: the class, then any detail.
OUTCOMES = {
    # The resolver may say "no such name" or, offline, "try again".
    "dns": r"dns failure: (name does not resolve|temporary failure, .*)",
    "refused": r"refused",
    "reset": r"reset",
    "closed": r"reset: closed without an answer",
    "timeout": r"read timeout: no complete answer within 0\.3s",
    "tls": r"tls failure: wrong version number \(does the server speak TLS .*\)",
    "certificate": r"tls failure: certificate verify failed: unknown CA \(.*\)",
    "redirects": r"too many redirects: more than 10",
}


@pytest.mark.parametrize("fault", list(OUTCOMES), indirect=True)
def test_each_failure_is_named_in_its_attempt_line_and_the_last_line(
    cli, request, fault
):
    url, args = fault
    outcome = OUTCOMES[request.node.callspec.id]

    run = probe_cli(cli, url, "--timeout=0.8", *args)

    assert run.code == 3
    lines = attempt_lines(run)
    assert re.search(rf"attempt 1 at [\d.]+s: {outcome}; ", lines[0]), lines[0]
    assert re.search(rf"; last: {outcome}( \(before it: .*)?$", last_line(run))


def test_name_that_does_not_resolve_reads_name_does_not_resolve():
    def nowhere(*args):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    probe = make_probe("http://shop.invalid/", resolve=nowhere, trust_env=False)

    attempt, _ = one_attempt(probe)

    assert attempt.outcome() == "dns failure: name does not resolve"


def test_a_describe_of_something_unknown_is_a_connection_error():
    assert describe(RuntimeError("odd")) == ("connection error", "RuntimeError")


# --- proxies ----------------------------------------------------------------


@pytest.fixture
def proxy(monkeypatch):
    """A proxy on 127.0.0.1 that answers every request itself, set in the
    environment with no NO_PROXY."""
    with AppServer(ready_body="from the proxy") as server:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, server.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield server


def test_proxy_from_the_environment_is_used(cli, proxy):
    run = probe_cli(cli, "http://shop.invalid/status", "--expect-text=from the proxy")

    assert run.code == 0, run.err
    assert [r.path for r in proxy.requests] == ["http://shop.invalid/status"] * 2


def test_no_proxy_in_the_environment_is_honoured(cli, proxy, app, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    run = probe_cli(cli, app.url)

    assert run.code == 0, run.err
    assert (len(app.requests), proxy.requests) == (2, [])


def test_no_proxy_flag_connects_directly(cli, proxy, app):
    run = probe_cli(cli, app.url, "--no-proxy")

    assert run.code == 0, run.err
    assert (len(app.requests), proxy.requests) == (2, [])


def test_proxy_that_refuses_is_a_proxy_failure(cli):
    # The suite's environment points proxies at a refused loopback port.
    run = probe_cli(cli, "http://shop.invalid/", "--timeout=0.6")

    assert run.code == 3
    assert "last: proxy failure: refused" in last_line(run)


# --- TLS --------------------------------------------------------------------


def test_ca_bundle_flag_verifies_the_app(cli, tls_app, ca_file):
    run = probe_cli(cli, tls_app.url, f"--ca-bundle={ca_file}")

    assert run.code == 0, run.err
    assert tls_app.hits == 2


@pytest.mark.parametrize(
    "variable", ["BUGSTER_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"]
)
def test_ca_bundle_from_each_variable_verifies_the_app(cli, tls_app, ca_file, variable):
    run = probe_cli(cli, tls_app.url, env={variable: ca_file})

    assert run.code == 0, run.err


@pytest.mark.parametrize(
    ("given", "verify"),
    [
        ({"flag": "A", "REQUESTS_CA_BUNDLE": "B", "SSL_CERT_FILE": "C"}, "A"),
        ({"REQUESTS_CA_BUNDLE": "B", "CURL_CA_BUNDLE": "C"}, "B"),
        ({"CURL_CA_BUNDLE": "C", "SSL_CERT_FILE": "B"}, "C"),
        ({"SSL_CERT_FILE": "C"}, "C"),
        ({"REQUESTS_CA_BUNDLE": ""}, True),
        ({}, True),
    ],
    ids=[
        "flag-first",
        "requests-next",
        "curl-next",
        "ssl-cert-file-last",
        "empty-is-unset",
        "none",
    ],
)
def test_ca_bundle_is_resolved_in_one_stated_order(tmp_path, given, verify):
    paths = {name: str(tmp_path / name) for name in "ABC"}
    for path in paths.values():
        open(path, "w").close()
    env = {name: paths.get(value, value) for name, value in given.items()}
    flag = env.pop("flag", None)

    resolved = ProbeOptions.verify_for(flag, environ=env)

    assert resolved == paths.get(verify, verify)


def test_flag_bundle_wins_over_requests_ca_bundle(cli, tls_app, ca_file, other_ca_file):
    run = probe_cli(
        cli,
        tls_app.url,
        f"--ca-bundle={ca_file}",
        env={"REQUESTS_CA_BUNDLE": other_ca_file},
    )

    assert run.code == 0, run.err


def test_no_proxy_flag_still_honours_requests_ca_bundle(cli, tls_app, ca_file):
    run = probe_cli(cli, tls_app.url, "--no-proxy", env={"REQUESTS_CA_BUNDLE": ca_file})

    assert run.code == 0, run.err


def test_certificate_for_another_name_is_a_hostname_mismatch(cli, ca, ca_file):
    with TLSApp(ca.issue_cert("shop.invalid")) as tls_app:
        run = probe_cli(cli, tls_app.url, f"--ca-bundle={ca_file}", "--timeout=0.6")

    assert run.code == 3
    assert "last: tls failure: certificate verify failed: hostname mismatch" in (
        last_line(run)
    )


def test_insecure_accepts_an_unknown_ca_and_warns_on_every_run(cli, tls_app):
    runs = [probe_cli(cli, tls_app.url, "--insecure") for _ in range(2)]

    for run in runs:
        assert run.code == 0, run.err
        assert run.err.count("--insecure: TLS certificates are not verified") == 1


@pytest.mark.parametrize(
    "source",
    [
        "--ca-bundle",
        "BUGSTER_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
    ],
)
def test_missing_ca_bundle_is_a_usage_error_naming_where_it_came_from(
    cli, app, tmp_path, source
):
    missing = str(tmp_path / "nowhere.pem")
    if source.startswith("--"):
        run = probe_cli(cli, app.url, f"{source}={missing}")
    else:
        run = probe_cli(cli, app.url, env={source: missing})

    assert run.code == 2
    assert f"{source} names {missing}, which does not exist" in run.err
    assert "Traceback" not in run.output
    assert app.requests == []


def test_insecure_with_a_ca_bundle_is_a_usage_error(cli, app, ca_file):
    run = probe_cli(cli, app.url, "--insecure", f"--ca-bundle={ca_file}")

    assert run.code == 2
    assert "--insecure and --ca-bundle contradict each other" in run.err


# --- what counts as ready: headers, HEAD ------------------------------------


def test_expect_header_is_ready_only_once_the_header_has_the_value(cli):
    script = [
        Reply(200, headers={"X-Version": "old"}),
        Reply(200, headers={"X-Version": "3f78685"}),
    ]
    with AppServer(script=script) as app:
        run = probe_cli(cli, app.url, "--expect-header=x-version=3f78685")

        assert run.code == 0, run.err
        assert len(app.requests) == 3
    assert 'x-version was "old" (expected "3f78685")' in run.err


@pytest.mark.parametrize(
    ("headers", "seen"),
    [
        ({"X-Version": "abc"}, 'x-version was "abc" (expected "def")'),
        ({}, 'x-version missing (expected "def")'),
    ],
    ids=["other-value", "missing"],
)
def test_expect_header_never_met_puts_the_value_seen_in_the_last_line(
    cli, headers, seen
):
    with AppServer(script=[Reply(200, headers=headers)]) as app:
        run = probe_cli(cli, app.url, "--expect-header=X-Version=def", "--timeout=0.6")

    assert run.code == 3
    assert f"last: HTTP 200, {seen}" in last_line(run)


def test_several_expect_headers_must_all_match(cli):
    reply = Reply(200, headers={"X-Version": "def", "X-Region": "eu"})
    with AppServer(script=[reply]) as app:
        run = probe_cli(
            cli,
            app.url,
            "--expect-header=x-version=def",
            "--expect-header=x-region=us",
            "--timeout=0.6",
        )

    assert run.code == 3
    assert 'last: HTTP 200, x-region was "eu" (expected "us")' in last_line(run)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x-version", "is not NAME=VALUE"),
        ("=abc", "is not NAME=VALUE"),
        ("x version=abc", "is not NAME=VALUE"),
        ("x-version:=abc", "is not NAME=VALUE"),
        ("x-version=", "x-version has no value"),
    ],
    ids=["no-equals", "no-name", "space-in-name", "colon-in-name", "no-value"],
)
def test_bad_expect_header_is_a_usage_error(cli, app, value, message):
    run = probe_cli(cli, app.url, f"--expect-header={value}")

    assert run.code == 2
    assert "--expect-header" in run.err
    assert message in run.err
    assert app.requests == []


def test_expect_header_given_twice_with_two_values_is_a_config_error():
    with pytest.raises(ConfigError, match="X-Version is given two values"):
        ProbeOptions.expected_headers(["x-version=a", "X-Version=b"])


def test_expect_text_never_met_puts_the_start_of_the_body_in_the_last_line(cli):
    with AppServer(script=[Reply(200, body="maintenance\n  page")]) as app:
        run = probe_cli(cli, app.url, "--expect-text=welcome", "--timeout=0.6")

    assert run.code == 3
    assert """last: HTTP 200, body lacks 'welcome' (it began "maintenance page")""" in (
        last_line(run)
    )


def test_method_head_sends_head(cli, app):
    run = probe_cli(cli, app.url, "--method=head")

    assert run.code == 0, run.err
    assert [r.method for r in app.requests] == ["HEAD", "HEAD"]


@pytest.mark.parametrize("status", [404, 405])
def test_head_refused_by_the_app_gets_the_hint_once(cli, status):
    with AppServer(script=[Reply(status), Reply(status), Reply(200)]) as app:
        run = probe_cli(cli, app.url, "--method=HEAD")

        assert run.code == 0, run.err
        assert len(app.requests) == 4
    assert run.err.count(f"answers {status} to HEAD") == 1
    assert "--method GET" in run.err


def test_404_to_get_gets_no_head_hint(cli):
    with AppServer(script=[Reply(404), Reply(200)]) as app:
        run = probe_cli(cli, app.url)

    assert run.code == 0, run.err
    assert "to HEAD" not in run.err


def test_head_with_expect_text_is_a_usage_error(cli, app):
    run = probe_cli(cli, app.url, "--method=HEAD", "--expect-text=ok")

    assert run.code == 2
    assert "--expect-text needs a body" in run.err
    assert app.requests == []


def test_retry_after_on_429_to_head_is_respected():
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    script = [Reply(429, headers={"Retry-After": "7"}), Reply(200)]
    with AppServer(script=script) as app:
        Probe(
            ProbeOptions(url=app.url, method="HEAD"),
            clock=lambda: now[0],
            sleep=sleep,
        ).wait_until_ready()

    assert waits == [7.0, 1.0]


def test_not_ready_error_keeps_every_attempt(app):
    app.set_script([Reply(503)])
    with pytest.raises(NotReadyError) as raised:
        make_probe(app.url, timeout=0.6).wait_until_ready()

    assert len(raised.value.attempts) == len(app.requests)


def test_probe_help_lists_the_new_options(cli):
    run = cli("probe", "--help")

    for option in (
        "--expect-header",
        "--method",
        "--ipv4",
        "--ipv6",
        "--no-proxy",
        "--ca-bundle",
        "BUGSTER_CA_BUNDLE",
        "--insecure",
    ):
        assert option in run.out, option


def keep_alive(conn: socket.socket) -> None:
    """Answer "ok" over HTTP/1.1 keep-alive until the client closes."""
    while read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_every_attempt_opens_its_own_connection_even_to_a_keep_alive_server(cli):
    with RawServer(keep_alive) as server:
        run = probe_cli(cli, server.url, "--expect-text=ok")

        assert run.code == 0, run.err
        assert server.accepted == 2
