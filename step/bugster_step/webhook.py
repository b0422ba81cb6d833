"""POST the custom-integration event to Bugster, with a retry policy that fits on
one screen.

Retried: connection failures before the request went out, 408, 429, 502, 503
and 504, with ``Retry-After`` respected up to a cap. Given up at once: 401 and
403 (the key), other 4xx (the event), any redirect (a custom key header must not
travel to another host). Not retried because Bugster may already have started a
run: 500, and a read timeout or dropped connection after the request was sent
(``--retry-ambiguous`` opts in to retrying those too, for receivers that drop
duplicates by ``Idempotency-Key``).
There is no sleep after the last try, and the whole exchange has a time cap.
"""

from __future__ import annotations

import hashlib
import json
import random
import urllib.parse
from dataclasses import dataclass, field

import requests

from bugster_step import __version__
from bugster_step.errors import ApiKeyError, RejectedError, UndeliveredError
from bugster_step.log import log
from bugster_step.probe import Watchdog, parse_retry_after, wired_session

PATH = "/webhooks/integrations/custom"
USER_AGENT = f"bugster-step/{__version__} python-requests/{requests.__version__}"
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
# Answers after which Bugster may already be acting on the event.
AMBIGUOUS_STATUSES = frozenset({500})
SKIP_MARKERS = ("does not have .bugster", "skipping event")
# Shown when the API answers with a redirect: the URL is not the API's.
API_URL_HINT = (
    "check --api-url: it should be the API's base URL, e.g. https://api.bugster.app"
)
# Shown when Bugster accepted the event but will not run tests.
SKIPPED_WARNING = (
    "Bugster skipped the event: the deployed commit has no .bugster/ folder. "
    "Run 'bugster quickstart' in the repository, commit the .bugster/ folder it "
    "creates, and deploy that commit"
)


@dataclass
class Delivery:
    status: int
    message: str
    body: object
    attempts: int
    elapsed: float
    skipped: bool = False


@dataclass
class _Outcome:
    """One try: a response, or the error that stopped it."""

    response: requests.Response | None = None
    error: requests.RequestException | None = None
    sent: bool = False  # the request may have reached Bugster
    retry_after: float | None = None

    def retryable(self, ambiguous_too: bool = False) -> bool:
        if self.response is not None:
            status = self.response.status_code
            return status in RETRY_STATUSES or (
                ambiguous_too and status in AMBIGUOUS_STATUSES
            )
        if self.error is None or isinstance(self.error, requests.exceptions.SSLError):
            return False
        return not self.sent or ambiguous_too

    def describe(self) -> str:
        if self.response is not None:
            return f"HTTP {self.response.status_code}"
        return _error_text(self.error)


@dataclass
class RetryPolicy:
    max_tries: int = 5
    max_time: float = 60.0  # seconds, all tries and waits together
    initial_wait: float = 1.0
    max_wait: float = 20.0
    retry_after_cap: float = 30.0
    retry_ambiguous: bool = False  # also retry 500 and errors after sending


@dataclass
class Webhook:
    api_url: str
    api_key: str
    request_timeout: float = 10.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=wired_session)
    # What the last send() saw, for the result file even when it raised.
    attempts: int = field(default=0, init=False)
    seconds: float | None = field(default=None, init=False)
    last_status: int | None = field(default=None, init=False)
    last_message: str | None = field(default=None, init=False)
    # True while a POST is on its way: an interrupt then leaves the outcome unknown.
    in_flight: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return self.api_url.rstrip("/") + PATH

    def headers(self, payload: dict, delivery_key: str | None = None) -> dict:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-API-KEY": self.api_key,
        }
        if delivery_key:
            headers["Idempotency-Key"] = delivery_key
        return headers

    def send(self, payload: dict, delivery_key: str | None = None) -> Delivery:
        # Imported here: backoff loads asyncio, which `--version` and the
        # usage errors have no use for (see `make bench`, cold start).
        import backoff

        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = self.headers(payload, delivery_key)
        tries = {"count": 0}

        def post_once() -> _Outcome:
            tries["count"] += 1
            self.attempts = tries["count"]  # live: an interrupt may come between tries
            return self._post(body, headers)

        retrying = backoff.on_predicate(
            _waits,
            predicate=lambda outcome: outcome.retryable(self.policy.retry_ambiguous),
            max_tries=self.policy.max_tries,
            max_time=self.policy.max_time,
            jitter=None,
            on_backoff=_log_retry,
            logger=None,
            initial=self.policy.initial_wait,
            cap=self.policy.max_wait,
            retry_after_cap=self.policy.retry_after_cap,
        )(post_once)
        started = _now()
        outcome = retrying()
        elapsed = _now() - started
        self.attempts, self.seconds = tries["count"], elapsed
        return self._conclude(outcome, tries["count"], elapsed)

    def _post(self, body: bytes, headers: dict) -> _Outcome:
        # Left True only when an interrupt (SIGINT, SIGTERM) stops the exchange.
        self.in_flight = True
        outcome = self._exchange(body, headers)
        self.in_flight = False
        return outcome

    def _exchange(self, body: bytes, headers: dict) -> _Outcome:
        log.debug(
            "POST %s (%d bytes, Idempotency-Key %s)",
            self.url,
            len(body),
            headers.get("Idempotency-Key"),
        )
        # --request-timeout bounds the whole exchange, not each socket read: an
        # answer that trickles in is cut at the limit like one that never comes.
        watchdog = Watchdog(self.request_timeout)
        try:
            with watchdog:
                try:
                    response = self.session.post(
                        self.url,
                        data=body,
                        headers=headers,
                        timeout=(
                            min(self.request_timeout, 10.0),
                            self.request_timeout + 1,
                        ),
                        allow_redirects=False,
                    )
                finally:
                    self.session.close()  # the next try connects afresh, under its own cut
        except requests.RequestException as exc:
            if watchdog.was_cut:
                return self._cut_outcome(watchdog)
            return _failed(exc)
        except ValueError as exc:
            # requests parses a redirect's Location even when not following it.
            raise RejectedError(
                f"{self.url} answered a redirect with an unusable Location ({exc})",
                hint=API_URL_HINT,
            ) from None
        log.debug("answer: HTTP %d %s", response.status_code, response.text[:300])
        retry_after = None
        if response.status_code in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return _Outcome(response=response, sent=True, retry_after=retry_after)

    def _cut_outcome(self, watchdog: Watchdog) -> _Outcome:
        sent = watchdog.cut_stage not in ("resolving", "connecting")
        kind = (
            requests.exceptions.ReadTimeout
            if sent
            else requests.exceptions.ConnectTimeout
        )
        return _Outcome(
            error=kind(f"cut at --request-timeout ({self.request_timeout:g}s)"),
            sent=sent,
        )

    def _conclude(self, outcome: _Outcome, attempts: int, elapsed: float) -> Delivery:
        where = f"{self.url} after {attempts} attempt{'s' if attempts != 1 else ''}"
        if outcome.response is None:
            error = outcome.error
            if isinstance(error, requests.exceptions.SSLError):
                raise UndeliveredError(
                    f"TLS to {self.url} failed: {_error_text(error)}",
                    hint="check --api-url, and REQUESTS_CA_BUNDLE if a proxy re-signs TLS",
                )
            if outcome.sent:
                raise UndeliveredError(
                    f"the request to {self.url} was sent but no answer came "
                    f"({_error_text(error)}): the outcome is unknown",
                    hint="Bugster may have started a test run; check its dashboard "
                    "before running the step again",
                    outcome_unknown=True,
                )
            raise UndeliveredError(
                f"could not reach {where}: {_error_text(error)}",
                hint="check --api-url and the network; nothing reached Bugster",
            )
        response = outcome.response
        status = response.status_code
        parsed, message = _read_body(response)
        self.last_status, self.last_message = status, message
        if status < 200:
            raise UndeliveredError(
                f"{self.url} answered HTTP {status}, an informational status, as its "
                "final answer: the outcome is unknown",
                hint="check --api-url, and any proxy between the step and Bugster",
                outcome_unknown=True,
            )
        if 200 <= status < 300:
            skipped = any(m in message.lower() for m in SKIP_MARKERS)
            return Delivery(status, message, parsed, attempts, elapsed, skipped)
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise RejectedError(
                f"{self.url} answered HTTP {status} (a redirect to {location or 'nowhere'}); "
                "not followed, so the key stays with the host it was meant for",
                hint=API_URL_HINT,
            )
        if status in (401, 403):
            raise ApiKeyError(
                f"Bugster refused the API key (HTTP {status}): {message}",
                hint="check the key in Bugster's Settings > API Keys, and that it "
                "belongs to the organization you named",
            )
        if status == 500:
            raise UndeliveredError(
                f"Bugster answered HTTP 500{_quoted(message)}: the outcome is unknown",
                hint="Bugster may have started a test run; check its dashboard "
                "before running the step again",
                outcome_unknown=True,
            )
        if status in RETRY_STATUSES or status >= 500:
            raise UndeliveredError(
                f"not delivered: {where}, the last answer HTTP {status}{_quoted(message)}",
                hint="Bugster may be having an outage; run the step again later",
            )
        raise RejectedError(
            f"Bugster rejected the event (HTTP {status}): {message}",
            hint="check --project-id and --organization-id in Bugster's settings",
        )


def _failed(exc: requests.RequestException) -> _Outcome:
    """A try that ended in an error: may the request have reached Bugster?"""
    if isinstance(exc, requests.exceptions.SSLError):
        return _Outcome(error=exc, sent=True)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _Outcome(error=exc, sent=False)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _Outcome(error=exc, sent=not _never_connected(exc))
    # A read timeout, or anything else once the request was on its way.
    return _Outcome(error=exc, sent=True)


def _waits(initial: float, cap: float, retry_after_cap: float):
    """backoff's wait generator: exponential with full jitter, or Retry-After."""
    outcome = yield None
    tries = 0
    while True:
        base = min(cap, initial * (2**tries))
        wait = random.uniform(base / 2, base)  # noqa: S311 (jitter, not crypto)
        if outcome is not None and outcome.retry_after is not None:
            # Respected, but never shorter than the backoff: "Retry-After: 0"
            # must not turn the retries into a burst.
            wait = max(wait, min(outcome.retry_after, retry_after_cap))
        tries += 1
        outcome = yield wait


def _log_retry(details: dict) -> None:
    outcome: _Outcome = details["value"]
    log.warning(
        "webhook attempt %d failed: %s; retrying in %.1fs",
        details["tries"],
        outcome.describe(),
        details["wait"],
    )


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never made, so the request cannot have arrived."""
    text = repr(exc)
    return any(
        marker in text
        for marker in (
            "NewConnectionError",
            "NameResolutionError",
            "Connection refused",
        )
    )


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timed out"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timed out"
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return f"{type(exc).__name__}: {reason}"


def _quoted(message: str) -> str:
    return f" ({message})" if message else ""


def _read_body(response: requests.Response) -> tuple[object, str]:
    text = response.text[:4096]
    try:
        parsed = response.json()
    except ValueError:
        return None, text.strip()[:300]
    if isinstance(parsed, dict):
        for key in ("message", "detail", "error"):
            if isinstance(parsed.get(key), str):
                return parsed, parsed[key]
    return parsed, text.strip()[:300]


def delivery_key(payload: dict, build_id: str | None) -> str:
    """Same event, same key: a retried request or re-run step can be recognised."""
    parts = [
        payload.get("organization_id"),
        payload.get("project_id"),
        payload.get("deployment_state", "success"),
        payload.get("environment_url"),
        payload.get("commit_sha") or payload.get("branch"),
        build_id,
    ]
    digest = hashlib.sha256("\x1f".join(str(p or "") for p in parts).encode())
    return "bugster-step-" + digest.hexdigest()[:32]


def _now() -> float:
    import time

    return time.monotonic()


def webhook_url(api_url: str) -> str:
    return urllib.parse.urljoin(api_url.rstrip("/") + "/", PATH.lstrip("/"))
