"""The image, built for real and run the way each CI starts it (``make image-test``).

One session builds the Dockerfile with buildah (see ``oci.py`` for how), then
every test runs the image with podman, ``--network=host``, against servers on
127.0.0.1 only, and checks what the receiver got:

- Cloud Build: the entrypoint with ``args``, ``/workspace`` as working dir,
  automapSubstitutions' environment, the key from ``secretEnv``; the README's
  ``entrypoint: sh`` form; the step reading Secret Manager itself.
- Jenkins ``agent { docker }``: ``-u 12345:12345 ... IMAGE cat``, then
  ``exec ... sh -c 'bugster-step notify ...'``.
- GitLab's Docker executor: the job script on the stdin of ``sh``, with the
  image's entrypoint and with ``entrypoint: [""]``.
- Any uid with no passwd entry, HOME unset, empty or unwritable, a read-only
  root and only ``/tmp`` writable.
- TLS against a server signed by a test CA, trusted through REQUESTS_CA_BUNDLE.

Every container gets the Bugster API URL of a local receiver, the metadata
fake's address for google-auth, and proxies pointed at a refused loopback port
(loopback excepted), so nothing it tries can leave the machine.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox import SecretManagerFake
from tests.conftest import API_KEY, FULL_SHA, GOOGLE_ENV, METADATA, OTHER_SHA
from tests.conftest import cloud_build_env as base_cloud_build_env
from tests.image import oci

pytestmark = pytest.mark.image

ORG = "org_imagetest0123456789ab"
PROJECT = "shop-e2e-1234"
#: Probe pacing for runs against a ready app: one confirmation, quickly.
QUICK = ["--poll-interval=0.2", "--max-poll-interval=0.5", "--confirm-delay=0.2"]


# --- the image, built once per session ------------------------------------------


@dataclass
class Built:
    engine: oci.Engine
    name: str
    version: str

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        image: str | None = None,
        timeout: float = 180,
    ) -> oci.Result:
        """``podman run --rm`` with host networking; ``args`` = options, then ``--``."""
        options, command = _split(args)
        return self.engine.podman(
            "run",
            "--rm",
            "--pull=never",
            "--http-proxy=false",
            "--network=host",
            *(["-i"] if input is not None else []),
            *env_flags(env or {}),
            *options,
            image or self.name,
            *command,
            check=False,
            input=input,
            timeout=timeout,
        )


def _split(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """podman options before ``--``, the container's command after it."""
    if "--" not in args:
        return [], list(args)
    at = list(args).index("--")
    return list(args[:at]), list(args[at + 1 :])


def env_flags(env: Mapping[str, str]) -> list[str]:
    flags = []
    for name, value in {**container_safety_env(), **env}.items():
        flags += ["--env", f"{name}={value}"]
    return flags


def container_safety_env() -> dict[str, str]:
    """Proxies that refuse everything but loopback, and google-auth on the fake:
    the suite's own settings, less the host path of its gcloud folder."""
    return {
        name: value for name, value in GOOGLE_ENV.items() if name != "CLOUDSDK_CONFIG"
    }


@pytest.fixture(scope="session")
def report(request) -> Iterator[list[str]]:
    lines = request.config.stash.setdefault(oci.REPORT_KEY, [])
    yield lines
    try:
        oci.CACHE_DIR.mkdir(parents=True, exist_ok=True)
        oci.REPORT_FILE.write_text("\n".join(lines) + "\n")
    except OSError as exc:
        lines.append(f"(could not write {oci.REPORT_FILE}: {exc})")


@pytest.fixture(scope="session")
def engine(report) -> Iterator[oci.Engine]:
    host_env = oci.host_environment()
    timings: dict[str, float] = {}
    try:
        oci.ensure_tools(host_env, timings)
    except oci.Unavailable as exc:
        reason = str(exc)
    else:
        reason = None
    if reason:
        report.append(f"NOT RUN: {reason}")
        oci.unavailable(reason)
    eng = oci.Engine(oci.new_engine_dir(), host_env, timings=timings)
    yield eng
    problems = eng.cleanup()
    report.append(
        "cleanup: containers, images and storage removed"
        if not problems
        else "cleanup PROBLEMS:\n" + "\n".join(problems)
    )


@pytest.fixture(scope="session")
def image(engine, report) -> Built:
    timings = engine.timings
    started = time.monotonic()
    tarball, meta = oci.base_tarball(engine.host_env, timings)
    try:
        python = oci.interpreter_for(meta["python"])
    except oci.Unavailable as exc:
        reason = str(exc)
    else:
        reason = None
    if reason:
        report.append(f"NOT RUN: {reason}")
        oci.unavailable(reason)

    context = oci.copy_context(engine.top / "context")
    step = time.monotonic()
    oci.run(
        [
            python,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            context / "wheels",
            "--constraint",
            context / "constraints.txt",
            context,
            "hatchling",
        ],
        env=engine.host_env,
        cwd=context,
        timeout=900,
    )
    timings["pip wheel (host)"] = time.monotonic() - step

    step = time.monotonic()
    engine.import_base(tarball, meta)
    timings["import base"] = time.monotonic() - step

    version = oci.package_version()
    step = time.monotonic()
    build = engine.buildah(
        "bud",
        "--network=none",
        "--pull=never",
        "--build-arg",
        f"PYTHON_IMAGE={oci.BASE_IMAGE}",
        "--build-arg",
        f"VERSION={version}",
        "--file",
        str(context / "Dockerfile"),
        "--tag",
        oci.IMAGE,
        str(context),
        check=False,
        timeout=1200,
    )
    timings["buildah bud"] = time.monotonic() - step
    oci.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    (oci.CACHE_DIR / "last-build.log").write_text(build.describe(limit=10**7))
    assert build.code == 0, build.describe()

    size = engine.inspect(oci.IMAGE)["Size"]
    base_size = engine.inspect(oci.BASE_IMAGE)["Size"]
    archive = engine.top / "image.oci.tar"
    step = time.monotonic()
    engine.podman(
        "save", "--format", "oci-archive", "--output", str(archive), oci.IMAGE
    )
    timings["podman save"] = time.monotonic() - step
    archive_size = archive.stat().st_size
    layers = oci.archive_layers(archive)
    archive.unlink()
    timings["image ready (total)"] = time.monotonic() - started

    report += [
        f"image {oci.IMAGE} (bugster-step {version}) on {oci.BASE_IMAGE} "
        f"(mmdebstrap {meta['suite']}, Python {meta['python']})",
        f"size, uncompressed (podman image inspect): {oci.human(size)}",
        f"  of which the local base: {oci.human(base_size)}; "
        f"added by the Dockerfile: {oci.human(size - base_size)}",
        f"podman save --format oci-archive: {oci.human(archive_size)} (gzip layers; "
        f"the Dockerfile's layer: {oci.human(layers[-1])}, what a pull adds "
        "on top of a cached base)",
        "timings: "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items()),
    ]
    return Built(engine, oci.IMAGE, version)


# --- local servers and workspaces ---------------------------------------------


def make_workspace(path: Path, project: str = PROJECT, owner: int | None = None):
    """A checkout with ``.bugster/config.yaml``, readable by any uid."""
    (path / ".bugster").mkdir(parents=True)
    (path / ".bugster" / "config.yaml").write_text(
        f"project_id: {project}\nbase_url: http://localhost:3000\n"
    )
    (path / "README.md").write_text("the app\n")
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o755)  # noqa: S103 - read by the container's uid
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
        if owner is not None:
            os.chown(folder, owner, owner)
            for name in files:
                os.chown(os.path.join(folder, name), owner, owner)
    return path


def expected(app_url: str, **fields: str) -> dict:
    event = {
        "project_id": PROJECT,
        "organization_id": ORG,
        "environment_url": app_url,
        "deployment_state": "success",
    }
    event.update(fields)
    return event


def delivered(receiver, run: oci.Result) -> dict:
    """The one event the receiver accepted, after a run that exited 0."""
    assert run.code == 0, run.describe()
    assert receiver.wait_for_requests(1, timeout=5), run.describe()
    assert len(receiver.requests) == 1, receiver.requests
    [request] = receiver.accepted
    assert request.header("x-api-key") == API_KEY
    assert API_KEY not in run.output, "the key leaked into the output"
    return request.json


class TLSApp:
    """An HTTPS app on 127.0.0.1 with a certificate for localhost from ``ca``."""

    def __init__(self, ca) -> None:
        self.ready = 0
        self.tls_failures = 0
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.ready += 1
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                owner.tls_failures += 1

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(
            self._httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.url = f"https://localhost:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def tls(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca.cert_pem.write_to_path(str(certs / "test-ca.pem"))
    os.chmod(certs, 0o755)  # noqa: S103 - read by the container's uid
    os.chmod(certs / "test-ca.pem", 0o644)
    app = TLSApp(ca)
    yield app, certs
    app.stop()


# --- the image itself ---------------------------------------------------------


def test_image_is_small_and_holds_no_build_leftovers(image, report):
    config = image.engine.inspect(image.name)["Config"]
    assert config["User"] == "10001:10001"
    assert config["WorkingDir"] == "/workspace"
    assert config["Entrypoint"] == ["/usr/local/bin/bugster-step-entrypoint"]
    assert "HOME=/tmp" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.version"] == image.version

    root = Path(image.engine.podman("image", "mount", image.name).out.strip())
    try:
        venv = root / "opt/bugster-step"
        [site] = list(venv.glob("lib/python3.*/site-packages"))
        found = {
            "compilers": [
                f"{folder}/{tool}"
                for folder in ("usr/bin", "usr/local/bin")
                for tool in ("gcc", "cc", "g++", "c++", "clang", "make", "ld")
                if (root / folder / tool).exists()
            ],
            "pip or setuptools in the venv": sorted(
                p.name
                for pattern in ("bin/pip*", "bin/easy_install*")
                for p in venv.glob(pattern)
            )
            + sorted(
                p.name
                for pattern in ("pip", "pip-*", "setuptools", "setuptools-*")
                for p in site.glob(pattern)
            ),
            "caches": [
                str(p.relative_to(root))
                for p in (root / "root/.cache", root / "tmp/.cache")
                if p.exists()
            ],
            "build leftovers": [
                name for name in ("src", "wheels") if (root / name).exists()
            ]
            + [str(p.relative_to(root)) for p in (root / "workspace").iterdir()]
            + [str(p.relative_to(root)) for p in (root / "tmp").iterdir()],
            "wheels": [
                str(p.relative_to(root))
                for top in ("opt", "root", "usr/local")
                for p in oci.walk_files(root / top)
                if p.suffix == ".whl"
            ],
            "our tests or sandbox": [
                str(p.relative_to(root))
                for p in (site / "tests", site / "sandbox", site / "bugster_step/tests")
                if p.exists()
            ],
        }
        third_party_tests = sorted(
            str(p.relative_to(site))
            for p in site.glob("*/**/tests")
            if p.is_dir() and p.parent.name != "tests"
        )
        compiled = list((site / "bugster_step/__pycache__").glob("*.pyc"))
    finally:
        image.engine.podman("image", "unmount", image.name, check=False)

    assert {kind: items for kind, items in found.items() if items} == {}
    assert compiled, "bugster_step has no bytecode: a read-only start would recompile"
    report.append(
        "contents: no compilers, caches, pip/setuptools, wheels or our tests; "
        f"third-party test folders in site-packages: {len(third_party_tests)}"
        + (f" ({', '.join(third_party_tests[:5])})" if third_party_tests else "")
    )


# --- Cloud Build ----------------------------------------------------------------


def cloud_build_env(**overrides: str) -> dict[str, str]:
    """automapSubstitutions for a branch-push trigger, and Cloud Build's own HOME."""
    extra = dict(
        BUILD_ID=str(uuid.uuid4()),
        REPO_FULL_NAME="acme/shop",
        TRIGGER_BUILD_CONFIG_PATH="cloudbuild.yaml",
        SERVICE_ACCOUNT_EMAIL="builder@acme-gcp.iam.gserviceaccount.com",
        SERVICE_ACCOUNT="projects/acme-gcp/serviceAccounts/builder@acme-gcp.iam.gserviceaccount.com",
        HOME="/builder/home",
        BUILDER_OUTPUT="/builder/outputs",
    )
    return base_cloud_build_env(**{**extra, **overrides})


def cloud_build_mounts(tmp_path: Path) -> list[str]:
    """/workspace (the checkout) and /builder/home, as Cloud Build mounts them."""
    workspace = make_workspace(tmp_path / "workspace")
    home = tmp_path / "builder-home"
    home.mkdir()
    os.chmod(home, 0o777)  # noqa: S103 - Cloud Build's home is writable
    return [
        "--workdir=/workspace",
        f"--volume={workspace}:/workspace",
        f"--volume={home}:/builder/home",
    ]


def test_cloud_build_step_with_args(image, receiver, app, tmp_path):
    """``name: IMAGE``, ``args: [notify, ...]``, ``secretEnv: [BUGSTER_API_KEY]``."""
    run = image.run(
        *cloud_build_mounts(tmp_path),
        "--",
        "notify",
        "--organization-id",
        ORG,
        "--environment-url",
        app.url,
        "--api-url",
        receiver.url,
        *QUICK,
        env=cloud_build_env(BUGSTER_API_KEY=API_KEY),
    )
    assert delivered(receiver, run) == expected(app.url, commit_sha=FULL_SHA)
    assert "CI: cloud-build" in run.err
    assert f"project_id = {PROJECT} (from .bugster/config.yaml)" in run.err


def test_cloud_build_readme_step_with_sh_entrypoint(image, receiver, app, tmp_path):
    """The README's step: ``entrypoint: sh``, the URL from a file, ``$$`` as ``$``.

    A manual ``gcloud builds submit --substitutions=BRANCH_NAME=main``: trigger
    values are empty strings, so the branch is sent; ``_BUGSTER_PROJECT_ID``
    left empty falls back to ``.bugster/config.yaml``.
    """
    mounts = cloud_build_mounts(tmp_path)
    (tmp_path / "workspace" / "url.txt").write_text(app.url + "\n")
    env = cloud_build_env(
        COMMIT_SHA="",
        REVISION_ID="",
        SHORT_SHA="",
        TRIGGER_NAME="",
        REPO_NAME="",
        REPO_FULL_NAME="",
        BUGSTER_PROJECT_ID="",
        BUGSTER_ORGANIZATION_ID=ORG,
        BUGSTER_ENVIRONMENT="production",
        BUGSTER_API_KEY=API_KEY,
        BUGSTER_API_URL=receiver.url,
    )
    script = 'exec bugster-step notify --environment-url "$(cat /workspace/url.txt)"'
    run = image.run(*mounts, "--entrypoint=sh", "--", "-c", script, env=env)
    assert delivered(receiver, run) == expected(
        app.url, branch="main", environment="production"
    )


def test_cloud_build_step_reads_secret_manager(image, receiver, app, tmp_path):
    """The README's variant: ``--api-key-secret``, through the metadata server."""
    with SecretManagerFake(token=METADATA.token) as secrets:
        secrets.add("projects/acme-gcp/secrets/bugster-api-key", API_KEY + "\n")
        run = image.run(
            *cloud_build_mounts(tmp_path),
            "--",
            "notify",
            "--organization-id",
            ORG,
            "--environment-url",
            app.url,
            "--api-url",
            receiver.url,
            "--api-key-secret",
            "bugster-api-key",
            "--secret-manager-endpoint",
            secrets.url,
            *QUICK,
            env=cloud_build_env(),
        )
        accessed = [r.route for r in secrets.requests]
    assert delivered(receiver, run) == expected(app.url, commit_sha=FULL_SHA)
    assert accessed == [
        "/v1/projects/acme-gcp/secrets/bugster-api-key/versions/latest:access"
    ]


# --- Jenkins ------------------------------------------------------------------------


def test_jenkins_docker_agent(image, receiver, app, tmp_path):
    """``agent { docker { image ... } }``: ``run -d -t -u UID:GID ... IMAGE cat``, then exec."""
    workspace = str(
        make_workspace(tmp_path / "jenkins/workspace/shop_main", owner=12345)
    )
    engine = image.engine
    container = engine.podman(
        "run",
        "--detach",
        "--tty",
        "--pull=never",
        "--http-proxy=false",
        "--network=host",
        "--user=12345:12345",
        f"--workdir={workspace}",
        f"--volume={workspace}:{workspace}:rw,z",
        *env_flags({"JENKINS_URL": "https://jenkins.example.invalid/"}),
        image.name,
        "cat",
    ).out.strip()
    try:
        # Jenkins checks with `docker top` that the command it gave is running.
        top = engine.podman("top", container, "pid", "args").out
        assert (
            engine.podman(
                "inspect", "--format", "{{.State.Running}}", container
            ).out.strip()
            == "true"
        )
        pid1 = engine.podman("exec", container, "cat", "/proc/1/cmdline").out
        assert pid1.split("\0")[0] == "cat", f"PID 1 is not cat:\n{top}"

        jenkins_env = {
            "JENKINS_URL": "https://jenkins.example.invalid/",
            "JENKINS_HOME": "/var/jenkins_home",
            "BUILD_ID": "42",
            "BUILD_NUMBER": "42",
            "BUILD_TAG": "jenkins-shop-main-42",
            "BUILD_URL": "https://jenkins.example.invalid/job/shop/job/main/42/",
            "JOB_NAME": "shop/main",
            "BRANCH_NAME": "main",
            "GIT_COMMIT": OTHER_SHA,
            "GIT_BRANCH": "main",
            "GIT_URL": "https://git.example.invalid/acme/shop.git",
            "WORKSPACE": workspace,
            "EXECUTOR_NUMBER": "0",
            "NODE_NAME": "built-in",
            "BUGSTER_API_KEY": API_KEY,
        }
        command = (
            f"bugster-step notify --organization-id {ORG} "
            f"--environment-url {app.url} --api-url {receiver.url} " + " ".join(QUICK)
        )
        run = engine.podman(
            "exec",
            f"--workdir={workspace}",
            *env_flags(jenkins_env),
            container,
            "sh",
            "-c",
            command,
            check=False,
        )
    finally:
        engine.podman("stop", "--time=1", container, check=False)
        engine.podman("rm", "--force", container, check=False)
    assert delivered(receiver, run) == expected(app.url, commit_sha=OTHER_SHA)
    assert "CI: jenkins" in run.err


# --- GitLab -------------------------------------------------------------------------

#: GitLab Runner's Docker executor starts the job container with this command
#: (its shell detection) and writes the job script to the container's stdin.
GITLAB_DETECT_SHELL = """\
if [ -x /usr/local/bin/bash ]; then
	exec /usr/local/bin/bash
elif [ -x /usr/bin/bash ]; then
	exec /usr/bin/bash
elif [ -x /bin/bash ]; then
	exec /bin/bash
elif [ -x /usr/local/bin/sh ]; then
	exec /usr/local/bin/sh
elif [ -x /usr/bin/sh ]; then
	exec /usr/bin/sh
elif [ -x /bin/sh ]; then
	exec /bin/sh
elif [ -x /busybox/sh ]; then
	exec /busybox/sh
else
	echo shell not found
	exit 1
fi
"""

GITLAB_JOB_SCRIPT = f"""\
set -eu
cd "$CI_PROJECT_DIR"
echo "Running job $CI_JOB_NAME for $CI_COMMIT_SHORT_SHA"
bugster-step notify {" ".join(QUICK)}
echo "job done"
"""


def gitlab_env(app_url: str, receiver_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_SERVER_NAME": "GitLab",
        "CI_SERVER_URL": "https://gitlab.example.invalid",
        "CI_PROJECT_DIR": "/builds/acme/shop",
        "CI_PROJECT_PATH": "acme/shop",
        "CI_PIPELINE_SOURCE": "push",
        "CI_JOB_ID": "7001",
        "CI_JOB_NAME": "bugster",
        "CI_JOB_URL": "https://gitlab.example.invalid/acme/shop/-/jobs/7001",
        "CI_COMMIT_SHA": FULL_SHA,
        "CI_COMMIT_SHORT_SHA": FULL_SHA[:8],
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_REF_NAME": "main",
        "CI_DEFAULT_BRANCH": "main",
        "CI_ENVIRONMENT_NAME": "production",
        "CI_ENVIRONMENT_URL": app_url,
        "CI_ENVIRONMENT_TIER": "production",
        "BUGSTER_ORGANIZATION_ID": ORG,
        "BUGSTER_API_KEY": API_KEY,
        "BUGSTER_API_URL": receiver_url,
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def gitlab_mounts(tmp_path: Path) -> list[str]:
    workspace = make_workspace(tmp_path / "builds/acme/shop")
    return [f"--volume={workspace}:/builds/acme/shop"]


def test_gitlab_job_script_through_default_entrypoint(image, receiver, app, tmp_path):
    """A branch pipeline; the script fed to ``sh`` via the image's entrypoint."""
    run = image.run(
        *gitlab_mounts(tmp_path),
        "--",
        "sh",
        env=gitlab_env(app.url, receiver.url),
        input=GITLAB_JOB_SCRIPT,
    )
    assert delivered(receiver, run) == expected(
        app.url, commit_sha=FULL_SHA, environment="production"
    )
    assert "job done" in run.out
    assert "CI: gitlab" in run.err


def test_gitlab_job_fails_when_the_step_fails(image, receiver, app, tmp_path):
    """The step's exit code (4: key rejected) fails the job; the script stops."""
    env = gitlab_env(
        app.url, receiver.url, BUGSTER_API_KEY="bgs_not_the_right_key_0123"
    )
    run = image.run(
        *gitlab_mounts(tmp_path), "--", "sh", env=env, input=GITLAB_JOB_SCRIPT
    )
    assert run.code == 4, run.describe()
    assert "job done" not in run.out
    assert [r.status for r in receiver.requests] == [401]


def test_gitlab_job_script_with_entrypoint_emptied(image, receiver, app, tmp_path):
    """``entrypoint: [""]`` and the runner's shell detection; a merged-results MR."""
    merge_commit = "a" * 40
    env = gitlab_env(
        app.url,
        receiver.url,
        CI_PIPELINE_SOURCE="merge_request_event",
        CI_COMMIT_SHA=merge_commit,
        CI_COMMIT_SHORT_SHA=merge_commit[:8],
        CI_COMMIT_BRANCH=None,
        CI_COMMIT_REF_NAME="refs/merge-requests/5/merge",
        CI_MERGE_REQUEST_IID="5",
        CI_MERGE_REQUEST_EVENT_TYPE="merged_result",
        CI_MERGE_REQUEST_SOURCE_BRANCH_NAME="feature/cart",
        CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=OTHER_SHA,
        CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
        CI_ENVIRONMENT_NAME="review/feature-cart",
        CI_ENVIRONMENT_TIER="development",
    )
    run = image.run(
        *gitlab_mounts(tmp_path),
        "--entrypoint=",
        "--",
        "sh",
        "-c",
        GITLAB_DETECT_SHELL,
        env=env,
        input=GITLAB_JOB_SCRIPT,
    )
    assert delivered(receiver, run) == expected(
        app.url, commit_sha=OTHER_SHA, environment="review/feature-cart"
    )
    assert "job done" in run.out


# --- any uid, read-only root --------------------------------------------------------

ENTRYPOINT = "/usr/local/bin/bugster-step-entrypoint"

#: How HOME reaches the step. podman, unlike Docker, never hands a container an
#: empty or unset HOME (for a uid with no passwd entry it puts the working
#: directory there), so the truly unset and empty cases wrap the command in
#: ``env`` inside the container, once through the entrypoint and once not.
HOMES = {
    "home-unset": [f'--entrypoint=["/usr/bin/env", "-u", "HOME", "{ENTRYPOINT}"]'],
    "home-empty": [f'--entrypoint=["/usr/bin/env", "HOME=", "{ENTRYPOINT}"]'],
    "home-unset-no-entrypoint": [
        '--entrypoint=["/usr/bin/env", "-u", "HOME", "bugster-step"]'
    ],
    "home-unwritable": ["--env=HOME=/nonexistent"],
    "home-unset-by-podman": ["--unsetenv=HOME"],
}
CASES = [("54321:54321", home) for home in HOMES] + [
    ("0:0", "home-unset"),
    ("0:0", "home-unwritable"),
]


@pytest.mark.parametrize(
    ("user", "home"),
    CASES,
    ids=[f"{'root' if u == '0:0' else 'uid-' + u.split(':')[0]}-{h}" for u, h in CASES],
)
def test_any_uid_read_only_root(image, receiver, user, home):
    """``--version``, and a dry run that reads the key through google-auth."""
    options = [f"--user={user}", "--read-only", "--tmpfs=/tmp", *HOMES[home]]
    version = image.run(*options, "--", "--version")
    assert version.code == 0, version.describe()
    assert image.version in version.out

    with SecretManagerFake(token=METADATA.token) as secrets:
        secrets.add("projects/acme-gcp/secrets/bugster-api-key", API_KEY)
        dry = image.run(
            *options,
            "--",
            "notify",
            "--dry-run",
            "--organization-id",
            ORG,
            "--project-id",
            PROJECT,
            "--environment-url",
            "https://shop.example.invalid",
            "--commit-sha",
            FULL_SHA,
            "--api-url",
            receiver.url,
            "--api-key-secret",
            "projects/acme-gcp/secrets/bugster-api-key",
            "--secret-manager-endpoint",
            secrets.url,
        )
        accessed = len(secrets.requests)
    assert dry.code == 0, dry.describe()
    assert f"POST {receiver.url}/webhooks/integrations/custom" in dry.out
    assert FULL_SHA in dry.out
    assert API_KEY not in dry.output
    for trouble in ("Traceback", "Read-only file system", "Permission denied"):
        assert trouble not in dry.output, dry.describe()
    assert accessed == 1
    assert receiver.requests == []


def test_entrypoint_fills_in_home(image, report):
    """An empty or unset HOME becomes /tmp; what podman itself hands is reported."""
    show = ["sh", "-c", 'echo "home=${HOME-unset}"']
    results = {
        name: image.run("--user=54321:54321", "--read-only", *HOMES[name], "--", *show)
        for name in ("home-unset", "home-empty")
    }
    podman = image.run(
        "--user=54321:54321", "--unsetenv=HOME", "--entrypoint=", "--", *show
    )
    for result in (*results.values(), podman):
        assert result.code == 0, result.describe()
    assert {name: r.out.strip() for name, r in results.items()} == {
        "home-unset": "home=/tmp",
        "home-empty": "home=/tmp",
    }
    report.append(
        "podman run -u 54321:54321 --unsetenv=HOME gives the container "
        f"{podman.out.strip()} (Docker gives HOME=/)"
    )


# --- TLS ------------------------------------------------------------------------------

PROBE = ["probe", *QUICK]


def test_tls_private_ca_via_requests_ca_bundle(image, tls):
    """The README's way: REQUESTS_CA_BUNDLE names a file holding the CA."""
    app, certs = tls
    run = image.run(
        f"--volume={certs}:/certs:ro",
        "--",
        *PROBE,
        "--timeout=20",
        app.url,
        env={"REQUESTS_CA_BUNDLE": "/certs/test-ca.pem"},
    )
    assert run.code == 0, run.describe()
    assert f"ready: {app.url}" in run.out
    assert app.ready >= 2


def test_tls_unknown_ca_is_not_ready(image, tls):
    app, _certs = tls
    run = image.run("--", *PROBE, "--timeout=3", app.url)
    assert run.code == 3, run.describe()
    assert "tls" in run.err.lower() or "certificate" in run.err.lower(), run.err
    assert app.ready == 0
    assert app.tls_failures >= 1


def test_tls_ca_added_to_the_system_store(image, tls, tmp_path):
    """A derived image that runs update-ca-certificates trusts the CA with no
    setting at all: the image points REQUESTS_CA_BUNDLE at the system store."""
    app, certs = tls
    context = tmp_path / "derived"
    context.mkdir()
    (context / "test-ca.crt").write_bytes((certs / "test-ca.pem").read_bytes())
    (context / "Containerfile").write_text(
        f"FROM {image.name}\n"
        "USER 0:0\n"
        "COPY test-ca.crt /usr/local/share/ca-certificates/test-ca.crt\n"
        "RUN update-ca-certificates\n"
        "USER 10001:10001\n"
    )
    derived = "localhost/bugster-step-image-test-with-ca:test"
    image.engine.buildah(
        "bud",
        "--network=none",
        "--pull=never",
        "--file",
        str(context / "Containerfile"),
        "--tag",
        derived,
        str(context),
    )
    try:
        trusted = image.run("--", *PROBE, "--timeout=20", app.url, image=derived)
        untouched = image.run("--", *PROBE, "--timeout=3", app.url)
    finally:
        image.engine.podman("rmi", derived, check=False)
    assert trusted.code == 0, trusted.describe()
    assert untouched.code == 3, untouched.describe()  # the CA is not in the base image
