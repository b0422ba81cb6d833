"""The main job, without click: resolve, fetch the key, wait, post, report."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bugster_step import apikey, ci, gitinfo, redact
from bugster_step.apikey import KeySource
from bugster_step.choices import (  # noqa: F401 (the first three re-exported)
    DEFAULT_API_URL,
    PLACEHOLDER,
    REFS,
    STATES,
    UNPRINTABLE,
    url_problem,
)
from bugster_step.ci import CIInfo, Found, is_full_sha
from bugster_step.errors import ConfigError, NotReadyError, RejectedError
from bugster_step.log import log
from bugster_step.probe import Probe, ProbeOptions
from bugster_step.webhook import (
    SKIPPED_WARNING,
    Delivery,
    RetryPolicy,
    Webhook,
    delivery_key,
)

# Shown when neither the CI nor git gave a commit or a branch.
NO_REF = (
    "no commit SHA or branch found: on Cloud Build, set options.automapSubstitutions: "
    "true (or map COMMIT_SHA and BRANCH_NAME into the step's env); a manual "
    "'gcloud builds submit' has empty substitutions, so pass "
    "--substitutions=BRANCH_NAME=... or give --commit-sha or --branch"
)
# Shown when a pull request's commit may be the CI's own merge and git cannot tell.
MERGE_UNCHECKED = (
    "{origin} may be the CI's merge of the pull request into its target, and "
    "{problem}, so it is sent as is; install git where the step runs, or pass "
    "--commit-sha with the pull request's head commit"
)
# Shown before sending when the workspace has no .bugster/ folder.
NO_BUGSTER_FOLDER = (
    "no .bugster/ folder in {workspace}: Bugster skips events for commits without "
    "one; run 'bugster quickstart' and commit .bugster/ (ignore this if the "
    "workspace is not the repository)"
)

_SHORTISH_HEX = re.compile(r"^[0-9a-fA-F]{4,63}$")


@dataclass
class NotifyOptions:
    key_sources: list[KeySource]
    project_id: Found | None = None
    organization_id: Found | None = None
    environment_url: Found | None = None
    environment: Found | None = None
    state: str = "success"
    commit_sha: Found | None = None
    branch: Found | None = None
    ref: str = "auto"
    api_url: str = DEFAULT_API_URL
    gcp_project: str | None = None
    secret_manager_endpoint: str | None = None
    request_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    probe: ProbeOptions | None = None  # url filled in from environment_url
    dry_run: bool = False
    fail_on_skip: bool = False
    ci: str | None = None  # forced adapter name, or "none"
    workspace: str | None = None


@dataclass
class Plan:
    """Everything resolved and validated: what will be sent, and to where."""

    payload: dict
    ci: CIInfo | None
    workspace: str
    origins: dict[str, str]


@dataclass
class Result:
    """What happened, filled in as the run goes, so a failed run reports too."""

    state: str | None = None
    plan: Plan | None = None
    webhook: Webhook | None = None
    delivery: Delivery | None = None
    probe_attempts: int = 0
    probe_seconds: float | None = None
    dry_run: bool = False
    soft_failed: bool = False
    exit_status: int = 0
    error: str | None = None

    def facts(self) -> dict:
        """The result as plain values: what --output and GITHUB_OUTPUT carry."""
        payload = self.plan.payload if self.plan else {}
        ref = "commit_sha" if "commit_sha" in payload else "branch" if payload else None
        webhook = self.webhook
        facts = {
            "state": self.state,
            "ref": ref,
            "commit_sha": payload.get("commit_sha"),
            "branch": payload.get("branch"),
            "environment": payload.get("environment"),
            "environment_url": payload.get("environment_url"),
            "ci": self.plan.ci.name if self.plan and self.plan.ci else None,
            "build_url": self.plan.ci.build_url if self.plan and self.plan.ci else None,
            "delivered": self.delivery is not None,
            "skipped": bool(self.delivery and self.delivery.skipped),
            "http_status": webhook.last_status if webhook else None,
            "message": webhook.last_message if webhook else None,
            "attempts": webhook.attempts if webhook else 0,
            "webhook_seconds": _rounded(webhook.seconds if webhook else None),
            "probe_attempts": self.probe_attempts,
            "probe_seconds": _rounded(self.probe_seconds),
            "dry_run": self.dry_run,
            "soft_failed": self.soft_failed,
            "exit_status": int(self.exit_status),
            "error": self.error,
        }
        return facts


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def check_id(found: Found | None, flag: str, env: str) -> str:
    if found is None:
        raise ConfigError(f"missing {flag} (or {env})")
    value = found.value.strip()
    if not value:
        raise ConfigError(f"{found.origin} is empty")
    if PLACEHOLDER.match(value):
        raise ConfigError(
            f"{found.origin} looks like an unexpanded placeholder: {value!r}",
            hint="on Cloud Build, define it under substitutions (user substitutions start with _)",
        )
    if UNPRINTABLE.search(value):
        raise ConfigError(f"{found.origin} contains whitespace or control characters")
    return value


def check_url(found: Found) -> str:
    """An http(s) URL with a host; flags are checked by click, CI values here."""
    value = found.value.strip()
    problem = url_problem(value)
    if problem:
        raise ConfigError(f"{found.origin}: {problem}")
    return value


def check_commit(found: Found) -> Found:
    value = found.value.strip()
    if is_full_sha(value):
        return Found(value.lower(), found.origin)
    if _SHORTISH_HEX.match(value):
        raise ConfigError(
            f"{found.origin}: {value!r} is a short SHA; give the full 40-character "
            "commit SHA, or --branch"
        )
    raise ConfigError(f"{found.origin}: {value!r} is not a hexadecimal commit SHA")


def check_branch(found: Found) -> Found:
    value = found.value.strip()
    if value.startswith("refs/heads/"):
        value = value[len("refs/heads/") :]
    if (
        not ci.looks_like_branch(value)
        or UNPRINTABLE.search(value)
        or value.startswith("-")
    ):
        raise ConfigError(f"{found.origin}: {value!r} is not a branch name")
    return Found(value, found.origin)


def resolve_ref(
    opts: NotifyOptions, info: CIInfo | None, workspace: str
) -> tuple[str, Found]:
    """Which of commit_sha and branch to send, and its value."""
    if opts.commit_sha and opts.branch:
        raise ConfigError(
            f"{opts.commit_sha.origin} and {opts.branch.origin} are both given; "
            "the payload carries exactly one: keep one of them"
        )
    commit = check_commit(opts.commit_sha) if opts.commit_sha else None
    branch = check_branch(opts.branch) if opts.branch else None
    git_problem = None
    if not commit and not branch:
        if info:
            commit, branch = info.commit, info.branch
            if commit and info.ci_made_merge:
                # Jenkins and Azure may hand over their own merge of the change
                # and its target; where the checkout shows it, send the change.
                change, problem = gitinfo.merged_change(workspace, commit)
                if problem and problem.startswith("git unavailable"):
                    log.warning(
                        MERGE_UNCHECKED.format(origin=commit.origin, problem=problem)
                    )
                commit = change or commit
        if not commit and not branch:
            merge = bool(info and info.ci_made_merge)
            git = gitinfo.read(workspace, ci_made_merge=merge)
            commit, branch, git_problem = git.commit, git.branch, git.problem
            if git_problem:
                log.info("git fallback: %s", git_problem)
    hint = NO_REF + (f" (git fallback: {git_problem})" if git_problem else "")
    if opts.ref == "commit" or (opts.ref == "auto" and commit):
        if not commit:
            raise ConfigError("--ref commit: no full commit SHA found", hint=hint)
        return "commit_sha", commit
    if not branch:
        if opts.ref == "branch":
            raise ConfigError("--ref branch: no branch found", hint=hint)
        raise ConfigError(hint)
    return "branch", branch


def bugster_config_project(workspace: str) -> str | None:
    """``project_id`` from the workspace's ``.bugster/config.yaml``, if any."""
    path = os.path.join(workspace, ".bugster", "config.yaml")
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                match = re.match(r"^project_id\s*:\s*['\"]?([^'\"#\s]+)", line)
                if match:
                    return match.group(1)
    except (OSError, UnicodeDecodeError):
        return None
    return None


def plan(opts: NotifyOptions, environ: Mapping[str, str]) -> Plan:
    info = ci.detect(environ, opts.ci)
    workspace = opts.workspace or (info.workspace if info else None) or os.getcwd()
    if info:
        where = f" ({info.build_url})" if info.build_url else ""
        log.info("CI: %s%s", info.name, where)
    else:
        log.info("CI: none recognised; using flags, BUGSTER_* variables and git")
    origins: dict[str, str] = {}

    project = opts.project_id
    if project is None:
        from_config = bugster_config_project(workspace)
        if from_config:
            project = Found(from_config, ".bugster/config.yaml")
    payload = {
        "project_id": check_id(project, "--project-id", "BUGSTER_PROJECT_ID"),
        "organization_id": check_id(
            opts.organization_id, "--organization-id", "BUGSTER_ORGANIZATION_ID"
        ),
    }
    origins["project_id"] = project.origin if project else ""
    origins["organization_id"] = (
        opts.organization_id.origin if opts.organization_id else ""
    )

    env_url = opts.environment_url or (info.environment_url if info else None)
    if opts.state == "success" and env_url is None:
        raise ConfigError(
            "missing --environment-url (or BUGSTER_ENVIRONMENT_URL): Bugster needs "
            "the deployed URL to test a successful deployment"
        )
    if env_url is not None:
        payload["environment_url"] = check_url(env_url)
        redact.register_url_credentials(payload["environment_url"])
        origins["environment_url"] = env_url.origin
    payload["deployment_state"] = opts.state

    field_name, ref = resolve_ref(opts, info, workspace)
    payload[field_name] = ref.value
    origins[field_name] = ref.origin

    environment = opts.environment or (info.environment if info else None)
    if environment is not None and environment.value.strip():
        payload["environment"] = environment.value.strip()
        origins["environment"] = environment.origin
    for name, origin in origins.items():
        log.info("%s = %s (from %s)", name, payload[name], origin)
    return Plan(payload, info, workspace, origins)


def describe_request(webhook: Webhook, payload: dict, key: str | None) -> str:
    """The request as text, key masked: what --dry-run prints."""
    headers = webhook.headers(payload, key)
    headers["X-API-KEY"] = redact.MASK
    lines = [f"POST {webhook.url}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["", json.dumps(payload, indent=2)]
    return redact.redact("\n".join(lines))


def run(
    opts: NotifyOptions,
    environ: Mapping[str, str],
    *,
    fetch_secret: Callable | None = None,
    echo: Callable[[str], None] = print,
    result: Result | None = None,
) -> Result:
    """The main job. ``result`` is filled in as it goes, also when it raises."""
    result = result if result is not None else Result()
    result.state, result.dry_run = opts.state, opts.dry_run
    the_plan = result.plan = plan(opts, environ)
    source = apikey.choose_source(opts.key_sources)
    key = apikey.resolve(source, fetch_secret=fetch_secret)
    log.info("API key: from %s", source.origin)
    webhook = result.webhook = Webhook(
        opts.api_url, key, opts.request_timeout, opts.retry
    )
    build_id = the_plan.ci.build_id if the_plan.ci else None
    idempotency = delivery_key(the_plan.payload, build_id)
    if not os.path.isdir(os.path.join(the_plan.workspace, ".bugster")):
        log.warning(NO_BUGSTER_FOLDER.format(workspace=the_plan.workspace))
    if opts.dry_run:
        echo(describe_request(webhook, the_plan.payload, idempotency))
        log.info("dry run: nothing sent")
        return result

    if opts.state == "success" and opts.probe is not None:
        probe_opts = opts.probe
        probe_opts.url = the_plan.payload["environment_url"]
        started = time.monotonic()
        try:
            probed = Probe(probe_opts).wait_until_ready()
        except NotReadyError as exc:
            result.probe_attempts = len(exc.attempts)
            raise
        finally:
            result.probe_seconds = time.monotonic() - started
        result.probe_attempts = len(probed.attempts)

    delivery = webhook.send(the_plan.payload, idempotency)
    result.delivery = delivery
    if delivery.skipped:
        log.warning(SKIPPED_WARNING)
        if opts.fail_on_skip:
            raise RejectedError(
                f"Bugster skipped the event: {delivery.message}",
                hint="--fail-on-skip is set; commit the .bugster/ folder and deploy again",
            )
    ref_field = "commit_sha" if "commit_sha" in the_plan.payload else "branch"
    log.info(
        "delivered %s for %s %s in %d attempt%s (HTTP %d)",
        opts.state,
        ref_field,
        the_plan.payload[ref_field],
        delivery.attempts,
        "" if delivery.attempts == 1 else "s",
        delivery.status,
    )
    echo(redact.redact(delivery.message or f"HTTP {delivery.status}"))
    return result
