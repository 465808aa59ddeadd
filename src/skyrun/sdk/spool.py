"""Run records a process could not send, kept on disk until a later process sends them.

When the recorder gives up (the API did not answer within
SKYRUN_RECORDER_FLUSH_TIMEOUT), it appends its unsent batches to this
process's spool file, `$SKYRUN_HOME/spool/<pid>-<random>.jsonl` (mode 0600):
one JSON object per line with the API URL the batch was meant for, its
idempotency key and its body. The next recorder that starts against that API
sends the lines meant for it, in order and under their own keys (so a batch
that did arrive before, its reply lost, is not recorded twice), and deletes
the file; a file sent in part keeps what is left, lines for other APIs
included.

A file is locked (`flock`) while it is written or sent, so two processes never
send one file at once and a writer never appends to a file being replaced.
(POSIX only, like the process worker.)
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

SPOOL_DIR = "spool"
SUFFIX = ".jsonl"


class SpooledBatch(NamedTuple):
    """One batch as the spool keeps it."""

    api_url: str
    key: str
    body: dict[str, Any]

    def line(self) -> str:
        # ASCII JSON: a lone surrogate in a message is written as an escape,
        # never fails the write (the client replaces it when it sends).
        return json.dumps({"api_url": self.api_url, "key": self.key, "body": self.body}) + "\n"


def spool_dir(home: Path) -> Path:
    return home / SPOOL_DIR


_own_file: tuple[int, Path] | None = None


def own_file(home: Path) -> Path:
    """This process's spool file (named once per process: a fork gets its own)."""
    global _own_file
    if _own_file is None or _own_file[0] != os.getpid() or _own_file[1].parent != spool_dir(home):
        name = f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        _own_file = (os.getpid(), spool_dir(home) / name)
    return _own_file[1]


@contextmanager
def _locked(path: Path, flags: int, *, wait: bool) -> Iterator[int | None]:
    """An fd of `path` under an exclusive lock, or None when it is gone or (not `wait`) busy.

    The lock is taken on the file the path names *after* locking: a file
    replaced or deleted while we waited for its lock is not the one to use.
    """
    while True:
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield None
            return
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino == os.fstat(fd).st_ino:
            try:
                yield fd
            finally:
                os.close(fd)  # releases the lock
            return
        os.close(fd)
        if not flags & os.O_CREAT:
            yield None
            return


def append(home: Path, batches: Iterable[SpooledBatch]) -> Path:
    """Add batches to this process's spool file; returns its path.

    Raises:
        OSError: the file could not be written (the batches are not saved).
    """
    path = own_file(home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, wait=True) as fd:
        assert fd is not None  # created if missing, and waited for
        _write_all(fd, "".join(batch.line() for batch in batches).encode())
    return path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def spool_files(home: Path) -> list[Path]:
    """The spool files under `home`, oldest first (none when there is no spool directory)."""
    try:
        entries = list(os.scandir(spool_dir(home)))
    except FileNotFoundError:
        return []
    files = []
    for entry in entries:
        if entry.name.endswith(SUFFIX):
            try:
                files.append((entry.stat().st_mtime, entry.name, Path(entry.path)))
            except FileNotFoundError:
                continue  # sent and deleted by another process meanwhile
    return [path for _, _, path in sorted(files)]


def send_spooled(
    home: Path,
    api_url: str,
    send: Callable[[str, dict[str, Any]], None],
    warn: Callable[[str], None],
) -> int:
    """Send every spooled batch meant for `api_url`, file by file, oldest first.

    With no spool directory (nearly always) this costs one failed `scandir`.

    Args:
        send: sends one batch body under its key; raises when it was not sent.
        warn: says something went wrong with a file (one line).

    Returns:
        How many batches were sent.

    Raises:
        The first error of `send`: the batch it failed on, and every later one,
        stay in the spool.
    """
    sent = 0
    for path in spool_files(home):
        sent += _send_file(path, api_url, send, warn)
    return sent


def _send_file(
    path: Path,
    api_url: str,
    send: Callable[[str, dict[str, Any]], None],
    warn: Callable[[str], None],
) -> int:
    with _locked(path, os.O_RDWR, wait=False) as fd:
        if fd is None:
            return 0  # gone, or another process is sending or writing it
        with os.fdopen(os.dup(fd), "rb") as file:
            lines = file.read().splitlines()
        keep: list[str] = []
        sent = 0
        failure: BaseException | None = None
        for number, raw in enumerate(lines, 1):
            try:
                item = json.loads(raw)
                batch = SpooledBatch(str(item["api_url"]), str(item["key"]), dict(item["body"]))
            except (ValueError, KeyError, TypeError):
                # A line cut short (the writer died mid-write) cannot be sent.
                warn(f"{path}:{number} is not a spooled batch; it is dropped")
                continue
            if failure is not None or batch.api_url != api_url:
                keep.append(batch.line())
                continue
            try:
                send(batch.key, batch.body)
            except Exception as exc:
                failure = exc
                keep.append(batch.line())
                continue
            sent += 1
        if not keep:
            path.unlink()
        elif len(keep) != len(lines):
            _replace(path, keep)
    if failure is not None:
        raise failure
    return sent


def _replace(path: Path, lines: list[str]) -> None:
    # Written beside it and renamed over it: a reader sees the old file or the new one.
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, "".join(lines).encode())
    finally:
        os.close(fd)
    os.replace(partial, path)
