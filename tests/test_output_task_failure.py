"""An output's own task failing (a bug, not a network error) stops the bridge loudly, whether
the output was there at start or a SIGHUP reload added it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Mosquitto, free_port, kill_if_running

from vadbridge.config import LivelinessConfig
from vadbridge.core.animator import Animator
from vadbridge.core.avatars import AvatarTable
from vadbridge.core.stats import InputStats
from vadbridge.core.types import Frame
from vadbridge.daemon import Binding, Bridge, LiveSettings, OutputTaskError
from vadbridge.model.api import load_model


class BrokenPublisherSink:
    """A fault injector: an output whose background task dies after a few frames."""

    name = "broken publisher"
    send_errors = 0

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.closed = False

    def send(self, frame: Frame) -> None:
        self.frames.append(frame.weights.copy())

    def close(self) -> None:
        self.closed = True

    async def run(self) -> None:
        while len(self.frames) < 3:
            await asyncio.sleep(0.005)
        raise RuntimeError("publisher bug")


QUIET = LiveSettings(tau_s=0.1, space="vad", idle_timeout_s=0.0, idle_refresh_hz=0.0,
                     stats_interval_s=0.0, liveliness=LivelinessConfig())


def quiet_bridge(table: AvatarTable, bindings: list[Binding]) -> Bridge:
    return Bridge(
        table=table, animator=Animator(table, load_model()[0], tau_s=0.1), sources=[],
        bindings=bindings, frame_rate=60, input_stats=InputStats(),
        settings=QUIET,
    )


def test_a_failing_output_task_ends_the_bridge_with_neutral_frames() -> None:
    table = AvatarTable(2, initial_ids=["default"])
    sink = BrokenPublisherSink()
    bridge = quiet_bridge(table, [Binding(sink, 0)])
    with pytest.raises(OutputTaskError, match=r"output broken publisher failed: .*publisher bug"):
        asyncio.run(asyncio.wait_for(bridge.run(), 10))
    assert len(sink.frames) >= 4
    assert not sink.frames[-1].any()  # the last frame is the neutral face
    assert sink.closed


def test_an_output_added_by_reconfigure_is_supervised_like_one_present_at_start() -> None:
    table = AvatarTable(2, initial_ids=["default"])
    bridge = quiet_bridge(table, [])
    sink = BrokenPublisherSink()

    async def add_then_run() -> None:
        running = asyncio.create_task(bridge.run())
        await bridge.started.wait()
        bridge.reconfigure(QUIET, [Binding(sink, 0)])
        await asyncio.wait_for(running, 10)

    with pytest.raises(OutputTaskError, match="publisher bug"):
        asyncio.run(add_then_run())
    assert len(sink.frames) >= 4 and not sink.frames[-1].any() and sink.closed


# The real daemon, with one fault injected into the MQTT output's publisher (the only part of
# this test that is not the shipped code): after two publishes the task raises.
FAULTY_RUN = textwrap.dedent("""
    import sys
    from vadbridge.commands import main
    from vadbridge.outputs import mqtt

    publish_loop = mqtt.MqttSink._publish_loop

    async def faulty(self, client):
        original_publish = client.publish

        async def publish(*args, **kwargs):
            if self.frames_published >= 2:
                raise RuntimeError("injected publisher fault")
            await original_publish(*args, **kwargs)

        client.publish = publish
        await publish_loop(self, client)

    mqtt.MqttSink._publish_loop = faulty
    sys.exit(main(["run", "--config", sys.argv[1]]))
""")


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_mqtt_output_added_by_sighup_that_fails_stops_the_daemon_with_exit_1(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.yaml"
    vmc_port = free_port()
    base = (f"stats_interval_s: 0\ninputs: []\noutputs:\n"
            f"  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}}}\n")
    config.write_text(base)
    log = tmp_path / "bridge.log"
    with log.open("wb") as stderr:
        daemon = subprocess.Popen([sys.executable, "-c", FAULTY_RUN, str(config)],
                                  stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for(lambda: b"streaming at" in log.read_bytes(), 30, "the daemon to stream")
        config.write_text(base + f"  - {{type: mqtt, host: 127.0.0.1, port: {mosquitto.port},"
                                 f" rate_hz: 30, reconnect_max_s: 0.2}}\n")
        daemon.send_signal(signal.SIGHUP)
        code = daemon.wait(timeout=30)
    finally:
        kill_if_running(daemon)
    text = log.read_text()
    assert code == 1, text
    assert "config reloaded" in text and "1 new" in text
    reasons = [line for line in text.splitlines() if line.startswith("vadbridge run:")]
    assert reasons == [
        f"vadbridge run: output mqtt 127.0.0.1:{mosquitto.port} failed: "
        "RuntimeError('injected publisher fault')"
    ]
    assert "Traceback" not in text
