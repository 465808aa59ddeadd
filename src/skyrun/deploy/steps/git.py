"""git_clone: a repository's code where the steps run, cloned once and updated after.

A worker runs the pull steps of every flow run in the same place, so a target that is
already a clone of the repository is fetched and checked out again rather than refused.
An access token goes into the https URL for git only: it is kept out of every message
and out of the clone's `.git/config` (the remote is reset to the URL without it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from skyrun.deploy.steps.errors import StepError

MASK = "****"

# Hosts that want a fixed user name beside a token (GitHub takes the token alone).
_TOKEN_USERS = {"gitlab": "oauth2", "bitbucket": "x-token-auth"}


class _Git:
    """Runs git with the token masked in anything it says."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [secret for secret in secrets if secret]
        # Never wait on a terminal prompt for a password: a worker has nobody to answer.
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def run(self, *arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["git", "-c", "advice.detachedHead=false", *arguments],
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError as exc:
            raise StepError("git is not installed here; install git where the steps run") from exc

    def check(self, *arguments: str, cwd: Path | None = None, doing: str) -> str:
        result = self.run(*arguments, cwd=cwd)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            detail = lines[-1].strip() if lines else f"exit code {result.returncode}"
            raise StepError(self.mask(f"{doing} failed: {detail}"))
        return result.stdout.strip()


def _is_local(repository: str) -> bool:
    return "://" not in repository and Path(repository).expanduser().exists()


def _clean_url(repository: str) -> str:
    """The repository as git should see it: local paths absolute."""
    if _is_local(repository):
        return str(Path(repository).expanduser().resolve())
    return repository


def _authenticated_url(url: str, access_token: str | None) -> str:
    if not access_token:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise StepError(
            f"an access token works only with an https:// repository URL, not {url!r}; "
            "use the https URL or drop `access_token:`"
        )
    host = parts.hostname or ""
    user = next((name for key, name in _TOKEN_USERS.items() if key in host), None)
    if ":" in access_token:  # given as user:token
        name, _, secret = access_token.partition(":")
        credentials = f"{quote(name, safe='')}:{quote(secret, safe='')}"
    elif user is not None:
        credentials = f"{user}:{quote(access_token, safe='')}"
    else:
        credentials = quote(access_token, safe="")
    netloc = f"{credentials}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _secrets(access_token: str | None) -> list[str]:
    """What of the token must never be shown: the whole, the secret part, and quoted forms."""
    if not access_token:
        return []
    secret = access_token.partition(":")[2] if ":" in access_token else access_token
    found = {access_token, secret, quote(access_token, safe=""), quote(secret, safe="")}
    # Longest first, so a whole token is masked before a part of it.
    return sorted((value for value in found if value), key=len, reverse=True)


def _default_directory(url: str) -> Path:
    name = url.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]
    name = name.removesuffix(".git")
    if not name:
        raise StepError(f"cannot tell a directory name from {url!r}; give `directory:`")
    return Path.cwd() / name


def _without_credentials(url: str) -> str:
    """`url` without a user or token in it (a clone made by a tool that put them there)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url


def _same_repository(origin: str, url: str) -> bool:
    def normal(value: str) -> str:
        if "://" not in value and Path(value).exists():
            return str(Path(value).resolve())
        return _without_credentials(value).rstrip("/").removesuffix(".git")

    return normal(origin) == normal(url)


def _update(
    git: _Git, target: Path, url: str, fetch_url: str, branch: str | None, commit: str | None
) -> None:
    origin = git.run("remote", "get-url", "origin", cwd=target).stdout.strip()
    if not _same_repository(origin, url):
        raise StepError(
            f"{str(target)!r} is a clone of {_without_credentials(origin) or 'another repository'}, not of "
            f"{git.mask(url)!r}; remove it or give another `directory:`"
        )
    if origin != url:  # same repository; keep no token at rest in .git/config
        git.check("remote", "set-url", "origin", url, cwd=target, doing="git remote set-url")
    changed = git.check(
        "status", "--porcelain", "--untracked-files=no", cwd=target, doing="git status"
    )
    if changed:
        raise StepError(
            f"{str(target)!r} has local changes to tracked files ({changed.splitlines()[0].strip()}"
            "...); commit or discard them, or give another `directory:`"
        )
    if commit is not None:
        present = git.run("cat-file", "-e", f"{commit}^{{commit}}", cwd=target).returncode == 0
        if not present:
            # Every branch, whole: the commit may be on any of them, below a shallow tip.
            shallow = (target / ".git" / "shallow").exists()
            extra = ["--unshallow"] if shallow else []
            git.check(
                "fetch",
                *extra,
                "--tags",
                fetch_url,
                "+refs/heads/*:refs/remotes/origin/*",
                cwd=target,
                doing=f"git fetch of {git.mask(url)}",
            )
        git.check(
            "checkout",
            "--force",
            "--detach",
            commit,
            cwd=target,
            doing=f"git checkout of commit {commit}",
        )
        return
    git.check(
        "fetch",
        "--depth",
        "1",
        fetch_url,
        branch or "HEAD",
        cwd=target,
        doing=f"git fetch of {git.mask(url)}" + (f" branch {branch}" if branch else ""),
    )
    git.check("checkout", "--force", "--detach", "FETCH_HEAD", cwd=target, doing="git checkout")


def _clone(
    git: _Git,
    target: Path,
    url: str,
    fetch_url: str,
    local: bool,
    branch: str | None,
    commit: str | None,
) -> None:
    arguments = ["clone", "--quiet"]
    # A local clone ignores --depth (it links objects instead, which is faster anyway).
    if commit is None and not local:
        arguments += ["--depth", "1"]
    if branch is not None:
        arguments += ["--branch", branch]
    git.check(*arguments, fetch_url, str(target), doing=f"git clone of {git.mask(url)}")
    if fetch_url != url:
        git.check("remote", "set-url", "origin", url, cwd=target, doing="git remote set-url")
    if commit is not None:
        git.check(
            "checkout",
            "--force",
            "--detach",
            commit,
            cwd=target,
            doing=f"git checkout of commit {commit}",
        )


def git_clone(
    repository: str,
    branch: str | None = None,
    commit: str | None = None,
    access_token: str | None = None,
    directory: str | None = None,
) -> dict[str, Any]:
    """Clone `repository` (or update an earlier clone of it) and check out what is asked.

    Args:
        repository: An https/ssh/file:// URL or a local path.
        branch: The branch to check out; default the repository's default branch.
        commit: A commit to check out (the clone is then complete, not shallow).
        access_token: A token for an https URL, or `user:token`.
        directory: Where the clone goes; default the repository's name in the current
            directory.

    Returns:
        {"directory": the clone's absolute path}.

    Raises:
        StepError: git failed (its last error line, token masked), or the directory is in
            the way (not that repository's clone, or one with local changes).
    """
    url = _clean_url(repository)
    fetch_url = _authenticated_url(url, access_token)
    git = _Git(_secrets(access_token))
    target = (Path(directory).expanduser() if directory else _default_directory(url)).absolute()
    if (target / ".git").exists():
        _update(git, target, url, fetch_url, branch, commit)
    elif target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StepError(
            f"{str(target)!r} exists and is not a git clone; remove it or give another `directory:`"
        )
    else:
        _clone(git, target, url, fetch_url, _is_local(repository), branch, commit)
    return {"directory": str(target)}
