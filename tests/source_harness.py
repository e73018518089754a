"""Drive an input source (OSC or MQTT) directly: run it in a task, collect its samples, wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Protocol

import pytest

from vadbridge.core.types import VadSample

TIMEOUT_S = 10.0  # only bounds a failing test; nothing here asserts on time


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60.0))


class Collector:
    """``on_sample`` for tests: keeps samples and lets a test wait for a count."""

    def __init__(self) -> None:
        self.samples: list[VadSample] = []
        self._changed = asyncio.Event()

    def __call__(self, sample: VadSample) -> None:
        self.samples.append(sample)
        self._changed.set()

    async def wait_for(self, count: int) -> list[VadSample]:
        async def _wait() -> None:
            while len(self.samples) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), TIMEOUT_S)
        return self.samples


async def until(predicate: Callable[[], bool]) -> None:
    async def _poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(_poll(), TIMEOUT_S)


class Source(Protocol):
    async def run(self, on_sample: Callable[[VadSample], None]) -> None: ...


@asynccontextmanager
async def running(source: Source, on_sample: Callable[[VadSample], None]) -> AsyncIterator[None]:
    """``source.run(on_sample)`` in a task; cancelled on exit, and it must end cancelled (an
    exception of its own fails the test)."""
    task = asyncio.create_task(source.run(on_sample))
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
