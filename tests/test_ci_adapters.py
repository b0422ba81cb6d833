"""Commit and branch from each CI's variables, adapter by adapter.

Each row is an environment as that CI sets it and the (name, commit, branch)
``ci.detect`` must find; the ids say what the row proves. The traps are the
rows of /work/shared/ci-environments.md where other tools went wrong.
"""

from __future__ import annotations

import pytest

from bugster_step import ci
from tests.conftest import FULL_SHA, OTHER_SHA


def found(env: dict[str, str]) -> tuple[str, str | None, str | None]:
    info = ci.detect(env)
    assert info is not None, "no CI detected"
    return (
        info.name,
        info.commit.value if info.commit else None,
        info.branch.value if info.branch else None,
    )


def cases(table: dict[str, tuple[dict[str, str], tuple]]):
    return pytest.mark.parametrize(
        ("env", "expected"), list(table.values()), ids=list(table)
    )


CIRCLECI = {"CI": "true", "CIRCLECI": "true"}
CIRCLECI_CASES = {
    "circleci branch build sends commit and branch": (
        {**CIRCLECI, "CIRCLE_SHA1": FULL_SHA, "CIRCLE_BRANCH": "main"},
        ("circleci", FULL_SHA, "main"),
    ),
    "circleci tag build has no branch": (
        {**CIRCLECI, "CIRCLE_SHA1": FULL_SHA, "CIRCLE_TAG": "v1.2.0"},
        ("circleci", FULL_SHA, None),
    ),
    "circleci tag build ignores a branch variable that is also set": (
        {
            **CIRCLECI,
            "CIRCLE_SHA1": FULL_SHA,
            "CIRCLE_TAG": "v1.2.0",
            "CIRCLE_BRANCH": "v1.2.0",
        },
        ("circleci", FULL_SHA, None),
    ),
    "circleci empty commit and branch are absent": (
        {**CIRCLECI, "CIRCLE_SHA1": "", "CIRCLE_BRANCH": ""},
        ("circleci", None, None),
    ),
    "circleci short sha is never a commit": (
        {**CIRCLECI, "CIRCLE_SHA1": FULL_SHA[:7], "CIRCLE_BRANCH": "main"},
        ("circleci", None, "main"),
    ),
}

BITBUCKET = {"CI": "true", "BITBUCKET_BUILD_NUMBER": "17"}
BITBUCKET_CASES = {
    "bitbucket branch pipeline sends commit and branch": (
        {**BITBUCKET, "BITBUCKET_COMMIT": FULL_SHA, "BITBUCKET_BRANCH": "main"},
        ("bitbucket", FULL_SHA, "main"),
    ),
    "bitbucket tag pipeline has no branch": (
        {**BITBUCKET, "BITBUCKET_COMMIT": FULL_SHA, "BITBUCKET_TAG": "v1.2.0"},
        ("bitbucket", FULL_SHA, None),
    ),
    "bitbucket custom pipeline without a branch sends the commit only": (
        {**BITBUCKET, "BITBUCKET_COMMIT": FULL_SHA},
        ("bitbucket", FULL_SHA, None),
    ),
}

AZURE = {"TF_BUILD": "True"}
AZURE_PR = {
    **AZURE,
    "BUILD_REASON": "PullRequest",
    "SYSTEM_PULLREQUEST_PULLREQUESTID": "42",
    "BUILD_SOURCEVERSION": OTHER_SHA,
    "BUILD_SOURCEBRANCH": "refs/pull/42/merge",
    "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
}
AZURE_CASES = {
    "azure branch build strips refs/heads/ from the branch": (
        {
            **AZURE,
            "BUILD_SOURCEVERSION": FULL_SHA,
            "BUILD_SOURCEBRANCH": "refs/heads/feature/x",
        },
        ("azure-pipelines", FULL_SHA, "feature/x"),
    ),
    "azure tag build has no branch": (
        {
            **AZURE,
            "BUILD_SOURCEVERSION": FULL_SHA,
            "BUILD_SOURCEBRANCH": "refs/tags/v1.2.0",
        },
        ("azure-pipelines", FULL_SHA, None),
    ),
    "azure pull request uses the head commit, not the merge": (
        {
            **AZURE_PR,
            "SYSTEM_PULLREQUEST_SOURCECOMMITID": FULL_SHA,
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/x",
        },
        ("azure-pipelines", FULL_SHA, "feature/x"),
    ),
    "azure pull request without head commit falls back to the merge": (
        {**AZURE_PR, "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/x"},
        ("azure-pipelines", OTHER_SHA, "feature/x"),
    ),
    "azure pull request never sends refs/pull/N/merge as the branch": (
        {**AZURE_PR, "SYSTEM_PULLREQUEST_SOURCECOMMITID": FULL_SHA},
        ("azure-pipelines", FULL_SHA, None),
    ),
    "azure TF_BUILD in lower case is still azure": (
        {
            "TF_BUILD": "true",
            "BUILD_SOURCEVERSION": FULL_SHA,
            "BUILD_SOURCEBRANCH": "refs/heads/main",
        },
        ("azure-pipelines", FULL_SHA, "main"),
    ),
}

BUILDKITE = {"CI": "true", "BUILDKITE": "true"}
BUILDKITE_CASES = {
    "buildkite branch build sends commit and branch": (
        {**BUILDKITE, "BUILDKITE_COMMIT": FULL_SHA, "BUILDKITE_BRANCH": "main"},
        ("buildkite", FULL_SHA, "main"),
    ),
    "buildkite literal HEAD commit is dropped": (
        {**BUILDKITE, "BUILDKITE_COMMIT": "HEAD", "BUILDKITE_BRANCH": "main"},
        ("buildkite", None, "main"),
    ),
    "buildkite tag build has no branch": (
        {
            **BUILDKITE,
            "BUILDKITE_COMMIT": FULL_SHA,
            "BUILDKITE_BRANCH": "v1.2.0",
            "BUILDKITE_TAG": "v1.2.0",
        },
        ("buildkite", FULL_SHA, None),
    ),
}

TRAVIS = {"CI": "true", "TRAVIS": "true"}
TRAVIS_CASES = {
    "travis push build sends commit and branch": (
        {
            **TRAVIS,
            "TRAVIS_COMMIT": FULL_SHA,
            "TRAVIS_BRANCH": "main",
            "TRAVIS_PULL_REQUEST": "false",
        },
        ("travis", FULL_SHA, "main"),
    ),
    "travis pull request uses the head branch, not the target": (
        {
            **TRAVIS,
            "TRAVIS_PULL_REQUEST": "42",
            "TRAVIS_COMMIT": OTHER_SHA,
            "TRAVIS_PULL_REQUEST_SHA": FULL_SHA,
            "TRAVIS_BRANCH": "main",
            "TRAVIS_PULL_REQUEST_BRANCH": "feature/x",
        },
        ("travis", FULL_SHA, "feature/x"),
    ),
    "travis pull request without head branch never sends the target": (
        {
            **TRAVIS,
            "TRAVIS_PULL_REQUEST": "42",
            "TRAVIS_PULL_REQUEST_SHA": FULL_SHA,
            "TRAVIS_BRANCH": "main",
            "TRAVIS_PULL_REQUEST_BRANCH": "",
        },
        ("travis", FULL_SHA, None),
    ),
    "travis pull request without head sha falls back to TRAVIS_COMMIT": (
        {
            **TRAVIS,
            "TRAVIS_PULL_REQUEST": "42",
            "TRAVIS_COMMIT": OTHER_SHA,
            "TRAVIS_PULL_REQUEST_SHA": "",
            "TRAVIS_PULL_REQUEST_BRANCH": "feature/x",
        },
        ("travis", OTHER_SHA, "feature/x"),
    ),
    "travis tag build has no branch": (
        {
            **TRAVIS,
            "TRAVIS_COMMIT": FULL_SHA,
            "TRAVIS_BRANCH": "v1.2.0",
            "TRAVIS_TAG": "v1.2.0",
            "TRAVIS_PULL_REQUEST": "false",
        },
        ("travis", FULL_SHA, None),
    ),
}

HARNESS = {"CI": "true", "DRONE": "true", "HARNESS_BUILD_ID": "7"}
HARNESS_CASES = {
    "harness with DRONE=true is harness, not drone": (
        {
            **HARNESS,
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_COMMIT_BRANCH": "main",
        },
        ("harness", FULL_SHA, "main"),
    ),
    "harness prefers the source branch": (
        {
            **HARNESS,
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_SOURCE_BRANCH": "feature/x",
            "DRONE_COMMIT_BRANCH": "main",
        },
        ("harness", FULL_SHA, "feature/x"),
    ),
    "harness pull request without source branch never sends the target": (
        {
            **HARNESS,
            "DRONE_BUILD_EVENT": "pull_request",
            "DRONE_PULL_REQUEST": "42",
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_COMMIT_BRANCH": "main",
        },
        ("harness", FULL_SHA, None),
    ),
    "harness tag build has no branch": (
        {
            **HARNESS,
            "DRONE_BUILD_EVENT": "tag",
            "DRONE_TAG": "v1.2.0",
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_COMMIT_BRANCH": "main",
        },
        ("harness", FULL_SHA, None),
    ),
}

DRONE = {"CI": "true", "DRONE": "true"}
DRONE_CASES = {
    "drone push build sends commit and branch": (
        {
            **DRONE,
            "DRONE_BUILD_EVENT": "push",
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_BRANCH": "main",
        },
        ("drone", FULL_SHA, "main"),
    ),
    "drone pull request uses the source branch, not the target": (
        {
            **DRONE,
            "DRONE_BUILD_EVENT": "pull_request",
            "DRONE_PULL_REQUEST": "42",
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_SOURCE_BRANCH": "feature/x",
            "DRONE_BRANCH": "main",
        },
        ("drone", FULL_SHA, "feature/x"),
    ),
    "drone pull request without source branch never sends the target": (
        {
            **DRONE,
            "DRONE_BUILD_EVENT": "pull_request",
            "DRONE_PULL_REQUEST": "42",
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_SOURCE_BRANCH": "",
            "DRONE_BRANCH": "main",
        },
        ("drone", FULL_SHA, None),
    ),
    "drone tag build has no branch": (
        {
            **DRONE,
            "DRONE_BUILD_EVENT": "tag",
            "DRONE_TAG": "v1.2.0",
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_BRANCH": "main",
        },
        ("drone", FULL_SHA, None),
    ),
}

WOODPECKER = {"CI": "woodpecker"}
WOODPECKER_CASES = {
    "woodpecker with GITLAB_CI unset is woodpecker, not gitlab": (
        {
            **WOODPECKER,
            "CI_PIPELINE_EVENT": "push",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_COMMIT_BRANCH": "main",
        },
        ("woodpecker", FULL_SHA, "main"),
    ),
    "woodpecker pull request uses the source branch, not the target": (
        {
            **WOODPECKER,
            "CI_PIPELINE_EVENT": "pull_request",
            "CI_COMMIT_PULL_REQUEST": "42",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_COMMIT_SOURCE_BRANCH": "feature/x",
            "CI_COMMIT_BRANCH": "main",
        },
        ("woodpecker", FULL_SHA, "feature/x"),
    ),
    "woodpecker pull request without source branch never sends the target": (
        {
            **WOODPECKER,
            "CI_PIPELINE_EVENT": "pull_request",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_COMMIT_BRANCH": "main",
        },
        ("woodpecker", FULL_SHA, None),
    ),
    "woodpecker tag build has no branch": (
        {
            **WOODPECKER,
            "CI_PIPELINE_EVENT": "tag",
            "CI_COMMIT_TAG": "v1.2.0",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_COMMIT_BRANCH": "main",
        },
        ("woodpecker", FULL_SHA, None),
    ),
}

CODEBUILD = {"CODEBUILD_BUILD_ID": "demo:b1e6661e-e4f2-4156-9ab9-82a19e000000"}
CODEBUILD_CASES = {
    "codebuild webhook build strips refs/heads/ from the branch": (
        {
            **CODEBUILD,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": FULL_SHA,
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature/x",
        },
        ("codebuild", FULL_SHA, "feature/x"),
    ),
    "codebuild build started by hand has no ref, so no branch": (
        {**CODEBUILD, "CODEBUILD_RESOLVED_SOURCE_VERSION": FULL_SHA},
        ("codebuild", FULL_SHA, None),
    ),
    "codebuild tag webhook has no branch": (
        {
            **CODEBUILD,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": FULL_SHA,
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/tags/v1.2.0",
        },
        ("codebuild", FULL_SHA, None),
    ),
    "codebuild source version that is not a sha is dropped": (
        {
            **CODEBUILD,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "pr/42",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/main",
        },
        ("codebuild", None, "main"),
    ),
}

SEMAPHORE = {"CI": "true", "SEMAPHORE": "true"}
SEMAPHORE_CASES = {
    "semaphore branch build sends commit and branch": (
        {
            **SEMAPHORE,
            "SEMAPHORE_GIT_REF_TYPE": "branch",
            "SEMAPHORE_GIT_SHA": FULL_SHA,
            "SEMAPHORE_GIT_BRANCH": "main",
        },
        ("semaphore", FULL_SHA, "main"),
    ),
    "semaphore pull request uses the pr sha and pr branch": (
        {
            **SEMAPHORE,
            "SEMAPHORE_GIT_REF_TYPE": "pull-request",
            "SEMAPHORE_GIT_SHA": OTHER_SHA,
            "SEMAPHORE_GIT_PR_SHA": FULL_SHA,
            "SEMAPHORE_GIT_BRANCH": "main",
            "SEMAPHORE_GIT_PR_BRANCH": "feature/x",
        },
        ("semaphore", FULL_SHA, "feature/x"),
    ),
    "semaphore pull request without pr branch never sends the target": (
        {
            **SEMAPHORE,
            "SEMAPHORE_GIT_REF_TYPE": "pull-request",
            "SEMAPHORE_GIT_PR_SHA": FULL_SHA,
            "SEMAPHORE_GIT_BRANCH": "main",
        },
        ("semaphore", FULL_SHA, None),
    ),
    "semaphore tag build has no branch": (
        {
            **SEMAPHORE,
            "SEMAPHORE_GIT_REF_TYPE": "tag",
            "SEMAPHORE_GIT_TAG_NAME": "v1.2.0",
            "SEMAPHORE_GIT_SHA": FULL_SHA,
            "SEMAPHORE_GIT_BRANCH": "main",
        },
        ("semaphore", FULL_SHA, None),
    ),
}

ORDER_CASES = {
    "gitlab with CI=true and no woodpecker marker is gitlab": (
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": FULL_SHA,
            "CI_COMMIT_BRANCH": "main",
        },
        ("gitlab", FULL_SHA, "main"),
    ),
    "circleci with BRANCH_NAME also set is circleci, not cloud-build partial": (
        {
            **CIRCLECI,
            "CIRCLE_SHA1": FULL_SHA,
            "CIRCLE_BRANCH": "main",
            "BRANCH_NAME": "other",
            "COMMIT_SHA": OTHER_SHA,
        },
        ("circleci", FULL_SHA, "main"),
    ),
    "drone with a stray BRANCH_NAME is drone, not cloud-build partial": (
        {
            **DRONE,
            "DRONE_COMMIT_SHA": FULL_SHA,
            "DRONE_BRANCH": "main",
            "BRANCH_NAME": "other",
        },
        ("drone", FULL_SHA, "main"),
    ),
    "hand-mapped cloud build names are still read when no CI matches": (
        {"COMMIT_SHA": FULL_SHA, "BRANCH_NAME": "main"},
        ("cloud-build (partial substitutions)", FULL_SHA, "main"),
    ),
}


@cases(CIRCLECI_CASES)
def test_circleci(env, expected):
    assert found(env) == expected


@cases(BITBUCKET_CASES)
def test_bitbucket(env, expected):
    assert found(env) == expected


@cases(AZURE_CASES)
def test_azure_pipelines(env, expected):
    assert found(env) == expected


@cases(BUILDKITE_CASES)
def test_buildkite(env, expected):
    assert found(env) == expected


@cases(TRAVIS_CASES)
def test_travis(env, expected):
    assert found(env) == expected


@cases(HARNESS_CASES)
def test_harness(env, expected):
    assert found(env) == expected


@cases(DRONE_CASES)
def test_drone(env, expected):
    assert found(env) == expected


@cases(WOODPECKER_CASES)
def test_woodpecker(env, expected):
    assert found(env) == expected


@cases(CODEBUILD_CASES)
def test_codebuild(env, expected):
    assert found(env) == expected


@cases(SEMAPHORE_CASES)
def test_semaphore(env, expected):
    assert found(env) == expected


@cases(ORDER_CASES)
def test_detection_order(env, expected):
    assert found(env) == expected


def test_azure_pull_request_merge_fallback_is_marked_ci_made_merge():
    info = ci.detect({**AZURE_PR})
    assert info is not None and info.commit is not None
    assert info.commit.origin == "BUILD_SOURCEVERSION"
    assert info.ci_made_merge is True


def test_azure_pull_request_with_head_commit_is_not_ci_made_merge():
    info = ci.detect({**AZURE_PR, "SYSTEM_PULLREQUEST_SOURCECOMMITID": FULL_SHA})
    assert info is not None
    assert info.ci_made_merge is False


BUILD_DETAILS = {
    "circleci": (
        {
            **CIRCLECI,
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/o/r/12",
            "CIRCLE_BUILD_NUM": "12",
            "CIRCLE_WORKING_DIRECTORY": "/home/circleci/project",
        },
        ("https://circleci.com/gh/o/r/12", "12", "/home/circleci/project"),
    ),
    "bitbucket": (
        {
            **BITBUCKET,
            "BITBUCKET_GIT_HTTP_ORIGIN": "http://bitbucket.org/o/r",
            "BITBUCKET_CLONE_DIR": "/opt/atlassian/pipelines/agent/build",
        },
        (
            "http://bitbucket.org/o/r/addon/pipelines/home#!/results/17",
            "17",
            "/opt/atlassian/pipelines/agent/build",
        ),
    ),
    "azure-pipelines": (
        {
            **AZURE,
            "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": "https://dev.azure.com/org/",
            "SYSTEM_TEAMPROJECT": "proj",
            "BUILD_BUILDID": "99",
            "BUILD_SOURCESDIRECTORY": "/home/vsts/work/1/s",
        },
        (
            "https://dev.azure.com/org/proj/_build/results?buildId=99",
            "99",
            "/home/vsts/work/1/s",
        ),
    ),
    "buildkite": (
        {
            **BUILDKITE,
            "BUILDKITE_BUILD_URL": "https://buildkite.com/o/p/builds/3",
            "BUILDKITE_BUILD_ID": "0190-uuid",
            "BUILDKITE_BUILD_CHECKOUT_PATH": "/var/lib/buildkite/builds/p",
        },
        (
            "https://buildkite.com/o/p/builds/3",
            "0190-uuid",
            "/var/lib/buildkite/builds/p",
        ),
    ),
    "travis": (
        {
            **TRAVIS,
            "TRAVIS_BUILD_WEB_URL": "https://travis-ci.com/o/r/builds/5",
            "TRAVIS_BUILD_ID": "5",
            "TRAVIS_BUILD_DIR": "/home/travis/build/o/r",
        },
        ("https://travis-ci.com/o/r/builds/5", "5", "/home/travis/build/o/r"),
    ),
    "harness": (HARNESS, (None, "7", None)),
    "drone": (
        {
            **DRONE,
            "DRONE_BUILD_LINK": "https://drone.example/o/r/42",
            "DRONE_BUILD_NUMBER": "42",
            "DRONE_WORKSPACE": "/drone/src",
        },
        ("https://drone.example/o/r/42", "42", "/drone/src"),
    ),
    "woodpecker": (
        {
            **WOODPECKER,
            "CI_PIPELINE_URL": "https://ci.example/repos/1/pipeline/8",
            "CI_PIPELINE_NUMBER": "8",
            "CI_WORKSPACE": "/woodpecker/src",
        },
        ("https://ci.example/repos/1/pipeline/8", "8", "/woodpecker/src"),
    ),
    "codebuild": (
        {
            **CODEBUILD,
            "CODEBUILD_BUILD_URL": "https://console.aws.amazon.com/codebuild/x",
            "CODEBUILD_SRC_DIR": "/codebuild/output/src1/src",
        },
        (
            "https://console.aws.amazon.com/codebuild/x",
            CODEBUILD["CODEBUILD_BUILD_ID"],
            "/codebuild/output/src1/src",
        ),
    ),
    "semaphore": (
        {
            **SEMAPHORE,
            "SEMAPHORE_WORKFLOW_ID": "65c9bb1c-aeb6-41f0-b8d9-6fa177241cdf",
            "SEMAPHORE_GIT_DIR": "/home/semaphore/r",
        },
        (None, "65c9bb1c-aeb6-41f0-b8d9-6fa177241cdf", "/home/semaphore/r"),
    ),
}


@cases(BUILD_DETAILS)
def test_build_url_id_and_workspace(env, expected):
    info = ci.detect(env)
    assert info is not None
    assert (info.build_url, info.build_id, info.workspace) == expected


@pytest.mark.parametrize(
    "name",
    [
        "circleci",
        "bitbucket",
        "azure-pipelines",
        "buildkite",
        "travis",
        "drone",
        "woodpecker",
        "harness",
        "codebuild",
        "semaphore",
    ],
)
def test_each_new_ci_can_be_forced_by_name(name):
    assert name in ci.CI_NAMES
    info = ci.detect({}, forced=name)
    assert info is not None and info.name == name


def test_cloud_build_names_only_is_last_and_not_forceable():
    assert isinstance(ci.ADAPTERS[-1], ci.CloudBuildNamesOnly)
    assert ci.CloudBuildNamesOnly.name not in ci.CI_NAMES
