"""Issue 12's floods against a real ``vadbridge run``: does the face keep its 60 fps?

``python -m vadbridge.benchmarks.floods [--seconds 10]`` starts its own mosquitto on a free
loopback port and, per scenario, one daemon (OSC in, MQTT in, a VMC output to a UDP receiver
here, ``stats_interval_s: 1``, ``idle_refresh_hz: 0`` so that every frame is sent), then
floods it for ``--seconds``:

- ``mqtt burst``: 30,000 QoS-0 messages at once (``mosquitto_pub -l``);
- ``mqtt 64 KB mixes``: 1,500 ``joy+joy+...`` text mixes of 64 KB each;
- ``osc bundles``: bundles of 2,000 ``/vad`` messages at 200 datagrams/s, with
  ``rate_limit_per_source: 200``;
- ``mqtt 800 avatars``: one 64 KB mix on each of 800 avatar topics per second, with
  ``avatars.accept_new: false``.

It reports the VMC frames per second (overall and the worst 1 s window; receive times stamped
by the kernel), the longest gap between two frames, the stats lines' counts and the most log
lines of one kind in one stats interval, with met/MISSED against >= 59 fps, no gap over 50 ms
and at most 3 lines per kind per interval. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import aiomqtt

from vadbridge.benchmarks.harness import (
    SO_TIMESTAMPNS,
    free_port,
    record_kernel_receive_times,
    start_logged,
    stop_process,
)

HOST = "127.0.0.1"
STATS_INTERVAL_S = 1
MIN_FPS = 59.0
MAX_GAP_MS = 50.0
MAX_LINES_PER_KIND = 3
_SAME_FRAME_S = 0.002  # datagrams closer than this are one frame (a split VMC bundle)
_START_TIMEOUT_S = 15.0
MIX_64K = "+".join(["joy"] * 16_250)  # 64,999 bytes
_STATS_LINE = re.compile(r"stats \(last .*\): .* skipped (\d+), .*; inputs accepted (.*), "
                         r"rejected (.*), clipped (.*); send errors")
_REJECT_LINE = re.compile(r"rejected input \(([^)]*)\)")
_LOG_LINE = re.compile(r"^\S+ \S+ (\w+) ([\w.]+): (.*)$")


class Broker:
    """mosquitto on a free loopback port (as tests/conftest.py starts it)."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        config = directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\npersistence false\n"
            f"user {getpass.getuser()}\nlog_dest none\n"
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        stop_process(self.process, timeout_s=5)


class FrameTimes:
    """Receives the VMC output; records each datagram's kernel receive time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.port: int = self.sock.getsockname()[1]
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=record_kernel_receive_times, args=(self.sock, self._stop, self.times),
            daemon=True,
        )
        self._thread.start()

    def frames(self, start: float, end: float) -> list[float]:
        frames: list[float] = []
        for stamp in list(self.times):
            if start <= stamp < end and (not frames or stamp - frames[-1] >= _SAME_FRAME_S):
                frames.append(stamp)
        return frames

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@dataclass
class Scenario:
    name: str
    flood: Callable[[int, int, float], None]  # (mqtt port, osc port, seconds)
    limits: str = ""
    avatars: str = ""


@dataclass
class Result:
    name: str
    fps: float
    min_fps: float
    max_gap_ms: float
    skipped: int
    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    lines_per_kind: dict[str, int] = field(default_factory=dict)  # most in one interval

    @property
    def met(self) -> bool:
        return (self.min_fps >= MIN_FPS and self.max_gap_ms <= MAX_GAP_MS
                and max(self.lines_per_kind.values(), default=0) <= MAX_LINES_PER_KIND)


# --- the floods ----------------------------------------------------------------------------------


def _mosquitto_pub(port: int, topic: str, lines: Iterable[str]) -> None:
    """Publish one message per line at QoS 0, as fast as mosquitto_pub goes."""
    binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    subprocess.run(
        [binary, "-h", HOST, "-p", str(port), "-q", "0", "-t", topic, "-l"],
        input="".join(f"{line}\n" for line in lines).encode(), check=True, timeout=60,
    )


def mqtt_burst(mqtt_port: int, _osc_port: int, _seconds: float) -> None:
    _mosquitto_pub(mqtt_port, "vadbridge/default/vad",
                   (f"[{(i % 200) / 100 - 1:.2f}, 0.5, 0.0]" for i in range(30_000)))


def mqtt_mixes(mqtt_port: int, _osc_port: int, _seconds: float) -> None:
    _mosquitto_pub(mqtt_port, "vadbridge/default/emotion", (MIX_64K for _ in range(1_500)))


def mqtt_avatars(mqtt_port: int, _osc_port: int, seconds: float) -> None:
    async def publish() -> None:
        async with aiomqtt.Client(HOST, mqtt_port) as client:
            start = time.monotonic()
            for round_number in range(max(1, int(seconds))):  # one round per second
                for avatar in range(800):
                    await client.publish(f"vadbridge/a{avatar}/emotion", MIX_64K, qos=0)
                await asyncio.sleep(max(0.0, start + round_number + 1 - time.monotonic()))

    asyncio.run(publish())


def _osc_bundle(count: int) -> bytes:
    element = b"/vad\0\0\0\0,fff\0\0\0\0" + struct.pack(">fff", 0.25, -0.5, 0.75)
    sized = struct.pack(">i", len(element)) + element
    return b"#bundle\0" + struct.pack(">Q", 1) + sized * count


def osc_bundles(_mqtt_port: int, osc_port: int, seconds: float) -> None:
    bundle = _osc_bundle(2_000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        for number in range(int(seconds * 200)):
            time.sleep(max(0.0, start + number / 200 - time.monotonic()))
            sock.sendto(bundle, (HOST, osc_port))


SCENARIOS = (
    Scenario("mqtt burst 30k", mqtt_burst),
    Scenario("mqtt 1500 x 64 KB mixes", mqtt_mixes),
    Scenario("osc 2000-msg bundles 200/s", osc_bundles,
             limits="limits: {rate_limit_per_source: 200}"),
    Scenario("mqtt 800 avatar topics", mqtt_avatars,
             avatars="avatars: {ids: [default], accept_new: false}"),
)


# --- one run -------------------------------------------------------------------------------------


def _config(scenario: Scenario, osc_port: int, mqtt_port: int, vmc_port: int) -> str:
    return "\n".join([
        f"stats_interval_s: {STATS_INTERVAL_S}",
        # Every frame goes out, at rest or not, so the stream's rate is the frame loop's: the
        # default (auto) refreshes a VMC face at rest only twice a second.
        "idle_refresh_hz: 0",
        "model: {checkpoint: default}",
        scenario.limits, scenario.avatars,
        "inputs:",
        f"  - {{type: osc, host: {HOST}, port: {osc_port}}}",
        f"  - {{type: mqtt, host: {HOST}, port: {mqtt_port}, topic_prefix: vadbridge}}",
        f"outputs: [{{type: vmc, host: {HOST}, port: {vmc_port}}}]", "",
    ])


def _counts(text: str) -> dict[str, int]:
    return {} if text == "0" else {
        key: int(value) for key, value in (pair.split("=") for pair in text.split())
    }


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def read_log(text: str, result: Result) -> None:
    """Stats lines' counts, and per kind the most lines logged in one stats interval."""
    interval: dict[str, int] = {}

    def close_interval() -> None:
        for kind, lines in interval.items():
            result.lines_per_kind[kind] = max(result.lines_per_kind.get(kind, 0), lines)
        interval.clear()

    for line in text.splitlines():
        stats = _STATS_LINE.search(line)
        if stats:
            result.skipped += int(stats.group(1))
            _add(result.accepted, _counts(stats.group(2)))
            _add(result.rejected, _counts(stats.group(3)))
            close_interval()
            continue
        reject = _REJECT_LINE.search(line)
        logged = _LOG_LINE.match(line)
        kind = reject.group(1) if reject else f"{logged.group(2)} {logged.group(1)}" if logged \
            else "other"
        interval[kind] = interval.get(kind, 0) + 1
    close_interval()


def run_scenario(scenario: Scenario, broker: Broker, directory: Path, seconds: float) -> Result:
    receiver = FrameTimes()
    daemon = None
    try:
        osc_port = free_port(socket.SOCK_DGRAM)
        config = directory / "bridge.yaml"
        config.write_text(_config(scenario, osc_port, broker.port, receiver.port))
        # The daemon logs to stderr and prints nothing on stdout: the log is its log lines.
        argv = [sys.executable, "-m", "vadbridge", "run", "--config", str(config)]
        daemon = start_logged(directory, "bridge", argv, "MQTT connected",
                              timeout_s=_START_TIMEOUT_S)
        log_path = directory / "bridge.log"
        time.sleep(1.0)  # settle; then cut the log here so the window's lines are its own
        log_start = log_path.stat().st_size
        start = time.time()
        flooder = threading.Thread(target=scenario.flood, args=(broker.port, osc_port, seconds),
                                   daemon=True)
        flooder.start()
        time.sleep(max(0.0, start + seconds - time.time()))
        end = time.time()
        time.sleep(STATS_INTERVAL_S + 0.2)  # the last interval's stats line
        text = log_path.read_bytes()[log_start:].decode(errors="replace")
        flooder.join(60)
    finally:
        if daemon is not None:
            stop_process(daemon)
        receiver.close()
    frames = receiver.frames(start, end)
    windows = [sum(1 for t in frames if start + k <= t < start + k + 1)
               for k in range(max(1, int(seconds)))]
    gaps = [b - a for a, b in pairwise(frames)]
    result = Result(scenario.name, fps=len(frames) / (end - start), min_fps=float(min(windows)),
                    max_gap_ms=1000 * max(gaps, default=end - start), skipped=0)
    read_log(text, result)
    return result


def _show(counts: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(counts.items())) or "0"


def table(results: Iterable[Result]) -> str:
    rows = ["| scenario | fps | worst 1 s | max gap ms | skipped | accepted | rejected "
            "| most lines/kind/interval | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rows.append(
            f"| {r.name} | {r.fps:.1f} | {r.min_fps:.0f} | {r.max_gap_ms:.1f} | {r.skipped} "
            f"| {_show(r.accepted)} | {_show(r.rejected)} | {_show(r.lines_per_kind)} "
            f"| {'met' if r.met else 'MISSED'} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vadbridge.benchmarks.floods",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="each flood's window")
    args = parser.parse_args(argv)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="vadbridge-floods-") as temp:
        broker = Broker(Path(temp))
        try:
            for number, scenario in enumerate(SCENARIOS):
                directory = Path(temp) / f"s{number}"
                directory.mkdir()
                results.append(run_scenario(scenario, broker, directory, args.seconds))
        finally:
            broker.stop()
    print(table(results))
    for r in results:
        print(f"{r.name}: {'met' if r.met else 'MISSED'} (>= {MIN_FPS:g} fps, no gap > "
              f"{MAX_GAP_MS:g} ms, <= {MAX_LINES_PER_KIND} lines per kind per interval)")
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
