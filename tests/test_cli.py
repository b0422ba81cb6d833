"""The command line as a user meets it: help, version, output levels, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bugster_step import __version__
from bugster_step.cli import cli as group
from tests.conftest import API_KEY, FAST

IDS = ["--project-id=proj-1", "--organization-id=org_abc"]


def test_every_command_has_help_with_examples(cli):
    for name, command in group.commands.items():
        run = cli(name, "--help")
        assert run.code == 0, name
        assert command.help, name
        if name != "help":
            assert "Examples:" in run.out, name


def test_help_shows_every_env_var_of_notify(cli):
    run = cli("notify", "--help")
    for var in (
        "BUGSTER_API_KEY",
        "BUGSTER_API_KEY_FILE",
        "BUGSTER_API_KEY_SECRET",
        "GOOGLE_CLOUD_PROJECT",
        "BUGSTER_PROJECT_ID",
        "BUGSTER_ORGANIZATION_ID",
        "BUGSTER_ENVIRONMENT_URL",
        "BUGSTER_ENVIRONMENT",
        "BUGSTER_DEPLOYMENT_STATE",
        "BUGSTER_COMMIT_SHA",
        "BUGSTER_BRANCH",
        "BUGSTER_REF",
        "BUGSTER_API_URL",
        "BUGSTER_SECRET_MANAGER_ENDPOINT",
    ):
        assert var in run.out, var


def test_help_subcommand_matches_help_flag(cli):
    assert cli("help", "notify").out == cli("notify", "--help").out


def test_version(cli):
    run = cli("--version")
    assert run.code == 0
    assert __version__ in run.out


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run(
        [sys.executable, "-m", "bugster_step", "--version"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0
    assert __version__ in done.stdout


@pytest.mark.parametrize("position", ["before", "after"])
def test_quiet_before_or_after_the_subcommand_keeps_only_warnings(
    cli, receiver, position
):
    args = [
        "notify",
        "--state=in_progress",
        "--branch=main",
        *IDS,
        f"--api-url={receiver.url}",
    ]
    args = ["--quiet", *args] if position == "before" else [*args, "--quiet"]
    run = cli(*args, env={"BUGSTER_API_KEY": API_KEY})
    assert run.code == 0
    assert "info:" not in run.err
    assert "warning:" in run.err  # the missing .bugster/ folder


def test_verbose_adds_debug_lines(cli, receiver):
    run = cli(
        "-v",
        "notify",
        "--state=in_progress",
        "--branch=main",
        *IDS,
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 0
    assert "debug:" in run.err or "info:" in run.err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--state=done"], "--state"),
        (["--environment-url=ftp://x.test"], "--environment-url"),
        (["--environment-url=not a url"], "--environment-url"),
        (["--api-url=file:///etc/passwd"], "--api-url"),
        (["--ref=tag"], "--ref"),
        (["--timeout=-1"], "--timeout"),
        (["--retries=0"], "--retries"),
        (["--header=no-colon"], "--header"),
        (["--expect-status=abc"], "--expect-status"),
        (["--expect-status=700"], "--expect-status"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_options_exit_2_with_the_option_named_and_no_traceback(
    cli, receiver, args, needle
):
    run = cli(
        "notify",
        "--branch=main",
        *IDS,
        f"--api-url={receiver.url}",
        *args,
        "--environment-url=https://app.example.test"
        if "environment-url" not in args[0]
        else args[0],
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 2
    assert needle in run.err
    assert "Traceback" not in run.output
    assert receiver.requests == []


def test_missing_ids_name_flag_and_variable(cli, receiver):
    run = cli(
        "notify",
        "--state=in_progress",
        "--branch=main",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 2
    assert "--project-id" in run.err and "BUGSTER_PROJECT_ID" in run.err


def test_success_without_url_is_a_usage_error(cli, receiver):
    run = cli(
        "notify",
        "--branch=main",
        *IDS,
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 2
    assert "--environment-url" in run.err


def test_unexpanded_placeholder_in_ids_is_caught(cli, receiver):
    run = cli(
        "notify",
        "--state=in_progress",
        "--branch=main",
        "--project-id=$_BUGSTER_PROJECT_ID",
        "--organization-id=org_abc",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 2
    assert "placeholder" in run.err


def test_internal_error_is_one_line_unless_debug(cli, receiver, monkeypatch):
    from bugster_step import notify

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom " + API_KEY)

    monkeypatch.setattr(notify, "delivery_key", broken)
    args = [
        "notify",
        "--state=in_progress",
        "--branch=main",
        *IDS,
        f"--api-url={receiver.url}",
    ]
    run = cli(*args, env={"BUGSTER_API_KEY": API_KEY})
    assert run.code == 1
    assert "internal error: RuntimeError" in run.err
    assert "Traceback" not in run.err
    assert API_KEY not in run.output
    debug = cli("--debug", *args)
    assert debug.code == 1
    assert "Traceback" in debug.err
    assert API_KEY not in debug.output


def test_dry_run_prints_the_request_with_the_key_masked_and_sends_nothing(
    cli, receiver, app
):
    run = cli(
        "notify",
        "--dry-run",
        "--branch=main",
        *IDS,
        f"--environment-url={app.url}",
        f"--api-url={receiver.url}",
        *FAST,
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 0
    assert "X-API-KEY: ********" in run.out
    assert f"POST {receiver.url}/webhooks/integrations/custom" in run.out
    assert API_KEY not in run.output
    assert receiver.requests == []
    assert app.requests == []  # a dry run does not probe


@pytest.mark.parametrize(
    ("state", "code"),
    [("success", 0), ("in_progress", 0), ("cancelled", 0), ("error", 0)],
)
def test_each_state_is_sent_as_given(cli, receiver, app, state, code):
    run = cli(
        "notify",
        f"--state={state}",
        "--branch=main",
        *IDS,
        f"--environment-url={app.url}",
        f"--api-url={receiver.url}",
        *FAST,
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == code, run.err
    [request] = receiver.accepted
    assert request.json["deployment_state"] == state
    probed = len(app.requests)
    assert probed == (2 if state == "success" else 0)


@pytest.mark.parametrize(
    "form", ["plain", "repr", "JSON", "URL-encoded", "form-encoded"]
)
def test_the_suite_wide_leak_scan_catches_every_form(form):
    from tests.conftest import assert_no_key, key_forms

    with pytest.raises(AssertionError, match="leaked into a test string"):
        assert_no_key(f"noise {key_forms()[form].upper()} noise", "a test string")
