"""What ``vadbridge run`` says about itself: the startup banner, the per-interval stats lines and,
with ``-v``, the accepted inputs (README, "Reading the log")."""

from __future__ import annotations

import inspect
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bridge_harness import UdpReceiver, osc
from conftest import free_port, kill_if_running

import vadbridge
from vadbridge.commands.run import BANNER_MAX_OUTPUTS, banner_lines
from vadbridge.config import BridgeConfig, load_config
from vadbridge.core.frame_loop import LATE_THRESHOLD_S
from vadbridge.core.stats import ACCEPTED_LOG_INTERVAL_S, format_stats_line
from vadbridge.daemon import Bridge, retire
from vadbridge.wiring import build_bridge, load_model_engine

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 20.0  # only bounds a failing test
STATS_INTERVAL_S = 0.5


# --- the banner, built without a process -------------------------------------------------------


@contextmanager
def built_bridge(path: Path) -> Iterator[Bridge]:
    """The bridge ``vadbridge run --config path`` would build, its outputs closed after."""
    config = load_config(path)
    bridge = build_bridge(config, engine=load_model_engine(config))
    try:
        yield bridge
    finally:
        retire(bridge.bindings, 0, 0.0)


def test_banner_names_version_config_model_every_input_and_output_once(
    tmp_path: Path, random_checkpoint: Path
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""
frame_rate: 50
model: {{checkpoint: {random_checkpoint}, engine: lut}}
inputs:
  - {{type: osc, host: 127.0.0.1, port: 9100}}
  - {{type: mqtt, host: 127.0.0.1, port: 1884, topic_prefix: studio}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: 39540}}
  - {{type: livelink, host: 127.0.0.1, port: 11112, avatar: alice}}
  - {{type: mqtt, host: 127.0.0.1, port: 1885, avatar: alice}}
  - {{type: record, path: take.csv, avatar: bob}}
""")
    with built_bridge(path) as bridge:
        lines = banner_lines(load_config(path), str(path), bridge, pid=4242)
    assert lines == [
        f"vadbridge {vadbridge.__version__}, pid 4242",
        f"config: {path}",
        f"model: {random_checkpoint} (engine lut)",
        "input osc: listening on 127.0.0.1:9100",
        "input mqtt: broker 127.0.0.1:1884, topics studio/+/vad, studio/+/emotion",
        "output vmc: to 127.0.0.1:39540, avatar default",
        "output livelink: to 127.0.0.1:11112, avatar alice",
        "output mqtt: broker 127.0.0.1:1885, topic vadbridge/alice/blendshapes, avatar alice",
        f"output record: file {tmp_path / 'take.csv'}, avatar bob",
        "streaming at 50 fps to 4 outputs (Ctrl+C to stop)",
    ]
    text = "\n".join(lines)
    for address in ("127.0.0.1:9100", "127.0.0.1:1884", "127.0.0.1:39540", "127.0.0.1:11112",
                    "127.0.0.1:1885", str(tmp_path / "take.csv")):
        assert text.count(address) == 1, address


def test_banner_says_when_the_built_in_defaults_run(tmp_path: Path,
                                                    random_checkpoint: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(f"model: {{checkpoint: {random_checkpoint}}}\ninputs: []\noutputs: []\n")
    with built_bridge(path) as bridge:
        lines = banner_lines(load_config(path), "built-in defaults", bridge, pid=1)
    assert lines[1:] == [
        "config: built-in defaults",
        f"model: {random_checkpoint} (engine mlp)",
        "inputs: none",
        "streaming at 60 fps to 0 outputs (Ctrl+C to stop)",
    ]


def test_banner_says_where_an_ifacialmocap_output_listens_for_handshakes(
    tmp_path: Path, random_checkpoint: Path
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"model: {{checkpoint: {random_checkpoint}}}\ninputs: []\noutputs: "
                    f"[{{type: ifacialmocap, mode: handshake, listen_host: 127.0.0.1, "
                    f"listen_port: {port}}}]\n")
    with built_bridge(path) as bridge:
        lines = banner_lines(load_config(path), str(path), bridge, pid=1)
    assert (f"output ifacialmocap: listening for handshakes on 127.0.0.1:{port}, avatar default"
            in lines)


def test_banner_names_the_first_outputs_of_a_crowd(tmp_path: Path,
                                                   random_checkpoint: Path) -> None:
    count = BANNER_MAX_OUTPUTS + 12
    outputs = "".join(f"  - {{type: vmc, port: {40000 + n}, avatar: a{n}}}\n" for n in range(count))
    path = tmp_path / "bridge.yaml"
    path.write_text(f"model: {{checkpoint: {random_checkpoint}}}\ninputs: []\n"
                    f"outputs:\n{outputs}")
    with built_bridge(path) as bridge:
        lines = banner_lines(load_config(path), str(path), bridge, pid=1)
    named = [line for line in lines if line.startswith("output vmc:")]
    assert len(named) == BANNER_MAX_OUTPUTS
    assert lines[-2:] == ["... and 12 more outputs",
                          f"streaming at 60 fps to {count} outputs (Ctrl+C to stop)"]


# --- a real `vadbridge run` ------------------------------------------------------------------


class LogLines:
    """Collects a process's stderr, line by line, in a thread; ``wait_for`` polls it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[str] = []
        self._stream = process.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, condition: Callable[[list[str]], bool], what: str) -> None:
        end = time.monotonic() + TIMEOUT_S
        while not condition(list(self.lines)):
            assert time.monotonic() < end, f"timed out waiting for {what}:\n" + self.text()
            time.sleep(0.02)

    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(TIMEOUT_S)


@contextmanager
def running(config: Path, *flags: str) -> Iterator[LogLines]:
    """``python -m vadbridge run --config config`` with its log; SIGTERM and exit 0 after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vadbridge", "run", "--config", str(config), *flags],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    log = LogLines(process)
    try:
        yield log
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 0, log.text()
    finally:
        kill_if_running(process)
        log.join()
        assert process.stderr is not None
        process.stderr.close()


def idle_osc_config(tmp_path: Path, checkpoint: Path, vmc_port: int) -> tuple[Path, int]:
    osc_port = free_port(socket.SOCK_DGRAM)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""
stats_interval_s: {STATS_INTERVAL_S}
model: {{checkpoint: {checkpoint}}}
inputs:
  - {{type: osc, host: 127.0.0.1, port: {osc_port}}}
outputs:
  - {{type: vmc, host: 127.0.0.1, port: {vmc_port}}}
""")
    return path, osc_port


def stats_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "vadbridge: stats (last " in line]


def send_burst(port: int, count: int) -> None:
    datagram = osc("/vad", 0.5, 0.25, 0.125)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(count):
            sender.sendto(datagram, ("127.0.0.1", port))


FRAMES = re.compile(r"\): (\d+) frames")
ACCEPTED_OSC = re.compile(r"inputs accepted (?:\S+ )*?osc=(\d+)")


def accepted_osc(line: str) -> int:
    match = ACCEPTED_OSC.search(line)
    return int(match.group(1)) if match else 0


def test_run_logs_the_banner_then_stats_lines_that_count_each_interval(
    tmp_path: Path, random_checkpoint: Path, vmc: UdpReceiver
) -> None:
    config, osc_port = idle_osc_config(tmp_path, random_checkpoint, vmc.port)
    burst = 25
    with running(config) as log:
        log.wait_for(lambda lines: len(stats_lines(lines)) >= 1, "the first stats line")
        before_burst = len(stats_lines(log.lines))
        send_burst(osc_port, burst)
        log.wait_for(lambda lines: len(stats_lines(lines)) >= before_burst + 3,
                     "three stats lines after the burst")
    text = log.text()
    for expected in (
        f"INFO vadbridge: vadbridge {vadbridge.__version__}, pid ",
        f"INFO vadbridge: config: {config}\n",
        f"INFO vadbridge: model: {random_checkpoint} (engine mlp)\n",
        f"INFO vadbridge: input osc: listening on 127.0.0.1:{osc_port}\n",
        f"INFO vadbridge: output vmc: to 127.0.0.1:{vmc.port}, avatar default\n",
        "INFO vadbridge: streaming at 60 fps to 1 output (Ctrl+C to stop)\n",
    ):
        assert expected in text, expected
    assert text.index("streaming at") < text.index("stats (last")
    stats = stats_lines(log.lines)
    assert all(re.search(r"stats \(last 0\.\d s\): \d+ frames \(\d+\.\d fps\), late \d+, "
                         r"skipped \d+, avatars 1; inputs accepted ", line) for line in stats)
    # Per interval: the burst is counted once, in the line(s) of the interval it arrived in, and
    # the lines after it say 0 (a total since start would repeat it in every line).
    after = [accepted_osc(line) for line in stats[before_burst:]]
    assert sum(after) == burst, stats
    assert after[-1] == 0 and "inputs accepted 0," in stats[-1]
    assert all(accepted_osc(line) == 0 for line in stats[:before_burst])
    # Frames per interval too: about 30 a line (60 fps x 0.5 s); a total would pass 100 by the
    # fourth line.
    frames = [int(match.group(1)) for line in stats if (match := FRAMES.search(line))]
    assert len(frames) == len(stats) >= 4 and max(frames) < 100, stats


def test_verbose_run_logs_accepted_inputs_once_a_second_and_no_asyncio_noise(
    tmp_path: Path, random_checkpoint: Path, vmc: UdpReceiver
) -> None:
    config, osc_port = idle_osc_config(tmp_path, random_checkpoint, vmc.port)
    with running(config, "-v") as log:
        log.wait_for(lambda lines: any("streaming at" in line for line in lines), "the banner")
        send_burst(osc_port, 25)  # well within one second
        log.wait_for(lambda lines: sum(map(accepted_osc, stats_lines(lines))) == 25,
                     "the stats line counting the burst")
    accepted = [line for line in log.lines if "accepted osc input" in line]
    assert len(accepted) == 1, log.text()
    assert accepted[0].endswith(
        "DEBUG vadbridge.inputs: accepted osc input: avatar default, valence 0.500, "
        "arousal 0.250, dominance 0.125"
    )
    assert "Using selector" not in log.text()


# --- the README says what the code does ---------------------------------------------------------


def reading_the_log() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## Reading the log\n", 1)[1].split("\n## ", 1)[0]


def test_reading_the_log_states_the_numbers_the_code_uses() -> None:
    section = " ".join(reading_the_log().split())
    default_interval_s = BridgeConfig().stats_interval_s
    named_outputs = inspect.signature(format_stats_line).parameters["max_outputs"].default
    assert f"more than **{LATE_THRESHOLD_S * 1e3:g} ms** after their deadline" in section
    assert f"(default {default_interval_s:g} s; 0 = none)" in section
    assert f"names its first {BANNER_MAX_OUTPUTS} outputs" in section
    assert f"The {named_outputs} outputs with the most are named" in section
    assert ACCEPTED_LOG_INTERVAL_S == 1.0 and "at most one per input kind per second" in section


def test_reading_the_log_shows_the_stats_line_the_code_writes() -> None:
    shown = re.search(r"INFO vadbridge: (stats \(last .*)", reading_the_log())
    assert shown is not None
    counts = {
        "frames": 600, "late": 8, "skipped": 0, "avatars": 2,
        "inputs": {"accepted": {"osc": 1, "mqtt": 0}, "rejected": {"mqtt.json": 1},
                   "clipped": {}},
        "send_errors": {"vmc 127.0.0.1:39539": 300, "livelink 127.0.0.1:11111": 300,
                        "mqtt 127.0.0.1:1883": 0, "record /home/me/take.csv": 0},
    }
    assert format_stats_line(counts, 10.0) == shown.group(1)
