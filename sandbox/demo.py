"""``make demo``: the real ``bugster-step notify`` against the local sandbox.

It starts four servers on 127.0.0.1 (a sample app that turns ready after a few
seconds, a Bugster-compatible receiver, a Secret Manager REST endpoint and a
GCE metadata server for the credentials), runs the step in a subprocess with
the environment a Cloud Build step gets from ``automapSubstitutions``, shows
what the receiver got, and stops everything it started. Nothing leaves the
machine: the metadata and Secret Manager addresses are the local fakes, the
API URL is the local receiver, and proxies point at a refused loopback port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sandbox.servers import (
    AppServer,
    BugsterReceiver,
    MetadataFake,
    SecretManagerFake,
    isolated_env,
)

DEMO_KEY = "bgs_demo_" + uuid.uuid4().hex  # fresh each run; the step must mask it
GCP_PROJECT = "sandbox-gcp-project"
SECRET = f"projects/{GCP_PROJECT}/secrets/bugster-api-key"
ORGANIZATION = "org_sandbox0123456789abcd"
BUGSTER_PROJECT = "cloud-build-1758224858"
COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"
READY_AFTER = 5.0  # seconds until the sample app answers 200


def say(text: str = "") -> None:
    print(f"demo: {text}" if text else "", flush=True)


def cloud_build_env(app: AppServer) -> dict[str, str]:
    """What Cloud Build maps into a step with automapSubstitutions: true."""
    return {
        "BUILD_ID": str(uuid.uuid4()),
        "PROJECT_ID": GCP_PROJECT,
        "PROJECT_NUMBER": "123456789012",
        "LOCATION": "us-central1",
        "COMMIT_SHA": COMMIT,
        "REVISION_ID": COMMIT,
        "SHORT_SHA": COMMIT[:7],
        "BRANCH_NAME": "main",
        "REF_NAME": "main",
        "TAG_NAME": "",
        "TRIGGER_NAME": "deploy-main",
    }


def workspace(root: Path) -> Path:
    """A Cloud Build-like /workspace: the repository's files, no .git."""
    path = root / "workspace"
    (path / ".bugster").mkdir(parents=True)
    (path / ".bugster" / "config.yaml").write_text(f"project_id: {BUGSTER_PROJECT}\n")
    return path


def show_delivery(receiver: BugsterReceiver) -> None:
    say(f"the receiver got {len(receiver.requests)} request(s):")
    for request in receiver.requests:
        headers = {
            name: (
                "******** (the key from Secret Manager)"
                if name == "x-api-key"
                else value
            )
            for name, value in request.headers.items()
            if name in ("content-type", "user-agent", "x-api-key", "idempotency-key")
        }
        say(f"  {request.method} {request.path}")
        for name, value in headers.items():
            say(f"    {name}: {value}")
        for line in json.dumps(request.json, indent=2).splitlines():
            say(f"    {line}")
    key_ok = all(r.headers.get("x-api-key") == DEMO_KEY for r in receiver.requests)
    say(f"X-API-KEY matched the secret: {'yes' if key_ok else 'NO'}")


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="bugster-step-demo-") as tmp,
        MetadataFake(project_id=GCP_PROJECT) as metadata,
        SecretManagerFake(token=metadata.token) as secret_manager,
        BugsterReceiver(DEMO_KEY) as receiver,
        AppServer(ready_after=READY_AFTER, ready_body="shop is up") as app,
    ):
        secret_manager.add(
            SECRET, DEMO_KEY + "\n"
        )  # as `echo KEY | gcloud secrets create` stores it
        env = {
            **isolated_env(metadata, tmp),
            **cloud_build_env(app),
            # What the pipeline's step sets (see cloudbuild.example.yaml):
            "BUGSTER_ORGANIZATION_ID": ORGANIZATION,
            "BUGSTER_ENVIRONMENT": "preview",
            "BUGSTER_ENVIRONMENT_URL": app.url,
            "BUGSTER_API_KEY_SECRET": "bugster-api-key",
            # The sandbox's stand-ins for Google and Bugster:
            "BUGSTER_SECRET_MANAGER_ENDPOINT": secret_manager.url,
            "BUGSTER_API_URL": receiver.url,
        }
        say("local sandbox on 127.0.0.1:")
        say(f"  sample app        {app.url} (ready after {READY_AFTER:g}s)")
        say(f"  Bugster receiver  {receiver.url}")
        say(f"  Secret Manager    {secret_manager.url} (holds {SECRET})")
        say(f"  metadata server   {metadata.url} (credentials for the secret)")
        say(
            "running: bugster-step notify   (Cloud Build environment, key via BUGSTER_API_KEY_SECRET)"
        )
        say()
        done = subprocess.run(
            [sys.executable, "-m", "bugster_step", "notify"],
            cwd=workspace(Path(tmp)),
            env=env,
            check=False,
        )
        say()
        say(f"bugster-step exited {done.returncode}")
        show_delivery(receiver)
        say(
            f"the app was probed {len(app.requests)} time(s); the secret was read "
            f"{len(secret_manager.requests)} time(s)"
        )
        delivered = done.returncode == 0 and len(receiver.accepted) == 1
        say(
            "delivered: the notification reached the receiver"
            if delivered
            else "NOT delivered"
        )
        return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
