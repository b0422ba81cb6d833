"""Faults a fresh helper found beyond the catalogs, each pinned down."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys

from sandbox import AppServer, Reply
from sandbox.servers import isolated_env
from tests.conftest import API_KEY, FAST, FULL_SHA, METADATA

IDS = ["--project-id=proj-1", "--organization-id=org_abc", f"--commit-sha={FULL_SHA}"]


def notify(cli, receiver, *args, env=None):
    return cli(
        "notify",
        *IDS,
        f"--api-url={receiver.url}",
        *FAST,
        *args,
        env={"BUGSTER_API_KEY": API_KEY, **(env or {})},
    )


def _subprocess_env(tmp_path):
    env = isolated_env(METADATA, tmp_path, base={"PATH": "/usr/bin:/bin"})
    env.update({"BUGSTER_API_KEY": API_KEY, "PYTHONPATH": os.pathsep.join(sys.path)})
    return env


def test_signal_while_waiting_to_retry_says_a_request_was_already_sent(
    receiver, tmp_path
):
    receiver.set_script([Reply(503)] * 5)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bugster_step",
            "notify",
            *IDS,
            "--state=in_progress",
            f"--api-url={receiver.url}",
            "--retry-wait=60",
            "--retry-max-time=120",
        ],
        env=_subprocess_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Synchronise on the step's own word that it is waiting to retry.
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "retrying in" in line:
                break
        process.send_signal(signal.SIGTERM)
        _out, rest = process.communicate(timeout=20)
        err = "".join(seen) + rest
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143
    assert "while waiting to retry, after 1 POST" in err and "outcome is unknown" in err
    assert len(receiver.requests) == 1


def test_a_full_stdout_does_not_fail_a_delivered_run(receiver, tmp_path):
    out = tmp_path / "result.json"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bugster_step",
                "notify",
                *IDS,
                "--state=in_progress",
                f"--api-url={receiver.url}",
                f"--output={out}",
            ],
            env=_subprocess_env(tmp_path),
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "could not print the result to stdout" in done.stderr
    assert json.loads(out.read_text())["delivered"] is True
    assert len(receiver.accepted) == 1


def test_expect_text_passes_on_a_body_that_keeps_streaming(cli):
    streaming = Reply(
        200, body="READY " + "x" * 200_000, trickle=0.01, trickle_size=512
    )
    with AppServer(script=[streaming]) as app:
        run = cli(
            "probe",
            app.url,
            "--expect-text=READY",
            "--attempt-timeout=2",
            "--timeout=20",
            *FAST[:3],
        )
    assert run.code == 0, run.err


def test_a_key_too_long_for_any_header_is_refused_before_sending(
    cli, receiver, workspace
):
    key_file = workspace / "key"
    key_file.write_text("k" * 70_000)
    run = cli(
        "notify",
        *IDS,
        "--state=in_progress",
        f"--api-url={receiver.url}",
        f"--api-key-file={key_file}",
    )
    assert run.code == 2
    assert "too long to be a Bugster API key" in run.err
    assert receiver.requests == []


def test_a_fifo_as_the_key_file_is_refused_instead_of_blocking(
    cli, receiver, workspace
):
    fifo = workspace / "key.fifo"
    os.mkfifo(fifo)
    run = cli(
        "notify",
        *IDS,
        "--state=in_progress",
        f"--api-url={receiver.url}",
        f"--api-key-file={fifo}",
    )
    assert run.code == 2
    assert "not a regular file" in run.err


def test_retry_after_zero_does_not_shorten_the_backoff(cli, receiver):
    receiver.set_script([Reply(429, headers={"Retry-After": "0"})] * 2)
    run = notify(cli, receiver, "--state=in_progress", "--retry-wait=0.4")
    assert run.code == 0, run.err
    waits = [
        float(line.rsplit("retrying in ", 1)[1].rstrip("s"))
        for line in run.err.splitlines()
        if "retrying in" in line
    ]
    assert len(waits) == 2
    assert all(wait >= 0.2 for wait in waits)  # half the first backoff at least, not 0


def test_password_in_a_redirect_location_is_masked(cli):
    with AppServer(
        script=[
            Reply(
                302, headers={"Location": "http://admin:S3cretPassw0rd@login.invalid/"}
            )
        ]
    ) as app:
        run = cli("probe", app.url, "--timeout=1", *FAST[:3])
    assert run.code == 3
    assert "S3cretPassw0rd" not in run.output
    assert "admin:********@login.invalid" in run.err


def test_key_echoed_in_base64_is_masked(cli, receiver):
    echoed = base64.b64encode(API_KEY.encode()).decode()
    receiver.set_script(
        [Reply(422, headers={"Content-Type": "text/plain"}, body=f"got {echoed}")]
    )
    run = notify(cli, receiver, "--state=in_progress")
    assert run.code == 5
    assert echoed.rstrip("=") not in run.output
