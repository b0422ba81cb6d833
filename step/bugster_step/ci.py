"""What the CI we run in says about the commit, the branch and the environment.

One small adapter per CI, tried in ``ADAPTERS`` order; the first whose
signature matches wins. Every value an adapter returns carries the variable it
came from, so the log can say where each part of the payload was found.
Values that break the rules of every CI (an empty string, ``HEAD`` or a short
SHA as a commit, ``PR-42`` or ``42/merge`` as a branch) are dropped here, not
sent.

Where a CI puts the pull request's target branch in its usual branch variable
(Travis, Drone, Harness, Woodpecker, Semaphore), a pull request build without
the source branch has no branch rather than the target's; a tag build never has
a branch.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_FULL_SHA = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Names CIs use for things that are not branches.
_NOT_A_BRANCH = re.compile(r"^(?:PR-\d+|\d+/(?:merge|head)|refs/.*|HEAD)$")


@dataclass(frozen=True)
class Found:
    """A value and where it came from (a variable name, a flag, ``git``)."""

    value: str
    origin: str


@dataclass
class CIInfo:
    name: str
    commit: Found | None = None
    branch: Found | None = None
    environment: Found | None = None
    environment_url: Found | None = None
    build_url: str | None = None
    build_id: str | None = None
    workspace: str | None = None
    # The CI built a merge of the change and its target: in a git checkout, the
    # deployed commit is HEAD's second parent.
    ci_made_merge: bool = False
    notes: list[str] = field(default_factory=list)


def is_full_sha(value: str) -> bool:
    return bool(_FULL_SHA.match(value))


def looks_like_branch(value: str) -> bool:
    return bool(value) and not _NOT_A_BRANCH.match(value) and not value.isspace()


class Env:
    """Read access to the environment where an empty string means absent."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None:
            return None
        value = value.strip()
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8: not a usable value
            return None
        return value or None

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def commit(self, *names: str) -> Found | None:
        """The first variable of ``names`` that holds a full commit SHA."""
        for name in names:
            value = self.get(name)
            if value and is_full_sha(value):
                return Found(value.lower(), name)
        return None

    def branch(self, *names: str, strip: tuple[str, ...] = ()) -> Found | None:
        """The first variable of ``names`` that holds a branch name."""
        for name in names:
            value = self.get(name)
            if not value:
                continue
            for prefix in strip:
                if value.startswith(prefix):
                    value = value[len(prefix) :]
                    break
            if looks_like_branch(value):
                return Found(value, name)
        return None

    def found(self, name: str) -> Found | None:
        value = self.get(name)
        return Found(value, name) if value else None


class Adapter:
    name = ""

    def detect(self, env: Env) -> bool:
        raise NotImplementedError

    def read(self, env: Env) -> CIInfo:
        raise NotImplementedError


class CloudBuild(Adapter):
    """Google Cloud Build: substitutions reach a step only if the build maps them."""

    name = "cloud-build"

    def detect(self, env: Env) -> bool:
        build_id = env.get("BUILD_ID") or ""
        return (
            bool(_UUID.match(build_id))
            and env.has("PROJECT_ID")
            and (env.has("PROJECT_NUMBER") or env.has("LOCATION"))
        )

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("COMMIT_SHA", "REVISION_ID")
        # A tag build has TAG_NAME and no branch; REF_NAME would be the tag.
        if not env.has("TAG_NAME"):
            info.branch = env.branch("_HEAD_BRANCH", "BRANCH_NAME")
        build_id, project = env.get("BUILD_ID"), env.get("PROJECT_ID")
        if build_id and project:
            region = env.get("LOCATION") or "global"
            info.build_url = (
                "https://console.cloud.google.com/cloud-build/builds;"
                f"region={region}/{build_id}?project={project}"
            )
        info.build_id = build_id
        info.workspace = "/workspace" if os.path.isdir("/workspace") else None
        return info


class GitLab(Adapter):
    name = "gitlab"

    def detect(self, env: Env) -> bool:
        return env.get("GITLAB_CI") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        event = env.get("CI_MERGE_REQUEST_EVENT_TYPE")
        if event in ("merged_result", "merge_train"):
            # CI_COMMIT_SHA is a merge commit GitLab made; the source is the change.
            info.commit = env.commit("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA")
        else:
            info.commit = env.commit("CI_COMMIT_SHA")
        if not env.has("CI_COMMIT_TAG"):
            info.branch = env.branch(
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_BRANCH"
            )
        info.environment = env.found("CI_ENVIRONMENT_NAME")
        info.environment_url = env.found("CI_ENVIRONMENT_URL")
        info.build_url = env.get("CI_JOB_URL")
        info.build_id = env.get("CI_JOB_ID")
        info.workspace = env.get("CI_PROJECT_DIR")
        return info


class Jenkins(Adapter):
    name = "jenkins"

    def detect(self, env: Env) -> bool:
        return env.has("JENKINS_URL")

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("GIT_COMMIT")
        pull_request = env.has("CHANGE_ID")
        if pull_request:
            # BRANCH_NAME is PR-42 here; GIT_COMMIT may be a local merge.
            info.branch = env.branch("CHANGE_BRANCH")
            info.ci_made_merge = True
        elif not env.has("TAG_NAME"):
            info.branch = env.branch(
                "BRANCH_NAME",
                "GIT_LOCAL_BRANCH",
                "GIT_BRANCH",
                strip=("refs/remotes/origin/", "origin/"),
            )
        info.build_url = env.get("BUILD_URL")
        info.build_id = env.get("BUILD_TAG") or env.get("BUILD_NUMBER")
        info.workspace = env.get("WORKSPACE")
        return info


class GitHubActions(Adapter):
    name = "github-actions"

    def detect(self, env: Env) -> bool:
        return env.get("GITHUB_ACTIONS") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        event_name = env.get("GITHUB_EVENT_NAME") or ""
        if event_name.startswith("pull_request"):
            head = _github_pr_head(env.get("GITHUB_EVENT_PATH"))
            if head.get("sha") and is_full_sha(head["sha"]):
                info.commit = Found(head["sha"].lower(), "GITHUB_EVENT_PATH")
            info.branch = env.branch("GITHUB_HEAD_REF")
            if not info.branch and head.get("ref"):
                info.branch = Found(head["ref"], "GITHUB_EVENT_PATH")
            # GITHUB_SHA is GitHub's temporary merge commit: never the deployed one.
            info.ci_made_merge = True
        else:
            info.commit = env.commit("GITHUB_SHA")
            if env.get("GITHUB_REF_TYPE") != "tag":
                info.branch = env.branch("GITHUB_REF_NAME")
        server, repo, run = (
            env.get("GITHUB_SERVER_URL"),
            env.get("GITHUB_REPOSITORY"),
            env.get("GITHUB_RUN_ID"),
        )
        if server and repo and run:
            info.build_url = f"{server}/{repo}/actions/runs/{run}"
        info.build_id = run
        info.workspace = env.get("GITHUB_WORKSPACE")
        return info


def _github_pr_head(event_path: str | None) -> dict:
    if not event_path:
        return {}
    try:
        with open(event_path, encoding="utf-8") as handle:
            event = json.load(handle)
        head = event["pull_request"]["head"]
        sha, ref = head.get("sha"), head.get("ref")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return {
        "sha": sha if isinstance(sha, str) else "",
        "ref": ref if isinstance(ref, str) else "",
    }


class CircleCI(Adapter):
    name = "circleci"

    def detect(self, env: Env) -> bool:
        return env.get("CIRCLECI") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("CIRCLE_SHA1")
        if not env.has("CIRCLE_TAG"):
            info.branch = env.branch("CIRCLE_BRANCH")
        info.build_url = env.get("CIRCLE_BUILD_URL")
        info.build_id = env.get("CIRCLE_BUILD_NUM")
        workspace = env.get("CIRCLE_WORKING_DIRECTORY")
        # CircleCI often leaves the tilde in: "~/project".
        info.workspace = os.path.expanduser(workspace) if workspace else None
        return info


class Bitbucket(Adapter):
    """Bitbucket Pipelines; custom (manual) pipelines may carry no branch."""

    name = "bitbucket"

    def detect(self, env: Env) -> bool:
        return env.has("BITBUCKET_BUILD_NUMBER")

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("BITBUCKET_COMMIT")
        if not env.has("BITBUCKET_TAG"):
            info.branch = env.branch("BITBUCKET_BRANCH")
        origin, number = (
            env.get("BITBUCKET_GIT_HTTP_ORIGIN"),
            env.get("BITBUCKET_BUILD_NUMBER"),
        )
        if origin and number:
            info.build_url = f"{origin}/addon/pipelines/home#!/results/{number}"
        info.build_id = number
        info.workspace = env.get("BITBUCKET_CLONE_DIR")
        return info


class AzurePipelines(Adapter):
    name = "azure-pipelines"

    def detect(self, env: Env) -> bool:
        return (env.get("TF_BUILD") or "").lower() == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        pull_request = env.get("BUILD_REASON") == "PullRequest" or env.has(
            "SYSTEM_PULLREQUEST_PULLREQUESTID"
        )
        if pull_request:
            # BUILD_SOURCEVERSION is the merge Azure made; the head is separate.
            info.commit = env.commit("SYSTEM_PULLREQUEST_SOURCECOMMITID")
            if not info.commit:
                info.commit = env.commit("BUILD_SOURCEVERSION")
                info.ci_made_merge = info.commit is not None
            info.branch = env.branch(
                "SYSTEM_PULLREQUEST_SOURCEBRANCH", strip=("refs/heads/",)
            )
        else:
            info.commit = env.commit("BUILD_SOURCEVERSION")
            # Only refs/heads/ is stripped: refs/tags/v1 stays a ref and is dropped.
            info.branch = env.branch("BUILD_SOURCEBRANCH", strip=("refs/heads/",))
        collection, project, build = (
            env.get("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"),
            env.get("SYSTEM_TEAMPROJECT"),
            env.get("BUILD_BUILDID"),
        )
        if collection and project and build:
            info.build_url = (
                f"{collection.rstrip('/')}/{project}/_build/results?buildId={build}"
            )
        info.build_id = build
        info.workspace = env.get("BUILD_SOURCESDIRECTORY")
        return info


class Buildkite(Adapter):
    name = "buildkite"

    def detect(self, env: Env) -> bool:
        return env.get("BUILDKITE") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        # BUILDKITE_COMMIT can be the literal HEAD: not a SHA, so dropped.
        info.commit = env.commit("BUILDKITE_COMMIT")
        if not env.has("BUILDKITE_TAG"):
            info.branch = env.branch("BUILDKITE_BRANCH")
        info.build_url = env.get("BUILDKITE_BUILD_URL")
        info.build_id = env.get("BUILDKITE_BUILD_ID")
        info.workspace = env.get("BUILDKITE_BUILD_CHECKOUT_PATH")
        return info


class Travis(Adapter):
    name = "travis"

    def detect(self, env: Env) -> bool:
        return env.get("TRAVIS") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("TRAVIS_PULL_REQUEST_SHA", "TRAVIS_COMMIT")
        pull_request = (env.get("TRAVIS_PULL_REQUEST") or "false") != "false"
        if pull_request:
            # TRAVIS_BRANCH is the target branch here, never the change's.
            info.branch = env.branch("TRAVIS_PULL_REQUEST_BRANCH")
        elif not env.has("TRAVIS_TAG"):
            info.branch = env.branch("TRAVIS_BRANCH")
        info.build_url = env.get("TRAVIS_BUILD_WEB_URL")
        info.build_id = env.get("TRAVIS_BUILD_ID")
        info.workspace = env.get("TRAVIS_BUILD_DIR")
        return info


def _drone_branch(env: Env, target_name: str) -> Found | None:
    """Drone and Harness: the source branch, else ``target_name`` except on
    pull requests (where it is the target) and tags."""
    if env.has("DRONE_TAG") or env.get("DRONE_BUILD_EVENT") == "tag":
        return None
    if env.get("DRONE_BUILD_EVENT") == "pull_request" or env.has("DRONE_PULL_REQUEST"):
        return env.branch("DRONE_SOURCE_BRANCH")
    return env.branch("DRONE_SOURCE_BRANCH", target_name)


class Harness(Adapter):
    """Harness CI sets Drone's variables too (and ``DRONE=true``)."""

    name = "harness"

    def detect(self, env: Env) -> bool:
        return env.has("HARNESS_BUILD_ID")

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("DRONE_COMMIT_SHA")
        info.branch = _drone_branch(env, "DRONE_COMMIT_BRANCH")
        info.build_id = env.get("HARNESS_BUILD_ID")
        return info


class Drone(Adapter):
    name = "drone"

    def detect(self, env: Env) -> bool:
        return env.get("DRONE") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("DRONE_COMMIT_SHA")
        info.branch = _drone_branch(env, "DRONE_BRANCH")
        info.build_url = env.get("DRONE_BUILD_LINK")
        info.build_id = env.get("DRONE_BUILD_NUMBER")
        info.workspace = env.get("DRONE_WORKSPACE")
        return info


class Woodpecker(Adapter):
    """Woodpecker uses GitLab's ``CI_*`` names: GitLab is tried first."""

    name = "woodpecker"

    def detect(self, env: Env) -> bool:
        return env.get("CI") == "woodpecker"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("CI_COMMIT_SHA")
        event = env.get("CI_PIPELINE_EVENT") or ""
        if env.has("CI_COMMIT_TAG") or event == "tag":
            pass
        elif event.startswith("pull_request") or env.has("CI_COMMIT_PULL_REQUEST"):
            # CI_COMMIT_BRANCH is the target branch on pull requests.
            info.branch = env.branch("CI_COMMIT_SOURCE_BRANCH")
        else:
            info.branch = env.branch("CI_COMMIT_SOURCE_BRANCH", "CI_COMMIT_BRANCH")
        info.build_url = env.get("CI_PIPELINE_URL")
        info.build_id = env.get("CI_PIPELINE_NUMBER")
        info.workspace = env.get("CI_WORKSPACE")
        return info


class CodeBuild(Adapter):
    """AWS CodeBuild: only webhook builds carry a ref; the source has no .git."""

    name = "codebuild"

    def detect(self, env: Env) -> bool:
        return env.has("CODEBUILD_BUILD_ID")

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("CODEBUILD_RESOLVED_SOURCE_VERSION")
        info.branch = env.branch("CODEBUILD_WEBHOOK_HEAD_REF", strip=("refs/heads/",))
        info.build_url = env.get("CODEBUILD_BUILD_URL")
        info.build_id = env.get("CODEBUILD_BUILD_ID")
        info.workspace = env.get("CODEBUILD_SRC_DIR")
        return info


class Semaphore(Adapter):
    name = "semaphore"

    def detect(self, env: Env) -> bool:
        return env.get("SEMAPHORE") == "true"

    def read(self, env: Env) -> CIInfo:
        info = CIInfo(self.name)
        info.commit = env.commit("SEMAPHORE_GIT_PR_SHA", "SEMAPHORE_GIT_SHA")
        ref_type = env.get("SEMAPHORE_GIT_REF_TYPE")
        if ref_type == "tag" or env.has("SEMAPHORE_GIT_TAG_NAME"):
            pass
        elif ref_type == "pull-request":
            # SEMAPHORE_GIT_BRANCH is the target branch on pull requests.
            info.branch = env.branch("SEMAPHORE_GIT_PR_BRANCH")
        else:
            info.branch = env.branch("SEMAPHORE_GIT_PR_BRANCH", "SEMAPHORE_GIT_BRANCH")
        info.build_id = env.get("SEMAPHORE_WORKFLOW_ID")
        info.workspace = env.get("SEMAPHORE_GIT_DIR")
        return info


class CloudBuildNamesOnly(CloudBuild):
    """A Cloud Build that maps only a few substitutions by hand has no signature:
    when no other CI is recognised, its variable names are still read."""

    name = "cloud-build (partial substitutions)"

    def detect(self, env: Env) -> bool:
        return any(
            env.has(name)
            for name in ("COMMIT_SHA", "REVISION_ID", "BRANCH_NAME", "_HEAD_BRANCH")
        )


# Detection order. Cloud Build first (its signature is the strictest); GitLab
# before Woodpecker (same CI_* names); Harness before Drone (Harness also sets
# DRONE=true); CloudBuildNamesOnly last, as it matches on bare names such as
# BRANCH_NAME that any CI or shell may set, and must never shadow a real CI.
ADAPTERS: tuple[Adapter, ...] = (
    CloudBuild(),
    GitLab(),
    GitHubActions(),
    Jenkins(),
    CircleCI(),
    Bitbucket(),
    AzurePipelines(),
    Buildkite(),
    Travis(),
    Harness(),
    Drone(),
    Woodpecker(),
    CodeBuild(),
    Semaphore(),
    CloudBuildNamesOnly(),
)
# The names `--ci` accepts: every adapter with a signature of its own.
CI_NAMES = tuple(a.name for a in ADAPTERS if not isinstance(a, CloudBuildNamesOnly))


def detect(environ: Mapping[str, str], forced: str | None = None) -> CIInfo | None:
    """The first adapter that matches ``environ``, or the one ``forced`` names."""
    env = Env(environ)
    if forced == "none":
        return None
    for adapter in ADAPTERS:
        if forced and adapter.name != forced:
            continue
        if forced or adapter.detect(env):
            return adapter.read(env)
    return None
