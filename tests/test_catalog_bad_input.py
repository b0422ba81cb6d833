"""The bad-input catalog: every option's malformed values, conflicting flags,
unusable keys, bad secret names, unreadable key files, bad URLs, invalid states,
bad CA paths and non-UTF-8 variables. Each row must give a message naming the
option or variable, exit 2 (4 for an API key Secret Manager cannot give), send
nothing, and print no traceback. Every run is also scanned for the key."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY, FULL_SHA

COMMIT = f"--commit-sha={FULL_SHA}"
KEY = {"BUGSTER_API_KEY": API_KEY}


def row(
    ident, args=(), env=None, needle="", code=2, *, commit=True, ids=True, key=True
):
    """One case: ``args`` go after a valid base (ids, URL, commit) unless told not to."""
    base = ["--environment-url=http://127.0.0.1:9/", "--timeout=1"]
    if ids:
        base += ["--project-id=proj-1", "--organization-id=org_abc"]
    if commit:
        base.append(COMMIT)
    env = {**(KEY if key else {}), **(env or {})}
    return pytest.param([*base, *args], env, needle, code, id=ident)


CATALOG = [
    # --- states, refs and ids
    row("state not in the list", ["--state=done"], needle="--state"),
    row("state in capitals", ["--state=SUCCESS"], needle="--state"),
    row(
        "state from the variable",
        env={"BUGSTER_DEPLOYMENT_STATE": "deployed"},
        needle="BUGSTER_DEPLOYMENT_STATE",
    ),
    row("ref not in the list", ["--ref=tag"], needle="--ref"),
    row(
        "commit that is not hex",
        ["--commit-sha=zzzz"],
        needle="not a hexadecimal commit SHA",
        commit=False,
    ),
    row(
        "commit that is short",
        ["--commit-sha=3f78685"],
        needle="short SHA",
        commit=False,
    ),
    row("commit and branch both given", ["--branch=main"], needle="both given"),
    row(
        "commit variable and branch flag",
        ["--branch=main"],
        env={"BUGSTER_COMMIT_SHA": FULL_SHA},
        needle="BUGSTER_COMMIT_SHA",
        commit=False,
    ),
    row("branch PR-42", ["--branch=PR-42"], needle="not a branch name", commit=False),
    row(
        "branch with a space",
        ["--branch=my branch"],
        needle="not a branch name",
        commit=False,
    ),
    row(
        "ref commit without a commit",
        ["--ref=commit", "--ci=none"],
        needle="--ref commit",
        commit=False,
    ),
    row(
        "missing organization id",
        ["--project-id=p"],
        needle="--organization-id",
        ids=False,
    ),
    row(
        "missing project id", ["--organization-id=o"], needle="--project-id", ids=False
    ),
    row(
        "project id placeholder",
        ["--project-id=${_BUGSTER_PROJECT_ID}"],
        needle="placeholder",
    ),
    row(
        "organization id with a space",
        ["--organization-id=org abc"],
        needle="whitespace",
    ),
    # --- URLs
    row(
        "environment URL ftp",
        ["--environment-url=ftp://x.test/"],
        needle="--environment-url",
    ),
    row(
        "environment URL without a host",
        ["--environment-url=https://"],
        needle="--environment-url",
    ),
    row(
        "environment URL with a space",
        ["--environment-url=https://a b.test/"],
        needle="--environment-url",
    ),
    row(
        "environment URL bad port",
        ["--environment-url=http://x.test:99999/"],
        needle="--environment-url",
    ),
    row(
        "environment URL bad IPv6",
        ["--environment-url=http://[::1"],
        needle="--environment-url",
    ),
    row("API URL file scheme", ["--api-url=file:///etc/passwd"], needle="--api-url"),
    row("API URL without a scheme", ["--api-url=localhost:8080"], needle="--api-url"),
    # --- numbers and choices
    row("timeout negative", ["--timeout=-1"], needle="--timeout"),
    row("timeout not a number", ["--timeout=soon"], needle="--timeout"),
    row("timeout nan", ["--timeout=nan"], needle="--timeout"),
    row("request timeout inf", ["--request-timeout=inf"], needle="--request-timeout"),
    row("retries zero", ["--retries=0"], needle="--retries"),
    row("retries too many", ["--retries=100"], needle="--retries"),
    row("attempt timeout zero", ["--attempt-timeout=0"], needle="--attempt-timeout"),
    row("expect-status word", ["--expect-status=ok"], needle="--expect-status"),
    row(
        "expect-status out of range", ["--expect-status=600"], needle="--expect-status"
    ),
    row(
        "expect-status reversed range",
        ["--expect-status=299-200"],
        needle="--expect-status",
    ),
    row(
        "expect-header without =",
        ["--expect-header=x-version"],
        needle="--expect-header",
    ),
    row("header without a colon", ["--header=x-bypass"], needle="--header"),
    row("header without a value", ["--header=x-bypass:"], needle="--header"),
    row("method not in the list", ["--method=POST"], needle="--method"),
    row("ipv4 and ipv6 together", ["--ipv4", "--ipv6"], needle="--ipv"),
    row("ci not in the list", ["--ci=teamcity"], needle="--ci"),
    row(
        "output format not in the list",
        ["--output-format=xml"],
        needle="--output-format",
    ),
    row("unknown flag", ["--no-such-flag"], needle="--no-such-flag"),
    # --- TLS
    row(
        "CA bundle that does not exist",
        ["--ca-bundle=/nonexistent/ca.pem"],
        needle="--ca-bundle",
    ),
    row(
        "REQUESTS_CA_BUNDLE that does not exist",
        env={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"},
        needle="REQUESTS_CA_BUNDLE",
    ),
    row(
        "insecure with a CA bundle",
        ["--insecure", "--ca-bundle=/etc/hostname"],
        needle="--insecure",
    ),
    # --- keys
    row("no key at all", key=False, needle="BUGSTER_API_KEY"),
    row("key empty after stripping", env={"BUGSTER_API_KEY": "   "}, needle="is empty"),
    row(
        "key with an inner space",
        env={"BUGSTER_API_KEY": "bgs_ab cd_0123456789"},
        needle="whitespace",
    ),
    row(
        "key with a tab",
        env={"BUGSTER_API_KEY": "bgs_ab\tcd_0123456789"},
        needle="whitespace",
    ),
    row(
        "key with a control character",
        env={"BUGSTER_API_KEY": "bgs_ab\x07cd_0123456789"},
        needle="control",
    ),
    row(
        "key with a non-ASCII character",
        env={"BUGSTER_API_KEY": "bgs_abcd_012345678\u00e9"},
        needle="non-ASCII",
    ),
    row(
        "key placeholder $VAR",
        env={"BUGSTER_API_KEY": "$BUGSTER_API_KEY"},
        needle="placeholder",
    ),
    row(
        "key placeholder ${VAR}",
        env={"BUGSTER_API_KEY": "${BUGSTER_API_KEY}"},
        needle="placeholder",
    ),
    row(
        "key placeholder $$VAR",
        env={"BUGSTER_API_KEY": "$$BUGSTER_API_KEY"},
        needle="placeholder",
    ),
    row(
        "key placeholder _BUGSTER_API_KEY",
        env={"BUGSTER_API_KEY": "_BUGSTER_API_KEY"},
        needle="placeholder",
    ),
    row("key too short", env={"BUGSTER_API_KEY": "abc1234"}, needle="too short"),
    row(
        "key from two sources",
        [f"--api-key-file={__file__}"],
        needle="configured twice",
    ),
    row(
        "key file missing",
        ["--api-key-file=/nonexistent/key"],
        key=False,
        needle="--api-key-file",
    ),
    row(
        "key file is a directory",
        env={"BUGSTER_API_KEY_FILE": "/tmp"},
        key=False,
        needle="BUGSTER_API_KEY_FILE",
    ),
    row(
        "key variable not UTF-8",
        env={"BUGSTER_API_KEY": "bgs_\udcff0123456789"},
        needle="not valid UTF-8",
    ),
    # --- secret names
    row(
        "secret name empty path",
        ["--api-key-secret=projects/p/secrets/"],
        key=False,
        needle="--api-key-secret",
    ),
    row(
        "secret name with a space",
        ["--api-key-secret=my secret"],
        key=False,
        needle="--api-key-secret",
    ),
    row(
        "secret version not a number",
        ["--api-key-secret=s@x"],
        key=False,
        needle="--api-key-secret",
    ),
    row(
        "secret version zero",
        ["--api-key-secret=projects/p/secrets/s/versions/0"],
        key=False,
        needle="--api-key-secret",
    ),
    row(
        "secret project missing",
        ["--api-key-secret=projects//secrets/s"],
        key=False,
        needle="--api-key-secret",
    ),
    row(
        "secret that Secret Manager does not have",
        ["--api-key-secret=projects/p/secrets/absent"],
        key=False,
        needle="secret not found",
        code=4,
    ),
    # --- other variables that are not text
    row(
        "organization variable not UTF-8",
        env={"BUGSTER_ORGANIZATION_ID": "org_\udce9"},
        needle="BUGSTER_ORGANIZATION_ID",
        ids=False,
    ),
    row(
        "branch variable not UTF-8",
        env={"BUGSTER_BRANCH": "feat\udce9"},
        needle="BUGSTER_BRANCH",
        commit=False,
    ),
]


@pytest.mark.parametrize(("args", "env", "needle", "code"), CATALOG)
def test_bad_input(cli, receiver, secret_manager, args, env, needle, code):
    # The receiver's URL first, so that a row's own --api-url comes later and wins.
    argv = [
        "notify",
        f"--api-url={receiver.url}",
        f"--secret-manager-endpoint={secret_manager.url}",
        *args,
    ]
    run = cli(*argv, env=env)
    assert run.code == code, run.err
    assert needle in run.err, run.err
    assert "Traceback" not in run.output
    assert "internal error" not in run.err
    assert receiver.requests == []


def test_the_catalog_is_at_least_forty_cases():
    assert len(CATALOG) >= 40
