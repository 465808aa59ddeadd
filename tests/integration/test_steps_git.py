"""git_clone against real git repositories: local paths, file:// URLs and smart HTTP with a token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from git_server import git_http_server
from skyrun.deploy.steps import StepError, run_steps
from skyrun.deploy.steps.git import git_clone

TOKEN = "s3cr%t-t0ken"  # a % so the URL-quoted form must be masked too


def git(*arguments: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def commit_file(repository: Path, name: str, text: str) -> str:
    (repository / name).write_text(text)
    git("add", name, cwd=repository)
    git("commit", "-q", "-m", f"{name}: {text}", cwd=repository)
    return git("rev-parse", "HEAD", cwd=repository)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository `app` with two commits on main and a branch `feature`."""
    repository = tmp_path / "remote" / "app"
    repository.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repository)
    commit_file(repository, "flow.py", "v1")
    commit_file(repository, "flow.py", "v2")
    git("checkout", "-q", "-b", "feature", cwd=repository)
    commit_file(repository, "extra.py", "feature")
    git("checkout", "-q", "main", cwd=repository)
    return repository


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def test_a_local_path_clones_into_the_repository_name(origin: Path, work: Path) -> None:
    outputs = git_clone(str(origin))
    assert outputs == {"directory": str(work / "app")}
    assert (work / "app" / "flow.py").read_text() == "v2"
    assert not (work / "app" / "extra.py").exists()


def test_a_file_url_clone_is_shallow_and_takes_a_branch(origin: Path, work: Path) -> None:
    outputs = git_clone(f"file://{origin}", branch="feature", directory="code")
    clone = Path(outputs["directory"])
    assert clone == work / "code"
    assert (clone / "extra.py").read_text() == "feature"
    assert git("rev-parse", "--is-shallow-repository", cwd=clone) == "true"


def test_a_commit_is_checked_out(origin: Path, work: Path) -> None:
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=origin)
    clone = Path(git_clone(f"file://{origin}", commit=first)["directory"])
    assert (clone / "flow.py").read_text() == "v1"
    assert git("rev-parse", "HEAD", cwd=clone) == first


def test_running_again_updates_the_clone_in_place(origin: Path, work: Path) -> None:
    steps = [{"git_clone": {"id": "code", "repository": f"file://{origin}/"}}]
    assert run_steps(steps) == [{"directory": str(work / "app")}]
    newest = commit_file(origin, "flow.py", "v3")
    (work / "app" / "untracked.log").write_text("kept")
    assert run_steps(steps) == [{"directory": str(work / "app")}]
    assert (work / "app" / "flow.py").read_text() == "v3"
    assert git("rev-parse", "HEAD", cwd=work / "app") == newest
    assert (work / "app" / "untracked.log").read_text() == "kept"


def test_a_commit_missing_from_a_shallow_clone_is_fetched(origin: Path, work: Path) -> None:
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=origin)
    git_clone(f"file://{origin}")
    clone = work / "app"
    # A commit on another branch than the one cloned, then one below the shallow tip.
    on_feature = git("rev-parse", "feature", cwd=origin)
    git_clone(f"file://{origin}", commit=on_feature)
    assert git("rev-parse", "HEAD", cwd=clone) == on_feature
    git_clone(f"file://{origin}", commit=first)
    assert git("rev-parse", "HEAD", cwd=clone) == first
    git_clone(f"file://{origin}", branch="feature")
    assert (clone / "extra.py").read_text() == "feature"


def test_an_empty_directory_is_cloned_into(origin: Path, work: Path) -> None:
    (work / "app").mkdir()
    git_clone(str(origin))
    assert (work / "app" / "flow.py").read_text() == "v2"


@pytest.mark.parametrize(
    ("prepare", "fragment"),
    [
        ("file", "exists and is not a git clone; remove it or give another `directory:`"),
        ("other", "is a clone of "),
        ("changed", "has local changes to tracked files (M flow.py...)"),
    ],
)
def test_a_directory_in_the_way_is_explained(
    origin: Path, work: Path, tmp_path: Path, prepare: str, fragment: str
) -> None:
    target = work / "app"
    if prepare == "file":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif prepare == "other":
        other = tmp_path / "other"
        other.mkdir()
        git("init", "-q", "-b", "main", cwd=other)
        commit_file(other, "x.py", "x")
        git("clone", "-q", str(other), str(target), cwd=work)
    else:
        git_clone(str(origin))
        (target / "flow.py").write_text("edited")
    with pytest.raises(StepError) as info:
        git_clone(str(origin))
    assert fragment in str(info.value)
    if prepare == "changed":
        assert (target / "flow.py").read_text() == "edited"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"branch": "nope"}, "Remote branch nope not found"),
        ({"commit": "0" * 40}, f"git checkout of commit {'0' * 40} failed"),
    ],
)
def test_a_missing_branch_or_commit_is_named(
    origin: Path, work: Path, arguments: dict[str, str], fragment: str
) -> None:
    with pytest.raises(StepError, match=fragment):
        git_clone(f"file://{origin}", **arguments)


def test_a_missing_repository_is_named(work: Path) -> None:
    with pytest.raises(StepError) as info:
        run_steps([{"git_clone": {"repository": "file:///no/such/repo.git"}}])
    message = str(info.value)
    assert message.startswith(
        "pull step 1 (git_clone): git clone of file:///no/such/repo.git failed: "
    )


def test_a_token_needs_an_https_url(origin: Path, work: Path) -> None:
    with pytest.raises(
        StepError, match=r"an access token works only with an https:// repository URL"
    ):
        git_clone(str(origin), access_token=TOKEN)


@pytest.mark.parametrize(
    ("user", "access_token"),
    [("deploy", f"deploy:{TOKEN}"), (TOKEN, TOKEN)],
    ids=["user-and-token", "token-alone"],
)
def test_a_token_authenticates_over_http_and_is_not_kept(
    origin: Path, work: Path, user: str, access_token: str
) -> None:
    bare = origin.parent / "app.git"
    git("clone", "-q", "--bare", str(origin), str(bare), cwd=origin.parent)
    password = "" if user == TOKEN else TOKEN
    with git_http_server(origin.parent, user, password) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/app.git"
        clone = Path(git_clone(url, access_token=access_token)["directory"])
        assert (clone / "flow.py").read_text() == "v2"
        config = (clone / ".git" / "config").read_text()
        assert TOKEN not in config and "s3cr" not in config
        assert git("remote", "get-url", "origin", cwd=clone) == url
        commit_file(bare.parent / "app", "flow.py", "v3")
        git("push", "-q", str(bare), "main", cwd=bare.parent / "app")
        git_clone(url, access_token=access_token)  # the update authenticates too
        assert (clone / "flow.py").read_text() == "v3"


@pytest.mark.parametrize("access_token", [None, "wrong:" + TOKEN + "x"])
def test_a_refused_clone_fails_without_prompting_or_showing_the_token(
    origin: Path, work: Path, access_token: str | None
) -> None:
    bare = origin.parent / "app.git"
    git("clone", "-q", "--bare", str(origin), str(bare), cwd=origin.parent)
    with git_http_server(origin.parent, "deploy", TOKEN) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/app.git"
        with pytest.raises(StepError) as info:
            git_clone(url, access_token=access_token)
        assert server.refused >= 1
    message = str(info.value)
    assert message.startswith(f"git clone of {url} failed: ")
    assert "s3cr" not in message


def test_an_unreachable_https_host_does_not_show_the_token(work: Path) -> None:
    with pytest.raises(StepError) as info:
        git_clone("https://127.0.0.1:9/app.git", access_token=TOKEN)
    message = str(info.value)
    assert message.startswith("git clone of https://127.0.0.1:9/app.git failed: ")
    assert "s3cr" not in message


def test_a_clone_with_the_token_in_its_config_is_taken_over_and_masked(
    origin: Path, work: Path, tmp_path: Path
) -> None:
    bare = origin.parent / "app.git"
    git("clone", "-q", "--bare", str(origin), str(bare), cwd=origin.parent)
    git("clone", "-q", "--bare", str(origin), str(origin.parent / "other.git"), cwd=origin.parent)
    with git_http_server(origin.parent, "deploy", TOKEN) as server:
        port = server.server_address[1]
        url = f"http://127.0.0.1:{port}/app.git"
        # As another tool leaves it: the token in the remote's URL.
        git(
            "clone",
            "-q",
            f"http://deploy:{TOKEN.replace('%', '%25')}@127.0.0.1:{port}/other.git",
            "other",
            cwd=work,
        )
        with pytest.raises(StepError) as info:
            git_clone(url, access_token=f"deploy:{TOKEN}", directory="other")
        assert f"is a clone of http://127.0.0.1:{port}/other.git, not of '{url}'" in str(info.value)
        assert "s3cr" not in str(info.value)
        git(
            "clone",
            "-q",
            f"http://deploy:{TOKEN.replace('%', '%25')}@127.0.0.1:{port}/app.git",
            "app",
            cwd=work,
        )
        git_clone(url, access_token=f"deploy:{TOKEN}")
        assert git("remote", "get-url", "origin", cwd=work / "app") == url
