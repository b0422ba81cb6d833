"""Wait until the deployed URL is ready: a deadline loop that remembers its attempts.

One attempt is in flight at a time. An attempt is "ready" when the final answer
(after same-host redirects) has an expected status and, if asked, contains the
expected text. Readiness must hold on consecutive attempts, the confirming one
about a second after the first, so a deployment that flaps does not pass.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from bugster_step.errors import ConfigError, NotReadyError
from bugster_step.log import log

REDIRECTS = (301, 302, 303, 307, 308)
BODY_LIMIT = 1024 * 1024  # bytes read for --expect-text
MIN_ATTEMPT = 0.5  # seconds: the shortest attempt worth making before the deadline
# Shown once, on the first 401 or 403.
PROTECTION_HINT = (
    "the deployment answers {status}: if it is protected (deployment protection, "
    "IAM, basic auth), give the probe a bypass header with "
    "--header 'Name: value'"
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
    verify: bool | str = True  # False, True, or a CA bundle path
    retry_after_cap: float = 60.0


@dataclass
class Attempt:
    number: int
    elapsed: float  # seconds since the probe started, when this attempt began
    ready: bool
    status: int | None = None
    error: str | None = None  # a short class: "refused", "dns", "timeout", ...
    detail: str | None = None
    retry_after: float | None = None

    def outcome(self) -> str:
        if self.error:
            return self.error + (f" ({self.detail})" if self.detail else "")
        text = f"HTTP {self.status}"
        return text + (f", {self.detail}" if self.detail else "")


@dataclass
class ProbeResult:
    attempts: list[Attempt]
    elapsed: float


class _AttemptTimeout(Exception):
    pass


def classify(exc: requests.RequestException) -> str:
    """A short name for what went wrong, so 'not resolving' reads unlike 'down'."""
    text = repr(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls error"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "too many redirects"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "dns failure"
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "refused"
    if "reset" in text.lower():
        return "reset"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection error"
    if isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema
    ):
        return "bad url"
    return type(exc).__name__


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


class Probe:
    def __init__(
        self,
        options: ProbeOptions,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self.session = session or requests.Session()
        self.clock = clock
        self.sleep = sleep or threading.Event().wait
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not crypto)
        self._hinted_protection = False

    def wait_until_ready(self) -> ProbeResult:
        opts = self.options
        start = self.clock()
        deadline = start + opts.timeout
        attempts: list[Attempt] = []
        wait = opts.initial_wait
        passes = 0
        log.info("waiting for %s to be ready (up to %gs)", opts.url, opts.timeout)
        while True:
            remaining = deadline - self.clock()
            attempt = self.attempt(len(attempts) + 1, start, remaining)
            attempts.append(attempt)
            if attempt.ready:
                passes += 1
                if passes >= opts.passes:
                    elapsed = self.clock() - start
                    self._log(attempt, "confirmed")
                    log.info(
                        "ready: %s after %d attempt%s, %.1fs",
                        opts.url,
                        len(attempts),
                        "" if len(attempts) == 1 else "s",
                        elapsed,
                    )
                    return ProbeResult(attempts, elapsed)
                next_wait = opts.confirm_delay
            else:
                passes = 0
                next_wait = self._jittered(wait)
                if attempt.retry_after is not None:
                    next_wait = max(
                        next_wait, min(attempt.retry_after, opts.retry_after_cap)
                    )
                wait = min(wait * 1.5, opts.max_wait)
            # Keep room for one more attempt before the deadline, or stop now.
            shortest = min(MIN_ATTEMPT, opts.attempt_timeout)
            remaining = deadline - self.clock()
            if remaining < shortest:
                self._log(attempt, "deadline reached")
                self._give_up(attempts, start)
            next_wait = max(0.0, min(next_wait, remaining - shortest))
            then = "confirming" if attempt.ready else "next attempt"
            self._log(attempt, f"{then} in {next_wait:.1f}s")
            self.sleep(next_wait)

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
        began = self.clock()
        elapsed = began - start
        limit = max(0.05, min(self.options.attempt_timeout, remaining))
        cutoff = began + limit
        try:
            return self._follow(number, elapsed, cutoff)
        except _AttemptTimeout:
            return Attempt(
                number, elapsed, False, error="timeout", detail=f"cut at {limit:.1f}s"
            )
        except requests.RequestException as exc:
            return Attempt(number, elapsed, False, error=classify(exc))
        except ValueError as exc:
            # requests parses a redirect's Location even when not following it.
            return Attempt(
                number, elapsed, False, error="bad redirect", detail=str(exc)
            )

    def _follow(self, number: int, elapsed: float, cutoff: float) -> Attempt:
        opts = self.options
        url = opts.url
        for _hop in range(opts.max_redirects + 1):
            status, headers, body = self._get(url, cutoff)
            log.debug("GET %s: HTTP %d", url, status)
            location = headers.get("Location")
            if status in REDIRECTS and location:
                target = urllib.parse.urljoin(url, location)
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

    def _get(self, url: str, cutoff: float):
        remaining = cutoff - self.clock()
        if remaining <= 0:
            raise _AttemptTimeout
        response = self.session.get(
            url,
            headers=dict(self.options.headers),
            allow_redirects=False,
            stream=True,
            timeout=(min(remaining, 10.0), remaining),
            verify=self.options.verify,
        )
        try:
            # Without --expect-text the status and headers are all we judge: a
            # body that trickles in must not hold the attempt past its cutoff.
            if self.options.expect_text is None:
                return response.status_code, response.headers, b""
            body = bytearray()
            while len(body) < BODY_LIMIT:
                if self.clock() > cutoff:
                    raise _AttemptTimeout
                # NOTE: read1 makes at most one socket read, so the cutoff is
                # checked after every arrival; read() or iter_content() would
                # block until 16 KiB came, however slowly. One read can still
                # wait up to the socket timeout set when the attempt began.
                chunk = response.raw.read1(16384, decode_content=True)
                if not chunk:
                    break
                body.extend(chunk)
            return response.status_code, response.headers, bytes(body)
        finally:
            response.close()

    def _judge(self, number, elapsed, status, headers, body) -> Attempt:
        opts = self.options
        attempt = Attempt(number, elapsed, False, status=status)
        if status in (429, 503):
            attempt.retry_after = parse_retry_after(headers.get("Retry-After"))
        if status in (401, 403) and not self._hinted_protection:
            self._hinted_protection = True
            log.warning(PROTECTION_HINT.format(status=status))
        if status not in opts.expect_status:
            attempt.detail = f"expected {opts.expect_status}"
            return attempt
        if opts.expect_text is not None:
            text = body.decode("utf-8", errors="replace")
            if opts.expect_text not in text:
                attempt.detail = f"body lacks {opts.expect_text!r}"
                return attempt
        attempt.ready = True
        return attempt
