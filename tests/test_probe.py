"""The readiness probe: ready rules, redirects, pacing, deadline, and its CLI.

Pacing is checked on ``Probe`` itself, with a clock that moves only when the
probe sleeps and a sleeper that records each wait, so no test really waits
seconds. End-to-end behaviour goes through the real CLI (``probe`` and
``notify``) against ``AppServer`` on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import io
import logging
import random
import re
import socket
import time
from email.utils import formatdate

import pytest

from bugster_step import log as logmod
from bugster_step.errors import ConfigError, NotReadyError
from bugster_step.probe import Probe, ProbeOptions, StatusSet, same_host
from sandbox import AppServer, Reply
from tests.conftest import API_KEY, FAST, FULL_SHA

# The probe's own pacing flags (FAST also has webhook flags `probe` lacks).
PROBE_FAST = [arg for arg in FAST if not arg.startswith("--retry")]
BYPASS_VALUE = "bypass-7Hq2+zX/9w=="
BYPASS = f"x-vercel-protection-bypass: {BYPASS_VALUE}"
HINT = "deployment protection"


class Pacer:
    """A fake monotonic clock that moves when the probe sleeps, and records waits.

    Each reading also ticks a millisecond, so time never stands still.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        self.now += 0.001
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class EdgeRng:
    """A jitter source that always picks the low or the high end."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def uniform(self, low: float, high: float) -> float:
        return high if self.high else low


@pytest.fixture(autouse=True)
def probe_log():
    """The step's log for direct Probe tests, as text (the CLI sets its own)."""
    stream = io.StringIO()
    logmod.setup(logging.INFO, stream)
    return stream


@pytest.fixture
def other():
    """A second app: a host the probe must not be redirected to."""
    with AppServer() as server:
        yield server


def make_probe(url: str, pacer: Pacer, rng=None, **options) -> Probe:
    return Probe(
        ProbeOptions(url=url, **options),
        clock=pacer.clock,
        sleep=pacer.sleep,
        rng=rng or random.Random(7),  # noqa: S311 (seeded jitter, not crypto)
    )


def refused_url() -> str:
    """An http URL on a 127.0.0.1 port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def probe_cli(cli, url: str, *args: str):
    return cli("probe", url, *PROBE_FAST, *args)


def routes(server: AppServer) -> list[str]:
    return [request.route for request in server.requests]


# --- consecutive passes -----------------------------------------------------


def test_app_ready_at_once_is_ready_after_exactly_two_requests(app):
    pacer = Pacer()

    result = make_probe(app.url, pacer).wait_until_ready()

    assert [a.ready for a in result.attempts] == [True, True]
    assert len(app.requests) == 2
    assert pacer.waits == [1.0]  # the confirm delay, and no sleep after success


def test_pass_then_failure_resets_the_count_and_needs_two_fresh_passes():
    pacer = Pacer()
    script = [Reply(200), Reply(503), Reply(200), Reply(200)]
    with AppServer(script=script) as app:
        result = make_probe(app.url, pacer).wait_until_ready()

        assert [a.ready for a in result.attempts] == [True, False, True, True]
        assert len(app.requests) == 4
    confirm, backoff, confirm_again = pacer.waits
    assert confirm == confirm_again == 1.0
    assert 1.8 <= backoff <= 2.2


# --- what counts as ready ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("2xx", [200, 204, 299], [199, 300, 404]),
        ("200,204", [200, 204], [201, 203, 205]),
        ("200-299,301", [200, 250, 299, 301], [300, 302]),
        (" 200 , 3XX ", [200, 301, 399], [201, 404]),
        ("401", [401], [200]),
    ],
    ids=["class", "list", "range-and-code", "spaces-and-case", "single"],
)
def test_status_set_accepts_lists_ranges_and_classes(text, inside, outside):
    statuses = StatusSet(text)

    assert all(status in statuses for status in inside)
    assert not any(status in statuses for status in outside)


@pytest.mark.parametrize(
    ("app_status", "expect"),
    [(204, "2xx"), (204, "200,204"), (202, "200-202"), (404, "404"), (418, "4xx")],
    ids=["class", "list", "range", "code", "other-class"],
)
def test_expect_status_makes_the_listed_status_ready(cli, app_status, expect):
    with AppServer(script=[Reply(app_status)]) as app:
        run = probe_cli(cli, app.url, f"--expect-status={expect}")

        assert run.code == 0, run.err
        assert len(app.requests) == 2


def test_status_outside_expect_status_is_not_ready_until_deadline(cli):
    with AppServer(script=[Reply(200)]) as app:
        run = probe_cli(cli, app.url, "--expect-status=204", "--timeout=0.6")

    assert run.code == 3
    assert "last: HTTP 200, expected 204" in run.err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a status"),
        ("20x", "'20x' is not a status"),
        ("200-", "'200-' is not a status"),
        ("200-299-300", "'200-299-300' is not a status"),
        ("600", "600-600 is not a range of HTTP statuses"),
        ("99", "99-99 is not a range of HTTP statuses"),
        ("6xx", "600-699 is not a range of HTTP statuses"),
        ("299-200", "299-200 is not a range of HTTP statuses"),
        ("", "give at least one status"),
        (" , ", "give at least one status"),
    ],
    ids=[
        "word",
        "partial-class",
        "open-range",
        "double-range",
        "too-high",
        "too-low",
        "class-too-high",
        "reversed-range",
        "empty",
        "only-commas",
    ],
)
def test_bad_expect_status_is_a_usage_error_before_any_request(
    cli, app, value, message
):
    run = probe_cli(cli, app.url, f"--expect-status={value}")

    assert run.code == 2
    assert "--expect-status" in run.err
    assert message in run.err
    assert "Traceback" not in run.output
    assert app.requests == []


def test_bad_expect_status_is_a_config_error():
    with pytest.raises(ConfigError, match="is not a status"):
        StatusSet("ok")


def test_expect_text_is_ready_only_once_the_body_contains_it(cli):
    script = [Reply(200, body="booting"), Reply(200, body='{"status": "READY-42"}')]
    with AppServer(script=script) as app:
        run = probe_cli(cli, app.url, "--expect-text=READY-42")

        assert run.code == 0, run.err
        assert len(app.requests) == 3
    assert "body lacks 'READY-42'" in run.err


def test_expect_text_matches_a_gzip_encoded_body(cli):
    body = gzip.compress(b"<html>Welcome to the shop</html>")
    reply = Reply(200, headers={"Content-Encoding": "gzip"}, body=body)
    with AppServer(script=[reply]) as app:
        run = probe_cli(cli, app.url, "--expect-text=Welcome to the shop")

        assert run.code == 0, run.err
        assert len(app.requests) == 2


def test_expect_text_never_present_is_not_ready_at_deadline(cli):
    with AppServer(script=[Reply(200, body="maintenance page")]) as app:
        run = probe_cli(cli, app.url, "--expect-text=welcome", "--timeout=0.6")

    assert run.code == 3
    assert "body lacks 'welcome'" in run.err


# --- not ready, transient ---------------------------------------------------


def test_401_and_403_are_not_ready_and_the_protection_hint_appears_once(cli):
    script = [Reply(401), Reply(403), Reply(401), Reply(200)]
    with AppServer(script=script) as app:
        run = probe_cli(cli, app.url)

        assert run.code == 0, run.err
        assert len(app.requests) == 5
    assert run.err.count(HINT) == 1
    assert "answers 401" in run.err
    assert run.err.count("HTTP 403, expected 2xx") == 1


@pytest.mark.parametrize("status", [404, 500, 502, 503, 504])
def test_404_and_5xx_are_transient_then_ready(cli, status):
    with AppServer(script=[Reply(status), Reply(status), Reply(200)]) as app:
        run = probe_cli(cli, app.url)

        assert run.code == 0, run.err
        assert len(app.requests) == 4
    assert run.err.count(f"HTTP {status}, expected 2xx") == 2
    assert HINT not in run.err


def test_refused_connection_is_transient_and_the_probe_keeps_trying(app):
    # AppServer cannot bind a chosen port, so "the deployment comes up" is
    # played by pointing the probe at the live app once the refusal is seen.
    pacer = Pacer()
    probe = make_probe(refused_url(), pacer)

    def sleep_then_come_up(seconds: float) -> None:
        pacer.sleep(seconds)
        probe.options.url = app.url

    probe.sleep = sleep_then_come_up
    result = probe.wait_until_ready()

    first, *rest = result.attempts
    assert (first.ready, first.error) == (False, "refused")
    assert [a.ready for a in rest] == [True, True]
    assert len(app.requests) == 2


def test_refused_until_deadline_exits_3_naming_the_refusal(cli):
    run = probe_cli(cli, refused_url(), "--timeout=1.5")

    assert run.code == 3
    assert re.search(r"not ready after ([2-9]|\d\d+) attempts", run.err), run.err
    assert "last: refused" in run.err


# --- redirects --------------------------------------------------------------


def test_same_host_relative_redirect_is_followed_with_the_header(app):
    app.route("/", Reply(302, headers={"Location": "/healthz"}))
    pacer = Pacer()

    result = make_probe(
        app.url + "/", pacer, passes=1, headers={"X-Bypass": BYPASS_VALUE}
    ).wait_until_ready()

    assert result.attempts[0].ready
    assert routes(app) == ["/", "/healthz"]
    assert {r.header("x-bypass") for r in app.requests} == {BYPASS_VALUE}


def test_same_host_absolute_redirect_is_followed(app):
    app.route("/", Reply(301, headers={"Location": f"{app.url}/home"}))

    result = make_probe(app.url + "/", Pacer(), passes=1).wait_until_ready()

    assert result.attempts[0].ready
    assert routes(app) == ["/", "/home"]


def chain_of_redirects(app: AppServer, hops: int) -> None:
    """/r0 -> /r1 -> ... -> /r{hops}, which answers 200."""
    for n in range(hops):
        app.route(f"/r{n}", Reply(307, headers={"Location": f"/r{n + 1}"}))


def test_ten_redirect_hops_are_followed(app):
    chain_of_redirects(app, 10)

    result = make_probe(app.url + "/r0", Pacer(), passes=1).wait_until_ready()

    assert result.attempts[0].ready
    assert len(app.requests) == 11
    assert app.requests[-1].route == "/r10"


def test_more_than_ten_redirect_hops_is_not_ready(app):
    chain_of_redirects(app, 11)
    probe = make_probe(app.url + "/r0", Pacer(), timeout=1.0)

    with pytest.raises(NotReadyError) as raised:
        probe.wait_until_ready()

    first = raised.value.attempts[0]
    assert (first.ready, first.error) == (False, "too many redirects")
    assert "/r11" not in routes(app)
    assert len(app.requests) == 11 * len(raised.value.attempts)


@pytest.mark.parametrize(
    "other_host", ["localhost", "127.0.0.1"], ids=["other-name", "other-port"]
)
def test_redirect_to_other_host_is_not_ready_and_other_host_gets_no_request(
    app, other, other_host
):
    target = f"http://{other_host}:{other.port}/landing"
    app.route("/", Reply(302, headers={"Location": target}))
    probe = make_probe(app.url + "/", Pacer(), timeout=1.0, headers={"X-B": "s3cret"})

    with pytest.raises(NotReadyError) as raised:
        probe.wait_until_ready()

    first = raised.value.attempts[0]
    assert not first.ready
    assert target in first.detail
    assert other.requests == []


def test_redirect_to_other_host_logs_location_and_never_gets_the_bypass_header(
    cli, app, other
):
    target = f"http://localhost:{other.port}/sso/login"
    app.route("/", Reply(302, headers={"Location": target}))

    run = probe_cli(cli, app.url + "/", f"--header={BYPASS}", "--timeout=0.6")

    assert run.code == 3
    assert f"redirect to another host, not followed: {target}" in run.err
    assert other.requests == []
    assert {r.header("x-vercel-protection-bypass") for r in app.requests} == {
        BYPASS_VALUE
    }
    assert BYPASS_VALUE not in run.output


def test_http_to_https_on_the_same_host_counts_as_the_same_host():
    assert same_host("http://app.example.test/", "https://app.example.test/x")


@pytest.mark.parametrize(
    ("origin", "target", "expected"),
    [
        ("http://a.test/", "http://a.test/b", True),
        ("http://A.test/", "http://a.TEST/b", True),
        ("http://a.test:8080/", "http://a.test:8080/b", True),
        ("http://a.test/", "https://a.test:443/b", True),
        ("http://a.test/", "http://a.test:80/b", True),
        ("https://a.test/", "https://a.test:443/b", True),
        ("https://a.test/", "http://a.test/b", False),
        ("http://a.test/", "http://b.test/", False),
        ("http://a.test/", "http://a.test.evil.test/", False),
        ("http://a.test/", "http://a.test@evil.test/", False),
        ("http://a.test:8080/", "http://a.test:8081/", False),
        ("http://a.test:8080/", "https://a.test:8443/", False),
        ("http://localhost:8080/", "http://127.0.0.1:8080/", False),
    ],
    ids=[
        "same",
        "case",
        "same-port",
        "upgrade-explicit-443",
        "explicit-default-port",
        "https-explicit-443",
        "downgrade",
        "other-host",
        "suffix",
        "userinfo",
        "other-port",
        "upgrade-other-port",
        "name-vs-address",
    ],
)
def test_same_host_rule(origin, target, expected):
    assert same_host(origin, target) is expected


# --- the bypass header ------------------------------------------------------


def test_header_is_sent_to_the_app_and_masked_in_every_log_line(cli):
    with AppServer(script=[Reply(403), Reply(200)]) as app:
        run = probe_cli(cli, app.url, f"--header={BYPASS}", "--verbose")

        assert run.code == 0, run.err
        assert {r.header("x-vercel-protection-bypass") for r in app.requests} == {
            BYPASS_VALUE
        }
    assert BYPASS_VALUE not in run.output
    assert "bypass-7Hq2" not in run.output


def test_header_value_echoed_by_the_app_into_a_logged_location_is_masked(
    cli, app, other
):
    target = f"http://localhost:{other.port}/?bypass={BYPASS_VALUE}"
    app.route("/", Reply(302, headers={"Location": target}))

    run = probe_cli(cli, app.url + "/", f"--header={BYPASS}", "--timeout=0.6")

    assert run.code == 3
    assert f"http://localhost:{other.port}/?bypass=********" in run.err
    assert BYPASS_VALUE not in run.output
    assert other.requests == []


def test_bad_header_is_a_usage_error_that_does_not_echo_the_value(cli, app):
    run = probe_cli(cli, app.url, "--header=x-token:abc\x07secretvalue")

    assert run.code == 2
    assert "control characters" in run.err
    assert "secretvalue" not in run.output
    assert app.requests == []


# --- pacing -----------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_seconds_is_respected(status):
    pacer = Pacer()
    script = [Reply(status, headers={"Retry-After": "7"}), Reply(200)]
    with AppServer(script=script) as app:
        make_probe(app.url, pacer).wait_until_ready()

    assert pacer.waits == [7.0, 1.0]


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    pacer = Pacer()
    with AppServer(
        script=[Reply(503, headers={"Retry-After": "0"}), Reply(200)]
    ) as app:
        make_probe(app.url, pacer, rng=EdgeRng(high=False)).wait_until_ready()

    assert pacer.waits == [pytest.approx(1.8), 1.0]


def test_retry_after_is_capped():
    pacer = Pacer()
    with AppServer(
        script=[Reply(503, headers={"Retry-After": "3600"}), Reply(200)]
    ) as app:
        make_probe(app.url, pacer).wait_until_ready()

    assert pacer.waits == [60.0, 1.0]


def test_retry_after_http_date_is_respected():
    pacer = Pacer()
    when = formatdate(time.time() + 30, usegmt=True)
    with AppServer(
        script=[Reply(503, headers={"Retry-After": when}), Reply(200)]
    ) as app:
        make_probe(app.url, pacer).wait_until_ready()

    assert 20.0 < pacer.waits[0] <= 30.0
    assert pacer.waits[1] == 1.0


def never_ready_waits(rng, count: int) -> list[float]:
    pacer = Pacer()
    with (
        AppServer(script=[Reply(503)]) as app,
        pytest.raises(NotReadyError),
    ):
        make_probe(app.url, pacer, rng=rng, timeout=150.0).wait_until_ready()
    return pacer.waits[:count]


BASES = [2.0, 3.0, 4.5, 6.75, 10.125, 15.0, 15.0, 15.0]


def test_waits_grow_by_half_from_initial_to_max_at_the_high_jitter_edge():
    waits = never_ready_waits(EdgeRng(high=True), len(BASES))

    assert waits == pytest.approx([min(15.0, base * 1.1) for base in BASES])


def test_waits_grow_by_half_from_initial_to_max_at_the_low_jitter_edge():
    waits = never_ready_waits(EdgeRng(high=False), len(BASES))

    assert waits == pytest.approx([base * 0.9 for base in BASES])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_waits_are_jittered_within_ten_percent_and_never_above_max(seed):
    waits = never_ready_waits(random.Random(seed), len(BASES))  # noqa: S311

    for wait, base in zip(waits, BASES, strict=True):
        assert base * 0.9 <= wait <= min(15.0, base * 1.1)
    assert len(set(waits)) > 1


def test_deadline_raises_not_ready_without_sleeping_past_it_or_after_the_last_attempt():
    pacer = Pacer()
    with AppServer(script=[Reply(503)]) as app:
        probe = make_probe(app.url, pacer, timeout=30.0)
        with pytest.raises(NotReadyError) as raised:
            probe.wait_until_ready()

        attempts = raised.value.attempts
        assert len(app.requests) == len(attempts)
    assert len(pacer.waits) == len(attempts) - 1
    assert sum(pacer.waits) <= 30.0
    assert f"after {len(attempts)} attempts" in raised.value.message
    assert "last: HTTP 503, expected 2xx" in raised.value.message


# --- the deadline, end to end -----------------------------------------------


def test_probe_command_exits_0_when_ready(cli, app):
    run = probe_cli(cli, app.url)

    assert run.code == 0, run.err
    assert run.out.startswith(f"ready: {app.url} (2 attempts")
    assert len(app.requests) == 2


def test_probe_command_exits_3_at_deadline_naming_attempts_and_last_status(cli):
    with AppServer(script=[Reply(503)]) as app:
        run = probe_cli(cli, app.url, "--timeout=1")

        assert run.code == 3
        attempts = len(app.requests)
    *_, last_line, hint = run.err.strip().splitlines()
    assert last_line.startswith("bugster-step: error: ")
    assert hint.startswith("bugster-step: hint: nothing was sent to Bugster")
    assert f"not ready after {attempts} attempts" in last_line
    assert "last: HTTP 503" in last_line
    assert run.out == ""


def test_notify_sends_no_webhook_when_the_app_never_becomes_ready(cli, receiver):
    with AppServer(script=[Reply(503)]) as app:
        run = cli(
            "notify",
            "--project-id=proj-1",
            "--organization-id=org_abc",
            f"--commit-sha={FULL_SHA}",
            f"--environment-url={app.url}",
            f"--api-url={receiver.url}",
            "--timeout=1",
            *FAST,
            env={"BUGSTER_API_KEY": API_KEY},
        )

        assert run.code == 3
        assert len(app.requests) > 1
    assert receiver.requests == []
    assert "nothing was sent to Bugster" in run.err
    assert API_KEY not in run.output


# --- attempt timeout --------------------------------------------------------


def test_reply_slower_than_attempt_timeout_is_cut_then_ready(cli):
    script = [Reply(200, delay=30), Reply(200)]
    with AppServer(script=script) as app:
        run = probe_cli(cli, app.url, "--attempt-timeout=0.5", "--timeout=20")

        assert run.code == 0, run.err
        assert len(app.requests) == 3
    assert "attempt 1 at 0.0s: read timeout" in run.err


def test_attempt_hanging_after_accept_is_a_timeout_not_a_ready_pass():
    pacer = Pacer()
    with AppServer(script=[Reply(200, delay=30), Reply(200)]) as app:
        result = make_probe(app.url, pacer, attempt_timeout=0.5).wait_until_ready()

    first, *rest = result.attempts
    assert (first.ready, first.error) == (False, "read timeout")
    assert [a.ready for a in rest] == [True, True]


def test_every_attempt_gets_one_log_line_the_last_one_included(cli):
    with AppServer(script=[Reply(503), Reply(200)]) as app:
        run = probe_cli(cli, app.url)

    assert run.code == 0, run.err
    lines = [line for line in run.err.splitlines() if ": attempt " in line]
    assert len(lines) == len(app.requests) == 3
    assert "HTTP 503" in lines[0] and "next attempt in" in lines[0]
    assert "(ready); confirming in" in lines[1]
    assert "(ready); confirmed" in lines[2]


def test_giving_up_logs_the_last_attempt_and_names_the_ones_before_it(cli):
    with AppServer(script=[Reply(503)]) as app:
        run = probe_cli(cli, app.url, "--timeout=1")

    assert run.code == 3
    attempt_lines = [line for line in run.err.splitlines() if ": attempt " in line]
    assert len(attempt_lines) == len(app.requests)
    assert attempt_lines[-1].endswith("deadline reached")
    assert re.search(r"last: HTTP 503.*\(before it: #\d+ at [\d.]+s: HTTP 503", run.err)


def test_a_clock_that_stands_still_during_attempts_still_reaches_the_deadline():
    # Attempts that take no measurable time must not become a busy loop at the
    # deadline: the last one fits exactly, then the probe gives up.
    now = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    with AppServer(script=[Reply(503)]) as app:
        probe = Probe(
            ProbeOptions(url=app.url, timeout=60.0), clock=lambda: now[0], sleep=sleep
        )
        with pytest.raises(NotReadyError):
            probe.wait_until_ready()
        assert len(app.requests) == len(waits) + 1
    assert len(waits) <= 60 / 2 + 2
    assert sum(waits) <= 60.0
