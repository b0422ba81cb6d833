"""Delivery semantics: soft failure, opting in to ambiguous retries, and what an
interrupt does at each phase (in a real subprocess, signalled for real)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from sandbox import AppServer, Reply
from sandbox.servers import isolated_env
from tests.conftest import API_KEY, FAST, FULL_SHA, METADATA

IDS = ["--project-id=proj-1", "--organization-id=org_abc", f"--commit-sha={FULL_SHA}"]


def notify(cli, receiver, *args):
    return cli(
        "notify",
        *IDS,
        f"--api-url={receiver.url}",
        *FAST,
        *args,
        env={"BUGSTER_API_KEY": API_KEY},
    )


def test_soft_fail_turns_not_ready_into_exit_0_with_a_warning(cli, receiver, tmp_path):
    out = tmp_path / "r.json"
    run = notify(
        cli,
        receiver,
        "--environment-url=http://127.0.0.1:9/",
        "--timeout=1",
        "--soft-fail",
        f"--output={out}",
    )
    assert run.code == 0
    assert "--soft-fail: exiting 0 although the step failed with exit 3" in run.err
    assert "NOT asked to test" in run.err
    assert receiver.requests == []
    facts = json.loads(out.read_text())
    assert facts["soft_failed"] is True and facts["delivered"] is False


def test_soft_fail_turns_undelivered_into_exit_0(cli, receiver):
    receiver.set_script([Reply(503)] * 5)
    run = notify(cli, receiver, "--state=in_progress", "--soft-fail")
    assert run.code == 0
    assert "failed with exit 6" in run.err
    assert len(receiver.requests) == 5


@pytest.mark.parametrize(
    ("reply", "code"),
    [(Reply(401), 4), (Reply(422, body={"detail": "unknown project"}), 5)],
    ids=["bad key still fails", "rejected event still fails"],
)
def test_soft_fail_does_not_hide_configuration_problems(cli, receiver, reply, code):
    receiver.set_script([reply])
    run = notify(cli, receiver, "--state=in_progress", "--soft-fail")
    assert run.code == code
    assert len(receiver.requests) == 1


def test_soft_fail_does_not_hide_a_usage_error(cli, receiver):
    run = cli(
        "notify",
        "--soft-fail",
        "--state=in_progress",
        f"--api-url={receiver.url}",
        env={"BUGSTER_API_KEY": API_KEY},
    )
    assert run.code == 2


def test_500_is_retried_only_with_retry_ambiguous(cli, receiver):
    receiver.set_script([Reply(500), Reply(500)])
    run = notify(cli, receiver, "--state=in_progress", "--retry-ambiguous")
    assert run.code == 0, run.err
    assert len(receiver.requests) == 3
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert len(keys) == 1


def test_read_timeout_is_retried_with_retry_ambiguous_under_the_same_key(cli, receiver):
    # The slow first answer still lands at the receiver: the duplicate that
    # --retry-ambiguous accepts, recognisable by its Idempotency-Key.
    receiver.set_script([Reply(200, delay=2.0)])
    run = notify(
        cli,
        receiver,
        "--state=in_progress",
        "--retry-ambiguous",
        "--request-timeout=0.3",
    )
    assert run.code == 0, run.err
    assert receiver.wait_for_requests(2, timeout=10)
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(keys) == 1


# --- signals, in a real process -------------------------------------------


@pytest.fixture
def step_process(tmp_path, receiver):
    """Start ``bugster-step notify ARGS`` in a subprocess that can be signalled."""
    started = []

    def start(*args: str) -> subprocess.Popen:
        env = isolated_env(METADATA, tmp_path, base={"PATH": "/usr/bin:/bin"})
        env.update({"BUGSTER_API_KEY": API_KEY, "PYTHONPATH": ":".join(sys.path)})
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bugster_step",
                "notify",
                *IDS,
                f"--api-url={receiver.url}",
                *args,
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGINT"],
)
def test_signal_during_the_readiness_wait_sends_nothing(
    step_process, receiver, signum, code
):
    with AppServer(script=[Reply(503)]) as app:
        process = step_process(f"--environment-url={app.url}", "--poll-interval=30")
        assert app.wait_for_requests(1, timeout=20)
        process.send_signal(signum)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == code
    assert "interrupted before anything was sent to Bugster" in err
    assert "Traceback" not in err
    assert receiver.requests == []


def test_signal_during_the_post_says_the_outcome_is_unknown(step_process, receiver):
    receiver.set_script([Reply(200, delay=30.0)])
    process = step_process("--state=in_progress", "--request-timeout=60")
    assert receiver.wait_for_requests(1, timeout=20)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 143
    assert "during the POST to Bugster" in err and "outcome is unknown" in err
    assert API_KEY not in err
