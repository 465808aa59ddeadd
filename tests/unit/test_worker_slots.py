"""The worker loop's bookkeeping: slots (`--limit`), launched runs, and the health check."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from skyrun.workers.health import HealthServer, PollHealth, default_threshold
from skyrun.workers.slots import RunTracker, Slots


def test_slots_count_and_wait() -> None:
    slots = Slots(2)
    assert slots.free() == 2
    slots.take()
    slots.take()
    assert slots.wait_for_free(timeout=0.01) == 0
    threading.Timer(0.05, slots.release).start()
    assert slots.wait_for_free(timeout=5) == 1
    slots.release()
    assert slots.wait_idle(timeout=0)
    with pytest.raises(RuntimeError):
        slots.release()


def test_unlimited_slots_claim_in_batches() -> None:
    slots = Slots(None)
    slots.take()
    assert slots.free() > 0


def test_a_run_cancelled_before_it_started_is_killed_when_it_starts() -> None:
    tracker = RunTracker()
    run_id = uuid.uuid4()
    tracker.add(run_id)
    assert tracker.request_cancel(run_id) == (True, None)
    assert tracker.request_cancel(run_id) == (False, None)
    assert tracker.started(run_id, "pid:1") is False
    other = uuid.uuid4()
    tracker.add(other)
    assert tracker.started(other, "pid:2") is True
    assert tracker.request_cancel(other) == (True, "pid:2")
    tracker.remove(run_id)
    assert run_id not in tracker


def test_health_turns_unhealthy_when_polls_stop() -> None:
    assert default_threshold(10) == 30
    assert default_threshold(20) == 60
    # Thresholds far from the test's own timing, so a busy machine cannot flip them.
    health = PollHealth(threshold_seconds=3600)
    server = HealthServer(health, port=0, host="127.0.0.1")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/health"
        assert httpx.get(url).status_code == 200
        time.sleep(0.05)
        health.threshold_seconds = 0.01  # the last poll is now too old
        response = httpx.get(url)
        assert response.status_code == 503
        assert response.json()["status"] == "unhealthy"
        health.threshold_seconds = 3600
        health.polled()
        assert httpx.get(url).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{server.port}/other").status_code == 404
    finally:
        server.stop()
