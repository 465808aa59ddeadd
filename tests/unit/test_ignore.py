"""`.skyrunignore`: gitignore patterns decide which project files reach an image."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyrun.deploy.ignore import IgnoreFileError, load_ignore, project_files


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_no_ignore_file_ignores_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a.py", ".git/config", "sub/b.pyc"])
    assert not load_ignore(tmp_path)("sub/b.pyc")
    assert project_files(tmp_path) == [Path(".git/config"), Path("a.py"), Path("sub/b.pyc")]


def test_patterns(tmp_path: Path) -> None:
    (tmp_path / ".skyrunignore").write_text(
        "# build output\n\nbuild/\n*.pyc\n!keep.pyc\n**/secrets\n/top.txt\ndocs/*.md\n"
    )
    ignored = load_ignore(tmp_path)
    expected = {
        "build/": True,
        "build/out.bin": True,
        "src/build/out.bin": True,
        "build": False,  # `dir/` matches directories only
        "a.pyc": True,
        "pkg/deep/a.pyc": True,
        "keep.pyc": False,
        "pkg/keep.pyc": False,
        "secrets": True,
        "a/b/secrets": True,
        "a/b/secrets/key": True,
        "top.txt": True,
        "sub/top.txt": False,
        "docs/readme.md": True,
        "docs/api/readme.md": False,
        "# build output": False,
        "main.py": False,
    }
    assert {path: ignored(path) for path in expected} == expected


def test_negation_cannot_reach_inside_an_ignored_directory(tmp_path: Path) -> None:
    # As in git: `build/` stops the walk, so `!build/keep.txt` has nothing to re-include;
    # `out/*` ignores only the entries, so `!out/keep.txt` does bring that file back.
    (tmp_path / ".skyrunignore").write_text("build/\n!build/keep.txt\nout/*\n!out/keep.txt\n")
    make_tree(tmp_path, ["build/keep.txt", "build/x.txt", "out/keep.txt", "out/x.txt", "m.py"])
    ignored = load_ignore(tmp_path)
    assert ignored("build/keep.txt")
    assert not ignored("out/keep.txt")
    assert project_files(tmp_path) == [Path(".skyrunignore"), Path("m.py"), Path("out/keep.txt")]


def test_project_files_skips_ignored_directories_and_keeps_links(tmp_path: Path) -> None:
    (tmp_path / ".skyrunignore").write_text(".venv/\n__pycache__/\n*.log\n")
    make_tree(
        tmp_path,
        [
            "flows.py",
            "pkg/__init__.py",
            "pkg/__pycache__/x.cpython-311.pyc",
            ".venv/lib/site.py",
            "run.log",
            "pkg/data/table.csv",
        ],
    )
    (tmp_path / "pkg" / "loop").symlink_to(tmp_path)
    assert project_files(tmp_path) == [
        Path(".skyrunignore"),
        Path("flows.py"),
        Path("pkg/__init__.py"),
        Path("pkg/data/table.csv"),
        Path("pkg/loop"),
    ]


def test_invalid_line_names_file_and_line(tmp_path: Path) -> None:
    ignore_file = tmp_path / ".skyrunignore"
    ignore_file.write_text("*.pyc\n!\n")
    with pytest.raises(IgnoreFileError, match=r"\.skyrunignore:2: '!' is not a gitignore pattern"):
        load_ignore(tmp_path)


def test_a_relative_project_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".skyrunignore").write_text("build\n")
    make_tree(tmp_path, ["build/x.txt", "sub/build", "sub/keep.py"])
    monkeypatch.chdir(tmp_path)
    # `build` without a slash is a file or a directory, anywhere.
    assert project_files(Path(".")) == [Path(".skyrunignore"), Path("sub/keep.py")]
