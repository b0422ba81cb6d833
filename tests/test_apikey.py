"""Where the API key comes from, and what happens when it cannot be had.

Mirrors ``bugster_step.apikey`` and ``bugster_step.secretmanager``. Most tests
run the real CLI in this process against the receiver on 127.0.0.1; the
Secret Manager ones drive the real google-cloud-secret-manager client (REST)
against ``SecretManagerFake``, with Application Default Credentials from the
session's ``MetadataFake`` (conftest points google-auth at it before google is
imported).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from bugster_step import apikey, secretmanager
from bugster_step.redact import MASK
from sandbox import SANDBOX_TOKEN, Reply
from sandbox.servers import google_error, isolated_env
from tests.conftest import API_KEY, METADATA, cloud_build_env

NOTIFY = (
    "notify",
    "--state=in_progress",
    "--branch=main",
    "--project-id=p",
    "--organization-id=org_x",
)
FLAG_WARNING = "--api-key puts the key on the command line"


@pytest.fixture
def notify(cli, receiver, secret_manager):
    """``bugster-step notify`` aimed at the local receiver and Secret Manager fake."""

    def invoke(*args: str, env: dict[str, str] | None = None):
        return cli(
            *NOTIFY,
            f"--api-url={receiver.url}",
            f"--secret-manager-endpoint={secret_manager.url}",
            *args,
            env=env,
        )

    return invoke


def sent_keys(receiver) -> list[str | None]:
    return [r.header("x-api-key") for r in receiver.requests]


def accessed(secret_manager) -> list[str]:
    """The version names the fake was asked for."""
    prefix, suffix = "/v1/", ":access"
    routes = [r.route for r in secret_manager.requests]
    assert all(r.startswith(prefix) and r.endswith(suffix) for r in routes), routes
    return [r[len(prefix) : -len(suffix)] for r in routes]


def refused_port() -> str:
    """``127.0.0.1:PORT`` where nothing listens (free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


# --- keys given directly ----------------------------------------------------


def test_key_from_bugster_api_key_is_delivered_without_warning(notify, receiver):
    run = notify(env={"BUGSTER_API_KEY": API_KEY})

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]
    assert "API key: from BUGSTER_API_KEY" in run.err
    assert FLAG_WARNING not in run.err
    assert API_KEY not in run.output


def test_key_from_api_key_flag_is_delivered_with_a_warning(notify, receiver):
    run = notify(f"--api-key={API_KEY}")

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]
    assert FLAG_WARNING in run.err
    assert "build logs" in run.err
    assert API_KEY not in run.output


@pytest.mark.parametrize("how", ["flag", "env"], ids=["--api-key-file", "env-var"])
def test_key_file_is_read_and_its_trailing_newline_stripped(
    notify, receiver, tmp_path, how
):
    key_file = tmp_path / "bugster-key"
    key_file.write_text(API_KEY + "\n", encoding="utf-8")
    if how == "flag":
        run = notify(f"--api-key-file={key_file}")
    else:
        run = notify(env={"BUGSTER_API_KEY_FILE": str(key_file)})

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]
    origin = "--api-key-file" if how == "flag" else "BUGSTER_API_KEY_FILE"
    assert f"API key: from {origin}" in run.err
    assert API_KEY not in run.output


# --- exactly one source -----------------------------------------------------


def test_no_key_source_is_a_usage_error_listing_the_four_ways(notify, receiver):
    run = notify()

    assert run.code == 2
    assert receiver.requests == []
    for way in (
        "BUGSTER_API_KEY",
        "--api-key-file",
        "BUGSTER_API_KEY_FILE",
        "--api-key-secret",
        "BUGSTER_API_KEY_SECRET",
        "--api-key ",
    ):
        assert way in run.err


def test_an_empty_bugster_api_key_counts_as_not_configured(notify, receiver):
    run = notify(env={"BUGSTER_API_KEY": ""})

    assert run.code == 2
    assert receiver.requests == []
    assert "no Bugster API key" in run.err


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (
            ("--api-key-secret=projects/p/secrets/s",),
            {"BUGSTER_API_KEY": API_KEY},
            ("BUGSTER_API_KEY", "--api-key-secret"),
        ),
        (
            (f"--api-key={API_KEY}",),
            {"BUGSTER_API_KEY_FILE": "/nonexistent/key"},
            ("--api-key", "BUGSTER_API_KEY_FILE"),
        ),
        (
            (),
            {"BUGSTER_API_KEY_FILE": "/k", "BUGSTER_API_KEY_SECRET": "s"},
            ("BUGSTER_API_KEY_FILE", "BUGSTER_API_KEY_SECRET"),
        ),
    ],
    ids=["env-and-secret-flag", "flag-and-file-env", "file-env-and-secret-env"],
)
def test_two_key_sources_are_a_usage_error_naming_both(
    notify, receiver, secret_manager, args, env, names
):
    run = notify(*args, env=env)

    assert run.code == 2
    assert receiver.requests == []
    assert secret_manager.requests == []
    assert "configured twice" in run.err
    for name in names:
        assert name in run.err
    assert API_KEY not in run.output


# --- bad keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("   \t ", "is empty"),
        ("bgs_abc def_0123456789", "whitespace or control characters"),
        ("bgs_abc\x07def_0123456789", "whitespace or control characters"),
        ("bgs_abc\x1bdef_0123456789", "whitespace or control characters"),
        ("$BUGSTER_API_KEY", "unexpanded placeholder"),
        ("${BUGSTER_API_KEY}", "unexpanded placeholder"),
        ("$$BUGSTER_API_KEY", "unexpanded placeholder"),
        ("$${BUGSTER_API_KEY}", "unexpanded placeholder"),
        ("_BUGSTER_API_KEY", "unexpanded placeholder"),
        ("bgs_123", "too short"),
        ("bgs_12", "too short"),
    ],
    ids=[
        "blank",
        "inner-space",
        "bell",
        "escape",
        "dollar-var",
        "dollar-brace",
        "double-dollar",
        "double-dollar-brace",
        "user-substitution",
        "too-short-7",
        "too-short-6",
    ],
)
def test_bad_key_is_a_usage_error_that_does_not_echo_it(notify, receiver, key, says):
    run = notify(env={"BUGSTER_API_KEY": key})

    assert run.code == 2
    assert receiver.requests == []
    assert says in run.err
    assert "BUGSTER_API_KEY" in run.err
    if key.strip():
        assert key.strip() not in run.output


def test_bad_key_from_the_flag_is_not_echoed_either(notify, receiver):
    key = "bgs_abc def_0123456789"
    run = notify(f"--api-key={key}")

    assert run.code == 2
    assert receiver.requests == []
    assert "whitespace or control characters" in run.err
    assert key not in run.output
    assert "abc def" not in run.output


def test_key_with_surrounding_whitespace_is_stripped(notify, receiver):
    run = notify(env={"BUGSTER_API_KEY": f"  {API_KEY}\r\n"})

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]


# --- key files --------------------------------------------------------------


def test_missing_key_file_is_a_usage_error(notify, receiver, tmp_path):
    run = notify(f"--api-key-file={tmp_path / 'absent'}")

    assert run.code == 2
    assert receiver.requests == []
    assert "named by --api-key-file does not exist" in run.err
    # The path is not echoed: a key pasted into the wrong option would show.
    assert str(tmp_path / "absent") not in run.err


def test_key_file_that_is_a_directory_is_a_usage_error(notify, receiver, tmp_path):
    run = notify(env={"BUGSTER_API_KEY_FILE": str(tmp_path)})

    assert run.code == 2
    assert receiver.requests == []
    assert "is a directory" in run.err
    assert "BUGSTER_API_KEY_FILE" in run.err


def test_unreadable_key_file_is_a_usage_error(notify, receiver, tmp_path):
    key_file = tmp_path / "locked"
    key_file.write_text(API_KEY, encoding="utf-8")
    key_file.chmod(0)
    try:
        with key_file.open("rb"):
            pytest.skip("chmod 000 does not stop reads for this user (root)")
    except PermissionError:
        pass

    run = notify(f"--api-key-file={key_file}")

    assert run.code == 2
    assert receiver.requests == []
    assert "cannot be read" in run.err
    assert API_KEY not in run.output


def test_key_file_that_is_not_utf8_is_a_usage_error(notify, receiver, tmp_path):
    key_file = tmp_path / "binary"
    key_file.write_bytes(b"bgs_\xff\xfe\x00key0123456789")

    run = notify(f"--api-key-file={key_file}")

    assert run.code == 2
    assert receiver.requests == []
    assert "not UTF-8" in run.err


def test_bad_key_in_a_file_is_not_echoed(notify, receiver, tmp_path):
    key_file = tmp_path / "placeholder"
    key_file.write_text("${BUGSTER_API_KEY}\n", encoding="utf-8")

    run = notify(f"--api-key-file={key_file}")

    assert run.code == 2
    assert receiver.requests == []
    assert "unexpanded placeholder" in run.err
    assert "${BUGSTER_API_KEY}" not in run.output


# --- Secret Manager: every name form ---------------------------------------


@pytest.mark.parametrize(
    ("secret_arg", "extra_args", "env", "expected"),
    [
        (
            "projects/acme/secrets/bugster-key/versions/2",
            (),
            {},
            "projects/acme/secrets/bugster-key/versions/2",
        ),
        (
            "projects/acme/secrets/bugster-key",
            (),
            {},
            "projects/acme/secrets/bugster-key/versions/latest",
        ),
        (
            "bugster-key",
            ("--gcp-project=from-flag",),
            {"GOOGLE_CLOUD_PROJECT": "from-env", "PROJECT_ID": "from-build"},
            "projects/from-flag/secrets/bugster-key/versions/latest",
        ),
        (
            "bugster-key@2",
            ("--gcp-project=from-flag",),
            {},
            "projects/from-flag/secrets/bugster-key/versions/2",
        ),
        (
            "bugster-key@latest",
            (),
            {"GOOGLE_CLOUD_PROJECT": "from-env", "PROJECT_ID": "from-build"},
            "projects/from-env/secrets/bugster-key/versions/latest",
        ),
        (
            "bugster-key@1",
            (),
            cloud_build_env(PROJECT_ID="from-build"),
            "projects/from-build/secrets/bugster-key/versions/1",
        ),
        (
            "bugster-key",
            (),
            {},
            f"projects/{METADATA.project_id}/secrets/bugster-key/versions/latest",
        ),
        (
            "projects/acme/locations/europe-west1/secrets/bugster-key/versions/2",
            (),
            {},
            "projects/acme/locations/europe-west1/secrets/bugster-key/versions/2",
        ),
    ],
    ids=[
        "full-with-version",
        "full-latest",
        "short-project-from-flag",
        "short-at-version",
        "short-project-from-GOOGLE_CLOUD_PROJECT",
        "short-project-from-cloud-build-PROJECT_ID",
        "short-project-from-credentials",
        "regional-full",
    ],
)
def test_secret_name_forms_read_the_expected_version(
    notify, receiver, secret_manager, secret_arg, extra_args, env, expected
):
    secret, _, version = expected.rpartition("/versions/")
    wanted = 1 if version == "1" else 2  # latest is the highest, 2
    decoy = "bgs_other_version_0000"
    secret_manager.add(secret, API_KEY + "\n" if wanted == 1 else decoy, version=1)
    secret_manager.add(secret, API_KEY + "\n" if wanted == 2 else decoy, version=2)

    run = notify(f"--api-key-secret={secret_arg}", *extra_args, env=env)

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]
    assert accessed(secret_manager) == [expected]
    [request] = secret_manager.requests
    assert request.header("authorization") == f"Bearer {SANDBOX_TOKEN}"
    assert API_KEY not in run.output


def test_secret_name_from_bugster_api_key_secret(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", API_KEY)

    run = notify(env={"BUGSTER_API_KEY_SECRET": "projects/acme/secrets/s/versions/1"})

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]
    assert accessed(secret_manager) == ["projects/acme/secrets/s/versions/1"]
    assert "API key: from BUGSTER_API_KEY_SECRET" in run.err


def test_regional_secret_picks_the_regional_host_by_itself():
    name = apikey.parse_secret_name(
        "projects/acme/locations/europe-west1/secrets/s/versions/3", "--api-key-secret"
    )
    config = secretmanager.SecretManagerConfig()

    assert name.location == "europe-west1"
    assert name.resource("acme") == (
        "projects/acme/locations/europe-west1/secrets/s/versions/3"
    )
    assert secretmanager._endpoint_for(name, config) == (
        "secretmanager.europe-west1.rep.googleapis.com"
    )


def test_global_secret_leaves_the_endpoint_to_the_client():
    name = apikey.parse_secret_name("projects/acme/secrets/s", "--api-key-secret")

    assert (
        secretmanager._endpoint_for(name, secretmanager.SecretManagerConfig()) is None
    )


def test_endpoint_override_wins_over_the_regional_host():
    name = apikey.parse_secret_name(
        "projects/acme/locations/us-east4/secrets/s", "--api-key-secret"
    )
    config = secretmanager.SecretManagerConfig(endpoint="https://psc.example.internal")

    assert secretmanager._endpoint_for(name, config) == "https://psc.example.internal"


@pytest.mark.parametrize(
    "name",
    [
        "projects/p/secrets/",
        "a b",
        "S@x",
        "projects//secrets/s",
        "projects/p/secrets/s/versions/0",
        "projects/p/secrets/s/versions/",
        "",
    ],
    ids=[
        "no-secret",
        "space",
        "bad-version",
        "no-project",
        "version-0",
        "no-version",
        "empty",
    ],
)
def test_bad_secret_name_is_a_usage_error(notify, receiver, secret_manager, name):
    run = notify(f"--api-key-secret={name}", "--gcp-project=acme")

    assert run.code == 2
    assert receiver.requests == []
    assert secret_manager.requests == []
    assert "not a Secret Manager secret name" in run.err


# --- Secret Manager: errors -------------------------------------------------


def test_missing_secret_names_the_secret_and_project(notify, receiver, secret_manager):
    run = notify("--api-key-secret=bugster-key", "--gcp-project=acme")

    assert run.code == 4
    assert receiver.requests == []
    assert accessed(secret_manager) == [
        "projects/acme/secrets/bugster-key/versions/latest"
    ]
    assert "not found" in run.err
    assert "projects/acme/secrets/bugster-key/versions/latest" in run.err
    assert "project acme" in run.err


def test_missing_version_is_not_found(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", API_KEY)

    run = notify("--api-key-secret=s@7", "--gcp-project=acme")

    assert run.code == 4
    assert receiver.requests == []
    assert "not found" in run.err
    assert "projects/acme/secrets/s/versions/7" in run.err


def test_permission_denied_names_the_accessor_role(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", API_KEY)
    secret_manager.deny("projects/acme/secrets/s")

    run = notify(
        "--api-key-secret=projects/acme/secrets/s",
        env={"SERVICE_ACCOUNT_EMAIL": "builder@acme.iam.gserviceaccount.com"},
    )

    assert run.code == 4
    assert receiver.requests == []
    assert len(secret_manager.requests) == 1
    assert "permission denied" in run.err
    assert "roles/secretmanager.secretAccessor" in run.err
    assert "builder@acme.iam.gserviceaccount.com" in run.err


@pytest.mark.parametrize("state", ["DISABLED", "DESTROYED"])
def test_disabled_version_says_disabled(notify, receiver, secret_manager, state):
    version = secret_manager.add("projects/acme/secrets/s", API_KEY)
    secret_manager.set_state(version, state)

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    assert len(secret_manager.requests) == 1
    assert "disabled" in run.err
    assert API_KEY not in run.output


def test_failed_precondition_status_alone_says_disabled(
    notify, receiver, secret_manager
):
    secret_manager.set_script(
        [google_error(400, "FAILED_PRECONDITION", "Secret Version [x] is unusable.")]
    )

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    assert "is disabled or destroyed" in run.err


def test_other_bad_request_is_not_called_disabled(notify, receiver, secret_manager):
    secret_manager.set_script(
        [google_error(400, "INVALID_ARGUMENT", "Invalid resource field value.")]
    )

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    assert "disabled" not in run.err
    assert "Invalid resource field value" in run.err


def test_corrupted_payload_fails_its_crc_check(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", API_KEY)
    secret_manager.corrupt_crc("projects/acme/secrets/s")

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    assert "CRC32C" in run.err
    assert API_KEY not in run.output


def test_secret_manager_503_is_retried_then_delivers(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", API_KEY)
    secret_manager.set_script([google_error(503, "UNAVAILABLE", "try again")])

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 0, run.err
    assert [r.status for r in secret_manager.requests] == [503, 200]
    assert accessed(secret_manager) == ["projects/acme/secrets/s/versions/latest"] * 2
    assert sent_keys(receiver) == [API_KEY]


def test_secret_manager_401_gives_up_after_google_auth_refreshes_the_token(
    notify, receiver, secret_manager, metadata
):
    secret_manager.add("projects/acme/secrets/s", API_KEY)
    secret_manager.token = "another-token"
    tokens = metadata.token_requests

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    # Our retry policy leaves 401 alone; google-auth's AuthorizedSession
    # refreshes the token and resends, at most twice (DEFAULT_MAX_REFRESH_ATTEMPTS).
    assert [r.status for r in secret_manager.requests] == [401, 401, 401]
    assert metadata.token_requests - tokens == 3
    assert "Google rejected the credentials" in run.err
    assert "GOOGLE_APPLICATION_CREDENTIALS" in run.err


def test_secret_that_is_a_bad_key_is_not_echoed(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", "$$BUGSTER_API_KEY\n")

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 2
    assert receiver.requests == []
    assert "unexpanded placeholder" in run.err
    assert "$$BUGSTER_API_KEY" not in run.output


def test_secret_that_is_not_utf8_is_a_usage_error(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", b"\xff\xfe" + API_KEY.encode())

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 2
    assert receiver.requests == []
    assert "not UTF-8" in run.err


def test_no_credentials_says_how_to_provide_them(
    notify, receiver, secret_manager, metadata, monkeypatch
):
    # google-auth reads GCE_METADATA_IP at each ping, so this takes effect in
    # process; GCE_METADATA_HOST was read once at import and cannot be moved,
    # but ADC never gets past the failed ping to use it.
    monkeypatch.setenv("GCE_METADATA_IP", refused_port())
    secret_manager.add("projects/acme/secrets/s", API_KEY)
    seen = len(metadata.requests)

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    assert secret_manager.requests == []
    assert len(metadata.requests) == seen
    assert "no Google credentials" in run.err
    assert "GOOGLE_APPLICATION_CREDENTIALS" in run.err
    assert "BUGSTER_API_KEY" in run.err


def test_metadata_token_failure_is_an_api_key_error(
    notify, receiver, secret_manager, metadata, monkeypatch
):
    monkeypatch.setattr(metadata, "token_reply", Reply(403, body="denied\n"))
    secret_manager.add("projects/acme/secrets/s", API_KEY)
    tokens = metadata.token_requests

    run = notify("--api-key-secret=projects/acme/secrets/s")

    assert run.code == 4
    assert receiver.requests == []
    assert secret_manager.requests == []
    assert metadata.token_requests > tokens
    assert "credentials" in run.err
    assert API_KEY not in run.output


# --- masking -----------------------------------------------------------------


def test_dry_run_masks_the_secret_value_and_sends_nothing(
    notify, receiver, secret_manager
):
    secret_manager.add("projects/acme/secrets/s", API_KEY + "\n")

    run = notify("--api-key-secret=projects/acme/secrets/s", "--dry-run", "--verbose")

    assert run.code == 0, run.err
    assert receiver.requests == []
    assert len(secret_manager.requests) == 1
    assert f"X-API-KEY: {MASK}" in run.out
    for form in (API_KEY, json.dumps(API_KEY)[1:-1], "bgs_test%2BKey"):
        assert form not in run.output


def test_delivery_with_the_secret_never_prints_it(notify, receiver, secret_manager):
    secret_manager.add("projects/acme/secrets/s", API_KEY)

    run = notify("--api-key-secret=projects/acme/secrets/s", "--verbose")

    assert run.code == 0, run.err
    assert sent_keys(receiver) == [API_KEY]
    for form in (API_KEY, json.dumps(API_KEY)[1:-1], "bgs_test%2BKey"):
        assert form not in run.output


# --- lazy import ---------------------------------------------------------------

_LAZY_DRIVER = """
import sys
from bugster_step.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
loaded = sorted(m for m in sys.modules if m == "google" or m.startswith("google."))
print("RESULT", code, ",".join(loaded) or "-")
"""


@pytest.mark.slow
def test_key_from_the_environment_imports_no_google_module(
    receiver, metadata, tmp_path, workspace
):
    env = isolated_env(metadata, tmp_path)
    env.update(BUGSTER_API_KEY=API_KEY, BUGSTER_API_URL=receiver.url)

    done = subprocess.run(
        [sys.executable, "-c", _LAZY_DRIVER, *NOTIFY],
        env=env,
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert sent_keys(receiver) == [API_KEY]
    result = done.stdout.strip().splitlines()[-1]
    assert result == "RESULT 0 -", done.stderr
    assert API_KEY not in done.stdout + done.stderr


def test_secret_manager_module_imports_no_google_module_by_itself():
    code = (
        "import sys, bugster_step.cli, bugster_step.secretmanager;"
        "print(any(m.split('.')[0] == 'google' for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert done.stdout.strip() == "False"
