"""Heartbeats of the flow runs this process is running, and what their answers say.

One thread per client while flow runs are running here: every
SKYRUN_FLOW_RUN_HEARTBEAT_INTERVAL seconds it sends each running flow run's
heartbeat (subflows too: each is a RUNNING run of its own), and the server
makes CRASHED a RUNNING run whose heartbeats stop (its process or container
is gone). The answer is the run's current state, so the same request tells a
run that it is being cancelled: no second loop polls for that.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from skyrun.schemas.states import State

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

logger = logging.getLogger("skyrun.heartbeats")

OnState = Callable[[State], None]


class FlowRunHeartbeats:
    """Sends the heartbeats of the registered flow runs until each is removed."""

    def __init__(self, client: SkyrunClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self._runs: dict[uuid.UUID, OnState | None] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    def add(self, flow_run_id: uuid.UUID, on_state: OnState | None = None) -> None:
        """Heartbeat `flow_run_id` from now on; `on_state` gets each answer (in this
        object's thread)."""
        with self._lock:
            self._runs[flow_run_id] = on_state
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="skyrun-flow-run-heartbeats", daemon=True
                )
                self._thread.start()

    def remove(self, flow_run_id: uuid.UUID) -> None:
        with self._lock:
            self._runs.pop(flow_run_id, None)

    def beat(self) -> None:
        """Send one heartbeat for each registered run now (the loop calls it)."""
        with self._lock:
            runs = list(self._runs.items())
        for flow_run_id, on_state in runs:
            try:
                state = self.client.heartbeat_flow_run(flow_run_id)
            except Exception as exc:
                # The next heartbeat may get through; the server allows for several missed.
                if not self._failing:
                    logger.warning("Flow run heartbeat failed (will keep trying): %s", exc)
                self._failing = True
                continue
            if self._failing:
                logger.info("Flow run heartbeats reach the server again")
            self._failing = False
            if on_state is not None and flow_run_id in self._runs:
                on_state(state)

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if not self._runs:
                    # Nothing runs: the thread ends, and `add` starts another. Decided
                    # under the lock, so a run added meanwhile is never left without one.
                    self._thread = None
                    return
            self.beat()


_by_client: dict[int, FlowRunHeartbeats] = {}


def heartbeats_for(client: SkyrunClient, interval: float) -> FlowRunHeartbeats:
    """The heartbeat sender of `client` (one per client per process)."""
    heartbeats = _by_client.get(id(client))
    if heartbeats is None or heartbeats.client is not client:
        heartbeats = _by_client[id(client)] = FlowRunHeartbeats(client, interval)
    return heartbeats
