"""Run a real Bridge in a background thread, drive it with OSC and receive its frames on real UDP
sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from models import FLOAT32_PATH_ATOL
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from vadbridge.config import BridgeConfig, parse_config
from vadbridge.core.animator import Engine
from vadbridge.daemon import Bridge
from vadbridge.model.arkit import ARKIT_NAMES, symmetrize_inplace, upper_camel
from vadbridge.wiring import build_bridge

TIMEOUT_S = 10.0  # only bounds a failing test; nothing here asserts on time


def config_from_yaml(text: str) -> BridgeConfig:
    return parse_config(text, "<test>")


_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}  # id(bridge) -> its loop, while it runs


def on_loop(bridge: Bridge, call: Callable[[], object]) -> None:
    """Run ``call`` on the running bridge's event loop (as a signal handler would) and wait."""
    done = threading.Event()

    def run() -> None:
        try:
            call()
        finally:
            done.set()

    _LOOPS[id(bridge)].call_soon_threadsafe(run)
    assert done.wait(TIMEOUT_S), "the bridge's loop did not run the call"


@contextmanager
def running_bridge(
    config: BridgeConfig, *, prepare: Callable[[Bridge], object] | None = None
) -> Iterator[Bridge]:
    """Start the bridge (listeners bound, first frame sent) and stop it (neutral frame) after.

    ``prepare(bridge)`` runs before anything starts (e.g. adds the control panel as a source)."""
    bridge = build_bridge(config)
    if prepare is not None:
        prepare(bridge)
    ready = threading.Event()
    state: dict[str, object] = {}

    async def serve() -> None:
        state["loop"] = _LOOPS[id(bridge)] = asyncio.get_running_loop()
        state["task"] = asyncio.current_task()
        for source in bridge.sources:
            start = getattr(source, "start", None)
            if start is not None:
                await start()
        frames = asyncio.create_task(bridge.run())
        await bridge.started.wait()
        ready.set()
        try:
            await frames
        except asyncio.CancelledError:
            frames.cancel()
            await asyncio.gather(frames, return_exceptions=True)
            raise

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # surfaced to the test below
            state["error"] = error
            ready.set()

    thread = threading.Thread(target=thread_main, name="bridge", daemon=True)
    thread.start()
    assert ready.wait(10), "bridge did not start"
    if "error" in state:
        raise AssertionError(f"bridge failed to start: {state['error']!r}")
    try:
        yield bridge
    finally:
        loop = state["loop"]
        task = state["task"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(task, asyncio.Task)
        loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        _LOOPS.pop(id(bridge), None)
        assert not thread.is_alive(), "bridge did not stop"
        if "error" in state:
            raise AssertionError(f"bridge failed: {state['error']!r}")


class UdpReceiver:
    """A real UDP socket on a free loopback port that records every datagram with its time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]

    def receive(self, seconds: float) -> list[tuple[float, bytes]]:
        datagrams = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            datagrams.append((time.monotonic(), data))
        return datagrams

    def drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65536)
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(0.05)

    def close(self) -> None:
        self.sock.close()


def decode_vmc(data: bytes) -> list[tuple[str, list[object]]]:
    """Decode one VMC datagram with python-osc (an independent OSC implementation)."""
    return [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]


def vmc_frame_values(data: bytes) -> dict[str, float]:
    values: dict[str, float] = {}
    for address, params in decode_vmc(data):
        if address == "/VMC/Ext/Blend/Val":
            name, value = params
            assert isinstance(name, str) and isinstance(value, float)
            values[name] = value
    return values


def expected_vmc_frame(engine: Engine, vad: tuple[float, float, float]) -> dict[str, float]:
    """The VMC values (Perfect Sync names) of ``vad`` held long enough to have converged."""
    weights = engine.forward(np.array([vad], dtype=np.float32))
    symmetrize_inplace(weights)
    return {upper_camel(n): float(v) for n, v in zip(ARKIT_NAMES, weights[0], strict=True)}


def frame_matches(values: dict[str, float], expected: dict[str, float]) -> bool:
    """``values`` is ``expected`` within FLOAT32_PATH_ATOL: the bridge runs the model on its table
    rows (``forward_into``, in a batch of every moving avatar), ``expected_vmc_frame`` on a fresh
    one-row batch, and the two float32 paths may round apart."""
    return bool(values) and all(
        abs(values[k] - v) <= FLOAT32_PATH_ATOL for k, v in expected.items()
    )


def wait_for_frame(
    receiver: UdpReceiver, expected: dict[str, float], timeout_s: float = TIMEOUT_S
) -> dict[str, float]:
    """The first VMC frame received that matches ``expected``; ``{}`` if none came in time."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for _, data in receiver.receive(0.05):
            values = vmc_frame_values(data)
            if frame_matches(values, expected):
                return values
    return {}


def wait_until(
    condition: Callable[[], bool], what: str = "the condition", *, timeout_s: float = TIMEOUT_S
) -> float:
    """Seconds until ``condition()`` held (polled every 5 ms); fails the test on timeout."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.005)
    return time.monotonic() - start


def osc(address: str, *args: float | str) -> bytes:
    """An OSC message built by python-osc (an independent encoder), types inferred."""
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return bytes(builder.build().dgram)


def send_osc(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, ("127.0.0.1", port))
