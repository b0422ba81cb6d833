"""Commit and branch, from each CI's variables, through the real CLI.

Each case runs ``notify --dry-run`` (nothing is sent, no probe) and reads the
payload it prints, so the table shows what a user of that CI would get.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from bugster_step import ci
from tests.conftest import API_KEY, FULL_SHA, OTHER_SHA, cloud_build_env

BASE = ["notify", "--dry-run", "--project-id=proj-1", "--organization-id=org_abc"]


def payload_of(run) -> dict:
    assert run.code == 0, run.err
    return json.loads(run.out[run.out.index("{") :])


def dry_run(cli, env, *extra):
    return cli(
        *BASE,
        "--environment-url=https://app.example.test",
        *extra,
        env={"BUGSTER_API_KEY": API_KEY, **env},
    )


CLOUD_BUILD_CASES = {
    "branch build sends the commit": (cloud_build_env(), {"commit_sha": FULL_SHA}),
    "tag build sends the commit, never the tag": (
        cloud_build_env(BRANCH_NAME="", TAG_NAME="v1.2.0", REF_NAME="v1.2.0"),
        {"commit_sha": FULL_SHA},
    ),
    "pull request build sends the head commit": (
        cloud_build_env(
            BRANCH_NAME="main",
            _HEAD_BRANCH="feature/x",
            _PR_NUMBER="42",
            _BASE_BRANCH="main",
        ),
        {"commit_sha": FULL_SHA},
    ),
    "manual build with empty substitutions and --branch": (
        cloud_build_env(
            COMMIT_SHA="",
            REVISION_ID="",
            SHORT_SHA="",
            BRANCH_NAME="",
            REF_NAME="",
            BUGSTER_BRANCH="release",
        ),
        {"branch": "release"},
    ),
    "SHORT_SHA alone is never a commit": (
        cloud_build_env(COMMIT_SHA="", REVISION_ID="", BRANCH_NAME="dev"),
        {"branch": "dev"},
    ),
    "partial mapping without the signature is still read": (
        {"COMMIT_SHA": OTHER_SHA},
        {"commit_sha": OTHER_SHA},
    ),
}


@pytest.mark.parametrize(
    ("env", "expected"), CLOUD_BUILD_CASES.values(), ids=CLOUD_BUILD_CASES.keys()
)
def test_cloud_build_payload(cli, env, expected):
    payload = payload_of(dry_run(cli, env))
    sent = {k: payload[k] for k in ("commit_sha", "branch") if k in payload}
    assert sent == expected
    assert all(value != "" for value in payload.values())


def test_cloud_build_pull_request_branch_is_the_head_branch(cli):
    env = cloud_build_env(_HEAD_BRANCH="feature/x", _PR_NUMBER="42")
    payload = payload_of(dry_run(cli, env, "--ref=branch"))
    assert payload["branch"] == "feature/x"
    assert "commit_sha" not in payload


def test_cloud_build_tag_build_with_ref_branch_is_a_usage_error(cli):
    env = cloud_build_env(BRANCH_NAME="", TAG_NAME="v1.2.0", REF_NAME="v1.2.0")
    run = dry_run(cli, env, "--ref=branch")
    assert run.code == 2
    assert "no branch" in run.err


def test_cloud_build_project_id_is_never_the_bugster_project(cli):
    run = cli(
        "notify",
        "--dry-run",
        "--organization-id=org_abc",
        "--environment-url=https://app.example.test",
        env={"BUGSTER_API_KEY": API_KEY, **cloud_build_env()},
    )
    assert run.code == 2
    assert "--project-id" in run.err
    assert "acme-gcp" not in run.out


def test_manual_build_without_anything_names_automap_and_the_flags(cli):
    env = cloud_build_env(
        COMMIT_SHA="", REVISION_ID="", SHORT_SHA="", BRANCH_NAME="", REF_NAME=""
    )
    run = dry_run(cli, env)
    assert run.code == 2
    assert "automapSubstitutions" in run.err
    assert "--commit-sha" in run.err and "--branch" in run.err
    assert "Traceback" not in run.output


def test_cloud_build_is_logged_with_its_build_url(cli):
    run = dry_run(cli, cloud_build_env())
    assert "CI: cloud-build" in run.err
    assert "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b" in run.err
    assert "commit_sha = " + FULL_SHA + " (from COMMIT_SHA)" in run.err


OTHER_CI_CASES = {
    "gitlab branch pipeline": (
        {"GITLAB_CI": "true", "CI_COMMIT_SHA": FULL_SHA, "CI_COMMIT_BRANCH": "main"},
        ("gitlab", FULL_SHA, "main"),
    ),
    "gitlab merge request pipeline": (
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat",
        },
        ("gitlab", FULL_SHA, "feat"),
    ),
    "gitlab merged results uses the source sha": (
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": OTHER_SHA,
            "CI_MERGE_REQUEST_EVENT_TYPE": "merged_result",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": FULL_SHA,
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat",
        },
        ("gitlab", FULL_SHA, "feat"),
    ),
    "gitlab tag pipeline has no branch": (
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_COMMIT_TAG": "v1",
            "CI_COMMIT_REF_NAME": "v1",
        },
        ("gitlab", FULL_SHA, None),
    ),
    "jenkins freestyle strips origin/": (
        {
            "JENKINS_URL": "http://jenkins.test/",
            "BUILD_ID": "17",
            "GIT_COMMIT": FULL_SHA,
            "GIT_BRANCH": "origin/main",
        },
        ("jenkins", FULL_SHA, "main"),
    ),
    "jenkins keeps origin inside a branch name": (
        {
            "JENKINS_URL": "http://jenkins.test/",
            "GIT_COMMIT": FULL_SHA,
            "GIT_BRANCH": "feature/origin/x",
        },
        ("jenkins", FULL_SHA, "feature/origin/x"),
    ),
    "jenkins multibranch pull request uses CHANGE_BRANCH, not PR-42": (
        {
            "JENKINS_URL": "http://jenkins.test/",
            "GIT_COMMIT": FULL_SHA,
            "BRANCH_NAME": "PR-42",
            "CHANGE_ID": "42",
            "CHANGE_BRANCH": "feat",
        },
        ("jenkins", FULL_SHA, "feat"),
    ),
    "jenkins is not cloud build although both set BUILD_ID": (
        {
            "JENKINS_URL": "http://jenkins.test/",
            "BUILD_ID": "17",
            "PROJECT_ID": "x",
            "LOCATION": "y",
            "GIT_COMMIT": FULL_SHA,
            "BRANCH_NAME": "main",
        },
        ("jenkins", FULL_SHA, "main"),
    ),
    "github push": (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": FULL_SHA,
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_EVENT_NAME": "push",
        },
        ("github-actions", FULL_SHA, "main"),
    ),
    "hand-mapped COMMIT_SHA=HEAD is not a commit": (
        {"COMMIT_SHA": "HEAD", "BRANCH_NAME": "main"},
        ("cloud-build (partial substitutions)", None, "main"),
    ),
}


@pytest.mark.parametrize(
    ("env", "expected"), OTHER_CI_CASES.values(), ids=OTHER_CI_CASES.keys()
)
def test_ci_adapters_read_commit_and_branch(env, expected):
    info = ci.detect(env)
    assert info is not None
    got = (
        info.name,
        info.commit.value if info.commit else None,
        info.branch.value if info.branch else None,
    )
    assert got == expected


def test_github_pull_request_reads_the_head_from_the_event_file(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"pull_request": {"head": {"sha": FULL_SHA, "ref": "feat"}}})
    )
    info = ci.detect(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_SHA": OTHER_SHA,
            "GITHUB_REF_NAME": "7/merge",
            "GITHUB_HEAD_REF": "feat",
            "GITHUB_EVENT_PATH": str(event),
        }
    )
    assert (info.commit.value, info.branch.value) == (FULL_SHA, "feat")


def test_gitlab_environment_fills_environment_and_url(cli):
    env = {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": FULL_SHA,
        "CI_COMMIT_BRANCH": "main",
        "CI_ENVIRONMENT_NAME": "review/feat",
        "CI_ENVIRONMENT_URL": "https://feat.review.test",
    }
    run = cli(*BASE, env={"BUGSTER_API_KEY": API_KEY, **env})
    payload = payload_of(run)
    assert payload["environment"] == "review/feat"
    assert payload["environment_url"] == "https://feat.review.test"


def _git(workspace, *args):
    subprocess.run(
        ["git", "-C", str(workspace), *args],
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.test",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.test",
            "HOME": str(workspace),
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        },
    )


@pytest.fixture
def repo(workspace):
    _git(workspace, "init", "-q", "-b", "trunk")
    _git(workspace, "commit", "-q", "--allow-empty", "-m", "one")
    return workspace


def test_git_fallback_sends_head_commit(cli, repo):
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    payload = payload_of(dry_run(cli, {}))
    assert payload["commit_sha"] == head
    assert "from git (HEAD)" in dry_run(cli, {}).err


def test_git_fallback_branch_unless_detached(cli, repo):
    assert payload_of(dry_run(cli, {}, "--ref=branch"))["branch"] == "trunk"
    _git(repo, "checkout", "-q", "--detach")
    run = dry_run(cli, {}, "--ref=branch")
    assert run.code == 2


def test_explicit_values_win_over_the_ci(cli):
    payload = payload_of(
        dry_run(cli, cloud_build_env(), f"--commit-sha={OTHER_SHA.upper()}")
    )
    assert payload["commit_sha"] == OTHER_SHA


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--commit-sha=not-hex"], "not a hexadecimal commit SHA"),
        (["--commit-sha=3f78685"], "short SHA"),
        ([f"--commit-sha={FULL_SHA}", "--branch=main"], "both given"),
        (["--branch=PR-42"], "not a branch name"),
        (["--branch=has space"], "not a branch name"),
    ],
    ids=[
        "non-hex commit",
        "short commit",
        "commit and branch",
        "PR-42 branch",
        "space in branch",
    ],
)
def test_bad_explicit_refs_are_usage_errors_not_fallbacks(cli, args, message):
    run = dry_run(cli, cloud_build_env(), *args)
    assert run.code == 2
    assert message in run.err


def test_project_id_defaults_to_bugster_config(cli, workspace):
    (workspace / ".bugster").mkdir()
    (workspace / ".bugster" / "config.yaml").write_text(
        'project_name: shop\nproject_id: "shop-123"\n'
    )
    run = cli(
        "notify",
        "--dry-run",
        "--organization-id=org_abc",
        "--environment-url=https://app.example.test",
        env={"BUGSTER_API_KEY": API_KEY, **cloud_build_env()},
    )
    assert payload_of(run)["project_id"] == "shop-123"


def _head(repo) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def jenkins_merge(repo):
    """A checkout as Jenkins leaves it for a pull request: HEAD merges the change
    (second parent) into the target (first parent)."""
    _git(repo, "checkout", "-q", "-b", "feat")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "the change")
    change = _head(repo)
    _git(repo, "checkout", "-q", "trunk")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "target moved on")
    _git(repo, "merge", "-q", "--no-ff", "-m", "jenkins merge", "feat")
    return change, _head(repo)


def test_jenkins_pull_request_sends_the_change_not_jenkins_merge(cli, jenkins_merge):
    change, merge = jenkins_merge
    env = {
        "JENKINS_URL": "http://jenkins.test/",
        "GIT_COMMIT": merge,
        "BRANCH_NAME": "PR-7",
        "CHANGE_ID": "7",
        "CHANGE_BRANCH": "feat",
    }
    run = dry_run(cli, env)
    assert payload_of(run)["commit_sha"] == change
    assert "HEAD^2 of the merge in GIT_COMMIT" in run.err


def test_jenkins_branch_build_keeps_a_real_merge_commit(cli, jenkins_merge):
    _change, merge = jenkins_merge
    env = {
        "JENKINS_URL": "http://jenkins.test/",
        "GIT_COMMIT": merge,
        "BRANCH_NAME": "trunk",
    }
    assert payload_of(dry_run(cli, env))["commit_sha"] == merge


def test_jenkins_pull_request_without_a_checkout_sends_git_commit_as_is(cli):
    env = {
        "JENKINS_URL": "http://jenkins.test/",
        "GIT_COMMIT": FULL_SHA,
        "CHANGE_ID": "7",
        "CHANGE_BRANCH": "feat",
    }
    assert payload_of(dry_run(cli, env))["commit_sha"] == FULL_SHA


def test_git_fallback_works_in_a_workspace_owned_by_another_uid(cli, repo):
    head = _head(repo)
    subprocess.run(["chown", "-R", "12345:12345", str(repo)], check=True)
    payload = payload_of(dry_run(cli, {}))
    assert payload["commit_sha"] == head


def test_git_unavailable_is_said_plainly(cli, repo, monkeypatch, tmp_path):
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    run = dry_run(cli, {})
    assert run.code == 2
    assert "git unavailable: the git command is not installed" in run.err
    assert "Traceback" not in run.output


def test_jenkins_pull_request_without_git_warns_that_the_merge_was_not_checked(
    cli, jenkins_merge, monkeypatch, tmp_path
):
    _change, merge = jenkins_merge
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    env = {
        "JENKINS_URL": "http://jenkins.test/",
        "GIT_COMMIT": merge,
        "CHANGE_ID": "7",
        "CHANGE_BRANCH": "feat",
    }
    run = dry_run(cli, env)
    assert payload_of(run)["commit_sha"] == merge
    assert "may be the CI's merge of the pull request" in run.err
    assert "git unavailable" in run.err
