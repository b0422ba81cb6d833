"""The sandbox servers behave as the things they stand in for.

The HTTP-level tests talk to the servers with ``requests`` in this process.
The Secret Manager tests drive the real ``SecretManagerServiceClient`` in a
fresh interpreter instead, because google-auth reads ``GCE_METADATA_HOST``
once, when it is first imported, and this process must never import google
with a real metadata host configured. That interpreter runs this very file
(see ``_client_driver`` at the bottom) with the environment from
``sandbox.isolated_env``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from sandbox import (
    WEBHOOK_PATH,
    AppServer,
    BugsterReceiver,
    MetadataFake,
    Reply,
    SecretManagerFake,
    crc32c,
    google_env,
    isolated_env,
    scrub_env,
)

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bk_sandbox_0123456789"
VALID_EVENT = {
    "project_id": "cloud-build-1758224858",
    "organization_id": "org_a1b2c3d4e5f6g7h8i9j0",
    "environment_url": "https://preview.example.test",
    "deployment_state": "success",
    "commit_sha": "0123456789abcdef0123456789abcdef01234567",
    "environment": "preview",
}


def post(receiver: BugsterReceiver, body=None, **headers) -> requests.Response:
    headers = {"X-API-KEY": API_KEY, **headers}
    payload = json.dumps(VALID_EVENT if body is None else body)
    if "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    return requests.post(receiver.webhook_url, data=payload, headers=headers, timeout=5)


@pytest.fixture
def bugster():
    """A receiver of our own (conftest's ``receiver`` uses another key)."""
    with BugsterReceiver(API_KEY) as server:
        yield server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- BugsterReceiver -------------------------------------------------------


def test_receiver_processes_a_valid_event(bugster):
    response = post(bugster)

    assert response.status_code == 200
    assert response.json() == {
        "status": "processed",
        "message": "Custom integration event processed for org: "
        "org_a1b2c3d4e5f6g7h8i9j0, project: cloud-build-1758224858",
    }
    (recorded,) = bugster.accepted
    assert recorded.method == "POST"
    assert recorded.path == WEBHOOK_PATH
    assert recorded.json == VALID_EVENT
    assert recorded.header("X-Api-Key") == API_KEY
    assert recorded.status == 200


@pytest.mark.parametrize("header", ["X-API-KEY", "X-API-Key", "x-api-key"])
def test_receiver_matches_the_key_header_in_any_case(bugster, header):
    response = requests.post(
        bugster.webhook_url,
        json=VALID_EVENT,
        headers={header: API_KEY},
        timeout=5,
    )

    assert response.status_code == 200


def test_receiver_in_skip_mode_answers_skipped(bugster):
    bugster.skip = True

    response = post(bugster)

    assert response.status_code == 200
    assert response.json()["status"] == "skipped"
    assert response.json()["message"].startswith(
        "Skipping event: Repository does not have .bugster configuration folder"
    )


def without(*names: str, **extra) -> dict:
    event = {k: v for k, v in VALID_EVENT.items() if k not in names}
    return {**event, **extra}


@pytest.mark.parametrize(
    ("body", "headers", "status", "detail"),
    [
        pytest.param(None, {"X-API-KEY": ""}, 401, "Missing API key", id="no-key"),
        pytest.param(
            None, {"X-API-KEY": "bk_wrong"}, 401, "Invalid API key", id="wrong-key"
        ),
        pytest.param(
            None, {"Content-Type": "text/plain"}, 422, "Content-Type", id="text-plain"
        ),
        pytest.param([VALID_EVENT], {}, 422, "JSON object", id="array-body"),
        pytest.param(
            without("project_id"), {}, 422, "'project_id' is required", id="no-project"
        ),
        pytest.param(
            without("organization_id"), {}, 422, "'organization_id'", id="no-org"
        ),
        pytest.param(without(organization_id=""), {}, 422, "non-empty", id="empty-org"),
        pytest.param(without(branch="  "), {}, 422, "non-empty", id="blank-branch"),
        pytest.param(without(project_id=7), {}, 422, "non-empty string", id="number"),
        pytest.param(
            without(extra="x"), {}, 422, "Unknown field(s): extra", id="unknown-field"
        ),
        pytest.param(
            without(branch="main"), {}, 422, "exactly one", id="sha-and-branch"
        ),
        pytest.param(without("commit_sha"), {}, 422, "exactly one", id="neither-ref"),
        pytest.param(
            without("environment_url"),
            {},
            422,
            "'environment_url'",
            id="success-no-url",
        ),
        pytest.param(
            without("environment_url", "deployment_state"),
            {},
            422,
            "'environment_url'",
            id="no-state-no-url",
        ),
        pytest.param(
            without(deployment_state="done"), {}, 422, "one of", id="bad-state"
        ),
    ],
)
def test_receiver_rejects_what_breaks_the_contract(
    bugster, body, headers, status, detail
):
    response = post(bugster, body, **headers)

    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert bugster.accepted == []


def test_receiver_rejects_a_body_that_is_not_json(bugster):
    response = requests.post(
        bugster.webhook_url,
        data=b"{not json",
        headers={"X-API-KEY": API_KEY, "Content-Type": "application/json"},
        timeout=5,
    )

    assert response.status_code == 422
    assert response.json() == {"detail": "Request body is not valid JSON"}


@pytest.mark.parametrize("state", ["in_progress", "cancelled", "error"])
def test_receiver_needs_no_url_unless_the_state_is_success(bugster, state):
    response = post(bugster, without("environment_url", deployment_state=state))

    assert response.status_code == 200


def test_receiver_answers_404_off_path_and_405_for_other_methods(bugster):
    elsewhere = requests.post(bugster.url + "/webhooks", json=VALID_EVENT, timeout=5)
    wrong_method = requests.get(bugster.webhook_url, timeout=5)

    assert elsewhere.status_code == 404
    assert elsewhere.json() == {"detail": "Not Found"}
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"


def test_receiver_script_answers_first_then_validates():
    script = [Reply(503), Reply(429, headers={"Retry-After": "1"})]
    with BugsterReceiver(API_KEY, script=script) as receiver:
        answers = [post(receiver) for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 429, 200]
    assert answers[1].headers["Retry-After"] == "1"
    assert [r.status for r in receiver.requests] == [503, 429, 200]
    assert len(receiver.accepted) == 1


def test_receiver_script_still_lets_a_wrong_path_see_404():
    with BugsterReceiver(API_KEY, script=[Reply(200)]) as receiver:
        response = requests.post(receiver.url + "/wrong", json=VALID_EVENT, timeout=5)

        assert response.status_code == 404
        assert post(receiver).content == b""


def test_delayed_reply_times_the_client_out_and_stop_cuts_it_short():
    receiver = BugsterReceiver(API_KEY, script=[Reply(200, delay=30)])
    with pytest.raises(requests.ReadTimeout):
        requests.post(receiver.webhook_url, json=VALID_EVENT, timeout=0.2)

    started = time.monotonic()
    receiver.stop()

    assert time.monotonic() - started < 2
    assert receiver.requests[0].status == 200
    receiver.stop()  # a second stop is harmless


# --- AppServer -------------------------------------------------------------


def test_app_is_starting_until_ready_after_has_passed():
    clock = FakeClock()
    with AppServer(ready_after=30, ready_body="hello", clock=clock) as app:
        before = requests.get(app.url, timeout=5)
        clock.now += 30
        after = requests.get(app.url + "/health?probe=1", timeout=5)

    assert (before.status_code, before.text) == (503, "starting\n")
    assert (after.status_code, after.text) == (200, "hello")
    assert app.requests[1].path == "/health?probe=1"
    assert app.requests[1].query == {"probe": ["1"]}


def test_app_serves_its_script_in_order_and_repeats_the_last():
    script = [Reply(503), Reply(502, body="bad gateway"), Reply(200, body={"ok": True})]
    with AppServer(script=script) as app:
        statuses = [requests.get(app.url, timeout=5).status_code for _ in range(5)]
        last = requests.get(app.url, timeout=5)

    assert statuses == [503, 502, 200, 200, 200]
    assert last.json() == {"ok": True}
    assert last.headers["Content-Type"] == "application/json"


def test_app_set_script_changes_behaviour_mid_test():
    with AppServer() as app:
        first = requests.get(app.url, timeout=5)
        app.set_script([Reply(500, body="boom")])
        second = requests.get(app.url, timeout=5)
        app.set_script(None)
        third = requests.get(app.url, timeout=5)

    assert [first.status_code, second.status_code, third.status_code] == [200, 500, 200]


def test_app_routes_script_a_redirect_chain():
    with AppServer(script=[Reply(500)]) as app:
        app.route("/", Reply(302, headers={"Location": "/ready"}))
        app.route("/ready", Reply(200, body="ready"))
        response = requests.get(app.url + "/", timeout=5)

    assert (response.status_code, response.text) == (200, "ready")
    assert [r.route for r in app.requests] == ["/", "/ready"]
    assert [h.status_code for h in response.history] == [302]


def test_app_answers_head_with_headers_and_no_body():
    with AppServer(ready_body="twelve bytes") as app:
        response = requests.head(app.url, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == "12"
    assert response.content == b""
    assert app.requests[0].method == "HEAD"


def test_reply_headers_override_the_defaults_in_any_case():
    reply = Reply(200, headers={"content-type": "application/x-test"}, body="hi")
    with AppServer(script=[reply]) as app:
        response = requests.get(app.url, timeout=5)

    assert response.headers["Content-Type"] == "application/x-test"
    assert response.raw.headers.getlist("Content-Type") == ["application/x-test"]


def test_wait_for_requests_wakes_on_traffic_and_times_out_without():
    with AppServer() as app:
        worker = threading.Thread(target=requests.get, args=(app.url,), daemon=True)
        worker.start()

        assert app.wait_for_requests(1, timeout=5)
        assert not app.wait_for_requests(2, timeout=0.05)
        worker.join(5)


def test_servers_bind_loopback_only():
    with AppServer() as app:
        assert app.host_port.startswith("127.0.0.1:")
        assert app.url == f"http://127.0.0.1:{app.port}"


def test_app_rejects_script_and_ready_after_together():
    with pytest.raises(ValueError, match="not both"):
        AppServer(script=[Reply(200)], ready_after=1)


# --- MetadataFake over plain HTTP ------------------------------------------

FLAVOR = {"Metadata-Flavor": "Google"}


def test_metadata_refuses_requests_without_the_flavor_header():
    with MetadataFake() as metadata:
        refused = requests.get(
            metadata.url + "/computeMetadata/v1/project/project-id", timeout=5
        )
        ping = requests.get(metadata.url, headers=FLAVOR, timeout=5)

    assert refused.status_code == 403
    assert refused.headers["Metadata-Flavor"] == "Google"
    assert ping.status_code == 200
    assert ping.headers["Metadata-Flavor"] == "Google"


def test_metadata_counts_token_requests_and_takes_a_token_override():
    path = "/computeMetadata/v1/instance/service-accounts/default/token"
    with MetadataFake(token="t-1") as metadata:
        good = requests.get(metadata.url + path, headers=FLAVOR, timeout=5)
        metadata.token_reply = Reply(500, body="internal")
        bad = requests.get(metadata.url + path, headers=FLAVOR, timeout=5)

        assert metadata.token_requests == 2

    assert good.json() == {
        "access_token": "t-1",
        "expires_in": 3599,
        "token_type": "Bearer",
    }
    assert bad.status_code == 500


def test_metadata_answers_the_service_account_by_email_too():
    with MetadataFake(email="sa@p.iam.gserviceaccount.com") as metadata:
        root = metadata.url + "/computeMetadata/v1/instance/service-accounts/"
        info = requests.get(
            root + "sa@p.iam.gserviceaccount.com/?recursive=true",
            headers=FLAVOR,
            timeout=5,
        )
        other = requests.get(
            root + "other@x.iam.gserviceaccount.com/", headers=FLAVOR, timeout=5
        )

    assert info.json()["email"] == "sa@p.iam.gserviceaccount.com"
    assert other.status_code == 404


# --- environment for google libraries ---------------------------------------


def test_scrub_env_drops_google_gcloud_and_proxy_settings():
    dirty = {
        "PATH": "/usr/bin",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
        "GOOGLE_CLOUD_PROJECT": "real-project",
        "GCLOUD_PROJECT": "real-project",
        "CLOUDSDK_CORE_PROJECT": "real-project",
        "GCE_METADATA_HOST": "metadata.google.internal",
        "NO_GCE_CHECK": "true",
        "https_proxy": "http://proxy:3128",
    }

    assert scrub_env(dirty) == {"PATH": "/usr/bin"}


def test_google_env_points_at_the_fake_and_traps_other_hosts(tmp_path, monkeypatch):
    with MetadataFake() as metadata:
        env = google_env(metadata, tmp_path)

    assert env["GCE_METADATA_HOST"] == env["GCE_METADATA_IP"] == metadata.host_port
    assert list(Path(env["CLOUDSDK_CONFIG"]).iterdir()) == []
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Pure computation, no traffic: which proxy requests would pick per URL.
    assert requests.utils.get_environ_proxies(metadata.url) == {}
    trapped = requests.utils.get_environ_proxies("https://example.invalid/")
    assert trapped["https"] == env["HTTPS_PROXY"]
    trap_port = int(env["HTTPS_PROXY"].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", trap_port), timeout=1)


def test_pure_crc32c_matches_the_castagnoli_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


# --- the real Secret Manager client, in a fresh interpreter -----------------

GLOBAL = "projects/sandbox-gcp-project/secrets/bugster-api-key"
REGIONAL = "projects/sandbox-gcp-project/locations/europe-west1/secrets/bugster-api-key"


def run_driver(metadata: MetadataFake, tmp_path: Path, cases: list[dict]) -> dict:
    env = isolated_env(metadata, tmp_path)
    env["PYTHONPATH"] = str(ROOT)
    completed = subprocess.run(
        [sys.executable, __file__, json.dumps({"cases": cases})],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def case(case_id: str, sm: SecretManagerFake, name: str, retry: str = "none") -> dict:
    return {"id": case_id, "endpoint": sm.url, "name": name, "retry": retry}


def unavailable(code: int, status: str) -> Reply:
    body = {"error": {"code": code, "message": f"sandbox {status}", "status": status}}
    return Reply(code, body=body)


@pytest.fixture(scope="module")
def secret_manager_run(tmp_path_factory):
    """One interpreter, every case; each test below checks part of the result."""
    tmp_path = tmp_path_factory.mktemp("google")
    with (
        MetadataFake() as metadata,
        SecretManagerFake() as sm,
        SecretManagerFake(token="a-token-metadata-never-mints") as strict,
        SecretManagerFake(script=[unavailable(429, "RESOURCE_EXHAUSTED")]) as busy,
        SecretManagerFake(script=[unavailable(503, "UNAVAILABLE")]) as down,
        SecretManagerFake(script=[unavailable(503, "UNAVAILABLE")]) as flaky,
        SecretManagerFake() as corrupt,
    ):
        sm.add(GLOBAL, "bk_live_first")
        sm.add(GLOBAL, "bk_live_second\n")
        sm.add(GLOBAL, "bk_live_disabled", state="DISABLED")
        sm.add(REGIONAL, b"bk_regional")
        sm.deny("projects/sandbox-gcp-project/secrets/forbidden")
        for server in (strict, busy, down, flaky, corrupt):
            server.add(GLOBAL, "bk_live_first")
        corrupt.corrupt_crc(GLOBAL)
        cases = [
            case("v1", sm, f"{GLOBAL}/versions/1"),
            case("v2", sm, f"{GLOBAL}/versions/2"),
            case("latest-disabled", sm, f"{GLOBAL}/versions/latest"),
            case("regional-latest", sm, f"{REGIONAL}/versions/latest"),
            case(
                "missing-secret",
                sm,
                "projects/sandbox-gcp-project/secrets/nope/versions/1",
            ),
            case("missing-version", sm, f"{GLOBAL}/versions/9"),
            case(
                "forbidden",
                sm,
                "projects/sandbox-gcp-project/secrets/forbidden/versions/1",
            ),
            case("unauthenticated", strict, f"{GLOBAL}/versions/1"),
            case("429-default-retry", busy, f"{GLOBAL}/versions/1", retry="default"),
            case("503-no-retry", down, f"{GLOBAL}/versions/1"),
            case("503-then-ok", flaky, f"{GLOBAL}/versions/1", retry="fast"),
            case("corrupt-crc", corrupt, f"{GLOBAL}/versions/1"),
        ]
        results = run_driver(metadata, tmp_path, cases)
        servers = {
            "metadata": metadata,
            "sm": sm,
            "strict": strict,
            "busy": busy,
            "flaky": flaky,
        }
        yield results, servers


def test_adc_finds_metadata_credentials_and_project(secret_manager_run):
    results, _ = secret_manager_run

    assert results["adc"] == {
        "credentials": "google.auth.compute_engine.credentials.Credentials",
        "project": "sandbox-gcp-project",
    }
    assert results["warnings"] == []


def test_real_client_reads_a_secret_with_the_exact_request(secret_manager_run):
    results, servers = secret_manager_run

    assert results["v1"]["name"] == f"{GLOBAL}/versions/1"
    assert results["v1"]["data"] == "bk_live_first"
    assert results["v2"]["data"] == "bk_live_second\n"
    (request, *_) = servers["sm"].requests
    assert request.method == "GET"
    assert (
        request.path
        == f"/v1/{GLOBAL}/versions/1:access?%24alt=json%3Benum-encoding%3Dint"
    )
    assert request.query == {"$alt": ["json;enum-encoding=int"]}
    assert request.header("authorization") == "Bearer sandbox-token"
    assert request.header("x-goog-request-params") == f"name={GLOBAL}/versions/1"


def test_served_crc_matches_google_crc32c(secret_manager_run):
    results, _ = secret_manager_run

    for case_id in ("v1", "v2", "regional-latest"):
        assert results[case_id]["crc"] == results[case_id]["google_crc32c"], case_id


def test_corrupt_crc_serves_a_checksum_that_does_not_match(secret_manager_run):
    results, _ = secret_manager_run

    assert results["corrupt-crc"]["crc"] != results["corrupt-crc"]["google_crc32c"]


def test_regional_latest_resolves_to_the_newest_version(secret_manager_run):
    results, _ = secret_manager_run

    assert results["regional-latest"]["name"] == f"{REGIONAL}/versions/1"
    assert results["regional-latest"]["data"] == "bk_regional"


@pytest.mark.parametrize(
    ("case_id", "error", "message"),
    [
        ("missing-secret", "NotFound", "not found or has no versions"),
        (
            "missing-version",
            "NotFound",
            f"Secret Version [{GLOBAL}/versions/9] not found.",
        ),
        ("forbidden", "Forbidden", "Permission 'secretmanager.versions.access' denied"),
        (
            "latest-disabled",
            "BadRequest",
            f"[{GLOBAL}/versions/3] is in DISABLED state.",
        ),
        ("unauthenticated", "Unauthorized", "invalid authentication credentials"),
        ("429-default-retry", "TooManyRequests", "sandbox RESOURCE_EXHAUSTED"),
        ("503-no-retry", "ServiceUnavailable", "sandbox UNAVAILABLE"),
    ],
)
def test_real_client_raises_by_http_status(secret_manager_run, case_id, error, message):
    # api_core picks the class from the HTTP status alone, first class
    # registered for it: the body's "status" never makes a 403 PermissionDenied
    # or a 400 FailedPrecondition.
    results, _ = secret_manager_run

    assert results[case_id]["error"] == f"google.api_core.exceptions.{error}"
    assert message in results[case_id]["message"]


def test_default_retry_does_not_retry_429_over_rest(secret_manager_run):
    # The library's retry predicate names ResourceExhausted, but REST maps 429
    # to its parent TooManyRequests, so the predicate never matches.
    results, servers = secret_manager_run

    assert results["429-default-retry"]["mro"][:2] == ["TooManyRequests", "ClientError"]
    assert len(servers["busy"].requests) == 1


def test_the_library_retry_predicate_retries_503(secret_manager_run):
    results, servers = secret_manager_run

    assert results["503-then-ok"]["data"] == "bk_live_first"
    assert [r.status for r in servers["flaky"].requests] == [503, 200]


def test_google_auth_asks_the_metadata_server_for_exactly_these(secret_manager_run):
    _, servers = secret_manager_run
    metadata = servers["metadata"]

    asked = {r.route for r in metadata.requests}
    assert asked == {
        "/",
        "/computeMetadata/v1/project/project-id",
        "/computeMetadata/v1/instance/service-accounts/default/",
        f"/computeMetadata/v1/instance/service-accounts/{metadata.email}/",
        "/computeMetadata/v1/instance/service-accounts/default/token",
    }
    assert all(r.header("metadata-flavor") == "Google" for r in metadata.requests)
    assert all(r.status == 200 for r in metadata.requests)
    assert metadata.errors == []


def test_every_client_runs_adc_again_and_mints_its_own_token(secret_manager_run):
    # google.auth.default() in the driver, then one per client: a ping and a
    # project-id each. Each client's first call fetches the account info and a
    # token; the client that got 401 refreshed twice more (see below).
    results, servers = secret_manager_run
    metadata = servers["metadata"]
    clients = len(results["endpoints"])

    assert sum(r.route == "/" for r in metadata.requests) == 1 + clients
    assert metadata.token_requests == clients + 2


def test_a_401_makes_google_auth_refresh_the_token_twice_then_raise(secret_manager_run):
    # AuthorizedSession refreshes on 401 and resends, up to two times; the
    # refreshes ask for the account by email, no longer by "default".
    results, servers = secret_manager_run

    assert results["unauthenticated"]["error"].endswith(".Unauthorized")
    assert [r.status for r in servers["strict"].requests] == [401, 401, 401]


def test_token_failure_surfaces_as_refresh_error(tmp_path):
    # 404 is what a VM without a service account answers; a 5xx would be
    # retried by google-auth five times over about 15 s before the same error.
    with MetadataFake(token_status=404) as metadata, SecretManagerFake() as sm:
        sm.add(GLOBAL, "bk_live_first")
        results = run_driver(
            metadata, tmp_path, [case("v1", sm, f"{GLOBAL}/versions/1")]
        )

        assert results["v1"]["error"] == "google.auth.exceptions.RefreshError"
        assert metadata.token_requests == 1
        assert sm.requests == []


# --- the driver: runs in the child interpreter only ---------------------------


def _client_driver(spec: dict) -> dict:
    for var in ("GCE_METADATA_HOST", "GCE_METADATA_IP"):
        if not os.environ.get(var, "").startswith("127.0.0.1:"):
            raise SystemExit(f"{var} must name the loopback metadata fake first")

    import warnings

    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import google.auth
        from google.cloud import secretmanager

        credentials, project = google.auth.default()
        results: dict = {
            "adc": {
                "credentials": f"{type(credentials).__module__}.{type(credentials).__qualname__}",
                "project": project,
            }
        }
        clients = {}
        for item in spec["cases"]:
            if item["endpoint"] not in clients:
                clients[item["endpoint"]] = secretmanager.SecretManagerServiceClient(
                    transport="rest", client_options={"api_endpoint": item["endpoint"]}
                )
            results[item["id"]] = _access(clients[item["endpoint"]], item)
    results["warnings"] = [str(w.message) for w in caught]
    results["endpoints"] = sorted(clients)
    return results


def _access(client, item: dict) -> dict:
    import google_crc32c
    from google.api_core import exceptions, gapic_v1, retry

    retries = {
        "none": None,
        "default": gapic_v1.method.DEFAULT,
        # The library default's predicate, without its 2 s first delay.
        "fast": retry.Retry(
            initial=0.01,
            maximum=0.05,
            predicate=retry.if_exception_type(
                exceptions.ResourceExhausted, exceptions.ServiceUnavailable
            ),
            timeout=10,
        ),
    }
    try:
        response = client.access_secret_version(
            name=item["name"], retry=retries[item["retry"]], timeout=10
        )
    except Exception as exc:
        kind = type(exc)
        return {
            "error": f"{kind.__module__}.{kind.__qualname__}",
            "mro": [c.__name__ for c in kind.__mro__],
            "message": str(exc),
        }
    data = response.payload.data
    return {
        "name": response.name,
        "data": data.decode(),
        "crc": response.payload.data_crc32c,
        "google_crc32c": google_crc32c.value(data),
    }


if __name__ == "__main__":
    print(json.dumps(_client_driver(json.loads(sys.argv[1]))))
