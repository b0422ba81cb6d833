"""The result for later steps: --output as JSON or dotenv, and GITHUB_OUTPUT."""

from __future__ import annotations

import json

import pytest

from sandbox import Reply
from tests.conftest import API_KEY, FAST, FULL_SHA, cloud_build_env

IDS = ["--project-id=proj-1", "--organization-id=org_abc"]


def notify(cli, receiver, app, *args, env=None):
    return cli(
        "notify",
        *IDS,
        f"--environment-url={app.url}",
        f"--api-url={receiver.url}",
        *FAST,
        *args,
        env={"BUGSTER_API_KEY": API_KEY, **cloud_build_env(), **(env or {})},
    )


def read_dotenv(path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_json_result_after_a_delivery(cli, receiver, app, tmp_path):
    out = tmp_path / "result.json"
    run = notify(cli, receiver, app, f"--output={out}")
    assert run.code == 0, run.err
    facts = json.loads(out.read_text())
    assert facts["state"] == "success"
    assert facts["ref"] == "commit_sha"
    assert facts["commit_sha"] == FULL_SHA
    assert facts["branch"] is None
    assert facts["ci"] == "cloud-build"
    assert facts["http_status"] == 200
    assert facts["message"].startswith("Custom integration event processed")
    assert facts["attempts"] == 1
    assert facts["probe_attempts"] == 2 == len(app.requests)
    assert facts["delivered"] is True and facts["skipped"] is False
    assert facts["exit_status"] == 0 and facts["error"] is None
    assert isinstance(facts["probe_seconds"], float)
    assert API_KEY not in out.read_text()


def test_dotenv_result_for_gitlab(cli, receiver, app, tmp_path):
    out = tmp_path / "bugster.env"
    run = notify(cli, receiver, app, f"--output={out}", "--output-format=dotenv")
    assert run.code == 0, run.err
    facts = read_dotenv(out)
    assert facts["BUGSTER_RESULT_STATE"] == "success"
    assert facts["BUGSTER_RESULT_COMMIT_SHA"] == FULL_SHA
    assert facts["BUGSTER_RESULT_HTTP_STATUS"] == "200"
    assert facts["BUGSTER_RESULT_DELIVERED"] == "true"
    assert "BUGSTER_RESULT_BRANCH" not in facts  # absent values are left out


def test_result_is_written_when_the_run_fails(cli, receiver, app, tmp_path):
    receiver.set_script([Reply(422, body={"detail": f"bad project, key {API_KEY}"})])
    out = tmp_path / "result.json"
    run = notify(cli, receiver, app, f"--output={out}")
    assert run.code == 5
    facts = json.loads(out.read_text())
    assert facts["exit_status"] == 5
    assert facts["delivered"] is False
    assert facts["http_status"] == 422
    assert "bad project" in facts["error"]
    assert API_KEY not in out.read_text()


def test_result_of_a_deployment_that_never_became_ready(cli, receiver, tmp_path):
    out = tmp_path / "result.json"
    with_app = cli(
        "notify",
        *IDS,
        "--environment-url=http://127.0.0.1:9/",
        f"--api-url={receiver.url}",
        *FAST,
        "--timeout=1",
        f"--output={out}",
        env={"BUGSTER_API_KEY": API_KEY, **cloud_build_env()},
    )
    assert with_app.code == 3
    facts = json.loads(out.read_text())
    assert facts["exit_status"] == 3
    assert facts["probe_attempts"] >= 2
    assert facts["attempts"] == 0
    assert receiver.requests == []


def test_github_output_gets_the_same_facts(cli, receiver, app, tmp_path):
    github_output = tmp_path / "github_output"
    github_output.write_text("earlier=kept\n")
    run = notify(
        cli, receiver, app, "--ref=branch", env={"GITHUB_OUTPUT": str(github_output)}
    )
    assert run.code == 0, run.err
    lines = github_output.read_text().splitlines()
    assert lines[0] == "earlier=kept"
    outputs = dict(line.split("=", 1) for line in lines[1:])
    assert outputs["branch"] == "main"
    assert outputs["delivered"] == "true"
    assert outputs["http_status"] == "200"
    assert "commit_sha" not in outputs


def test_unwritable_output_is_an_error_line_not_a_failed_delivery(
    cli, receiver, app, tmp_path
):
    run = notify(cli, receiver, app, f"--output={tmp_path / 'no-such-dir' / 'r.json'}")
    assert run.code == 0
    assert "could not write the result" in run.err
    assert len(receiver.accepted) == 1


@pytest.mark.parametrize("fmt", ["json", "dotenv"])
def test_dry_run_result_says_nothing_was_delivered(cli, receiver, app, tmp_path, fmt):
    out = tmp_path / "r"
    run = notify(
        cli, receiver, app, "--dry-run", f"--output={out}", f"--output-format={fmt}"
    )
    assert run.code == 0
    text = out.read_text()
    assert (
        ("BUGSTER_RESULT_DRY_RUN=true" in text)
        if fmt == "dotenv"
        else json.loads(text)["dry_run"]
    )
    assert receiver.requests == []
