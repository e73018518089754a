"""Issue 16's one-avatar target, black box: the real daemon beside the naive process, by CPU ticks.

``python -m vadbridge.benchmarks.one_avatar [--seconds 20] [--warmup-s 2]`` (and
``vadbridge bench --only one_avatar``). Side by side in one run, on loopback:

- the daemon, ``python -m vadbridge run --config <yaml>``: one OSC input, one avatar at 60 fps,
  three outputs (``vmc``, ``osc``, ``livelink``), every other key at its default (smoothing,
  liveliness, idle refresh, engine, pacing mode), except ``stats_interval_s: 0`` (no stats
  lines);
- the naive seed-style process, ``benchmarks.naive_daemon`` (python-osc server, torch on one
  sample, python-osc/struct packets, ``time.sleep`` pacing), to the same kinds of receivers;
- the floor processes of ``benchmarks.floor`` (an asyncio loop and a sleep loop waking at the
  frame rate, each alone and sending three packets): what this machine charges for waking and
  sending before any frame work, measured the same way;
- one receiver process for all the streams (its CPU is not counted), which stamps every VMC
  datagram with the kernel's receive time (SO_TIMESTAMPNS);
- a sender thread here: ``/vad v a d`` at 30 Hz to both, a slow sine on each axis (period
  ``VAD_PERIOD_S``, the axes out of phase), as a live sentiment pipeline sends: the face glides
  all the time, so every frame is re-inferred.

**CPU** is each process's utime + stime from ``/proc/PID/stat`` (in ``SC_CLK_TCK`` ticks,
10 ms here: +-0.05 % of a core over 20 s) over the same wall window, after a warm-up that skips
start-up and model loading, as % of one core. The ratio is naive / daemon. The whole machine's
busy and steal shares over the window (``/proc/stat``) are printed beside them: on a shared
virtual machine a run whose CPUs were stolen or busy with other work is slower and later
throughout, and these two rows say so.

**Lateness** is measured where a receiver sees it. Each VMC bundle carries its frame's time
(``/VMC/Ext/T`` = frame index x period, the pacer's deadline grid), so every datagram has its
frame index k and its kernel receive time r_k. The ideal grid is fitted to them: the residuals
r_k - k x period are split in one-second chunks, a line goes through the chunks' minima
(Theil-Sen: the median of pairwise slopes, so a chunk that was late throughout cannot tilt it;
the slope absorbs any rate difference between the daemon's CLOCK_MONOTONIC and the kernel's
CLOCK_REALTIME stamps), and a frame's lateness is its residual above that line, less the
smallest one. So it is the pacer's lateness plus the variation of the work before the VMC send
(one row's inference, the encode) and of loopback delivery, relative to the most punctual
frame of the window; a constant delay (the minimal work) is not counted. Frames missing in the
window (skipped by a pacer or lost) are counted. The daemon's own stats give only the mean and
the maximum, not a percentile, hence the receiver. The naive process's lateness is measured
the same way (its frames also carry k x period) and is the lateness row's baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbridge.benchmarks.floor import FLOORS, SEND_BYTES
from vadbridge.benchmarks.floor import READY as FLOOR_READY
from vadbridge.benchmarks.floor import argv as floor_argv
from vadbridge.benchmarks.harness import (
    RECEIVE_BUFFER_BYTES,
    SO_TIMESTAMPNS,
    Result,
    format_table,
    free_port,
    kernel_receive_time,
    percentile,
    scratch_dir,
    start_logged,
    stop_process,
)
from vadbridge.benchmarks.naive_daemon import READY
from vadbridge.benchmarks.targets import target_lines
from vadbridge.core.osc_codec import encode_message

HOST = "127.0.0.1"
FPS = 60
INPUT_HZ = 30.0
VAD_PERIOD_S = 6.0  # one slow sweep of each axis
CASE = "1 avatar, VMC + OSC + Live Link, inputs 30 Hz"
KINDS = ("vmc", "osc", "livelink")
CHUNK_S = 1.0  # the grid fit's chunk (one minimum each)
_START_TIMEOUT_S = 60.0  # the naive process imports torch: seconds on a busy machine
_VMC_TIME_TAIL = b"/VMC/Ext/T\x00\x00,f\x00\x00"  # the bundle's last message, then its float


# --- measuring --------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """utime + stime of process ``pid`` (all its threads), in SC_CLK_TCK ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # from field 3 (state) on: comm may hold spaces
    return int(fields[11]) + int(fields[12])  # fields 14 and 15


def machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) ticks of all CPUs from /proc/stat: how busy the whole machine was,
    and how long the hypervisor kept its CPUs from running anything (steal)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle - fields[7], fields[7], sum(fields)


def grid_lateness_s(receive_s: np.ndarray, frame_index: np.ndarray, period_s: float,
                    chunk_frames: int) -> np.ndarray:
    """Each frame's lateness (s) against the ideal grid fitted to the frames (module docstring).

    ``receive_s``: receive times; ``frame_index``: each one's frame number (any order, no
    duplicates). Returned in the order given; the most punctual frame gets 0.
    """
    if len(receive_s) == 0:
        return np.zeros(0)
    order = np.argsort(frame_index)
    k = frame_index[order].astype(np.float64)
    k -= k[0]
    residual = (receive_s[order] - receive_s[order][0]) - k * period_s
    chunk = (k // chunk_frames).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1]])
    minima = [start + int(np.argmin(part))
              for start, part in zip(starts, np.split(residual, starts[1:]), strict=True)]
    slope = 0.0
    if len(minima) >= 2:
        i, j = np.triu_indices(len(minima), 1)
        mk, mr = k[minima], residual[minima]
        slope = float(np.median((mr[j] - mr[i]) / (mk[j] - mk[i])))
    detrended = residual - slope * k
    lateness: np.ndarray = np.empty_like(detrended)
    lateness[order] = detrended - detrended.min()
    return lateness


@dataclass(frozen=True)
class Pacing:
    lateness_ms: tuple[float, float, float]  # p50, p99, max
    frames: int
    missing: int  # frame indices absent between the window's first and last frame


def pacing_of(stamps: Sequence[tuple[float, float]], window: tuple[float, float],
              fps: float) -> Pacing:
    """``stamps``: (kernel receive time, frame time) of each VMC datagram; ``window``: the
    receive-time range to look at (same clock as the stamps)."""
    pairs = np.array([s for s in stamps if window[0] <= s[0] <= window[1]], dtype=np.float64)
    if len(pairs) < 2:
        raise RuntimeError(f"only {len(pairs)} VMC frames arrived in the window")
    index = np.rint(pairs[:, 1] * fps).astype(np.int64)
    index, first = np.unique(index, return_index=True)  # a repeated frame (none expected)
    lateness = grid_lateness_s(pairs[first, 0], index, 1.0 / fps, max(2, round(CHUNK_S * fps)))
    return Pacing(
        lateness_ms=(percentile(lateness, 50) * 1e3, percentile(lateness, 99) * 1e3,
                     float(lateness.max()) * 1e3),
        frames=len(index),
        missing=int(index[-1] - index[0] + 1 - len(index)),
    )


# --- the receiver process ------------------------------------------------------------------------


def _receive_main(stamped: int, drained: int) -> int:
    """The receiver process: ``stamped`` VMC sockets whose datagrams it stamps, ``drained``
    sockets it reads and drops; prints the ports, then on a line on stdin (or EOF) prints one
    JSON line: each stamped socket's [kernel receive time, VMC frame time] pairs."""
    selector = selectors.DefaultSelector()
    sockets = []
    for number in range(stamped + drained):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        if number < stamped:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, number)
        sockets.append(sock)
    selector.register(sys.stdin, selectors.EVENT_READ, -1)
    print(" ".join(str(s.getsockname()[1]) for s in sockets), flush=True)
    stamps: list[list[tuple[float, float]]] = [[] for _ in range(stamped)]
    while True:
        for key, _ in selector.select():
            number = key.data
            if number < 0:
                sys.stdin.readline()
                print(json.dumps(stamps), flush=True)
                return 0
            try:
                data, ancillary, _, _ = sockets[number].recvmsg(65536, 64)
            except BlockingIOError:
                continue
            if number >= stamped or data[-len(_VMC_TIME_TAIL) - 4:-4] != _VMC_TIME_TAIL:
                continue
            received = kernel_receive_time(ancillary)
            if received is not None:
                stamps[number].append((received, struct.unpack(">f", data[-4:])[0]))


class Receivers:
    """The receiver process: ``stamped_ports`` (VMC, stamped) and ``drained_ports``."""

    def __init__(self, stamped: int, drained: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vadbridge.benchmarks.one_avatar", "--receive",
             str(stamped), str(drained)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        ports = [int(p) for p in self.process.stdout.readline().split()]
        if len(ports) != stamped + drained:
            self.close()
            raise RuntimeError(f"the receiver process reported ports {ports}")
        self.stamped_ports, self.drained_ports = ports[:stamped], ports[stamped:]

    def stamps(self) -> list[list[tuple[float, float]]]:
        """Stop the process; each stamped port's (receive time, frame time) pairs."""
        output, _ = self.process.communicate("stop\n", timeout=30)
        stamps: list[list[tuple[float, float]]] = json.loads(output.splitlines()[-1])
        return stamps

    def close(self) -> None:
        stop_process(self.process, timeout_s=2.0)


# --- the processes under test ----------------------------------------------------------------


def daemon_config(osc_port: int, ports: dict[str, int], fps: int) -> str:
    outputs = "".join(f"  - {{type: {kind}, host: {HOST}, port: {ports[kind]}}}\n"
                      for kind in KINDS)
    return (f"frame_rate: {fps}\nstats_interval_s: 0\n"
            f"inputs:\n  - {{type: osc, host: {HOST}, port: {osc_port}}}\n"
            f"outputs:\n{outputs}")


def start_daemon(directory: Path, osc_port: int, ports: dict[str, int],
                 fps: int) -> subprocess.Popen[bytes]:
    config = directory / "one_avatar.yaml"
    config.write_text(daemon_config(osc_port, ports, fps))
    argv = [sys.executable, "-m", "vadbridge", "run", "--config", str(config)]
    return start_logged(directory, "daemon", argv, "streaming at", timeout_s=_START_TIMEOUT_S)


def start_naive(directory: Path, osc_port: int, ports: dict[str, int],
                fps: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "vadbridge.benchmarks.naive_daemon", "--osc-port",
            str(osc_port), "--fps", str(fps),
            *[arg for kind in KINDS for arg in (f"--{kind}", f"{HOST}:{ports[kind]}")]]
    return start_logged(directory, "naive", argv, READY, timeout_s=_START_TIMEOUT_S)


def send_vad(ports: Sequence[int], stop: threading.Event) -> None:
    """``/vad v a d`` at INPUT_HZ to each port until ``stop``: slow sines, out of phase."""
    phases = np.array([0.0, 2.1, 4.2])
    amplitudes = np.array([0.8, 0.6, 0.5])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        sent = 0
        while not stop.is_set():
            angle = 2 * math.pi * (sent / INPUT_HZ) / VAD_PERIOD_S + phases
            message = encode_message("/vad", "fff", (amplitudes * np.sin(angle)).tolist())
            for port in ports:
                sock.sendto(message, (HOST, port))
            sent += 1
            stop.wait(max(0.0, start + sent / INPUT_HZ - time.monotonic()))


# --- the benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneAvatarRun:
    seconds: float
    daemon_cpu_pct: float
    naive_cpu_pct: float
    daemon: Pacing
    naive: Pacing
    machine_busy_pct: float  # all processes, both side by side included, % of all cores
    machine_steal_pct: float  # time the hypervisor ran other guests on our CPUs
    floor_cpu_pct: dict[str, float]  # benchmarks/floor.py's processes, by name

    def results(self) -> list[Result]:
        p50, p99, worst = self.daemon.lateness_ms
        return [
            Result("one_avatar", CASE, "CPU", self.daemon_cpu_pct, "% of a core",
                   self.naive_cpu_pct),
            Result("one_avatar", CASE, "lateness p50", p50, "ms"),
            Result("one_avatar", CASE, "lateness p99", p99, "ms", self.naive.lateness_ms[1]),
            Result("one_avatar", CASE, "lateness max", worst, "ms"),
            Result("one_avatar", CASE, "frames received", self.daemon.frames, "frames"),
            Result("one_avatar", CASE, "frames missing", self.daemon.missing, "frames"),
            Result("one_avatar", CASE, "machine busy (every process)", self.machine_busy_pct,
                   "% of all cores"),
            Result("one_avatar", CASE, "machine steal (hypervisor)", self.machine_steal_pct,
                   "% of all cores"),
        ] + [Result("one_avatar", f"floor: {name}, {FPS} wakes/s", "CPU", pct, "% of a core")
             for name, pct in self.floor_cpu_pct.items()]


def measure(*, seconds: float, warmup_s: float, fps: int = FPS,
            progress: Callable[[str], None] = lambda _: None) -> OneAvatarRun:
    """One side-by-side run: both processes started, warmed up, measured over ``seconds``."""
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    floor_sends = sum(len(SEND_BYTES) for floor in FLOORS if floor.sends)
    receivers = Receivers(stamped=2, drained=4 + floor_sends)
    daemon = naive = None
    floors: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        vmc_ports = iter(receivers.stamped_ports)
        others = iter(receivers.drained_ports)
        daemon_ports = {"vmc": next(vmc_ports), "osc": next(others), "livelink": next(others)}
        naive_ports = {"vmc": next(vmc_ports), "osc": next(others), "livelink": next(others)}
        daemon_in, naive_in = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        with scratch_dir() as directory:
            progress("one avatar: starting the daemon, the naive process and the floors")
            daemon = start_daemon(directory, daemon_in, daemon_ports, fps)
            naive = start_naive(directory, naive_in, naive_ports, fps)
            for floor in FLOORS:
                ports = [next(others) for _ in SEND_BYTES] if floor.sends else []
                floors.append(start_logged(directory, floor.name.replace(" ", "_"),
                                           floor_argv(floor, ports, fps), FLOOR_READY,
                                           timeout_s=_START_TIMEOUT_S))
            sender = threading.Thread(target=send_vad, args=((daemon_in, naive_in), stop),
                                      name="vad sender", daemon=True)
            sender.start()
            time.sleep(warmup_s)
            progress(f"one avatar: measuring {seconds:g} s")
            measured = [daemon, naive, *floors]
            ticks = [cpu_ticks(process.pid) for process in measured]
            machine = machine_ticks()
            wall, window_start = time.monotonic(), time.time()
            time.sleep(seconds)
            ticks_after = [cpu_ticks(process.pid) for process in measured]
            machine_after = machine_ticks()
            wall, window_end = time.monotonic() - wall, time.time()
            if any(process.poll() is not None for process in measured):
                raise RuntimeError("a process under test exited during the measurement")
        stop.set()
        sender.join()
        stop_process(daemon)
        stop_process(naive)
        daemon_stamps, naive_stamps = receivers.stamps()
    finally:
        stop.set()
        for process in (daemon, naive, *floors):
            if process is not None:
                stop_process(process)
        receivers.close()
    cpu = [(after - before) / ticks_per_s / wall * 100
           for before, after in zip(ticks, ticks_after, strict=True)]
    busy, steal, total = (after - before for before, after in zip(machine, machine_after,
                                                                   strict=True))
    window = (window_start, window_end)
    return OneAvatarRun(seconds=wall, daemon_cpu_pct=cpu[0], naive_cpu_pct=cpu[1],
                        daemon=pacing_of(daemon_stamps, window, fps),
                        naive=pacing_of(naive_stamps, window, fps),
                        machine_busy_pct=busy / max(total, 1) * 100,
                        machine_steal_pct=steal / max(total, 1) * 100,
                        floor_cpu_pct={floor.name: pct
                                       for floor, pct in zip(FLOORS, cpu[2:], strict=True)})


def run(*, quick: bool, seconds: float | None = None,
        progress: Callable[[str], None] = lambda _: None) -> list[Result]:
    window = seconds if seconds is not None else 3.0 if quick else 20.0
    return measure(seconds=window, warmup_s=0.5 if quick else 2.0, progress=progress).results()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vadbridge.benchmarks.one_avatar",
        description="One avatar, VMC + OSC + Live Link, inputs at 30 Hz: the daemon's CPU and "
        "lateness beside the naive process's (docs/performance.md).",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup-s", type=float, default=2.0,
                        help="seconds after both started before the window opens")
    parser.add_argument("--receive", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receive:
        return _receive_main(*args.receive)
    results = measure(seconds=args.seconds, warmup_s=args.warmup_s,
                      progress=lambda m: print(f"# {m}", file=sys.stderr, flush=True)).results()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print(format_table(results))
    print()
    for line in target_lines(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
