"""Run each service every N seconds on the server's event loop until shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from skyrun.server.db.engine import Database

logger = logging.getLogger("skyrun.server.services")


@dataclass
class Service:
    name: str
    interval: float
    run_once: Callable[[Database], Awaitable[object]]


async def _loop(service: Service, database: Database) -> None:
    while True:
        try:
            await service.run_once(database)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A failing pass is retried on the next interval; the server keeps serving.
            logger.exception("service %s failed", service.name)
        await asyncio.sleep(service.interval)


def start_services(services: list[Service], database: Database) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(_loop(s, database), name=f"skyrun-{s.name}") for s in services]


async def stop_services(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
