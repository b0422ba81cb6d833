"""Every test runs against real servers on 127.0.0.1 and nothing else.

google-auth reads GCE_METADATA_HOST once, when it is first imported, so the
metadata fake is started and the variables set here, at import time, before
any test module can import google. An autouse fixture then gives each test a
scrubbed environment: no CI variables from the developer's shell, no Google
settings, proxies pointed at a refused loopback port (so a request for any
other host fails at once instead of leaving the machine), a workspace of its
own, and a Bugster API URL on loopback even for a test that forgets to pass one.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass

import pytest

from sandbox import AppServer, BugsterReceiver, MetadataFake, SecretManagerFake
from sandbox.servers import google_env, scrub_env

assert "google.auth" not in sys.modules, "google was imported before the metadata fake"

METADATA = MetadataFake()
_GCLOUD_DIR = tempfile.mkdtemp(prefix="bugster-step-tests-")
GOOGLE_ENV = google_env(METADATA, _GCLOUD_DIR)
_SCRUBBED = {**scrub_env(dict(os.environ)), **GOOGLE_ENV}
os.environ.clear()
os.environ.update(_SCRUBBED)

# A recognisable key with characters that escaping changes.
API_KEY = "bgs_test+Key/With=Escapes0123456789"
FULL_SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
OTHER_SHA = "89e6c98d92887913cadf06b2adb97f26cde4849b"

# Variables a CI (or the developer's shell) may have set that steer detection.
_CI_VARIABLES = re.compile(
    r"^(?:BUGSTER_.*|CI|CI_.*|GITLAB_.*|JENKINS_.*|GIT_.*|BUILD_.*|BRANCH_NAME|"
    r"CHANGE_.*|TAG_NAME|WORKSPACE|GITHUB_.*|RUNNER_.*|CIRCLE.*|BITBUCKET_.*|"
    r"TF_BUILD|SYSTEM_.*|BUILDKITE.*|TRAVIS.*|DRONE.*|HARNESS_.*|CODEBUILD_.*|"
    r"SEMAPHORE.*|PROJECT_ID|PROJECT_NUMBER|LOCATION|COMMIT_SHA|SHORT_SHA|"
    r"REVISION_ID|REF_NAME|REPO_NAME|REPO_FULL_NAME|TRIGGER_NAME|_.*|"
    r"SERVICE_ACCOUNT.*|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|SSL_CERT_FILE)$"
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A clean environment and working directory for every test."""
    from bugster_step import redact

    for name in list(os.environ):
        if _CI_VARIABLES.match(name):
            monkeypatch.delenv(name)
    for name, value in GOOGLE_ENV.items():
        monkeypatch.setenv(name, value)
    # Should a test forget --api-url, the default is a closed loopback port.
    monkeypatch.setenv("BUGSTER_API_URL", GOOGLE_ENV["HTTP_PROXY"])
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    redact.forget_all()
    yield workspace
    redact.forget_all()


@pytest.fixture
def workspace(isolated):
    return isolated


@pytest.fixture(scope="session")
def metadata():
    return METADATA


@pytest.fixture
def receiver():
    with BugsterReceiver(API_KEY) as server:
        yield server


@pytest.fixture
def app():
    with AppServer() as server:
        yield server


@pytest.fixture
def secret_manager():
    with SecretManagerFake(token=METADATA.token) as server:
        yield server


# Probe and retry pacing small enough that a test of many attempts is quick.
FAST = [
    "--poll-interval=0.02",
    "--max-poll-interval=0.05",
    "--confirm-delay=0.02",
    "--retry-wait=0.01",
]


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def key_forms(key: str = API_KEY) -> dict[str, str]:
    """The forms a leaked key could take: each must be absent from every output."""
    import json
    import urllib.parse

    return {
        "plain": key,
        "repr": repr(key)[1:-1],
        "JSON": json.dumps(key)[1:-1],
        "JSON with escaped slashes": json.dumps(key)[1:-1].replace("/", "\\/"),
        "URL-encoded": urllib.parse.quote(key, safe=""),
        "form-encoded": urllib.parse.quote_plus(key, safe=""),
    }


def assert_no_key(text: str, where: str) -> None:
    lowered = text.lower()
    for form, value in key_forms().items():
        assert value.lower() not in lowered, f"the API key ({form}) leaked into {where}"


def _written_files(args: tuple[str, ...]) -> list[str]:
    """The files a run writes: --output FILE and GitHub's GITHUB_OUTPUT."""
    paths = [a.split("=", 1)[1] for a in args if a.startswith("--output=")]
    paths += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--output"]
    if os.environ.get("GITHUB_OUTPUT"):
        paths.append(os.environ["GITHUB_OUTPUT"])
    return [p for p in paths if os.path.isfile(p)]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``bugster-step ARGS`` in this process with ``env`` added; return a Run.

    Every run's stdout, stderr and result files are scanned for the key in each
    of its forms, so every scenario of the suite doubles as a leak test.
    """
    from bugster_step.cli import main

    def invoke(*args: str, env: dict[str, str] | None = None) -> Run:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = -1
        captured = capsys.readouterr()
        assert_no_key(captured.out, f"stdout of {args!r}")
        assert_no_key(captured.err, f"stderr of {args!r}")
        for path in _written_files(args):
            with open(path, encoding="utf-8", errors="replace") as handle:
                assert_no_key(handle.read(), path)
        return Run(code, captured.out, captured.err)

    return invoke


def cloud_build_env(**overrides: str) -> dict[str, str]:
    """What a Cloud Build branch build maps into a step with automapSubstitutions."""
    env = {
        "BUILD_ID": "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
        "PROJECT_ID": "acme-gcp",
        "PROJECT_NUMBER": "123456789012",
        "LOCATION": "us-central1",
        "COMMIT_SHA": FULL_SHA,
        "REVISION_ID": FULL_SHA,
        "SHORT_SHA": FULL_SHA[:7],
        "BRANCH_NAME": "main",
        "REF_NAME": "main",
        "TAG_NAME": "",
        "REPO_NAME": "shop",
        "TRIGGER_NAME": "deploy-main",
    }
    env.update(overrides)
    return env
