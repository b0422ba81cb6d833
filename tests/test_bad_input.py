"""Inputs a new user actually tried: each gets a clear error and exit status, never
a traceback, and never an echo of the key."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from sandbox import Reply
from tests.conftest import API_KEY, FAST, FULL_SHA

IDS = ["--project-id=proj-1", "--organization-id=org_abc", f"--commit-sha={FULL_SHA}"]


def notify(cli, receiver, *args, env=None):
    return cli(
        "notify",
        "--state=in_progress",
        *IDS,
        f"--api-url={receiver.url}",
        *FAST,
        *args,
        env={"BUGSTER_API_KEY": API_KEY, **(env or {})},
    )


def assert_clean_usage_error(run, receiver, needle):
    assert run.code == 2, run.err
    assert needle in run.err
    assert "Traceback" not in run.output
    assert "internal error" not in run.err
    assert receiver.requests == []


@pytest.mark.parametrize(
    "key",
    ["bgsk_CANARY+/=Zz9\u20ac", "bgsk_CANARY+/=Zz9\u200b"],
    ids=["euro sign", "zero-width space"],
)
def test_key_with_non_ascii_characters_is_a_usage_error(cli, receiver, key):
    run = notify(cli, receiver, env={"BUGSTER_API_KEY": key})
    assert_clean_usage_error(run, receiver, "non-ASCII")
    assert key not in run.output


def test_header_value_outside_ascii_is_a_usage_error(cli, receiver):
    run = notify(cli, receiver, "--header=X-Bypass: t\u20acken12345")
    assert_clean_usage_error(run, receiver, "--header")


@pytest.mark.parametrize(
    "name", ["BUGSTER_API_KEY", "BUGSTER_ORGANIZATION_ID", "BUGSTER_BRANCH"]
)
def test_environment_value_that_is_not_utf8_names_the_variable(cli, receiver, name):
    args = ["--state=in_progress", "--project-id=proj-1", f"--api-url={receiver.url}"]
    env = {
        "BUGSTER_API_KEY": API_KEY,
        "BUGSTER_ORGANIZATION_ID": "org_abc",
        name: "feat\udce9xyzab",
    }
    run = cli("notify", *args, env=env)
    assert_clean_usage_error(run, receiver, f"{name} is not valid UTF-8")


def test_ci_value_that_is_not_utf8_is_ignored_not_sent(cli, receiver):
    env = {"BRANCH_NAME": "feat\udce9", "COMMIT_SHA": ""}
    run = cli(
        "notify",
        "--state=in_progress",
        "--project-id=proj-1",
        "--organization-id=org_abc",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY, **env},
    )
    assert run.code == 2
    assert "no commit SHA or branch" in run.err


@pytest.mark.parametrize("option", ["--environment-url", "--api-url"])
def test_malformed_ipv6_url_is_a_usage_error(cli, receiver, option):
    run = cli(
        "notify",
        *IDS,
        f"--api-url={receiver.url}",
        f"{option}=http://[::1",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert_clean_usage_error(run, receiver, option)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_seconds_are_a_usage_error(cli, receiver, value):
    run = notify(cli, receiver, f"--request-timeout={value}")
    assert_clean_usage_error(run, receiver, "--request-timeout")


def test_key_pasted_into_the_secret_name_is_not_echoed(cli, receiver):
    run = cli(
        "notify",
        *IDS,
        "--state=in_progress",
        f"--api-url={receiver.url}",
        f"--api-key-secret={API_KEY}",
    )
    assert_clean_usage_error(run, receiver, "not a Secret Manager secret name")
    assert API_KEY not in run.output


def test_key_pasted_into_the_key_file_variable_is_not_echoed(cli, receiver):
    run = cli(
        "notify",
        *IDS,
        "--state=in_progress",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY_FILE": API_KEY},
    )
    assert_clean_usage_error(run, receiver, "BUGSTER_API_KEY_FILE does not exist")
    assert API_KEY not in run.output


@pytest.mark.parametrize(
    "echo",
    [
        API_KEY.lower(),
        urllib.parse.quote(API_KEY, safe="").lower(),
        json.dumps(API_KEY)[1:-1].replace("/", "\\/"),
    ],
    ids=["lowercased", "lowercase percent-encoding", "JSON-escaped slash"],
)
def test_key_echoed_back_in_another_form_is_masked(cli, receiver, echo):
    receiver.set_script(
        [Reply(422, headers={"Content-Type": "text/plain"}, body=f"bad key {echo}")]
    )
    run = notify(cli, receiver)
    assert run.code == 5
    assert echo not in run.output
    assert "********" in run.err


@pytest.mark.parametrize(
    "event",
    [
        {"pull_request": {"head": None}},
        {"pull_request": {"head": "x"}},
        {"pull_request": {"head": {"ref": ["a"], "sha": 7}}},
        [],
        "text",
    ],
    ids=[
        "head null",
        "head a string",
        "head fields of the wrong type",
        "a list",
        "a string",
    ],
)
def test_github_event_file_of_an_unexpected_shape_is_ignored(
    cli, receiver, workspace, event
):
    path = workspace / "event.json"
    path.write_text(json.dumps(event))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_HEAD_REF": "feat",
    }
    run = cli(
        "notify",
        "--dry-run",
        "--state=in_progress",
        "--project-id=proj-1",
        "--organization-id=org_abc",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY, **env},
    )
    assert run.code == 0, run.err
    assert '"branch": "feat"' in run.out


def test_bad_redirect_location_is_not_ready_not_a_crash(cli, app):
    app.set_script([Reply(302, headers={"Location": "http://[::1/x"})])
    run = cli("probe", app.url, "--timeout=1", *FAST[:3])
    assert run.code == 3
    assert "bad redirect" in run.err
    assert "Traceback" not in run.output


def test_webhook_redirect_with_a_bad_location_is_a_rejection(cli, receiver):
    receiver.set_script([Reply(302, headers={"Location": "http://[::1/x"})])
    run = notify(cli, receiver)
    assert run.code == 5
    assert "unusable Location" in run.err
    assert len(receiver.requests) == 1


def test_basic_auth_password_in_the_url_is_masked(cli, receiver):
    url = "http://preview:s3cret-pass-word@127.0.0.1:9/"
    run = cli(
        "notify",
        "--dry-run",
        *IDS,
        f"--environment-url={url}",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 0, run.err
    assert "s3cret-pass-word" not in run.output
    assert "preview:********@127.0.0.1" in run.output
