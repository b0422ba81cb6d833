"""Build the bugster-step image for real and run it, offline, with buildah and podman.

What ``../shared/image-build-notes.md`` verified on these machines, as code:

- Debian's ``buildah``, ``podman``, ``runc``, ``mmdebstrap`` and ``uidmap``,
  installed with apt-get when missing (root only; otherwise the test skips).
- ``runc`` instead of ``crun``, and lowered default ulimits, through a
  ``containers.conf`` that ``CONTAINERS_CONF`` points at.
- Storage in a temporary folder (``--root``/``--runroot``/``--storage-driver
  overlay`` on every call), removed at the end.
- No base image can be pulled: ``mmdebstrap`` makes a Debian bookworm root
  filesystem with python3, its venv module and CA certificates. The tarball is
  cached in ``CACHE_DIR`` under a key of the suite, variant and package list;
  ``podman import`` turns it into ``BASE_IMAGE``, a name under ``localhost/``
  that cannot be mistaken for an upstream tag. The Dockerfile gets it through
  its ``PYTHON_IMAGE`` build argument and is not changed.
- Wheels are built on the host by a Python of the base's minor version, into
  ``wheels/`` of a copy of the build context, so ``buildah bud --network=none
  --pull=never`` needs no index.

Host tools (apt-get, mmdebstrap, pip) run with the environment the test
process started with: ``tests/conftest.py`` points the proxies of this process
at a refused loopback port, which would stop apt and pip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: ``1``: run; ``require``: run, and fail instead of skipping when the tools
#: cannot be installed (for CI). Read once, when the tests are collected.
MODE_VARIABLE = "BUGSTER_STEP_IMAGE_TEST"
MODE = os.environ.get(MODE_VARIABLE, "")

CACHE_DIR = Path(
    os.environ.get("BUGSTER_STEP_IMAGE_CACHE", "/var/tmp/bugster-step-image-cache")
)
REPORT_FILE = CACHE_DIR / "last-report.txt"

#: Debian packages the test needs, and a command each one provides.
PACKAGES = {
    "buildah": "buildah",
    "podman": "podman",
    "runc": "runc",
    "mmdebstrap": "mmdebstrap",
    "uidmap": "newuidmap",
}

BASE_SUITE = "bookworm"
BASE_VARIANT = "apt"
BASE_INCLUDE = ("python3", "python3-venv", "ca-certificates")
BASE_IMAGE = f"localhost/bugster-step-test-base:{BASE_SUITE}"
IMAGE = "localhost/bugster-step:image-test"
#: The environment Debian's own images set (a base without PATH would leave
#: the Dockerfile's ``PATH=/opt/bugster-step/bin:${PATH}`` with nothing after).
BASE_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
)

CONTAINERS_CONF = """\
# Written by tests/image: what ../shared/image-build-notes.md found to work.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)

# Set by the report as the session goes; printed by the terminal summary.
REPORT_KEY = pytest.StashKey[list]()


class Unavailable(Exception):
    """The tools cannot be had here: the image test skips (or fails if required)."""


def unavailable(reason: str):
    """Skip loudly, or fail when ``BUGSTER_STEP_IMAGE_TEST=require``."""
    banner = (
        "\n" + "!" * 78 + "\n"
        "IMAGE TEST NOT RUN: the image was NOT built or tested.\n"
        f"{reason}\n"
        "It needs root, apt-get (Debian) for " + ", ".join(PACKAGES) + ", and a host "
        "Python of the base's minor version for the wheels.\n"
        f"(set {MODE_VARIABLE}=require to make this a failure)\n" + "!" * 78
    )
    if MODE == "require":
        pytest.fail(banner, pytrace=False)
    pytest.skip(banner)


def host_environment() -> dict[str, str]:
    """The environment this process started with, for apt, mmdebstrap and pip."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    else:
        env = {}
        for item in raw.split(b"\0"):
            name, sep, value = item.partition(b"=")
            if sep:
                env[os.fsdecode(name)] = os.fsdecode(value)
    env.pop(MODE_VARIABLE, None)
    return env


@dataclass
class Result:
    argv: list[str]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def output(self) -> str:
        return self.out + self.err

    def describe(self, limit: int = 6000) -> str:
        def tail(text: str) -> str:
            return text if len(text) <= limit else "..." + text[-limit:]

        return (
            f"$ {shlex.join(self.argv)}\n-> exit {self.code} in {self.seconds:.1f}s\n"
            f"--- stdout ---\n{tail(self.out)}\n--- stderr ---\n{tail(self.err)}"
        )


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    check: bool = True,
    input: str | None = None,
    timeout: float = 600,
    cwd: str | os.PathLike | None = None,
) -> Result:
    argv = [str(a) for a in argv]
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            env=dict(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"timed out after {timeout}s: {shlex.join(argv)}\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
        ) from None
    result = Result(
        argv, done.returncode, done.stdout, done.stderr, time.monotonic() - start
    )
    if check and result.code != 0:
        raise AssertionError(result.describe())
    return result


# --- tools --------------------------------------------------------------------


def missing_packages() -> list[str]:
    return [pkg for pkg, command in PACKAGES.items() if not shutil.which(command)]


def ensure_tools(env: Mapping[str, str], timings: dict[str, float]) -> None:
    """Install what is missing with apt-get; raise Unavailable if that cannot work."""
    missing = missing_packages()
    if os.geteuid() != 0:
        raise Unavailable(
            "not root: this test runs buildah and podman as root (rootless needs "
            "subuid setup it does not attempt)"
            + (f", and apt-get cannot install {', '.join(missing)}" if missing else "")
        )
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise Unavailable(f"missing {', '.join(missing)} and there is no apt-get")
    apt_env = {**env, "DEBIAN_FRONTEND": "noninteractive"}
    start = time.monotonic()
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
    ):
        result = run(argv, env=apt_env, check=False, timeout=1200)
        if result.code != 0:
            raise Unavailable(f"apt-get failed:\n{result.describe(3000)}")
    timings["apt-get update + install"] = time.monotonic() - start
    still = missing_packages()
    if still:
        raise Unavailable(f"apt-get ran, but {', '.join(still)} still missing")


# --- the base image -----------------------------------------------------------


def _architecture(env: Mapping[str, str]) -> str:
    return run(["dpkg", "--print-architecture"], env=env).out.strip()


def base_tarball(
    env: Mapping[str, str], timings: dict[str, float]
) -> tuple[Path, dict]:
    """The cached mmdebstrap root filesystem and its metadata; made if missing."""
    recipe = {
        "suite": BASE_SUITE,
        "variant": BASE_VARIANT,
        "include": sorted(BASE_INCLUDE),
        "architecture": _architecture(env),
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    tarball = CACHE_DIR / f"rootfs-{BASE_SUITE}-{key}.tar"
    meta_file = tarball.with_suffix(".json")
    if tarball.is_file() and meta_file.is_file():
        return tarball, json.loads(meta_file.read_text())

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # mmdebstrap picks the output format from the name: keep it ending in .tar.
    partial = tarball.with_name(f"{tarball.stem}.partial-{os.getpid()}.tar")
    argv = [
        "mmdebstrap",
        f"--variant={BASE_VARIANT}",
        "--include=" + ",".join(BASE_INCLUDE),
        BASE_SUITE,
        str(partial),
    ]
    start = time.monotonic()
    try:
        run(argv, env=env, timeout=1800)
        python = _python_version_in(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    timings["mmdebstrap (base, not cached)"] = time.monotonic() - start
    meta = {**recipe, "python": python, "command": shlex.join(argv[:-1])}
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(partial, tarball)
    return tarball, meta


def _python_version_in(tarball: Path) -> str:
    pattern = re.compile(r"^(?:\./)?usr/bin/python(3\.\d+)$")
    with tarfile.open(tarball) as tar:
        for member in tar:
            match = pattern.match(member.name)
            if match:
                return match.group(1)
    raise AssertionError(f"no usr/bin/python3.N in {tarball}")


def interpreter_for(version: str) -> str:
    """A host Python of ``version`` (e.g. "3.11") to build the wheels with."""
    if "{}.{}".format(*sys.version_info[:2]) == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if not found:
        raise Unavailable(
            f"the base's Python is {version}, and there is no python{version} on "
            "the host to build wheels for it"
        )
    return found


# --- build context ------------------------------------------------------------

_NOT_CONTEXT = {
    ".git",
    ".venv",
    ".venv-pin",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "wheels",
    "dist",
    "build",
}


def copy_context(dest: Path) -> Path:
    """A copy of the work tree (local caches left out) to build from."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if Path(folder) == REPO:
            skip |= _NOT_CONTEXT & set(names)
        return skip

    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def package_version() -> str:
    text = (REPO / "step" / "bugster_step" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    assert match, "no __version__ in step/bugster_step/__init__.py"
    return match.group(1)


# --- buildah and podman ---------------------------------------------------------


@dataclass
class Engine:
    """buildah and podman on storage of their own under ``top``."""

    top: Path
    host_env: Mapping[str, str]
    env: dict[str, str] = field(init=False)
    #: Seconds per phase, for the report.
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("root", "runroot", "tmp", "libpod"):
            (self.top / name).mkdir(parents=True, exist_ok=True)
        conf = self.top / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {
            **{k: v for k, v in self.host_env.items() if k not in PROXY_VARIABLES},
            "CONTAINERS_CONF": str(conf),
            "TMPDIR": str(self.top / "tmp"),
            "BUILDAH_ISOLATION": "oci",
        }

    @property
    def storage(self) -> list[str]:
        return [
            "--root",
            str(self.top / "root"),
            "--runroot",
            str(self.top / "runroot"),
            "--storage-driver",
            "overlay",
        ]

    def buildah(self, *args: str, check: bool = True, timeout: float = 900) -> Result:
        return run(
            ["buildah", *self.storage, *args],
            env=self.env,
            check=check,
            timeout=timeout,
        )

    def podman(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 180,
    ) -> Result:
        return run(
            ["podman", *self.storage, "--tmpdir", str(self.top / "libpod"), *args],
            env=self.env,
            check=check,
            input=input,
            timeout=timeout,
        )

    def inspect(self, image: str) -> dict:
        return json.loads(self.podman("image", "inspect", image).out)[0]

    def import_base(self, tarball: Path, meta: Mapping[str, str]) -> None:
        """The root filesystem as ``BASE_IMAGE`` (``podman import``: one copy, ~6 s)."""
        changes = [f"ENV {item}" for item in BASE_ENV] + [
            'CMD ["/bin/bash"]',
            "LABEL org.opencontainers.image.description="
            + json.dumps(
                f"bugster-step image test base, local only: {meta['command']}"
            ),
        ]
        flags = []
        for change in changes:
            flags += ["--change", change]
        self.podman("import", "--quiet", *flags, str(tarball), BASE_IMAGE, timeout=600)

    def cleanup(self) -> list[str]:
        """Remove every container, image and mount, then the storage; return problems."""
        problems = []
        steps = (
            lambda: self.podman("rm", "--all", "--force", check=False, timeout=120),
            lambda: self.buildah("rm", "--all", check=False, timeout=120),
            lambda: self.podman("rmi", "--all", "--force", check=False, timeout=120),
        )
        for step in steps:
            try:
                result = step()
            except AssertionError as exc:  # a timeout
                problems.append(str(exc))
                continue
            if result.code != 0:
                problems.append(result.describe(1000))
        for mountpoint in mounts_under(self.top):
            done = run(["umount", mountpoint], env=self.env, check=False)
            if done.code != 0:
                problems.append(done.describe(500))
        shutil.rmtree(self.top, ignore_errors=True)
        if self.top.exists():
            problems.append(f"could not remove {self.top}")
        return problems


def mounts_under(top: Path) -> list[str]:
    """Mount points at or below ``top``, deepest first."""
    prefix = str(top).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4].encode().decode("unicode_escape")
        if mountpoint.startswith(prefix) or mountpoint == str(top):
            found.append(mountpoint)
    return sorted(set(found), key=len, reverse=True)


def new_engine_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="bugster-step-image-", dir="/var/tmp"))


def walk_files(top: Path) -> Iterable[Path]:
    for folder, _dirs, files in os.walk(top):
        for name in files:
            yield Path(folder, name)


def archive_layers(archive: Path) -> list[int]:
    """Sizes of the (compressed) layer blobs in an OCI archive, base first."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict:
            member = tar.extractfile("blobs/" + digest.replace(":", "/"))
            assert member is not None, digest
            return json.load(member)

        index = json.load(tar.extractfile("index.json"))
        manifest = blob(index["manifests"][0]["digest"])
    return [layer["size"] for layer in manifest["layers"]]


def human(size: float) -> str:
    return f"{size / 1e6:.1f} MB"
