"""The command line: options, help text, and the one place errors become exit codes.

Nothing below this module imports click.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import traceback
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from bugster_step import __version__, redact
from bugster_step import log as logmod
from bugster_step.choices import DEFAULT_API_URL, REFS, STATES, url_problem
from bugster_step.ci import CI_NAMES, Found
from bugster_step.errors import (
    ConfigError,
    ExitStatus,
    Interrupted,
    NotReadyError,
    StepError,
    UndeliveredError,
)
from bugster_step.log import log
from bugster_step.report import FORMATS, publish

if TYPE_CHECKING:
    from bugster_step.apikey import KeySource
    from bugster_step.notify import NotifyOptions, Result
    from bugster_step.probe import ProbeOptions

# The job's modules (notify, probe, webhook, apikey) are imported inside the
# commands that use them: --version, --help and usage errors start faster.

# Shown when --soft-fail turns a failure into exit 0.
SOFT_FAIL_WARNING = (
    "--soft-fail: exiting 0 although the step failed with exit {exit}: {message}. "
    "Bugster was NOT asked to test this deployment"
)
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class HttpUrl(click.ParamType):
    """An absolute http or https URL with a host."""

    name = "url"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        problem = url_problem(text)
        if problem:
            self.fail(problem, param, ctx)
        return text


class Header(click.ParamType):
    """``Name: value``; the value is treated as a secret."""

    name = "'NAME: VALUE'"

    def convert(self, value, param, ctx):
        name, sep, content = str(value).partition(":")
        name, content = name.strip(), content.strip()
        if not sep or not name or any(c.isspace() for c in name):
            self.fail("expected 'Name: value', e.g. 'x-bypass-token: abc'", param, ctx)
        if not content:
            self.fail(
                f"header {name} has no value (an unset variable in 'Name: $VAR'?)",
                param,
                ctx,
            )
        if not content.isascii() or not name.isascii():
            self.fail(f"header {name} must be ASCII text", param, ctx)
        if any(ord(c) < 32 or ord(c) == 127 for c in content):
            self.fail(
                f"the value of header {name} contains control characters", param, ctx
            )
        redact.register(content)
        return (name, content)


class Seconds(click.FloatRange):
    name = "seconds"

    def convert(self, value, param, ctx):
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return seconds


# --- shared options ---------------------------------------------------------


def _set_verbosity(ctx: click.Context, param: click.Parameter, value):
    if value:
        ctx.ensure_object(dict)[param.name] = True
    return value


def output_options(func):
    """--verbose, --quiet and --debug, accepted before or after the subcommand."""
    for name, short, text in (
        ("--debug", None, "Show tracebacks for internal errors."),
        ("--quiet", "-q", "Only warnings and errors."),
        ("--verbose", "-v", "More detail (requests, git, Secret Manager)."),
    ):
        decls = [name] + ([short] if short else [])
        func = click.option(
            *decls,
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_verbosity,
            help=text,
        )(func)
    return func


def probe_options(func):
    options = [
        click.option(
            "--expect-status",
            default="2xx",
            show_default=True,
            envvar="BUGSTER_EXPECT_STATUS",
            show_envvar=True,
            help="Statuses that mean ready: a list of codes, ranges and classes, e.g. '200,204' or '200-399'.",
        ),
        click.option(
            "--expect-text",
            envvar="BUGSTER_EXPECT_TEXT",
            show_envvar=True,
            help="Ready only if the body contains this text.",
        ),
        click.option(
            "--header",
            "headers",
            type=Header(),
            multiple=True,
            help="Extra request header for the probe, repeatable (e.g. a protection-bypass secret). Masked in logs; never sent to another host.",
        ),
        click.option(
            "--timeout",
            type=Seconds(min=0.1),
            default=300.0,
            show_default=True,
            envvar="BUGSTER_PROBE_TIMEOUT",
            show_envvar=True,
            help="Seconds to wait for readiness before giving up (exit 3).",
        ),
        click.option(
            "--attempt-timeout",
            type=Seconds(min=0.1),
            default=10.0,
            show_default=True,
            help="Seconds one probe attempt may take, wall clock.",
        ),
        click.option(
            "--poll-interval",
            type=Seconds(min=0.0),
            default=2.0,
            show_default=True,
            help="Seconds before the second attempt; later waits grow by half up to --max-poll-interval.",
        ),
        click.option(
            "--max-poll-interval",
            type=Seconds(min=0.0),
            default=15.0,
            show_default=True,
            help="Longest wait between attempts, in seconds.",
        ),
        click.option(
            "--confirm-delay",
            type=Seconds(min=0.0),
            default=1.0,
            show_default=True,
            help="Seconds between the first ready answer and the confirming one.",
        ),
        click.option(
            "--expect-header",
            "expect_headers",
            metavar="NAME=VALUE",
            multiple=True,
            help="Ready only if the response header NAME equals VALUE, repeatable (e.g. the deployed version: 'x-version=3f78685').",
        ),
        click.option(
            "--method",
            type=click.Choice(["GET", "HEAD"], case_sensitive=False),
            default="GET",
            show_default=True,
            help="HTTP method of the probe; HEAD skips the body, so it cannot be combined with --expect-text.",
        ),
        click.option(
            "--ipv4",
            is_flag=True,
            help="Connect over IPv4 only (default: every address the name resolves to, in order).",
        ),
        click.option("--ipv6", is_flag=True, help="Connect over IPv6 only."),
        click.option(
            "--no-proxy",
            is_flag=True,
            help="Ignore HTTP_PROXY, HTTPS_PROXY and NO_PROXY for the probe and connect directly.",
        ),
        click.option(
            "--ca-bundle",
            metavar="PATH",
            envvar="BUGSTER_CA_BUNDLE",
            show_envvar=True,
            help="CA certificates (PEM) to verify the deployment's TLS certificate. Default: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE, else the certifi set.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify TLS certificates (a warning on every run); prefer --ca-bundle.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_probe_options(params: dict, url: str = "") -> ProbeOptions:
    from bugster_step.probe import ProbeOptions, StatusSet

    method = params["method"].upper()
    if method == "HEAD" and params["expect_text"] is not None:
        raise ConfigError(
            "--expect-text needs a body, which an answer to HEAD never has: "
            "use --method GET"
        )
    # Errors about the bundle name where it came from: the flag or its variable.
    ctx = click.get_current_context(silent=True)
    named = _origin(ctx, "ca_bundle") if ctx is not None else "--ca-bundle"
    max_wait = params["max_poll_interval"]
    return ProbeOptions(
        url=url,
        expect_status=StatusSet(params["expect_status"]),
        expect_text=params["expect_text"],
        headers=dict(params["headers"]),
        timeout=params["timeout"],
        attempt_timeout=params["attempt_timeout"],
        initial_wait=min(params["poll_interval"], max_wait),
        max_wait=max_wait,
        confirm_delay=params["confirm_delay"],
        verify=ProbeOptions.verify_for(params["ca_bundle"], named, params["insecure"]),
        method=method,
        expect_headers=ProbeOptions.expected_headers(params["expect_headers"]),
        family=ProbeOptions.family_for(params["ipv4"], params["ipv6"]),
        trust_env=not params["no_proxy"],
    )


# --- commands ---------------------------------------------------------------


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="bugster-step")
@output_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Tell Bugster that a deployment is live, once it really is.

    Run it as the last step of a pipeline: it reads the commit or branch from the
    CI, waits until the deployed URL answers, then posts Bugster's
    custom-integration webhook so Bugster tests that deployment.

    \b
    Examples:
      bugster-step notify --environment-url https://preview.example.com
      bugster-step notify --state in_progress
      bugster-step probe https://preview.example.com --expect-text ok
    """
    ctx.ensure_object(dict)


@cli.command(context_settings=CONTEXT)
@click.option(
    "--api-key",
    envvar="BUGSTER_API_KEY",
    show_envvar=True,
    help="The Bugster API key. As a flag it is visible in build logs: prefer the variable, filled from a secret.",
)
@click.option(
    "--api-key-file",
    envvar="BUGSTER_API_KEY_FILE",
    show_envvar=True,
    metavar="PATH",
    help="Read the key from this file (Docker, Kubernetes or Jenkins secret files).",
)
@click.option(
    "--api-key-secret",
    envvar="BUGSTER_API_KEY_SECRET",
    show_envvar=True,
    metavar="NAME",
    help="Read the key from Secret Manager: projects/P/secrets/S/versions/V, projects/P/secrets/S (latest), S or S@V.",
)
@click.option(
    "--gcp-project",
    envvar="GOOGLE_CLOUD_PROJECT",
    show_envvar=True,
    help="Project for short secret names. Default: Cloud Build's PROJECT_ID, then the credentials' project.",
)
@click.option(
    "--secret-manager-endpoint",
    envvar="BUGSTER_SECRET_MANAGER_ENDPOINT",
    show_envvar=True,
    metavar="URL",
    help="Secret Manager endpoint override (Private Service Connect, a local sandbox).",
)
@click.option(
    "--secret-manager-timeout",
    type=Seconds(min=1.0),
    default=30.0,
    show_default=True,
    envvar="BUGSTER_SECRET_MANAGER_TIMEOUT",
    show_envvar=True,
    help="Seconds for reading the secret, retries included (each request: at most 10).",
)
@click.option(
    "--project-id",
    envvar="BUGSTER_PROJECT_ID",
    show_envvar=True,
    help="Bugster project id. Default: project_id in .bugster/config.yaml. Never Cloud Build's PROJECT_ID.",
)
@click.option(
    "--organization-id",
    envvar="BUGSTER_ORGANIZATION_ID",
    show_envvar=True,
    help="Bugster organization id (org_...).",
)
@click.option(
    "--environment-url",
    type=HttpUrl(),
    envvar="BUGSTER_ENVIRONMENT_URL",
    show_envvar=True,
    help="Where the deployment is live; required for --state success.",
)
@click.option(
    "--environment",
    envvar="BUGSTER_ENVIRONMENT",
    show_envvar=True,
    help="Optional environment name, e.g. staging or preview.",
)
@click.option(
    "--state",
    type=click.Choice(STATES),
    default="success",
    show_default=True,
    envvar="BUGSTER_DEPLOYMENT_STATE",
    show_envvar=True,
    help="Deployment state; Bugster runs tests only for success.",
)
@click.option(
    "--commit-sha",
    envvar="BUGSTER_COMMIT_SHA",
    show_envvar=True,
    help="The deployed commit (full SHA). Default: from the CI, then git.",
)
@click.option(
    "--branch",
    envvar="BUGSTER_BRANCH",
    show_envvar=True,
    help="The deployed branch. Default: from the CI, then git.",
)
@click.option(
    "--ref",
    type=click.Choice(REFS),
    default="auto",
    show_default=True,
    envvar="BUGSTER_REF",
    show_envvar=True,
    help="What to send: auto means the commit when a full SHA is known, else the branch.",
)
@click.option(
    "--api-url",
    type=HttpUrl(),
    default=DEFAULT_API_URL,
    show_default=True,
    envvar="BUGSTER_API_URL",
    show_envvar=True,
    help="Bugster API base URL.",
)
@click.option(
    "--request-timeout",
    type=Seconds(min=0.1),
    default=10.0,
    show_default=True,
    envvar="BUGSTER_REQUEST_TIMEOUT",
    show_envvar=True,
    help="Seconds per webhook request.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=1, max=20),
    default=5,
    show_default=True,
    help="Webhook tries at most, the first included.",
)
@click.option(
    "--retry-max-time",
    type=Seconds(min=0.0),
    default=60.0,
    show_default=True,
    help="Seconds all webhook tries and waits may take together.",
)
@click.option(
    "--retry-wait",
    type=Seconds(min=0.0),
    default=1.0,
    show_default=True,
    help="Seconds before the first webhook retry; doubles each time, with jitter.",
)
@click.option(
    "--fail-on-skip",
    is_flag=True,
    help="Exit 5 when Bugster skips the event (no .bugster/ folder in the commit).",
)
@click.option(
    "--ci",
    type=click.Choice((*CI_NAMES, "none")),
    envvar="BUGSTER_CI",
    show_envvar=True,
    help="Use this CI's variables instead of detecting; none: flags and git only.",
)
@click.option(
    "--output",
    "output_path",
    envvar="BUGSTER_OUTPUT",
    show_envvar=True,
    metavar="FILE",
    help="Write the result (state, commit or branch, CI, HTTP status, Bugster's message, attempts, durations) to FILE, also when the run fails. Never the key.",
)
@click.option(
    "--output-format",
    type=click.Choice(FORMATS),
    default="json",
    show_default=True,
    envvar="BUGSTER_OUTPUT_FORMAT",
    show_envvar=True,
    help="json, or dotenv (BUGSTER_RESULT_*=value lines, for GitLab's artifacts:reports:dotenv). With GITHUB_OUTPUT set, the same facts are also appended as step outputs.",
)
@click.option(
    "--soft-fail",
    is_flag=True,
    envvar="BUGSTER_SOFT_FAIL",
    show_envvar=True,
    help="Exit 0 with a loud warning when the deployment is not ready (3) or the event is not delivered (6); configuration problems still fail.",
)
@click.option(
    "--retry-ambiguous",
    is_flag=True,
    help="Also retry a 500 and a lost answer after the request was sent (Bugster may then see the event twice, with the same Idempotency-Key).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Resolve and check everything, the key too; print the request with the key masked; send nothing, no probe.",
)
@probe_options
@output_options
@click.pass_context
def notify(ctx: click.Context, **params) -> None:
    """Wait for the deployment, then notify Bugster (the main job).

    Settings come from flags, then their environment variables, then the CI,
    then defaults. For --state success the URL must pass the readiness probe
    before anything is sent.

    \b
    Examples:
      # Cloud Build, with automapSubstitutions and the key from secretEnv:
      bugster-step notify --environment-url https://my-app-abc-uc.a.run.app
      # The key from Secret Manager, read with the build's service account:
      bugster-step notify --api-key-secret bugster-api-key --environment-url "$URL"
      # Report a deployment that is starting or failed (no probe):
      bugster-step notify --state in_progress
      # See what would be sent:
      bugster-step notify --dry-run --environment-url "$URL"
    """
    setup_logging(ctx)
    from bugster_step.notify import NotifyOptions, Result, run
    from bugster_step.webhook import RetryPolicy

    opts = NotifyOptions(
        key_sources=_key_sources(ctx, params),
        project_id=_found(ctx, params, "project_id"),
        organization_id=_found(ctx, params, "organization_id"),
        environment_url=_found(ctx, params, "environment_url"),
        environment=_found(ctx, params, "environment"),
        state=params["state"],
        commit_sha=_found(ctx, params, "commit_sha"),
        branch=_found(ctx, params, "branch"),
        ref=params["ref"],
        api_url=params["api_url"],
        gcp_project=params["gcp_project"],
        secret_manager_endpoint=params["secret_manager_endpoint"],
        request_timeout=params["request_timeout"],
        retry=RetryPolicy(
            max_tries=params["retries"],
            max_time=params["retry_max_time"],
            initial_wait=params["retry_wait"],
            retry_ambiguous=params["retry_ambiguous"],
        ),
        probe=build_probe_options(params),
        dry_run=params["dry_run"],
        fail_on_skip=params["fail_on_skip"],
        ci=params["ci"],
    )
    result = Result()

    def report() -> None:
        publish(result.facts(), path=params["output_path"], fmt=params["output_format"])

    try:
        run(
            opts,
            os.environ,
            fetch_secret=_secret_fetcher(opts, params["secret_manager_timeout"]),
            echo=_echo_result,
            result=result,
        )
    except (NotReadyError, UndeliveredError) as exc:
        result.exit_status, result.error = exc.exit_status, exc.message
        if not params["soft_fail"]:
            report()
            raise
        log.warning(
            SOFT_FAIL_WARNING.format(exit=int(exc.exit_status), message=exc.message)
        )
        result.soft_failed, result.exit_status = True, ExitStatus.DELIVERED
    except StepError as exc:
        result.exit_status, result.error = exc.exit_status, exc.message
        report()
        raise
    except Interrupted as stop:
        stop.message = _where_stopped(result)
        result.exit_status, result.error = stop.exit_status, stop.message
        report()
        raise
    report()


@cli.command(context_settings=CONTEXT)
@click.argument("url", type=HttpUrl(), envvar="BUGSTER_ENVIRONMENT_URL")
@probe_options
@output_options
@click.pass_context
def probe(ctx: click.Context, url: str, **params) -> None:
    """Wait until URL is ready; exit 0 when it is, 3 when the deadline passes.

    The same readiness probe notify runs, on its own: useful to gate other steps.
    URL defaults to BUGSTER_ENVIRONMENT_URL.

    \b
    Examples:
      bugster-step probe https://preview.example.com
      bugster-step probe "$URL" --expect-text '"status":"ok"' --timeout 600
      bugster-step probe "$URL" --header "x-vercel-protection-bypass: $SECRET"
    """
    setup_logging(ctx)
    redact.register_url_credentials(url)
    from bugster_step.probe import Probe

    result = Probe(build_probe_options(params, url)).wait_until_ready()
    _echo_result(
        f"ready: {url} ({len(result.attempts)} attempts, {result.elapsed:.1f}s)"
    )


@cli.command("help", context_settings=CONTEXT)
@click.argument("command", required=False)
@click.pass_context
def help_command(ctx: click.Context, command: str | None) -> None:
    """Show help for bugster-step or one of its commands."""
    parent = ctx.parent or ctx
    if not command:
        click.echo(parent.get_help())
        return
    target = cli.get_command(parent, command)
    if target is None:
        raise click.UsageError(f"no such command: {command}", ctx=parent)
    with click.Context(target, info_name=command, parent=parent) as sub:
        click.echo(target.get_help(sub))


# --- helpers ----------------------------------------------------------------


def setup_logging(ctx: click.Context) -> None:
    flags = ctx.find_root().ensure_object(dict)
    flags.update(ctx.ensure_object(dict))
    level = logging.INFO
    if flags.get("verbose") or flags.get("debug"):
        level = logging.DEBUG
    if flags.get("quiet"):
        level = logging.WARNING
    logmod.setup(level)


def _origin(ctx: click.Context, name: str) -> str:
    option = next(p for p in ctx.command.params if p.name == name)
    source = ctx.get_parameter_source(name)
    if source == ParameterSource.ENVIRONMENT and option.envvar:
        return str(option.envvar)
    return option.opts[0]


def _text(ctx: click.Context, name: str, value: str) -> str:
    """``value`` if it is valid text; a variable with non-UTF-8 bytes is refused."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{_origin(ctx, name)} is not valid UTF-8 text") from None
    return value


def _found(ctx: click.Context, params: dict, name: str) -> Found | None:
    value = params.get(name)
    if value is None:
        return None
    return Found(_text(ctx, name, str(value)), _origin(ctx, name))


def _key_sources(ctx: click.Context, params: dict) -> list[KeySource]:
    from bugster_step.apikey import KeySource

    sources = []
    for name, kind in (
        ("api_key", "value"),
        ("api_key_file", "file"),
        ("api_key_secret", "secret"),
    ):
        if params.get(name) is not None:
            _text(ctx, name, params[name])
            if kind == "value":
                redact.register(params[name])
            sources.append(KeySource(kind, params[name], _origin(ctx, name)))
    return sources


def _secret_fetcher(opts: NotifyOptions, secret_manager_timeout: float = 30.0):
    def fetch(name):
        from bugster_step import secretmanager

        config = secretmanager.config_from(
            os.environ,
            gcp_project=opts.gcp_project,
            endpoint=opts.secret_manager_endpoint,
            deadline=secret_manager_timeout,
            timeout=min(10.0, secret_manager_timeout),
        )
        return secretmanager.fetch(name, config)

    return fetch


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signal_handlers():
    """SIGINT and SIGTERM end the run from a handler, so the job can say where it
    was stopped; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, _raise_interrupted)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and turn every outcome into one message and an exit status."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with _signal_handlers():
            cli.main(args=argv, prog_name="bugster-step", standalone_mode=False)
    except Interrupted as stop:
        _error(stop.message)
        sys.exit(stop.exit_status)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        _error("interrupted")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        # Run with nothing to do (the image's default command): help, not an error.
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(ExitStatus.USAGE)
    except click.ClickException as exc:
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        _error(redact.redact(exc.format_message()))
        sys.exit(ExitStatus.USAGE)
    except StepError as exc:
        _error(exc.message, exc.hint)
        sys.exit(exc.exit_status)
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug:
            click.echo(redact.redact(traceback.format_exc()), err=True)
        _error(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in bugster-step; run again with --debug and report the traceback",
        )
        sys.exit(ExitStatus.INTERNAL_ERROR)
    sys.exit(ExitStatus.DELIVERED)


def _echo_result(text: str) -> None:
    """Print a result line; a closed or full stdout must not fail a delivered run."""
    try:
        click.echo(text)
    except OSError as exc:
        log.warning("could not print the result to stdout: %s", exc.strerror or exc)
        # Point stdout at /dev/null so the interpreter's final flush cannot fail too.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def _where_stopped(result: Result) -> str:
    webhook = result.webhook
    if webhook is not None and webhook.in_flight:
        return (
            "interrupted during the POST to Bugster: the request was abandoned and "
            "its outcome is unknown (check Bugster before running the step again)"
        )
    if result.delivery is not None:
        return "interrupted after the event was delivered"
    if webhook is not None and webhook.attempts:
        return (
            f"interrupted while waiting to retry, after {webhook.attempts} POST"
            f"{'s' if webhook.attempts != 1 else ''} to Bugster: the outcome is unknown "
            "(check Bugster before running the step again)"
        )
    return "interrupted before anything was sent to Bugster"


def _error(message: str, hint: str | None = None) -> None:
    click.echo(redact.redact(f"bugster-step: error: {message}"), err=True)
    if hint:
        click.echo(redact.redact(f"bugster-step: hint: {hint}"), err=True)


if __name__ == "__main__":
    main()
