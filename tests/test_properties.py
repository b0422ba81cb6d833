"""Property tests: whatever the flags, variables and CI say, the payload that
resolution builds is one Bugster accepts, or the run stops with a usage error."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bugster_step import ci
from bugster_step.ci import Found
from bugster_step.errors import ConfigError
from bugster_step.notify import STATES, NotifyOptions, plan
from sandbox.servers import event_problem

HEX = "0123456789abcdef"
full_shas = st.text(HEX, min_size=40, max_size=40)
junk = st.sampled_from(
    [
        "",
        " ",
        "HEAD",
        "PR-42",
        "42/merge",
        "refs/heads/x",
        "abc1234",
        "origin/main",
        "feature/origin/x",
        "main",
        "v1.2.0",
    ]
)
branchy = st.text(
    string.ascii_letters + string.digits + "-_/.", min_size=1, max_size=20
)
values = st.one_of(full_shas, junk, branchy)

# Every variable an adapter reads for the commit or the branch, and each CI's marker.
CI_MARKERS = {
    "cloud-build": {
        "BUILD_ID": "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
        "PROJECT_ID": "p",
        "PROJECT_NUMBER": "1",
    },
    "gitlab": {"GITLAB_CI": "true"},
    "github": {"GITHUB_ACTIONS": "true"},
    "jenkins": {"JENKINS_URL": "http://jenkins.test/"},
    "circleci": {"CIRCLECI": "true"},
    "azure": {"TF_BUILD": "True"},
    "travis": {"TRAVIS": "true"},
    "drone": {"DRONE": "true"},
    "none": {},
}
REF_VARIABLES = [
    "COMMIT_SHA",
    "REVISION_ID",
    "BRANCH_NAME",
    "_HEAD_BRANCH",
    "TAG_NAME",
    "CI_COMMIT_SHA",
    "CI_COMMIT_BRANCH",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_MERGE_REQUEST_EVENT_TYPE",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA",
    "CI_COMMIT_TAG",
    "GITHUB_SHA",
    "GITHUB_REF_NAME",
    "GITHUB_REF_TYPE",
    "GITHUB_HEAD_REF",
    "GIT_COMMIT",
    "GIT_BRANCH",
    "CHANGE_ID",
    "CHANGE_BRANCH",
    "CIRCLE_SHA1",
    "CIRCLE_BRANCH",
    "BUILD_SOURCEVERSION",
    "BUILD_SOURCEBRANCH",
    "TRAVIS_COMMIT",
    "TRAVIS_BRANCH",
    "TRAVIS_PULL_REQUEST",
    "TRAVIS_PULL_REQUEST_BRANCH",
    "DRONE_COMMIT_SHA",
    "DRONE_BRANCH",
]


@st.composite
def environments(draw):
    env = dict(CI_MARKERS[draw(st.sampled_from(sorted(CI_MARKERS)))])
    for name in draw(st.lists(st.sampled_from(REF_VARIABLES), max_size=8, unique=True)):
        env[name] = draw(values)
    return env


def maybe(strategy, origin):
    return st.one_of(st.none(), strategy.map(lambda v: Found(v, origin)))


@st.composite
def options(draw):
    return NotifyOptions(
        key_sources=[],
        project_id=draw(
            maybe(st.sampled_from(["proj-1", "", " ", "$_P"]), "--project-id")
        ),
        organization_id=draw(
            maybe(st.sampled_from(["org_abc", "", "${ORG}"]), "--organization-id")
        ),
        environment_url=draw(
            maybe(
                st.sampled_from(
                    ["https://app.test", "http://x.test:8080/p", "ftp://x", "not a url"]
                ),
                "--environment-url",
            )
        ),
        environment=draw(
            maybe(st.sampled_from(["staging", "", "  "]), "--environment")
        ),
        state=draw(st.sampled_from(STATES)),
        commit_sha=draw(maybe(values, "--commit-sha")),
        branch=draw(maybe(values, "--branch")),
        ref=draw(st.sampled_from(["auto", "commit", "branch"])),
        workspace="/nonexistent-workspace",
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opts=options(), env=environments())
def test_resolution_gives_a_valid_payload_or_a_usage_error(opts, env):
    try:
        payload = plan(opts, env).payload
    except ConfigError:
        return
    assert ("commit_sha" in payload) != ("branch" in payload)
    assert payload["deployment_state"] in STATES
    assert all(isinstance(v, str) and v.strip() == v and v for v in payload.values())
    if "commit_sha" in payload:
        assert ci.is_full_sha(payload["commit_sha"])
    else:
        assert ci.looks_like_branch(payload["branch"])
    assert event_problem(payload) is None  # what the contract-checking receiver says


@settings(max_examples=300, deadline=None)
@given(env=environments())
def test_adapters_never_return_an_invalid_commit_or_branch(env):
    info = ci.detect(env)
    if info is None:
        return
    if info.commit:
        assert ci.is_full_sha(info.commit.value)
    if info.branch:
        assert ci.looks_like_branch(info.branch.value)
        assert info.branch.value not in (
            "",
            "HEAD",
        ) and not info.branch.value.startswith("refs/")
