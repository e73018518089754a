"""Bad input against a running bridge (issue 6, "Bad input (fuzzing)").

Malformed OSC datagrams and MQTT payloads from seeded generators go to a real bridge over real
sockets; the bridge must not crash, must keep its output frames going, must count every message
(accepted + rejected == received) and must not grow. Every generated datagram or payload is
built to move the counters by exactly one, so the accounting is exact. The default counts run
in seconds; ``--run-slow`` runs the long ones (docs/reliability.md).

Run as a script (``python tests/test_fuzz.py osc-sender PORT COUNT SEED RATE``) this file is the
OSC sender: a separate process, as a real flooding client would be, so it does not share the
bridge's interpreter lock.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PERIOD_S = 1 / 60
GAP_BOUND_S = 0.25  # tolerant (loaded 2-core CI); the goal is 2 periods, measured values printed
RSS_GROWTH_BOUND_MB = 10.0

# --- generators: each item moves the bridge's accepted+rejected counters by exactly one --------

_OSC_ADDRESSES = ("/vad", "/vad/valence", "/vad/arousal", "/vad/dominance", "/emotion",
                  "/avatar/a/vad", "/avatar/a/emotion", "/avatar/bad id/vad", "/nothing")
_TAGS = "ifdhsbTFNxc[]"
_NONFINITE = (math.nan, math.inf, -math.inf, 1e39)  # 1e39 overflows float32 to inf


def _osc_string(data: bytes) -> bytes:
    return data + b"\x00" * (4 - len(data) % 4)


def _message(address: str, tags: str, payload: bytes) -> bytes:
    return _osc_string(address.encode()) + _osc_string(("," + tags).encode()) + payload


def _valid(rng: random.Random) -> bytes:
    if rng.random() < 0.8:  # values up to 3 are clipped, counted as accepted
        return _message("/vad", "fff", struct.pack(">fff", *(rng.uniform(-3, 3) for _ in "vad")))
    name = rng.choice(("happiness", "sadness", "anger", "joy+surprise", "fear:0.3+calm:0.7"))
    return _message("/emotion", "s", _osc_string(name.encode()))


def _random_bytes(rng: random.Random) -> bytes:
    data = rng.randbytes(rng.randrange(0, 257))
    return b"/" + data if rng.random() < 0.3 else data  # some look like an address


def _truncated(rng: random.Random) -> bytes:
    whole = _valid(rng)
    return whole[: rng.randrange(0, len(whole))]


def _wrong_tags(rng: random.Random) -> bytes:
    tags = "".join(rng.choice(_TAGS) for _ in range(rng.randrange(0, 7)))
    return _message(rng.choice(_OSC_ADDRESSES), tags, rng.randbytes(4 * rng.randrange(0, 7)))


def _nonfinite(rng: random.Random) -> bytes:
    values = [rng.choice((*_NONFINITE, 0.5)) for _ in range(3)]
    if rng.random() < 0.5:
        return _message("/vad", "ddd", struct.pack(">ddd", *values))
    with_inf = [v if abs(v) < 1e38 or math.isnan(v) else math.copysign(math.inf, v) for v in values]
    return _message("/vad", "fff", struct.pack(">fff", *with_inf))


def _huge_string(rng: random.Random) -> bytes:
    text = "".join(rng.choice("abcdefgh é") for _ in range(rng.randrange(1_000, 30_000)))
    where = rng.randrange(3)
    if where == 0:
        return _message("/" + text, "fff", bytes(12))
    if where == 1:
        return _message("/emotion", "s", _osc_string(text.encode()))
    return _message("/vad", "sff", _osc_string(text.encode()) + bytes(8))


def _blob(rng: random.Random) -> bytes:
    size = rng.choice((-1, -(2**31), 2**31 - 1, 65536, rng.randrange(0, 64)))
    return _message("/vad", "b", struct.pack(">i", size) + rng.randbytes(4 * rng.randrange(0, 8)))


def _single(rng: random.Random) -> bytes:
    return rng.choice((_valid, _random_bytes, _truncated, _wrong_tags, _nonfinite, _blob))(rng)


def _bundle(rng: random.Random) -> bytes:
    """Nested bundles around one element; depth > 4 and lying sizes are decode errors. A second
    element always has a bad size, so a bundle never carries two countable messages."""
    element = _single(rng)
    for _ in range(rng.randrange(1, 8)):
        size = rng.choice((len(element), len(element), -4, 0, len(element) + 4))
        packet = b"#bundle\x00" + struct.pack(">Q", rng.getrandbits(64))
        element = packet + struct.pack(">i", size) + element
        if rng.random() < 0.2:
            element += struct.pack(">i", rng.choice((-8, 1 << 30, 3))) + b"\x00" * 4
    return element


_OSC_KINDS: tuple[tuple[Callable[[random.Random], bytes], float], ...] = (
    (_valid, 10), (_random_bytes, 20), (_truncated, 15), (_wrong_tags, 15), (_nonfinite, 10),
    (_blob, 8), (_bundle, 12), (_huge_string, 0.1),
)


def osc_fuzz(seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    makers, weights = zip(*_OSC_KINDS, strict=True)
    while True:
        yield rng.choices(makers, weights)[0](rng)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 4 else 4)
    if kind == 0:
        return rng.uniform(-1e6, 1e6)
    if kind == 1:
        return rng.choice((None, True, False, "", "joy", 10**30, -0.0))
    if kind == 2:
        return "".join(rng.choice("vad xyz\u00e9\U0001f600") for _ in range(rng.randrange(9)))
    if kind == 3:
        return rng.randrange(-5, 5)
    keys = ("valence", "arousal", "dominance", "v", "a", "d", "emotion", "intensity", "label",
            "score", "x")
    if kind < 6:
        return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


def _mqtt_payload(rng: random.Random) -> bytes:
    kind = rng.randrange(100)
    if kind < 10:  # valid
        return json.dumps([rng.uniform(-2, 2) for _ in "vad"]).encode()
    if kind < 20:
        return rng.randbytes(rng.randrange(1, 200)) + b"\xff"  # never valid UTF-8
    if kind < 35:
        return ("{" + "".join(rng.choice('"{}[]:,0.x') for _ in range(rng.randrange(40)))).encode()
    if kind < 60:
        return json.dumps(_random_json(rng), allow_nan=True).encode()
    if kind < 68:
        depth = rng.randrange(100, 30_000)
        return (b"[" * depth + b"]" * depth) if rng.random() < 0.5 else (
            b'{"v":' * depth + b"1" + b"}" * depth)
    if kind < 76:
        letters = "abcdefghijklmnopqrstuvwxyz_"
        name = "".join(rng.choice(letters) for _ in range(rng.randrange(1, 30)))
        return rng.choice((name, json.dumps({"emotion": name}),
                           json.dumps([{"label": name, "score": 1.0}]))).encode()
    if kind < 82:
        return json.dumps([{"label": "joy", "score": 0.1}] * rng.randrange(65, 300)).encode()
    if kind < 88:
        return rng.choice((b'{"v": NaN}', b"[Infinity, 0, 0]", b"1" * 5000, b"[1e999, 0, 0]",
                           b"nan nan nan", b"   ", b"0 0", b'{"v": 1, "v": 2}'))
    if kind < 99:
        return b"0.1 " * rng.randrange(1, 20_000)  # long text, mostly under the size limit
    return b"x" * 1_000_000  # 1 MB: oversize


def mqtt_fuzz(seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    bad_avatars = ("x" * 65, "b~d", "\u00e9t\u00e9", "")
    while True:
        avatar = rng.choice(bad_avatars) if rng.random() < 0.15 else rng.choice(("default", "a"))
        topic = f"vadbridge/{avatar}/{rng.choice(('vad', 'emotion'))}"
        yield topic, _mqtt_payload(rng)


# --- the OSC sender process ----------------------------------------------------------------


def _send_osc(port: int, count: int, seed: int, rate_per_s: float) -> None:
    """Send ``count`` fuzz datagrams paced at ``rate_per_s``; print {"sent": n} as JSON."""
    sent = 0
    batch = 25
    start = time.perf_counter()
    datagrams = osc_fuzz(seed)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while sent < count:
            for _ in range(min(batch, count - sent)):
                sock.sendto(next(datagrams), ("127.0.0.1", port))
                sent += 1
            ahead_s = start + sent / rate_per_s - time.perf_counter()
            if ahead_s > 0:
                time.sleep(ahead_s)
    print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start}))


if __name__ == "__main__" and sys.argv[1:2] == ["osc-sender"]:
    _port, _count, _seed, _rate = sys.argv[2:6]
    _send_osc(int(_port), int(_count), int(_seed), float(_rate))
    sys.exit(0)


# --- the bridge under test: a real `vadbridge run` process -----------------------------------
# A separate process, not the in-thread harness: the test's own threads, its garbage collector
# (pytest, torch and hypothesis make a large heap) and its interpreter lock would otherwise
# stall the bridge and be measured as its gaps.

import re  # noqa: E402
import signal  # noqa: E402

from bridge_harness import UdpReceiver, expected_vmc_frame, wait_for_frame  # noqa: E402
from conftest import Mosquitto, free_port, kill_if_running  # noqa: E402
from models import seeded_checkpoint  # noqa: E402

from vadbridge.benchmarks.harness import SO_TIMESTAMPNS, record_kernel_receive_times  # noqa: E402

KNOWN_KINDS = {"osc.decode", "osc.arity", "osc.type", "osc.address", "nonfinite", "oversize",
               "emotion.unknown", "emotion.invalid", "mqtt.json", "mqtt.shape", "mqtt.topic"}
STATS_INTERVAL_S = 0.1
_STATS_LINE = re.compile(
    r"stats \(last .*\): .* late (\d+), skipped (\d+), .*; inputs accepted (.*), rejected (.*), "
    r"clipped (.*); send errors"
)


def _counts(text: str) -> dict[str, int]:
    """``osc=3 mqtt.json=2`` (or ``0``) from a stats line back into a dict."""
    return {} if text == "0" else {
        key: int(value) for key, value in (pair.split("=") for pair in text.split())
    }


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random model (the bundled checkpoint may not exist yet)."""
    return seeded_checkpoint(tmp_path_factory.mktemp("model") / "random.npz", seed=6)


class Daemon:
    """``vadbridge run --config`` with its log in a file; counters read from its stats lines."""

    def __init__(self, directory: Path, config_text: str) -> None:
        self.config = directory / "bridge.yaml"
        self.config.write_text(config_text)
        self.log = directory / "bridge.log"
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vadbridge", "run", "--config", str(self.config)],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
            )

    def stats(self) -> tuple[dict[str, dict[str, int]], int, int]:
        """Totals since start, summed over the stats lines (each counts one interval):
        (inputs snapshot, late frames, skipped frames)."""
        inputs: dict[str, dict[str, int]] = {"accepted": {}, "rejected": {}, "clipped": {}}
        late = skipped = 0
        for line in self.log.read_text(errors="replace").splitlines():
            match = _STATS_LINE.search(line)
            if not match:
                continue
            late += int(match.group(1))
            skipped += int(match.group(2))
            for kind, group in (("accepted", 3), ("rejected", 4), ("clipped", 5)):
                for key, count in _counts(match.group(group)).items():
                    inputs[kind][key] = inputs[kind].get(key, 0) + count
        return inputs, late, skipped

    def counted(self) -> int:
        inputs = self.stats()[0]
        return sum(inputs["accepted"].values()) + sum(inputs["rejected"].values())

    def wait_for_count(self, target: Callable[[], int], timeout_s: float = 30.0) -> int:
        end = time.monotonic() + timeout_s
        while (got := self.counted()) < target() and time.monotonic() < end:
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(STATS_INTERVAL_S / 2)
        return got

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode, self.log.read_text(errors="replace")


def daemon_yaml(checkpoint: Path, inputs: str, vmc_port: int) -> str:
    return f"""
stats_interval_s: {STATS_INTERVAL_S}
idle_refresh_hz: 0  # every frame: the tests measure the longest gap in the stream
model: {{checkpoint: {checkpoint}}}
smoothing: {{tau_ms: 0}}
inputs: [{inputs}]
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc_port}}}]
"""


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the socket bound to 127.0.0.1:port (full buffer)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == local:
                return int(fields[-1])
    raise AssertionError(f"no UDP socket on 127.0.0.1:{port}")


class FrameTimes:
    """Records when every output frame arrived, stamped by the kernel (SO_TIMESTAMPNS), so a
    busy test process cannot make the bridge look late."""

    def __init__(self, receiver: UdpReceiver) -> None:
        self.receiver = receiver
        receiver.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=record_kernel_receive_times, args=(receiver.sock, self._stop, self.times),
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> float:
        """Stop; the longest gap between two frames."""
        self._stop.set()
        self._thread.join(5)
        self.receiver.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 0)
        return max(b - a for a, b in pairwise(self.times))


def still_animates(checkpoint: Path, receiver: UdpReceiver, send: Callable[[], None]) -> bool:
    """After the fuzz the input path still works: a valid message reaches the output."""
    from vadbridge.model.checkpoint import load_engine

    engine, _ = load_engine(checkpoint)
    want = expected_vmc_frame(engine, (0.25, -0.5, 0.75))
    send()
    return bool(wait_for_frame(receiver, want))


def wait_for_frames(receiver: UdpReceiver) -> None:
    assert receiver.receive(5.0), "no frames from the bridge"


# --- OSC fuzz against a running bridge -------------------------------------------------------


def run_osc_sender(port: int, count: int, seed: int, rate_per_s: float) -> int:
    done = subprocess.run(
        [sys.executable, __file__, "osc-sender", str(port), str(count), str(seed),
         str(rate_per_s)], cwd=REPO, capture_output=True, text=True, timeout=600, check=True,
    )
    sent: int = json.loads(done.stdout)["sent"]
    return sent


@pytest.mark.parametrize("count", [
    pytest.param(100_000, id="100k"),
    pytest.param(1_000_000, id="1M", marks=pytest.mark.slow),
])
def test_malformed_osc_flood_is_counted_and_never_stops_the_frames(
    tmp_path: Path, checkpoint: Path, count: int
) -> None:
    vmc = UdpReceiver()
    port = free_port(socket.SOCK_DGRAM)
    daemon = Daemon(tmp_path, daemon_yaml(
        checkpoint, f"{{type: osc, host: 127.0.0.1, port: {port}}}", vmc.port))
    try:
        wait_for_frames(vmc)
        warm_up = run_osc_sender(port, 5_000, seed=1, rate_per_s=20_000)
        daemon.wait_for_count(lambda: warm_up - udp_drops(port))
        rss_before = daemon.rss_mb()
        frames = FrameTimes(vmc)
        started = time.monotonic()
        sent = warm_up + run_osc_sender(port, count, seed=6, rate_per_s=20_000)
        total = daemon.wait_for_count(lambda: sent - udp_drops(port))
        elapsed_s = time.monotonic() - started
        longest_gap_s = frames.stop()
        rss_growth = daemon.rss_mb() - rss_before
        drops = udp_drops(port)
        inputs, late, skipped = daemon.stats()

        def valid() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(_message("/vad", "fff", struct.pack(">fff", 0.25, -0.5, 0.75)),
                            ("127.0.0.1", port))

        alive = still_animates(checkpoint, vmc, valid)
    finally:
        returncode, log = daemon.stop()
        vmc.close()
    print(f"\nOSC fuzz: {sent} datagrams in {elapsed_s:.1f} s, kernel drops {drops}, counted "
          f"{total} ({sum(inputs['accepted'].values())} accepted), longest frame gap "
          f"{longest_gap_s * 1e3:.1f} ms (frames late {late}, skipped {skipped}), RSS growth "
          f"{rss_growth:.2f} MB; rejected {inputs['rejected']}")
    assert returncode == 0 and "Traceback" not in log, log[-3000:]
    assert total + drops == sent  # every datagram that reached the socket was counted
    # Most datagrams must reach the decoder for the run to mean anything; how many the kernel
    # drops depends on how busy the machine is (15% seen with the whole suite on 2 cores).
    assert drops <= 0.5 * sent
    assert set(inputs["rejected"]) <= KNOWN_KINDS
    assert {"osc.decode", "osc.arity", "osc.type", "osc.address", "nonfinite"} <= set(
        inputs["rejected"])
    assert inputs["accepted"]["osc"] > 0
    assert alive, "a valid message after the fuzz did not reach the output"
    assert longest_gap_s < GAP_BOUND_S
    assert rss_growth <= RSS_GROWTH_BOUND_MB


# --- MQTT fuzz against a running bridge ------------------------------------------------------


async def publish_paced(broker: Mosquitto, items: Iterator[tuple[str, bytes]], count: int,
                        daemon: Daemon, window: int = 200) -> None:
    """Publish ``count`` items, never more than ``window`` ahead of what the bridge counted
    (its aiomqtt queue is bounded: a flood faster than the bridge would be dropped there)."""
    import aiomqtt

    base = daemon.counted()
    seen = base
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for published in range(count):
            while published - (seen - base) > window:
                await asyncio.sleep(STATS_INTERVAL_S / 4)
                seen = daemon.counted()
            topic, payload = next(items)
            await client.publish(topic, payload, qos=0)


@pytest.mark.parametrize("count", [
    pytest.param(2_000, id="2k"),
    pytest.param(10_000, id="10k", marks=pytest.mark.slow),
])
def test_malformed_mqtt_payloads_are_counted_and_never_stop_the_frames(
    tmp_path: Path, mosquitto: Mosquitto, checkpoint: Path, count: int
) -> None:
    vmc = UdpReceiver()
    daemon = Daemon(tmp_path, daemon_yaml(
        checkpoint, f"{{type: mqtt, host: 127.0.0.1, port: {mosquitto.port}}}", vmc.port))
    warm_up = 300
    items = mqtt_fuzz(6)
    try:
        wait_for_frames(vmc)
        end = time.monotonic() + 10
        while "MQTT connected" not in daemon.log.read_text() and time.monotonic() < end:
            time.sleep(0.02)
        asyncio.run(publish_paced(mosquitto, items, warm_up, daemon))
        daemon.wait_for_count(lambda: warm_up)
        rss_before = daemon.rss_mb()
        frames = FrameTimes(vmc)
        started = time.monotonic()
        asyncio.run(publish_paced(mosquitto, items, count, daemon))
        total = daemon.wait_for_count(lambda: warm_up + count)
        elapsed_s = time.monotonic() - started
        longest_gap_s = frames.stop()
        rss_growth = daemon.rss_mb() - rss_before
        inputs, late, skipped = daemon.stats()
        alive = still_animates(checkpoint, vmc, lambda: mosquitto.publish_sync(
            [("vadbridge/default/vad", "0.25 -0.5 0.75")]))
    finally:
        returncode, log = daemon.stop()
        vmc.close()
    print(f"\nMQTT fuzz: {count} payloads in {elapsed_s:.1f} s, counted {total - warm_up}, "
          f"longest frame gap {longest_gap_s * 1e3:.1f} ms (frames late {late}, skipped "
          f"{skipped}), RSS growth {rss_growth:.2f} MB; rejected {inputs['rejected']}")
    assert returncode == 0 and "Traceback" not in log, log[-3000:]
    assert total == warm_up + count
    assert set(inputs["rejected"]) <= KNOWN_KINDS
    assert {"mqtt.json", "mqtt.shape", "mqtt.topic", "oversize", "emotion.unknown"} <= set(
        inputs["rejected"])
    assert alive
    assert longest_gap_s < GAP_BOUND_S
    assert rss_growth <= RSS_GROWTH_BOUND_MB


def test_distinct_huge_unknown_emotion_names_do_not_grow_memory() -> None:
    """In process, against the parser the OSC source calls: 600 datagrams of 60 KB (within the
    default size limit) once made a running bridge hold ~30 MB in its emotion-lookup cache."""
    import tracemalloc

    from vadbridge.core.types import InputError
    from vadbridge.inputs.parse import parse_osc_message

    rng = random.Random(6)
    names = (rng.randbytes(30_000).hex() for _ in range(600))  # never a known name
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        rejected = 0
        for name in names:
            try:
                parse_osc_message("/emotion", (name,))
            except InputError:
                rejected += 1
        growth_mb = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    finally:
        tracemalloc.stop()
    print(f"\nhuge unknown emotion names: {growth_mb:.1f} MB still held after {rejected}")
    assert rejected == 600
    assert growth_mb <= RSS_GROWTH_BOUND_MB


# --- the parsers, in process (hypothesis) ----------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vadbridge.core.osc_codec import OscDecodeError, decode_packet  # noqa: E402
from vadbridge.core.types import InputError  # noqa: E402
from vadbridge.inputs.parse import Parsed, parse_mqtt, parse_osc_message  # noqa: E402


def assert_clean(parsed: Parsed) -> None:
    assert all(v is None or (math.isfinite(v) and -1.0 <= v <= 1.0) for v in parsed.sample.vad)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda seed: next(osc_fuzz(seed)), st.integers()))
def test_any_datagram_decodes_to_clean_samples_or_a_counted_error(data: bytes) -> None:
    try:
        messages = decode_packet(data)
    except OscDecodeError:
        return
    for address, args in messages:
        try:
            assert_clean(parse_osc_message(address, args))
        except InputError as error:
            assert error.kind in KNOWN_KINDS and error.reason


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["v", "a", "d", "valence", "emotion", "intensity", "label", "score", "?"]),
        inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=70),
    st.sampled_from(["vad", "emotion", "other"]),
    st.binary(max_size=300) | _JSON.map(lambda value: json.dumps(value).encode()),
)
def test_any_mqtt_message_parses_to_a_clean_sample_or_a_counted_error(
    avatar: str, leaf: str, payload: bytes
) -> None:
    try:
        assert_clean(parse_mqtt(f"vadbridge/{avatar}/{leaf}", payload,
                                topic_prefix="vadbridge", max_payload_bytes=256))
    except InputError as error:
        assert error.kind in KNOWN_KINDS and error.reason


# --- config fuzzing through `vadbridge run --config` -----------------------------------------

BAD_CONFIGS = {
    "unclosed-flow": ("frame_rate: 60\noutputs: [{type: vmc, port: 1\n", "expected valid YAML"),
    "tab-indent": ("smoothing:\n\ttau_ms: 10\n", "expected valid YAML"),
    "wrong-type": ("frame_rate: sixty\n",
                   ":1: frame_rate: expected an integer 1..240, got 'sixty'"),
    "unknown-key": ("outputs:\n  - {type: vmc, prot: 9000}\n",
                    ":2: outputs[0].prot: expected one of the keys"),
    "not-a-mapping": ("- frame_rate\n- 60\n", "expected a mapping"),
    "binary": ("\x00\x01\x02\x80", "expected"),
    "deep": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "expected"),
    # 2**40 leaves if anything expanded the aliases; the loader must not.
    "alias-bomb": ("frame_rate: [&a0 [1, 1], " + ", ".join(
        f"&a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 41)) + "]\n",
        ":1: frame_rate: expected an integer 1..240, got a list"),
    "unknown-output-type": ("outputs: [{type: ndi}]\n", ":1: outputs[0].type: expected one of"),
}


def test_bad_configs_exit_2_with_file_key_and_reason_never_a_traceback(tmp_path: Path) -> None:
    processes = {}
    for name, (text, _) in BAD_CONFIGS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        processes[name] = (path, subprocess.Popen(
            [sys.executable, "-m", "vadbridge", "run", "--config", str(path)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for name, (path, process) in processes.items():
        try:
            _, err = process.communicate(timeout=60)
        finally:
            kill_if_running(process)
        expected = BAD_CONFIGS[name][1]
        assert process.returncode == 2, (name, err)
        assert "Traceback" not in err, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vadbridge run: {path}"), (name, err)
        assert expected in lines[0], (name, lines[0])


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(chars))
        action = rng.randrange(4)
        if action == 0:
            del chars[position]
        elif action == 1:
            chars.insert(position, rng.choice(":-[]{}#&*!|>'\"\t\n 0123456789abc\x00\u00e9"))
        elif action == 2:
            chars[position] = rng.choice("xyz:9 \n")
        else:
            lines = "".join(chars).split("\n")
            rng.shuffle(lines)
            chars = list("\n".join(lines))
    return "".join(chars)


def test_mutated_configs_either_pass_check_or_exit_2_with_one_line(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vadbridge.commands import main

    valid = (f"frame_rate: 30\nstats_interval_s: 0\nmodel:\n  checkpoint: {checkpoint}\n"
             "smoothing: {tau_ms: 100, space: vad}\navatars:\n  ids: [default, b]\n  max: 4\n"
             "inputs: []\noutputs:\n  - {type: vmc, port: 39539, avatar: b}\n"
             "  - {type: livelink, port: 11111, subject: face}\n")
    rng = random.Random(6)
    path = tmp_path / "mutated.yaml"
    outcomes = {0: 0, 2: 0}
    for _ in range(150):
        path.write_text(_mutate(rng, valid))
        code = main(["run", "--config", str(path), "--check"])
        err = capsys.readouterr().err
        assert code in outcomes, (path.read_text(), err)
        outcomes[code] += 1
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"vadbridge run: {path}"), err
    assert outcomes[0] > 0 and outcomes[2] > 0  # both paths were exercised
