"""Wait until the deployed URL is ready: a deadline loop that remembers its attempts.

One attempt is in flight at a time. An attempt is "ready" when the final answer
(after same-host redirects) has an expected status and, if asked, the expected
headers and text. Readiness must hold on consecutive attempts, the confirming
one about a second after the first, so a deployment that flaps does not pass.

Each attempt runs in the caller's thread under a watchdog (``_Wire``): the
probe's own connection classes register every socket the attempt opens, and at
the attempt's wall-clock limit a timer shuts those sockets down, which wakes a
connect or read blocked on them. So a server that accepts and goes quiet, or
trickles its headers or body, holds an attempt no longer than its limit, and
the overall deadline cuts the attempt in flight. The same classes try every
address a name resolves to, in order, in one family with --ipv4 or --ipv6. They
are installed through requests' adapter (``_Adapter``), so nothing process-wide
is patched.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import http.client
import os
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    InsecureRequestWarning,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)

from bugster_step import redact
from bugster_step.errors import ConfigError, NotReadyError
from bugster_step.log import log

REDIRECTS = (301, 302, 303, 307, 308)
METHODS = ("GET", "HEAD")
BODY_LIMIT = 1024 * 1024  # bytes read for --expect-text
EXCERPT = 60  # characters of a body or header shown beside the value expected
MIN_ATTEMPT = 0.5  # seconds: the shortest attempt worth making before the deadline
CONNECT_CAP = 10.0  # seconds: the longest wait for one connection, in a longer attempt
# Seconds past the cut for socket timeouts: a backstop, should the cut ever fail
# to wake a blocked call. Later than the cut, so the cut is what reports.
BACKSTOP = 1.0
# CA bundle variables after --ca-bundle / BUGSTER_CA_BUNDLE, in the order they
# count. requests reads the first two itself, and only while it trusts the
# environment; the probe resolves all of them and passes the path explicitly.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")

# Shown once, on the first 401 or 403.
PROTECTION_HINT = (
    "the deployment answers {status}: if it is protected (deployment protection, "
    "IAM, basic auth), give the probe a bypass header with "
    "--header 'Name: value'"
)
# Shown once, on the first 404 or 405 to --method HEAD.
HEAD_HINT = (
    "the deployment answers {status} to HEAD: if the app does not route HEAD "
    "(many serve GET only), probe with --method GET"
)
# Shown at the start of every run with --insecure.
INSECURE_WARNING = (
    "--insecure: TLS certificates are not verified, so anything between this "
    "step and the deployment can pose as it; give its CA with --ca-bundle instead"
)


class StatusSet:
    """Accepted statuses from text like ``2xx``, ``200,204`` or ``200-299,301``."""

    def __init__(self, text: str = "2xx") -> None:
        self.text = text
        self.ranges: list[tuple[int, int]] = []
        for part in text.split(","):
            part = part.strip().lower()
            if not part:
                continue
            try:
                if len(part) == 3 and part.endswith("xx") and part[0].isdigit():
                    low = int(part[0]) * 100
                    self.ranges.append((low, low + 99))
                elif "-" in part:
                    low_text, high_text = part.split("-", 1)
                    self.ranges.append((int(low_text), int(high_text)))
                else:
                    self.ranges.append((int(part), int(part)))
            except ValueError:
                raise ConfigError(
                    f"--expect-status: {part!r} is not a status, a range like "
                    "200-299, or a class like 2xx"
                ) from None
        if not self.ranges:
            raise ConfigError("--expect-status: give at least one status")
        for low, high in self.ranges:
            if not (100 <= low <= high <= 599):
                raise ConfigError(
                    f"--expect-status: {low}-{high} is not a range of HTTP statuses"
                )

    def __contains__(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.ranges)

    def __str__(self) -> str:
        return self.text


@dataclass
class ProbeOptions:
    """Every probe setting; the static methods turn flags into them."""

    url: str
    expect_status: StatusSet = field(default_factory=StatusSet)
    expect_text: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 300.0  # the whole wait, seconds
    attempt_timeout: float = 10.0  # one attempt, wall clock
    initial_wait: float = 2.0
    max_wait: float = 15.0
    confirm_delay: float = 1.0  # before the confirming attempt
    passes: int = 2  # consecutive ready attempts needed
    max_redirects: int = 10
    verify: bool | str = True  # False (--insecure), True (certifi), or a CA bundle
    retry_after_cap: float = 60.0
    method: str = "GET"  # or HEAD
    expect_headers: Mapping[str, str] = field(default_factory=dict)  # name: value
    family: int = socket.AF_UNSPEC  # AF_INET with --ipv4, AF_INET6 with --ipv6
    trust_env: bool = True  # proxies and NO_PROXY from the environment; --no-proxy

    @staticmethod
    def family_for(ipv4: bool, ipv6: bool) -> int:
        if ipv4 and ipv6:
            raise ConfigError(
                "--ipv4 and --ipv6 exclude each other: give one, or neither to "
                "try every address the name resolves to"
            )
        return socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC

    @staticmethod
    def expected_headers(values: Iterable[str]) -> dict[str, str]:
        """``NAME=VALUE`` texts (from --expect-header) as a dict."""
        expected: dict[str, str] = {}
        for text in values:
            name, sep, value = text.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name or any(c.isspace() or c == ":" for c in name):
                raise ConfigError(
                    f"--expect-header: {text!r} is not NAME=VALUE, "
                    "e.g. 'x-version=3f78685'"
                )
            if not value:
                raise ConfigError(
                    f"--expect-header: {name} has no value (an unset variable "
                    "in 'NAME=$VAR'?)"
                )
            if expected.get(name.lower(), value) != value:
                raise ConfigError(f"--expect-header: {name} is given two values")
            expected[name.lower()] = value
        return expected

    @staticmethod
    def verify_for(
        ca_bundle: str | None,
        named: str = "--ca-bundle",
        insecure: bool = False,
        environ: Mapping[str, str] = os.environ,
    ) -> bool | str:
        """What TLS is verified with: the first CA bundle set, in order, else True.

        ``ca_bundle`` is --ca-bundle's value, ``named`` where it came from (the
        flag or BUGSTER_CA_BUNDLE); then CA_VARIABLES. Every one that is set
        must exist, since the webhook's requests reads some of them too.
        """
        given = [(named, ca_bundle)] + [
            (name, environ.get(name)) for name in CA_VARIABLES
        ]
        given = [(name, path) for name, path in given if path]
        for name, path in given:
            if not os.path.exists(path):
                raise ConfigError(
                    f"{name} names {path}, which does not exist",
                    hint=f"point {name} at a PEM file of CA certificates, or unset it",
                )
        if insecure and ca_bundle:
            raise ConfigError(
                f"--insecure and {named} contradict each other: verify with the "
                "bundle, or not at all"
            )
        if insecure:
            return False
        return given[0][1] if given else True


@dataclass
class Attempt:
    number: int
    elapsed: float  # seconds since the probe started, when this attempt began
    ready: bool
    status: int | None = None
    # A short class: "dns failure", "refused", "reset", "connect timeout",
    # "read timeout", "tls failure", "too many redirects", "proxy failure", ...
    error: str | None = None
    detail: str | None = None
    retry_after: float | None = None

    def outcome(self) -> str:
        if self.error:
            return self.error + (f": {self.detail}" if self.detail else "")
        text = f"HTTP {self.status}"
        return text + (f", {self.detail}" if self.detail else "")


@dataclass
class ProbeResult:
    attempts: list[Attempt]
    elapsed: float


class _AttemptTimeout(Exception):
    """A redirect hop would start with no time left in the attempt."""


class _LookupFailure(socket.gaierror):
    """A failed lookup, described in our words (``strerror``) rather than libc's."""


# --- what went wrong, in a few words ----------------------------------------

# OpenSSL's X509_V_ERR_* codes for the verification failures people meet most.
_CERT_PROBLEMS = {
    9: "certificate not yet valid",
    10: "certificate expired",
    18: "self-signed certificate",
    19: "unknown CA",  # self-signed certificate in the chain
    20: "unknown CA",  # unable to get local issuer certificate
    21: "unknown CA",  # unable to verify the first certificate
    62: "hostname mismatch",
    64: "hostname mismatch",  # an IP address URL
}
_DNS_PROBLEMS = {
    socket.EAI_NONAME: "name does not resolve",
    socket.EAI_AGAIN: "temporary failure, the resolver did not answer",
    getattr(socket, "EAI_NODATA", socket.EAI_NONAME): "name does not resolve",
    getattr(socket, "EAI_ADDRFAMILY", socket.EAI_NONAME): "no address of that family",
}
# Checked in order against each exception in the chain, outermost first.
_CLASSES = (
    (ConnectTimeoutError, "connect timeout"),
    (ReadTimeoutError, "read timeout"),
    (ConnectionRefusedError, "refused"),
    (ConnectionResetError, "reset"),
    (TimeoutError, "timed out"),
)
_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH)
_NO_ADDRESS = {
    socket.EAI_NONAME,
    getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
    getattr(socket, "EAI_ADDRFAMILY", socket.EAI_NONAME),
}
_FAMILY_FLAGS = {
    socket.AF_INET: ("IPv4", "--ipv4"),
    socket.AF_INET6: ("IPv6", "--ipv6"),
}


def describe(exc: BaseException) -> tuple[str, str | None]:
    """The class of a failure and a few words on it, so that a name that does
    not resolve reads unlike a server that is down."""
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "too many redirects", None
    if isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema
    ):
        return "bad url", str(exc)
    causes = list(_causes(exc))
    found = next(filter(None, map(_describe_one, causes)), None)
    found = found or ("connection error", type(causes[-1]).__name__)
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy failure", ": ".join(filter(None, found))
    return found


def _describe_one(exc: BaseException) -> tuple[str, str | None] | None:
    if isinstance(exc, NewConnectionError):
        return None  # a ConnectTimeoutError to urllib3, whatever it wraps: look inside
    if isinstance(exc, _LookupFailure):
        return "dns failure", exc.strerror
    if isinstance(exc, socket.gaierror):
        return "dns failure", _DNS_PROBLEMS.get(exc.errno, exc.strerror)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls failure", _certificate_problem(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls failure", _tls_problem(exc)
    if isinstance(exc, http.client.RemoteDisconnected):
        return "reset", "closed without an answer"
    for kind, name in _CLASSES:
        if isinstance(exc, kind):
            return name, None
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return "unreachable", exc.strerror
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it wraps: urllib3's reason, arguments, causes, contexts."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), *current.args]
        inner += [current.__cause__, current.__context__]
        todo += [e for e in inner if isinstance(e, BaseException)]


def _certificate_problem(exc: ssl.SSLCertVerificationError) -> str:
    message = exc.verify_message or exc.reason or str(exc)
    label = _CERT_PROBLEMS.get(exc.verify_code)
    return "certificate verify failed: " + (
        f"{label} ({message})" if label else message
    )


def _tls_problem(exc: ssl.SSLError) -> str:
    text = (exc.reason or "").lower().replace("_", " ") or str(exc)
    if exc.reason == "WRONG_VERSION_NUMBER":
        text += " (does the server speak TLS on this port?)"
    return text


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


def same_host(origin: str, target: str) -> bool:
    """A redirect we follow: same host and port, or http upgraded to https."""
    a, b = urllib.parse.urlsplit(origin), urllib.parse.urlsplit(target)
    if (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    default = {"http": 80, "https": 443}
    a_port = a.port or default.get(a.scheme)
    b_port = b.port or default.get(b.scheme)
    if a.scheme == b.scheme:
        return a_port == b_port
    return a.scheme == "http" and b.scheme == "https" and b_port == 443


# --- one attempt's connections, and the watchdog that cuts them --------------

_WIRE: contextvars.ContextVar[_Wire] = contextvars.ContextVar("bugster_step_wire")

# What a cut reports, by how far the attempt had got when its time ran out.
_CUTS = {
    "resolving": ("dns failure", "no answer from the resolver within {:.1f}s"),
    "connecting": ("connect timeout", "no connection within {:.1f}s"),
    "waiting": ("read timeout", "no complete answer within {:.1f}s"),
    "body": ("read timeout", "body still arriving at the {:.1f}s cut"),
}


class _Wire:
    """One attempt's connections, and the watchdog that cuts them at its limit.

    While the attempt runs (in the caller's thread) the probe's connection
    classes find this wire through a context variable, resolve and connect
    through it, and register each socket. A timer shuts the sockets down at the
    limit, which wakes a connect or read blocked on them. It shuts duplicates
    (``dup``), so it never touches a descriptor number that the attempt closed
    and the process reused.
    """

    def __init__(self, limit: float, family: int, resolve: Callable) -> None:
        self.limit = limit
        self.family = family
        self.resolve = resolve
        self.stage = "waiting"  # a key of _CUTS
        self.was_cut = False
        self._cut_stage: str | None = None
        self._ends = time.monotonic() + limit
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False
        self._timer = threading.Timer(limit, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Wire:
        self._token = _WIRE.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            for dup in self._sockets:
                dup.close()
        _WIRE.reset(self._token)

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def cut_attempt(self, number: int, elapsed: float) -> Attempt:
        error, detail = _CUTS[self._cut_stage or self.stage]
        return Attempt(
            number, elapsed, False, error=error, detail=detail.format(self.limit)
        )

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.was_cut = True
            self._cut_stage = self.stage
            for dup in self._sockets:
                with contextlib.suppress(OSError):
                    dup.shutdown(socket.SHUT_RDWR)

    def _watch(self, sock: socket.socket) -> None:
        with self._lock:
            dup = sock.dup()
            self._sockets.append(dup)
            if self.was_cut:
                raise TimeoutError("the attempt was cut before it could connect")

    def connect(self, host: str, port: int, timeout, source_address, options):
        """Try every address ``host`` resolves to, in order, until one connects.

        NOTE: addresses are tried one after another, each with the whole connect
        timeout, so one that drops packets (instead of refusing) can use up the
        attempt before the next is tried. Racing them, as Happy Eyeballs
        (RFC 8305) does, would fix that; refused and unreachable addresses fail
        at once and fall through.
        """
        self.stage = "resolving"
        answers = self._lookup(host.strip("[]"), port)
        self.stage = "connecting"
        error = OSError(f"{host} resolved to no address")
        for info in answers:
            try:
                sock = self._connect_one(info, timeout, source_address, options)
            except OSError as exc:
                log.debug("connecting to %s port %s: %s", *info[4][:2], exc)
                error = exc
                if self.was_cut:
                    break
                continue
            self.stage = "waiting"
            return sock
        raise error

    def _connect_one(self, info, timeout, source_address, options) -> socket.socket:
        family, kind, proto, _name, address = info
        sock = socket.socket(family, kind, proto)
        try:
            self._watch(sock)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                # An IPv6 socket carries IPv6 only: a v4-mapped answer would be
                # IPv4 on the wire, which --ipv6 rules out.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for option in options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def _lookup(self, host: str, port: int) -> list:
        """getaddrinfo in a helper thread, given no longer than the attempt has left.

        A lookup abandoned at the cut sends nothing to the app; its thread ends
        when the resolver gives up.
        """
        answer: list = []

        def lookup() -> None:
            try:
                answer.append(self.resolve(host, port, self.family, socket.SOCK_STREAM))
            except Exception as exc:  # handed to the attempt below
                answer.append(exc)

        thread = threading.Thread(target=lookup, name="probe-lookup", daemon=True)
        thread.start()
        thread.join(max(0.0, self.remaining()))
        if not answer:
            detail = _CUTS["resolving"][1].format(self.limit)
            raise _LookupFailure(socket.EAI_AGAIN, detail)
        found = answer[0]
        if isinstance(found, socket.gaierror) and self._other_family_only(found):
            name, flag = _FAMILY_FLAGS[self.family]
            detail = f"no {name} address for {host} ({flag})"
            raise _LookupFailure(found.errno, detail) from found
        if isinstance(found, Exception):
            raise found
        return found

    def _other_family_only(self, exc: socket.gaierror) -> bool:
        """Whether the name may well resolve, but not in the family forced.

        libc says "not known" also of a name that has only the other family.
        """
        return exc.errno in _NO_ADDRESS and self.family in _FAMILY_FLAGS


class _WiredConnection:
    """Connect through the current attempt's wire (urllib3's way when there is none)."""

    def _new_conn(self) -> socket.socket:
        wire = _WIRE.get(None)
        if wire is None:
            return super()._new_conn()
        # NOTE: _dns_host is urllib3's private name for the host without a
        # trailing dot; its own _new_conn uses it the same way.
        host = getattr(self, "_dns_host", self.host)
        try:
            sock = wire.connect(
                host, self.port, self.timeout, self.source_address, self.socket_options
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self,
                f"Connection to {self.host} timed out. (connect timeout={self.timeout})",
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {exc}"
            ) from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class _HTTPConnection(_WiredConnection, HTTPConnection):
    pass


class _HTTPSConnection(_WiredConnection, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter, with pools whose connections go through the wire."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS has pools of its own
            manager.pool_classes_by_scheme = _POOLS
        return manager


def _session(
    options: ProbeOptions, session: requests.Session | None
) -> requests.Session:
    session = session or requests.Session()
    adapter = _Adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Off with --no-proxy: requests then ignores proxies and NO_PROXY (and its
    # CA variables, which verify_for has already read).
    session.trust_env = options.trust_env
    return session


def wired_session(trust_env: bool = True) -> requests.Session:
    """A session whose connections a ``Watchdog`` can cut: the webhook's too."""
    session = requests.Session()
    adapter = _Adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = trust_env
    return session


class Watchdog(_Wire):
    """A wall-clock limit on one whole exchange (connect, send, answer, body),
    for callers other than the probe: ``with Watchdog(seconds) as dog: ...``,
    then ``dog.was_cut`` and ``dog.cut_stage``."""

    def __init__(self, limit: float) -> None:
        super().__init__(limit, socket.AF_UNSPEC, socket.getaddrinfo)

    @property
    def cut_stage(self) -> str | None:
        return self._cut_stage


# --- the loop ----------------------------------------------------------------


class Probe:
    def __init__(
        self,
        options: ProbeOptions,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
        resolve: Callable = socket.getaddrinfo,
    ) -> None:
        self.options = options
        self.session = _session(options, session)
        self.clock = clock
        self.sleep = sleep or threading.Event().wait
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not crypto)
        self.resolve = resolve  # getaddrinfo's signature; tests give a hosts table
        self._hinted: set[str] = set()

    def wait_until_ready(self) -> ProbeResult:
        opts = self.options
        start = self.clock()
        deadline = start + opts.timeout
        attempts: list[Attempt] = []
        wait = opts.initial_wait
        passes = 0
        self._announce()
        while True:
            remaining = deadline - self.clock()
            attempt = self.attempt(len(attempts) + 1, start, remaining)
            attempts.append(attempt)
            passes = passes + 1 if attempt.ready else 0
            if passes >= opts.passes:
                return self._succeed(attempts, start)
            if attempt.ready:
                next_wait = opts.confirm_delay
            else:
                next_wait = self._backoff(attempt, wait)
                wait = min(wait * 1.5, opts.max_wait)
            # Keep room for one more attempt before the deadline, or stop now.
            # `<=`: the last attempt starts exactly `shortest` before the
            # deadline, and nothing may follow it (with a clock that did not
            # move, `<` would retry forever with no wait).
            shortest = min(MIN_ATTEMPT, opts.attempt_timeout)
            remaining = deadline - self.clock()
            if remaining <= shortest:
                self._log(attempt, "deadline reached")
                self._give_up(attempts, start)
            next_wait = max(0.0, min(next_wait, remaining - shortest))
            then = "confirming" if attempt.ready else "next attempt"
            self._log(attempt, f"{then} in {next_wait:.1f}s")
            self.sleep(next_wait)

    def _announce(self) -> None:
        opts = self.options
        if opts.verify is False:
            log.warning(INSECURE_WARNING)
        elif isinstance(opts.verify, str):
            log.debug("verifying TLS certificates with %s", opts.verify)
        log.info("waiting for %s to be ready (up to %gs)", opts.url, opts.timeout)

    def _succeed(self, attempts: list[Attempt], start: float) -> ProbeResult:
        elapsed = self.clock() - start
        count = len(attempts)
        self._log(attempts[-1], "confirmed")
        log.info(
            "ready: %s after %d attempt%s, %.1fs",
            self.options.url,
            count,
            "" if count == 1 else "s",
            elapsed,
        )
        return ProbeResult(attempts, elapsed)

    def _backoff(self, attempt: Attempt, wait: float) -> float:
        next_wait = self._jittered(wait)
        if attempt.retry_after is not None:
            cap = self.options.retry_after_cap
            next_wait = max(next_wait, min(attempt.retry_after, cap))
        return next_wait

    def _log(self, attempt: Attempt, then: str) -> None:
        """One line per attempt: number, elapsed, status or error class, what next."""
        outcome = attempt.outcome() + (" (ready)" if attempt.ready else "")
        log.info(
            "attempt %d at %.1fs: %s; %s",
            attempt.number,
            attempt.elapsed,
            outcome,
            then,
        )

    def _jittered(self, wait: float) -> float:
        return min(self.options.max_wait, wait * self.rng.uniform(0.9, 1.1))

    def _give_up(self, attempts: list[Attempt], start: float) -> None:
        elapsed = self.clock() - start
        last = attempts[-1]
        earlier = "; ".join(
            f"#{a.number} at {a.elapsed:.1f}s: {a.outcome()}" for a in attempts[-4:-1]
        )
        raise NotReadyError(
            f"{self.options.url} was not ready after {len(attempts)} attempts in "
            f"{elapsed:.1f}s (deadline {self.options.timeout:g}s); last: "
            f"{last.outcome()}" + (f" (before it: {earlier})" if earlier else ""),
            hint="nothing was sent to Bugster; check the deployment, or raise --timeout",
            attempts=attempts,
        )

    def attempt(self, number: int, start: float, remaining: float) -> Attempt:
        """One attempt, cut at its limit: the attempt timeout, or the deadline."""
        elapsed = self.clock() - start
        limit = max(0.05, min(self.options.attempt_timeout, remaining))
        opts = self.options
        with _Wire(limit, opts.family, self.resolve) as wire:
            attempt = self._try(number, elapsed, wire)
            # A connection kept alive would skip the next attempt's wire (and its
            # cut): close them all, so every attempt connects afresh.
            self.session.close()
        # A cut outweighs what it caused: a reset, a short body, a late answer.
        return wire.cut_attempt(number, elapsed) if wire.was_cut else attempt

    def _try(self, number: int, elapsed: float, wire: _Wire) -> Attempt:
        try:
            return self._follow(number, elapsed, wire)
        except _AttemptTimeout:
            return wire.cut_attempt(number, elapsed)
        except requests.RequestException as exc:
            error, detail = describe(exc)
        except ValueError as exc:
            # requests parses a redirect's Location even when not following it.
            error, detail = "bad redirect", str(exc)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The body is read from urllib3 directly, so its errors come unwrapped.
            error, detail = describe(exc)
        return Attempt(number, elapsed, False, error=error, detail=detail)

    def _follow(self, number: int, elapsed: float, wire: _Wire) -> Attempt:
        opts = self.options
        url = opts.url
        for _hop in range(opts.max_redirects + 1):
            status, headers, body = self._fetch(url, wire)
            log.debug("%s %s: HTTP %d", opts.method, url, status)
            location = headers.get("Location")
            if status in REDIRECTS and location:
                target = urllib.parse.urljoin(url, location)
                redact.register_url_credentials(target)
                if not same_host(url, target):
                    return Attempt(
                        number,
                        elapsed,
                        False,
                        status=status,
                        detail=f"redirect to another host, not followed: {target}",
                    )
                url = target
                continue
            return self._judge(number, elapsed, status, headers, body)
        return Attempt(
            number,
            elapsed,
            False,
            error="too many redirects",
            detail=f"more than {opts.max_redirects}",
        )

    def _fetch(self, url: str, wire: _Wire):
        remaining = wire.remaining()
        if remaining <= 0:
            raise _AttemptTimeout
        wire.stage = "waiting"
        response = self._send(url, remaining)
        try:
            # Without --expect-text the status and headers are all we judge, so
            # the body is never read: however slowly it comes, it costs nothing.
            if self.options.expect_text is None:
                return response.status_code, response.headers, b""
            wire.stage = "body"
            return response.status_code, response.headers, self._read_body(response)
        finally:
            response.close()

    def _read_body(self, response: requests.Response) -> bytes:
        """The body up to BODY_LIMIT, or less: reading stops as soon as the expected
        text is in, so a body that keeps streaming can still pass."""
        wanted = (self.options.expect_text or "").encode("utf-8")
        body = bytearray()
        while len(body) < BODY_LIMIT:
            chunk = response.raw.read1(
                min(65536, BODY_LIMIT - len(body)), decode_content=True
            )
            if not chunk:
                break
            body.extend(chunk)
            if wanted and wanted in body:
                break
        return bytes(body)

    def _send(self, url: str, remaining: float) -> requests.Response:
        opts = self.options
        late = remaining + BACKSTOP
        connect = CONNECT_CAP if remaining > CONNECT_CAP + BACKSTOP else late
        with warnings.catch_warnings():
            if opts.verify is False:
                # --insecure is warned about once a run; urllib3 would per request.
                warnings.simplefilter("ignore", InsecureRequestWarning)
            return self.session.request(
                opts.method,
                url,
                headers=dict(opts.headers),
                allow_redirects=False,
                stream=True,
                timeout=(connect, late),
                verify=opts.verify,
            )

    def _judge(self, number, elapsed, status, headers, body) -> Attempt:
        attempt = Attempt(number, elapsed, False, status=status)
        if status in (429, 503):
            attempt.retry_after = parse_retry_after(headers.get("Retry-After"))
        if status in (401, 403):
            self._hint_once("protection", PROTECTION_HINT.format(status=status))
        if status in (404, 405) and self.options.method == "HEAD":
            self._hint_once("head", HEAD_HINT.format(status=status))
        attempt.detail = self._mismatch(status, headers, body)
        attempt.ready = attempt.detail is None
        return attempt

    def _hint_once(self, name: str, text: str) -> None:
        if name not in self._hinted:
            self._hinted.add(name)
            log.warning(text)

    def _mismatch(self, status: int, headers, body: bytes) -> str | None:
        """What kept an answer from being ready, beside the value seen; or None."""
        opts = self.options
        if status not in opts.expect_status:
            return f"expected {opts.expect_status}"
        for name, expected in opts.expect_headers.items():
            seen = headers.get(name)
            if seen is None:
                return f'{name} missing (expected "{expected}")'
            if seen.strip() != expected:
                return f'{name} was "{_excerpt(seen)}" (expected "{expected}")'
        if opts.expect_text is not None:
            text = body.decode("utf-8", errors="replace")
            if opts.expect_text not in text:
                seen = (
                    f'it began "{_excerpt(text)}"' if text.strip() else "it was empty"
                )
                return f"body lacks {opts.expect_text!r} ({seen})"
        return None
