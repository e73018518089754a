"""A real ``vadbridge run`` with its control panel, as a subprocess on loopback ports
(``panel_process``), and readers of what it logs: the banner, the stats lines and the ``-v``
debug lines of accepted inputs.

The ports stay the same for the harness's life, so ``stop()`` then ``start()`` is the bridge
restarting where the page and the receivers expect it. The panel's TCP port and the OSC input's
UDP port are ``unassigned_port`` ones (below the kernel's ephemeral range): while the bridge is
stopped no other socket can be handed them.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import kill_if_running, unassigned_port

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0  # model load and imports on a loaded 2-core CI machine; bounds a failure
STOP_TIMEOUT_S = 15.0
STATS_INTERVAL_S = 0.5  # the config's stats_interval_s: a stats line twice a second
READY_LINE = "streaming at"  # the banner's last line, logged once every listener is bound

_ACCEPTED = re.compile(
    r"accepted (?P<source>\w+) input: avatar (?P<avatar>\S+), valence (?P<v>\S+), "
    r"arousal (?P<a>\S+), dominance (?P<d>[^\s(]+)"
    r"(?: \((?P<since>\d+) accepted since the previous line\))?$")
_STATS_ACCEPTED = re.compile(r"; inputs accepted (?P<counts>.*?), rejected ")


@dataclass(frozen=True)
class Accepted:
    """One ``-v`` line ``accepted <source> input: ...``: an axis the input left alone is None."""

    source: str
    avatar: str
    vad: tuple[float | None, float | None, float | None]
    since: int  # inputs of that source this line stands for (itself included)


def accepted_lines(log_text: str, source: str = "web") -> list[Accepted]:
    found = []
    for line in log_text.splitlines():
        match = _ACCEPTED.search(line)
        if match is None or match["source"] != source:
            continue
        vad = tuple(None if match[axis] == "unchanged" else float(match[axis])
                    for axis in ("v", "a", "d"))
        found.append(Accepted(source, match["avatar"], vad,  # type: ignore[arg-type]
                              int(match["since"] or 1)))
    return found


def _counts(text: str) -> dict[str, int]:
    """``web=3 osc=1`` -> counts; ``0`` -> {}."""
    if text == "0":
        return {}
    return {key: int(value) for key, _, value in (pair.partition("=") for pair in text.split())}


def stats_accepted(log_text: str) -> list[dict[str, int]]:
    """Per stats line, in order: the inputs accepted in its interval, by source."""
    return [_counts(match["counts"]) for line in log_text.splitlines()
            if " stats (last " in line and (match := _STATS_ACCEPTED.search(line))]


class PanelProcess:
    """``vadbridge run -v --config FILE`` with the panel on, one OSC input and one VMC output to
    ``vmc_port``; a stats line every ``STATS_INTERVAL_S``; idle refresh off, so the VMC output
    carries every frame (a rise is timed frame by frame). ``extra``: more YAML keys."""

    def __init__(self, folder: Path, vmc_port: int, extra: str = "") -> None:
        self.folder = folder
        self.vmc_port = vmc_port
        self.web_port = unassigned_port(socket.SOCK_STREAM)
        self.osc_port = unassigned_port(socket.SOCK_DGRAM)
        self.config_path = folder / "bridge.yaml"
        self.config_path.write_text(
            f"stats_interval_s: {STATS_INTERVAL_S}\n"
            "idle_refresh_hz: 0\n"
            f"inputs: [{{type: osc, host: 127.0.0.1, port: {self.osc_port}}}]\n"
            f"outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc_port}}}]\n"
            f"web: {{enabled: true, host: 127.0.0.1, port: {self.web_port}}}\n" + extra)
        self.runs = 0
        self.log_path = folder / "run-0.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    @property
    def log_text(self) -> str:
        """Everything this run (since the last ``start``) logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Start the bridge and return once its banner says it streams (listeners bound)."""
        assert self.process is None, "already running"
        self.runs += 1
        self.log_path = self.folder / f"run-{self.runs}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vadbridge", "run", "-v", "--config",
                 str(self.config_path)],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        give_up_s = time.monotonic() + START_TIMEOUT_S
        while READY_LINE not in self.log_text:
            if self.process.poll() is not None or time.monotonic() > give_up_s:
                self.kill()
                raise AssertionError(f"vadbridge run did not start:\n{self.log_text}")
            time.sleep(0.02)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit; the exit code (killed after
        ``STOP_TIMEOUT_S``: then the test fails on the code)."""
        process, self.process = self.process, None
        assert process is not None, "not running"
        process.send_signal(signum)
        try:
            return process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            kill_if_running(process)
            return process.wait()

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            kill_if_running(process)

    def assert_stops_cleanly(self) -> None:
        code = self.stop()
        text = self.log_text
        assert code == 0, f"exit code {code}:\n{text}"
        assert "Traceback" not in text and " ERROR " not in text, text
        assert "stopped: sent a neutral frame to every output" in text, text

    def wait_for_log(self, expected: str | Callable[[str], object], what: str = "", *,
                     timeout_s: float = 30.0) -> str:
        """The log once it holds ``expected`` (text), or ``expected(log text)`` is truthy."""
        check: Callable[[str], object]
        if isinstance(expected, str):
            wanted = expected
            check = lambda text: wanted in text  # noqa: E731
        else:
            check = expected
        what = what or repr(expected)
        give_up_s = time.monotonic() + timeout_s
        while True:
            text = self.log_text
            if check(text):
                return text
            if time.monotonic() > give_up_s:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what} in the "
                                     f"log:\n{text}")
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"vadbridge run exited waiting for {what}:\n{text}")
            time.sleep(0.02)


@contextmanager
def panel_process(folder: Path, vmc_port: int, extra: str = "") -> Iterator[PanelProcess]:
    """A started ``PanelProcess``; stopped after (SIGTERM): when the test passed, it must have
    exited 0 having sent its neutral frame, with no traceback or error in its log."""
    bridge = PanelProcess(folder, vmc_port, extra)
    bridge.start()
    try:
        yield bridge
    except BaseException:
        bridge.kill()
        raise
    if bridge.process is not None:
        bridge.assert_stops_cleanly()
