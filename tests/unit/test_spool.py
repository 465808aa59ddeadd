"""The spool: batches saved per process, sent in order, a file sent in part keeping the rest."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from skyrun.sdk import spool
from skyrun.sdk.spool import SpooledBatch

API = "http://a.example/api"
OTHER = "http://b.example/api"


def _batch(api_url: str, key: str) -> SpooledBatch:
    return SpooledBatch(api_url, key, {"task_runs": [], "logs": [{"message": f"from {key}"}]})


class Sender:
    """Records what it was given; refuses the keys in `fail_on` (as an API away would)."""

    def __init__(self, *fail_on: str) -> None:
        self.fail_on = set(fail_on)
        self.sent: list[str] = []

    def __call__(self, key: str, body: dict[str, Any]) -> None:
        if key in self.fail_on:
            raise ConnectionError(f"{key}: no answer")
        assert body["logs"] == [{"message": f"from {key}"}]
        self.sent.append(key)


def _keys(path: Path) -> list[tuple[str, str]]:
    return [
        (item["api_url"], item["key"]) for item in map(json.loads, path.read_text().splitlines())
    ]


def test_a_process_appends_to_its_own_private_file(tmp_path: Path) -> None:
    first = spool.append(tmp_path, [_batch(API, "k1")])
    second = spool.append(tmp_path, [_batch(API, "k2"), _batch(OTHER, "k3")])
    assert first == second == spool.own_file(tmp_path)
    assert first.parent == tmp_path / "spool" and first.name.startswith(f"{os.getpid()}-")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert _keys(first) == [(API, "k1"), (API, "k2"), (OTHER, "k3")]


def test_a_lone_surrogate_is_written_as_an_escape(tmp_path: Path) -> None:
    line = SpooledBatch(API, "k", {"logs": [{"message": "caf\udce9"}]}).line()
    assert line.isascii() and "caf\\udce9" in line
    assert json.loads(line)["body"]["logs"][0]["message"] == "caf\udce9"


def test_batches_for_this_api_are_sent_in_order_and_the_file_deleted(tmp_path: Path) -> None:
    path = spool.append(tmp_path, [_batch(API, "k1"), _batch(API, "k2")])
    send = Sender()
    assert spool.send_spooled(tmp_path, API, send, pytest.fail) == 2
    assert send.sent == ["k1", "k2"]
    assert not path.exists()
    assert spool.send_spooled(tmp_path, API, send, pytest.fail) == 0


def test_a_file_sent_in_part_keeps_what_is_left(tmp_path: Path) -> None:
    path = spool.append(
        tmp_path,
        [_batch(API, "k1"), _batch(OTHER, "k2"), _batch(API, "k3"), _batch(API, "k4")],
    )
    with pytest.raises(ConnectionError, match="k3"):
        spool.send_spooled(tmp_path, API, Sender("k3"), pytest.fail)
    # k1 went; k3 failed, so k4 (after it) waits too; the other API's batch is left alone.
    assert _keys(path) == [(OTHER, "k2"), (API, "k3"), (API, "k4")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    send = Sender()
    assert spool.send_spooled(tmp_path, API, send, pytest.fail) == 2
    assert send.sent == ["k3", "k4"]
    assert _keys(path) == [(OTHER, "k2")]
    assert spool.send_spooled(tmp_path, OTHER, Sender(), pytest.fail) == 1
    assert not path.exists()


def test_a_file_locked_by_another_sender_is_left_alone(tmp_path: Path) -> None:
    path = spool.append(tmp_path, [_batch(API, "k1")])
    with path.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert spool.send_spooled(tmp_path, API, Sender(), pytest.fail) == 0
    assert spool.send_spooled(tmp_path, API, Sender(), pytest.fail) == 1


def test_a_line_cut_short_is_dropped_with_a_warning_and_the_rest_sent(tmp_path: Path) -> None:
    path = spool.append(tmp_path, [_batch(API, "k1")])
    with path.open("a") as file:
        file.write('{"api_url": "http://a.example/api", "key": "k2", "bo')
    warnings: list[str] = []
    send = Sender()
    assert spool.send_spooled(tmp_path, API, send, warnings.append) == 1
    assert send.sent == ["k1"]
    assert warnings == [f"{path}:2 is not a spooled batch; it is dropped"]
    assert not path.exists()


def test_no_spool_directory_means_nothing_to_send(tmp_path: Path) -> None:
    assert spool.spool_files(tmp_path) == []
    assert spool.send_spooled(tmp_path, API, Sender(), pytest.fail) == 0
