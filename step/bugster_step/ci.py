"""What the CI we run in says about the commit, the branch and the environment.

One small adapter per CI, tried in ``ADAPTERS`` order; the first whose
signature matches wins. Every value an adapter returns carries the variable it
came from, so the log can say where each part of the payload was found.
Values that break the rules of every CI (an empty string, ``HEAD`` or a short
SHA as a commit, ``PR-42`` or ``42/merge`` as a branch) are dropped here, not
sent.
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
        return {"sha": str(head.get("sha") or ""), "ref": str(head.get("ref") or "")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


class CloudBuildNamesOnly(CloudBuild):
    """A Cloud Build that maps only a few substitutions by hand has no signature:
    when no other CI is recognised, its variable names are still read."""

    name = "cloud-build (partial substitutions)"

    def detect(self, env: Env) -> bool:
        return any(
            env.has(name)
            for name in ("COMMIT_SHA", "REVISION_ID", "BRANCH_NAME", "_HEAD_BRANCH")
        )


ADAPTERS: tuple[Adapter, ...] = (
    CloudBuild(),
    GitLab(),
    GitHubActions(),
    Jenkins(),
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
