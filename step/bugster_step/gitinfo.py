"""The last resort: ask git in the workspace for the commit and branch."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from bugster_step.ci import Found, is_full_sha, looks_like_branch
from bugster_step.log import log

_GIT_TIMEOUT = 10


@dataclass
class GitInfo:
    commit: Found | None = None
    branch: Found | None = None
    problem: str | None = None


def _git(workspace: str, *args: str) -> str | None:
    import subprocess  # only when git is asked; it is slow to import

    # The workspace is often owned by another uid (Jenkins, Cloud Build volumes):
    # without safe.directory git refuses with "dubious ownership".
    trusted = {workspace, os.path.realpath(workspace)}
    command = ["git"]
    for path in sorted(trusted):
        command += ["-c", f"safe.directory={path}"]
    command += ["-C", workspace, *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            command,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("git %s failed: %s", " ".join(args), exc)
        return None
    if done.returncode != 0:
        log.debug("git %s: %s", " ".join(args), done.stderr.strip())
        return None
    return done.stdout.strip()


def _head_parents(workspace: str) -> tuple[list[str], str | None]:
    """HEAD's SHA followed by its parents', or a problem saying why there are none."""
    if not os.path.exists(os.path.join(workspace, ".git")):
        return [], f"no .git in {workspace}"
    if shutil.which("git") is None:
        return [], "git unavailable: the git command is not installed"
    parents = _git(workspace, "rev-list", "--parents", "-n", "1", "HEAD")
    if parents is None:
        return (
            [],
            f"git unavailable: cannot read HEAD in {workspace} (run with -v for git's message)",
        )
    return parents.split(), None


def read(workspace: str, *, ci_made_merge: bool = False) -> GitInfo:
    """Commit from HEAD (its second parent where the CI made that merge), and the
    branch unless HEAD is detached."""
    shas, problem = _head_parents(workspace)
    if problem:
        return GitInfo(problem=problem)
    info = GitInfo()
    if ci_made_merge and len(shas) == 3:
        info.commit = Found(shas[2], "git (HEAD^2, the change the CI merged)")
    elif shas and is_full_sha(shas[0]):
        info.commit = Found(shas[0], "git (HEAD)")
    branch = _git(workspace, "symbolic-ref", "--quiet", "--short", "HEAD")
    if branch and looks_like_branch(branch):
        info.branch = Found(branch, "git (HEAD)")
    return info


def merged_change(workspace: str, commit: Found) -> tuple[Found | None, str | None]:
    """The change itself when ``commit`` is a two-parent merge the CI made and the
    checkout shows it as HEAD: its second parent. Otherwise None, with the
    reason git could not tell (None when it could, and HEAD is no such merge)."""
    shas, problem = _head_parents(workspace)
    if len(shas) == 3 and shas[0] == commit.value and is_full_sha(shas[2]):
        return Found(shas[2], f"git (HEAD^2 of the merge in {commit.origin})"), None
    return None, problem
