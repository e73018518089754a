"""Shared benchmark plumbing: the results table, the model pair, BLAS threads, UDP receivers.

Every benchmark returns ``Result`` rows; ``format_table`` prints them as one Markdown table (the
same text goes into docs/performance.md) and ``parse_table`` reads it back (the smoke test).
Results measured side by side carry the reference in ``baseline``: the ratio column is
``baseline / bridge``, so "60x" means the bridge needs 1/60 of the reference's time.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vadbridge.model.engine import NumpyMLP

if TYPE_CHECKING:
    from torch import nn

TABLE_COLUMNS: tuple[str, ...] = (
    "benchmark", "case", "metric", "bridge", "baseline", "ratio", "unit",
)  # fmt: skip
RECEIVE_BUFFER_BYTES = 8 << 20  # Linux caps it at net.core.rmem_max (4 MiB here, doubled)


@dataclass(frozen=True)
class Result:
    benchmark: str
    case: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None  # the reference measured in the same run, same unit

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.value <= 0:
            return None
        return self.baseline / self.value


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    magnitude = abs(value)
    return (
        f"{value:.3g}" if magnitude < 0.01 else f"{value:.3f}" if magnitude < 10 else f"{value:.1f}"
    )


def format_table(results: Sequence[Result]) -> str:
    """A Markdown table, one row per result; empty cells are ``-``."""
    lines = [
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
    ]
    for r in results:
        ratio = r.ratio
        cells = (
            r.benchmark,
            r.case,
            r.metric,
            _number(r.value),
            "-" if r.baseline is None else _number(r.baseline),
            "-" if ratio is None else f"{ratio:.1f}x",
            r.unit,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_table(text: str) -> list[dict[str, Any]]:
    """The rows of every table ``format_table`` printed in ``text`` (other lines are ignored).

    Numbers come back as floats (``baseline``/``ratio`` as None when empty). Raises ValueError
    naming the line when a table row does not have the expected cells.
    """
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if tuple(cells) == TABLE_COLUMNS:
            continue
        if len(cells) != len(TABLE_COLUMNS):
            raise ValueError(f"line {number}: {len(cells)} cells, expected {len(TABLE_COLUMNS)}")
        row: dict[str, Any] = dict(zip(TABLE_COLUMNS, cells, strict=True))
        try:
            row["bridge"] = float(cells[3])
            row["baseline"] = None if cells[4] == "-" else float(cells[4])
            row["ratio"] = None if cells[5] == "-" else float(cells[5].removesuffix("x"))
        except ValueError as error:
            raise ValueError(f"line {number}: {error}: {line!r}") from None
        rows.append(row)
    return rows


def percentile(samples: Sequence[float] | np.ndarray, q: float) -> float:
    return (
        float(np.percentile(np.asarray(samples, dtype=np.float64), q)) if len(samples) else math.nan
    )


def median_time_s(fn: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` calls (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# --- the model -----------------------------------------------------------------------------------


@dataclass
class Models:
    """The same weights twice: the torch module (the naive reference; None without torch) and
    the numpy engine."""

    engine: NumpyMLP
    module: nn.Module | None
    checkpoint: Path  # an .npz that ``vadbridge run`` can load
    source: str  # "bundled" or "random (seed N)"


def load_models(workdir: Path, seed: int = 0, *, torch_module: bool = True) -> Models:
    """The bundled checkpoint if it exists, else a seeded random ``VADBlendshapeMLP``.

    Timing does not depend on the weights' values, only on the architecture. Without
    ``torch_module`` (no torch installed) only the numpy engine of the bundled checkpoint.
    """
    from vadbridge.model.api import DEFAULT_CHECKPOINT
    from vadbridge.model.checkpoint import export_npz, load_engine, make_meta

    if not torch_module:
        engine, _meta = load_engine(DEFAULT_CHECKPOINT)
        return Models(engine=engine, module=None, checkpoint=DEFAULT_CHECKPOINT, source="bundled")
    import torch

    from vadbridge.model.network import VADBlendshapeMLP

    torch.set_num_threads(1)
    if DEFAULT_CHECKPOINT.is_file():
        checkpoint, source = DEFAULT_CHECKPOINT, "bundled"
    else:
        torch.manual_seed(seed)
        state = VADBlendshapeMLP().state_dict()
        checkpoint = export_npz(workdir / "random.npz", state, make_meta())
        source = f"random (seed {seed})"
    engine, _meta = load_engine(checkpoint)
    module = VADBlendshapeMLP(engine.config)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in engine.state_dict().items()})
    module.eval()
    return Models(engine=engine, module=module, checkpoint=Path(checkpoint), source=source)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vadbridge-bench-") as name:
        yield Path(name)


# --- receivers -----------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free for ``kind`` (TCP by default, ``socket.SOCK_DGRAM`` for UDP) now."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DrainedReceiver:
    """A loopback UDP socket in this process, drained between frames (outside the timing)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.received = 0

    def drain(self) -> int:
        count = 0
        try:
            while True:
                self.sock.recv(65536)
                count += 1
        except BlockingIOError:
            pass
        self.received += count
        return count

    def close(self) -> None:
        self.sock.close()


# Drains in bursts every 2 ms instead of blocking in recv: a blocked reader is woken for every
# datagram, and 60,000 wake-ups a second would compete with the bridge for a 2-core machine.
_DRAIN_SCRIPT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(sys.argv[1]))
s.bind(("127.0.0.1", 0))
s.setblocking(False)
print(s.getsockname()[1], flush=True)
buffer = bytearray(65536)
while True:
    time.sleep(0.002)
    try:
        while True:
            s.recv_into(buffer)
    except BlockingIOError:
        pass
"""


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


def kernel_receive_time(ancillary: Sequence[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time (SO_TIMESTAMPNS, seconds) in a ``recvmsg`` answer's ancillary
    data, or None when it carries none."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return float(seconds + nanoseconds * 1e-9)
    return None


def record_kernel_receive_times(
    sock: socket.socket, stop: threading.Event, times: list[float]
) -> None:
    """Append the kernel's receive time (SO_TIMESTAMPNS, enabled on ``sock`` by the caller) of
    every datagram on ``sock`` to ``times`` until ``stop`` is set: a busy receiving process
    cannot make the sender look late. ``sock`` needs a timeout, so ``stop`` is seen."""
    while not stop.is_set():
        try:
            _, ancillary, _, _ = sock.recvmsg(65536, 64)
        except TimeoutError:
            continue
        received = kernel_receive_time(ancillary)
        if received is not None:
            times.append(received)


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM (the daemon sends its neutral frame and exits), SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_logged(directory: Path, name: str, argv: list[str], ready: str, *,
                 timeout_s: float) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output in ``directory/<name>.log``; return once the log shows
    ``ready`` (raise RuntimeError with the log's tail if it exits or takes over ``timeout_s``)."""
    log_path = directory / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while ready not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"the {name} process did not start (exit code "
                               f"{process.poll()}):\n{log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return process


class ReceiverProcess:
    """Another process draining a loopback UDP port, as VSeeFace would (its CPU is not ours)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _DRAIN_SCRIPT, str(RECEIVE_BUFFER_BYTES)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the receiver process did not report its port (got {line!r})")
        self.port = int(line)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def renice_descendants(root: int, niceness: int) -> None:
    """Every thread of every process below ``root`` to ``niceness`` (Linux, from /proc). Run
    as root, chromium raises its browser process to nice -8 and sets its renderers' priorities
    itself, which a user's browser cannot do: a load generator's niceness holds for its
    children only if it is set again, thread by thread."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    below = list(children.get(root, []))
    while below:
        pid = below.pop()
        below += children.get(pid, [])
        for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
