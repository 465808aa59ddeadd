"""`.skyrunignore`: which files of a project stay out of its image (gitignore rules).

The file holds gitignore patterns: `#` comments, blank lines, `dir/` (directories only),
`*.pyc`, `**/x`, a leading `/` anchoring a pattern to the project's root, and `!`
re-including what an earlier pattern ignored. As in git, a file inside an ignored
directory cannot be re-included: the directory is never entered. Nothing is ignored
implicitly (not even `.git` or `.venv`); `skyrun init` writes a file with the usual ones.
Matching itself is `pathspec`'s gitignore implementation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pathspec

IGNORE_FILE = ".skyrunignore"

IgnoreMatcher = Callable[[str], bool]


class IgnoreFileError(ValueError):
    """A line of `.skyrunignore` is not a valid pattern; the message names file and line."""


def _read_spec(ignore_file: Path) -> pathspec.GitIgnoreSpec:
    try:
        lines = ignore_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IgnoreFileError(f"{ignore_file}: cannot be read: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        # Compiled one by one only to say which line is wrong.
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except ValueError as exc:
            raise IgnoreFileError(
                f"{ignore_file}:{number}: {line!r} is not a gitignore pattern ({exc}); "
                "escape a trailing backslash or a lone '!' with a backslash, or remove the line"
            ) from exc
    return pathspec.GitIgnoreSpec.from_lines(lines)


def load_ignore(directory: Path) -> IgnoreMatcher:
    """The matcher of `directory/.skyrunignore` (nothing is ignored when there is none).

    Args:
        directory: The project's root; patterns are relative to it.

    Returns:
        A function of a path relative to `directory`, in posix form (`a/b.txt`; a
        directory may end with `/`), telling whether that path is ignored, either
        itself or because a directory above it is.

    Raises:
        IgnoreFileError: A line is not a valid pattern, or the file cannot be read.
    """
    ignore_file = directory / IGNORE_FILE
    if not ignore_file.is_file():
        return lambda path: False
    spec = _read_spec(ignore_file)

    def ignored(path: str) -> bool:
        parts = path.strip("/").split("/")
        # git never looks inside an ignored directory, so a `!` pattern cannot bring
        # back a file below one: check every parent directory first.
        for depth in range(1, len(parts)):
            if spec.match_file("/".join(parts[:depth]) + "/"):
                return True
        return spec.match_file(path)

    return ignored


def project_files(directory: Path) -> list[Path]:
    """Every file of the project that `.skyrunignore` keeps, sorted, relative to `directory`.

    Ignored directories are not walked. Symbolic links are listed as they are (a link to
    a directory is one entry, never followed, so a loop cannot occur).

    Raises:
        IgnoreFileError: `.skyrunignore` has an invalid line.
    """
    ignored = load_ignore(directory)
    found: list[Path] = []
    for root, dirnames, filenames in os.walk(directory):
        relative_root = Path(root).relative_to(directory).as_posix()
        prefix = "" if relative_root == "." else relative_root + "/"
        kept_dirs = []
        for name in sorted(dirnames):
            path = Path(root, name)
            if ignored(prefix + name + "/"):
                continue
            if path.is_symlink():
                found.append(Path(prefix + name))
            else:
                kept_dirs.append(name)
        dirnames[:] = kept_dirs
        found.extend(Path(prefix + name) for name in filenames if not ignored(prefix + name))
    return sorted(found)
