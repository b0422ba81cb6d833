"""Read the API key from Google Secret Manager with the real client library.

REST transport (no gRPC channel to set up in a build container), Application
Default Credentials (on Cloud Build: the metadata server), an explicit retry
and timeout, and the payload's CRC32C checked when the service sends one.
Everything from Google is imported inside ``fetch`` so that runs which do not
use Secret Manager never load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bugster_step.apikey import SecretName, missing_project_error
from bugster_step.errors import ApiKeyError, ConfigError
from bugster_step.log import log

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Shown on PERMISSION_DENIED: what the build's identity needs.
ACCESSOR_HINT = (
    "grant roles/secretmanager.secretAccessor on the secret to the identity the "
    "step runs as{who} (on Cloud Build: the build's service account)"
)
NO_CREDENTIALS_HINT = (
    "on Cloud Build the metadata server provides them; elsewhere set "
    "GOOGLE_APPLICATION_CREDENTIALS or run 'gcloud auth application-default login', "
    "or give the key through BUGSTER_API_KEY or --api-key-file instead"
)


@dataclass(frozen=True)
class SecretManagerConfig:
    gcp_project: str | None = None  # from --gcp-project / GOOGLE_CLOUD_PROJECT
    ci_project: str | None = None  # Cloud Build's PROJECT_ID
    endpoint: str | None = None  # --secret-manager-endpoint
    timeout: float = 10.0  # seconds per request
    deadline: float = 30.0  # seconds for all retries together
    service_account: str | None = None  # for messages only


def _endpoint_for(name: SecretName, config: SecretManagerConfig) -> str | None:
    if config.endpoint:
        return config.endpoint
    if name.location:
        return f"secretmanager.{name.location}.rep.googleapis.com"
    return None


def fetch(name: SecretName, config: SecretManagerConfig) -> str:
    """The secret version's payload as text."""
    import google.auth
    import google.auth.exceptions
    import google_crc32c
    from google.api_core import exceptions as gexc
    from google.api_core import retry as gretry
    from google.api_core.client_options import ClientOptions
    from google.cloud import secretmanager

    try:
        credentials, adc_project = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ApiKeyError(
            "no Google credentials to read the secret from Secret Manager",
            hint=NO_CREDENTIALS_HINT,
        ) from exc

    log.debug(
        "Google credentials: %s, project %s", type(credentials).__name__, adc_project
    )
    project = name.project or config.gcp_project or config.ci_project or adc_project
    if not project:
        raise missing_project_error(name)
    resource = name.resource(project)
    endpoint = _endpoint_for(name, config)
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    client = secretmanager.SecretManagerServiceClient(
        credentials=credentials, transport="rest", client_options=options
    )
    retry = gretry.Retry(
        predicate=_transient(gexc),
        initial=0.5,
        maximum=5.0,
        multiplier=2.0,
        timeout=config.deadline,
    )
    log.info("reading the API key from Secret Manager: %s", resource)
    try:
        response = client.access_secret_version(
            request={"name": resource}, retry=retry, timeout=config.timeout
        )
    except Exception as exc:
        raise _explain(exc, resource, project, config, gexc) from exc

    data = response.payload.data
    has_crc = response.payload._pb.HasField("data_crc32c")
    if has_crc and google_crc32c.value(data) != response.payload.data_crc32c:
        raise ApiKeyError(
            f"the payload of {resource} failed its CRC32C check",
            hint="the secret was corrupted in transit; run the step again",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the secret {resource} is not UTF-8 text") from None


def _transient(gexc):
    import requests

    retryable = (
        gexc.TooManyRequests,
        gexc.InternalServerError,
        gexc.BadGateway,
        gexc.ServiceUnavailable,
        gexc.GatewayTimeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
    )

    def predicate(exc: BaseException) -> bool:
        return isinstance(exc, retryable)

    return predicate


def _explain(exc, resource, project, config, gexc) -> ApiKeyError:
    import google.auth.exceptions
    import requests

    who = f" ({config.service_account})" if config.service_account else ""
    text = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, gexc.NotFound):
        return ApiKeyError(
            f"secret not found: {resource} (project {project})",
            hint="check the secret's name and version, and --gcp-project",
        )
    if isinstance(exc, gexc.Forbidden | gexc.PermissionDenied):
        return ApiKeyError(
            f"permission denied reading {resource}", hint=ACCESSOR_HINT.format(who=who)
        )
    if isinstance(exc, gexc.BadRequest | gexc.FailedPrecondition) and (
        _rest_status(exc) == "FAILED_PRECONDITION"
        or any(word in text.upper() for word in ("DISABLED", "DESTROYED"))
    ):
        return ApiKeyError(
            f"the secret version {resource} is disabled or destroyed",
            hint="enable it, or point --api-key-secret at an enabled version",
        )
    if isinstance(
        exc, google.auth.exceptions.GoogleAuthError
    ) or _raised_in_google_auth(exc):
        # The token never came: Secret Manager was not even asked.
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else repr(exc)
        return ApiKeyError(
            f"Google rejected the credentials used to read {resource}: "
            f"could not get an access token ({first})",
            hint=NO_CREDENTIALS_HINT,
        )
    if isinstance(exc, gexc.Unauthorized):
        return ApiKeyError(
            f"Google rejected the credentials used to read {resource}: {text}",
            hint=NO_CREDENTIALS_HINT,
        )
    if isinstance(exc, gexc.RetryError | requests.exceptions.RequestException):
        return ApiKeyError(
            f"Secret Manager did not answer for {resource}: {text}",
            hint="check the network and --secret-manager-endpoint, then run again",
        )
    return ApiKeyError(f"Secret Manager refused {resource}: {text}")


def _raised_in_google_auth(exc: BaseException) -> bool:
    """True when ``exc`` came out of google-auth (e.g. a token answer it could not
    parse raises a bare KeyError there), not out of the Secret Manager call."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "/google/auth/" in tb.tb_frame.f_code.co_filename.replace(
        "\\", "/"
    )


def _rest_status(exc) -> str:
    """``error.status`` of a REST error answer, e.g. ``FAILED_PRECONDITION``.

    NOTE: over REST, api_core keeps only the HTTP class (400 is ``BadRequest``)
    and drops the JSON ``status`` from the exception; the response still has it.
    """
    response = getattr(exc, "response", None)
    try:
        return str(response.json()["error"]["status"])
    except Exception:  # no response, not JSON, or another shape
        return ""


def config_from(environ: Mapping[str, str], **kwargs) -> SecretManagerConfig:
    return SecretManagerConfig(
        ci_project=(environ.get("PROJECT_ID") or None),
        service_account=(environ.get("SERVICE_ACCOUNT_EMAIL") or None),
        **kwargs,
    )
