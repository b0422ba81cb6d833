"""The webhook: the exact request, the retry policy, and what each answer means.

Every test runs the real CLI (``notify``) against ``BugsterReceiver`` on
127.0.0.1, scripted with the answers Bugster may give, and checks the exit
status first, then how many POSTs arrived, then what the user was told. The
API key must never show in any output.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from bugster_step import __version__
from bugster_step.webhook import delivery_key
from sandbox import WEBHOOK_PATH, BugsterReceiver, Reply
from tests.conftest import API_KEY, FAST, FULL_SHA, OTHER_SHA, cloud_build_env

PROJECT = "cloud-build-1758224858"
ORG = "org_a1b2c3d4e5f6g7h8i9j0"
IDS = (f"--project-id={PROJECT}", f"--organization-id={ORG}")
QUICKSTART = "bugster quickstart"
UNKNOWN = "the outcome is unknown"


def notify(cli, receiver, *args: str, state: str = "in_progress", env=None):
    """``bugster-step notify`` at ``receiver``, the key from BUGSTER_API_KEY."""
    return cli(
        "notify",
        *IDS,
        f"--state={state}",
        f"--api-url={receiver.url}",
        *FAST,
        *args,
        env={"BUGSTER_API_KEY": API_KEY, **(env or {})},
    )


def commit(cli, receiver, *args: str, **kwargs):
    return notify(cli, receiver, f"--commit-sha={FULL_SHA}", *args, **kwargs)


def assert_key_hidden(run, key: str = API_KEY) -> None:
    forms = {
        key,
        json.dumps(key)[1:-1],
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key, safe=""),
    }
    for form in forms:
        assert form not in run.output


def scripted(*replies: Reply, **kwargs) -> BugsterReceiver:
    return BugsterReceiver(API_KEY, script=list(replies), **kwargs)


def detail(status: int, text: str, **headers: str) -> Reply:
    return Reply(status, headers=headers, body={"detail": text})


@pytest.fixture
def other_receiver():
    """A second Bugster-like host, where a redirect would point."""
    with BugsterReceiver(API_KEY) as server:
        yield server


# --- the request ------------------------------------------------------------


def test_in_progress_request_is_exactly_the_contract(cli, receiver):
    run = commit(cli, receiver)

    assert run.code == 0, run.err
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.route == WEBHOOK_PATH
    assert request.header("x-api-key") == API_KEY
    assert request.header("content-type").split(";")[0] == "application/json"
    assert request.header("user-agent").startswith(f"bugster-step/{__version__} ")
    assert request.json == {
        "project_id": PROJECT,
        "organization_id": ORG,
        "deployment_state": "in_progress",
        "commit_sha": FULL_SHA,
    }
    assert request.status == 200
    assert "Custom integration event processed" in run.out
    assert_key_hidden(run)


def test_success_request_carries_the_url_after_the_app_is_ready(cli, receiver, app):
    run = commit(
        cli,
        receiver,
        f"--environment-url={app.url}",
        "--environment=preview",
        state="success",
    )

    assert run.code == 0, run.err
    assert len(app.requests) == 2
    [request] = receiver.requests
    assert request.json == {
        "project_id": PROJECT,
        "organization_id": ORG,
        "environment_url": app.url,
        "deployment_state": "success",
        "commit_sha": FULL_SHA,
        "environment": "preview",
    }
    assert_key_hidden(run)


def test_cloud_build_request_has_exactly_one_ref_and_no_empty_strings(
    cli, receiver, app
):
    env = cloud_build_env(TAG_NAME="", _PR_NUMBER="", _HEAD_BRANCH="")
    run = notify(
        cli, receiver, f"--environment-url={app.url}", state="success", env=env
    )

    assert run.code == 0, run.err
    [request] = receiver.requests
    body = request.json
    assert ("commit_sha" in body) != ("branch" in body)
    assert body["commit_sha"] == FULL_SHA
    assert all(isinstance(v, str) and v.strip() for v in body.values())
    assert "environment" not in body
    assert_key_hidden(run)


def test_ref_branch_sends_the_branch_and_no_commit(cli, receiver):
    env = cloud_build_env(BRANCH_NAME="release/2.0")
    run = notify(cli, receiver, "--ref=branch", env=env)

    assert run.code == 0, run.err
    [request] = receiver.requests
    assert request.json["branch"] == "release/2.0"
    assert "commit_sha" not in request.json


def test_idempotency_key_is_the_same_on_every_retry(cli):
    with scripted(Reply(503), Reply(503)) as receiver:
        run = commit(cli, receiver)

        assert run.code == 0, run.err
        keys = [r.header("idempotency-key") for r in receiver.requests]
    assert len(keys) == 3
    assert keys[0]
    assert len(set(keys)) == 1
    assert_key_hidden(run)


def test_delivery_key_is_stable_per_event_and_differs_between_events():
    event = {"project_id": PROJECT, "organization_id": ORG, "commit_sha": FULL_SHA}

    assert delivery_key(event, "build-1") == delivery_key(dict(event), "build-1")
    assert delivery_key(event, "build-1") != delivery_key(event, "build-2")
    assert delivery_key(event, "b") != delivery_key(
        {**event, "commit_sha": OTHER_SHA}, "b"
    )
    assert delivery_key(event, "b") != delivery_key(
        {**event, "deployment_state": "error"}, "b"
    )


# --- retried ----------------------------------------------------------------


def test_503_503_then_success_is_delivered_in_exactly_3_posts(cli):
    with scripted(Reply(503), Reply(503)) as receiver:
        run = commit(cli, receiver)

        assert run.code == 0, run.err
        assert len(receiver.requests) == 3
        assert len(receiver.accepted) == 1
    assert run.err.count("webhook attempt") == 2
    assert "in 3 attempts" in run.err
    assert_key_hidden(run)


def test_429_with_retry_after_waits_that_long_then_delivers(cli):
    with scripted(detail(429, "slow down", **{"Retry-After": "1"})) as receiver:
        run = commit(cli, receiver)

        assert run.code == 0, run.err
        assert len(receiver.requests) == 2
    # --retry-wait=0.01 would give a wait under 0.1s: 1.0s is Retry-After's.
    assert "webhook attempt 1 failed: HTTP 429; retrying in 1.0s" in run.err
    assert_key_hidden(run)


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_timeout_and_gateway_errors_are_retried_then_delivered(cli, status):
    with scripted(Reply(status, body="upstream trouble")) as receiver:
        run = commit(cli, receiver)

        assert run.code == 0, run.err
        assert len(receiver.requests) == 2
    assert f"webhook attempt 1 failed: HTTP {status}; retrying" in run.err
    assert_key_hidden(run)


def test_retries_exhausted_exit_6_naming_the_count(cli):
    with scripted(*[Reply(503)] * 5) as receiver:
        run = commit(cli, receiver, "--retries=3")

        assert run.code == 6
        assert len(receiver.requests) == 3
    assert "after 3 attempts" in run.err
    assert "HTTP 503" in run.err
    assert run.out == ""
    assert_key_hidden(run)


def test_refused_connection_is_retried_then_exit_6(cli):
    with BugsterReceiver(API_KEY) as gone:
        url = gone.url

    run = cli(
        "notify",
        *IDS,
        "--state=in_progress",
        f"--commit-sha={FULL_SHA}",
        f"--api-url={url}",
        "--retries=3",
        *FAST,
        env={"BUGSTER_API_KEY": API_KEY},
    )

    assert run.code == 6
    assert run.err.count("webhook attempt") == 2
    assert "after 3 attempts" in run.err
    assert "nothing reached Bugster" in run.err
    assert UNKNOWN not in run.err
    assert_key_hidden(run)


# --- given up at once -------------------------------------------------------


def test_401_gives_up_without_retry_exit_4(cli, receiver):
    wrong_key = "bgs_wrong+Key/With=Escapes9876543210"
    run = notify(
        cli,
        receiver,
        f"--commit-sha={FULL_SHA}",
        env={"BUGSTER_API_KEY": wrong_key},
    )

    assert run.code == 4
    assert len(receiver.requests) == 1
    assert "HTTP 401" in run.err
    assert "Invalid API key" in run.err
    assert "Settings > API Keys" in run.err
    assert_key_hidden(run, wrong_key)


def test_403_gives_up_without_retry_exit_4(cli):
    with scripted(detail(403, "API key lacks permission")) as receiver:
        run = commit(cli, receiver)

        assert run.code == 4
        assert len(receiver.requests) == 1
    assert "HTTP 403" in run.err
    assert "API key lacks permission" in run.err
    assert_key_hidden(run)


def test_422_gives_up_without_retry_exit_5_showing_bugsters_message(cli):
    message = f"Project {PROJECT} not found in organization {ORG}"
    with scripted(detail(422, message)) as receiver:
        run = commit(cli, receiver)

        assert run.code == 5
        assert len(receiver.requests) == 1
    assert message in run.err
    assert "--project-id" in run.err
    assert_key_hidden(run)


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_4xx_gives_up_at_once_exit_5(cli, status):
    with scripted(detail(status, "no")) as receiver:
        run = commit(cli, receiver)

        assert run.code == 5
        assert len(receiver.requests) == 1
    assert f"HTTP {status}" in run.err
    assert "retrying" not in run.err


def test_500_is_not_retried_exit_6_outcome_unknown(cli):
    with scripted(detail(500, "Internal Server Error")) as receiver:
        run = commit(cli, receiver)

        assert run.code == 6
        assert len(receiver.requests) == 1
    assert UNKNOWN in run.err
    assert "dashboard" in run.err
    assert "retrying" not in run.err
    assert_key_hidden(run)


def test_read_timeout_after_sending_is_not_retried_exit_6_outcome_unknown(cli):
    with scripted(Reply(200, delay=30)) as receiver:
        run = commit(cli, receiver, "--request-timeout=0.3")

        assert run.code == 6
        assert len(receiver.requests) == 1
    assert "read timed out" in run.err
    assert UNKNOWN in run.err
    assert "retrying" not in run.err
    assert_key_hidden(run)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_answer_is_a_rejection_and_the_target_gets_no_request(
    cli, other_receiver, status
):
    location = other_receiver.webhook_url
    with scripted(Reply(status, headers={"Location": location})) as receiver:
        run = commit(cli, receiver)

        assert run.code == 5
        assert len(receiver.requests) == 1
    assert other_receiver.requests == []
    assert f"HTTP {status}" in run.err
    assert location in run.err
    assert "--api-url" in run.err
    assert_key_hidden(run)


# --- accepted, but skipped --------------------------------------------------


def test_skipped_event_exits_0_with_a_loud_warning_naming_bugster_quickstart(cli):
    with BugsterReceiver(API_KEY, skip=True) as receiver:
        run = commit(cli, receiver)

        assert run.code == 0, run.err
        assert len(receiver.requests) == 1
    warnings = [line for line in run.err.splitlines() if ": warning: " in line]
    assert any(
        QUICKSTART in line and "Bugster skipped the event" in line for line in warnings
    )
    assert "Skipping event" in run.out
    assert_key_hidden(run)


def test_skipped_event_with_fail_on_skip_exits_5(cli):
    with BugsterReceiver(API_KEY, skip=True) as receiver:
        run = commit(cli, receiver, "--fail-on-skip")

        assert run.code == 5
        assert len(receiver.requests) == 1
    assert QUICKSTART in run.err
    assert "Skipping event: Repository does not have .bugster" in run.err
    assert_key_hidden(run)


def test_processed_event_has_no_skip_warning(cli, receiver):
    run = commit(cli, receiver)

    assert run.code == 0, run.err
    assert "Bugster skipped" not in run.err


# --- the workspace's .bugster/ folder ---------------------------------------


def test_missing_bugster_folder_is_warned_before_sending(cli, receiver, app, workspace):
    run = commit(cli, receiver, f"--environment-url={app.url}", state="success")

    assert run.code == 0, run.err
    lines = run.err.splitlines()
    [warned] = [i for i, line in enumerate(lines) if "no .bugster/ folder" in line]
    [waiting] = [i for i, line in enumerate(lines) if "waiting for" in line]
    [delivered] = [i for i, line in enumerate(lines) if "delivered " in line]
    assert warned < waiting < delivered
    assert str(workspace) in lines[warned]
    assert QUICKSTART in lines[warned]


def test_bugster_folder_in_workspace_silences_the_warning(cli, receiver, workspace):
    (workspace / ".bugster").mkdir()

    run = commit(cli, receiver)

    assert run.code == 0, run.err
    assert "no .bugster/ folder" not in run.err


# --- the key stays secret ---------------------------------------------------


def test_key_echoed_in_bugsters_error_message_is_masked(cli):
    with scripted(detail(422, f"bad event for key {API_KEY}")) as receiver:
        run = commit(cli, receiver, "--verbose")

        assert run.code == 5
    assert "bad event for key ********" in run.err
    assert_key_hidden(run)


def test_dry_run_sends_nothing_and_masks_the_key(cli, receiver):
    run = commit(cli, receiver, "--dry-run")

    assert run.code == 0, run.err
    assert receiver.requests == []
    assert f"POST {receiver.url}{WEBHOOK_PATH}" in run.out
    assert "X-API-KEY: ********" in run.out
    assert_key_hidden(run)
