"""``vadbridge replay take.csv``: stream a Live Link Face CSV recording at its original timing.

Reads takes written by ``RecordSink`` or by Epic's Live Link Face app (bridge/outputs/record.py
describes the layout): columns are matched by name, case-insensitively, extra columns (head and
eye rotations, ``BlendShapeCount`` or, as newer app versions spell it, ``BlendshapeCount``) are
ignored, a missing blendshape column is an error naming it. Row times come from the
``Timecode`` column (``HH:MM:SS:FF.fff``, ``FF`` at 60 fps by default); frames go out on
absolute deadlines ``start + t / speed``, so a late frame never delays the ones after it.
A take whose last row is cut off (the recorder was killed or the disk filled mid-row) plays its
whole rows; ``Take.warning`` says what was dropped and the command prints it once.
Outputs are the daemon's encoders behind ``UdpSink``.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from vadbridge.commands.args import fail, host_port, integer, positive_float
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES, upper_camel
from vadbridge.outputs import LiveLinkEncoder, OscEncoder, VmcEncoder
from vadbridge.outputs.record import TIMECODE_FPS
from vadbridge.outputs.udp import UdpSink

__all__ = ["Take", "TakeError", "add_parser", "load_take", "parse_timecode", "replay"]

_SECONDS_PER_DAY: Final = 86400
_TIMECODE: Final = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2}):(\d{1,3})(?:\.(\d+))?")
_DEFAULT_RATE_HZ: Final = 60
_SHOWN_CHARS: Final = 40


class TakeError(ValueError):
    """A take file that cannot be replayed; ``str()`` is ``path[:line]: reason``."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class Sink(Protocol):
    def send(self, frame: Frame) -> None: ...


@dataclass(frozen=True)
class Take:
    """A recording: ``times_s`` (N,) seconds from the first row, ``weights`` (N, 52) float32
    in model order, values clipped to [0, 1]."""

    times_s: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float32]
    warning: str | None = None  # e.g. a cut-off last row that was left out

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1])

    @property
    def frame_period_s(self) -> float:
        """The median row spacing (1/60 s for a one-row take); the gap between loops."""
        steps = np.diff(self.times_s)
        steps = steps[steps > 0]
        return float(np.median(steps)) if len(steps) else 1.0 / _DEFAULT_RATE_HZ

    @property
    def frame_rate(self) -> int:
        """The frame rate rounded to an integer (the Live Link packet's rate numerator)."""
        return max(1, round(1.0 / self.frame_period_s))


def parse_timecode(text: str, fps: int = TIMECODE_FPS) -> float:
    """Seconds since midnight of ``HH:MM:SS:FF[.fff]``; ``.fff`` is a fraction of a frame."""
    match = _TIMECODE.fullmatch(text.strip())
    if match is None:  # the cell is cut to a readable length (a damaged take may hold KBs)
        shown = repr(text) if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]!r}..."
        raise ValueError(f"timecode {shown} is not HH:MM:SS:FF.fff")
    hours, minutes, seconds, frame = (int(match[i]) for i in range(1, 5))
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"timecode {text!r}: minutes and seconds must be below 60")
    if frame >= fps:
        raise ValueError(
            f"timecode {text!r}: frame {frame} is not below the timecode rate {fps} "
            "(set the rate with --timecode-fps)"
        )
    fraction = float("0." + match[5]) if match[5] else 0.0
    return hours * 3600 + minutes * 60 + seconds + (frame + fraction) / fps


def _columns(header: list[str], where: str) -> tuple[int, list[int]]:
    """Indices of the Timecode column and of the 52 shapes in model order (by name)."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name.strip().lower(), i)
    wanted = ["Timecode", *(upper_camel(name) for name in ARKIT_NAMES)]
    missing = [name for name in wanted if name.lower() not in index]
    if missing:
        raise TakeError(where, 1, f"missing column(s): {', '.join(missing)}")
    return index["timecode"], [index[name.lower()] for name in wanted[1:]]


def _rows_marking_the_last(
    rows: Iterator[list[str]], lines: Callable[[], int]
) -> Iterator[tuple[list[str], int, bool]]:
    """``(row, line, is_last)`` for each row, reading one row ahead."""
    previous = next(rows, None)
    previous_line = lines()
    for row in rows:
        assert previous is not None
        yield previous, previous_line, False
        previous, previous_line = row, lines()
    if previous is not None:
        yield previous, previous_line, True


def load_take(path: str | Path, *, timecode_fps: int = TIMECODE_FPS) -> Take:
    """Read a Live Link Face CSV; raises ``TakeError`` (or ``OSError``) naming what is wrong.

    A bad row is an error, except the last one: a recorder killed or out of disk space leaves
    a row cut off there, so that row is left out and ``Take.warning`` says so.
    """
    where = str(path)
    warning = None
    with Path(path).open(encoding="utf-8-sig", newline="") as file:
        rows = csv.reader(file)
        header = next(rows, None)
        if header is None:
            raise TakeError(where, None, "empty file (expected a Live Link Face CSV header)")
        time_column, shape_columns = _columns(header, where)
        needed = max(time_column, *shape_columns) + 1
        times: list[float] = []
        values: list[list[float]] = []
        day_offset_s = 0.0
        for row, line, is_last in _rows_marking_the_last(rows, lambda: rows.line_num):
            if not any(cell.strip() for cell in row):
                continue
            try:
                if len(row) < needed:
                    raise TakeError(
                        where, line, f"{len(row)} fields, the header names {len(header)}"
                    )
                try:
                    t = parse_timecode(row[time_column], timecode_fps) + day_offset_s
                    shapes = [float(row[i]) for i in shape_columns]
                except ValueError as error:
                    raise TakeError(where, line, str(error)) from None
                if not all(math.isfinite(x) for x in shapes):
                    raise TakeError(where, line, "a blendshape value is not finite")
            except TakeError as error:
                if not is_last or not times:
                    raise
                warning = (f"{error}: the last row is cut off (recording interrupted?); "
                           f"playing the {len(times)} whole rows before it")
                break
            if times and t < times[-1]:
                if times[-1] - t > _SECONDS_PER_DAY / 2:  # the take runs past midnight
                    day_offset_s += _SECONDS_PER_DAY
                    t += _SECONDS_PER_DAY
                else:
                    raise TakeError(where, line, f"timecode {row[time_column]!r} goes backwards")
            times.append(t)
            values.append(shapes)
    if not times:
        raise TakeError(where, None, "no frames after the header")
    times_s = np.array(times, dtype=np.float64)
    weights = np.clip(np.array(values, dtype=np.float32), 0.0, 1.0)
    return Take(times_s - times_s[0], weights, warning)


def replay(
    take: Take,
    sinks: Sequence[Sink],
    *,
    speed: float = 1.0,
    repeat: int | None = 1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send every frame of ``take`` to every sink at ``start + t / speed``; returns the count.

    ``repeat`` = how many times to play the take (None = until interrupted); each pass starts
    one frame period after the previous one's last frame. ``time_s`` passed to the sinks is
    take time (continuing across passes); frame numbers count up from 0.
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be > 0, got {speed!r}")
    pass_s = take.duration_s + take.frame_period_s
    start_s = clock()
    face = Frame(take.weights[0])  # one frame object, re-pointed at each row
    done = 0
    while repeat is None or done < repeat:
        offset_s = done * pass_s
        for t_s, weights in zip(take.times_s.tolist(), take.weights, strict=True):
            delay_s = start_s + (offset_s + t_s) / speed - clock()
            if delay_s > 0:
                sleep(delay_s)
            face.weights = weights
            face.time_s = offset_s + t_s
            for sink in sinks:
                sink.send(face)
            face.number += 1
        done += 1
    return face.number


# --- command line -----------------------------------------------------------------------------


def _sinks(args: argparse.Namespace, take: Take) -> list[UdpSink]:
    sinks: list[UdpSink] = []
    try:
        if args.vmc_out is not None:
            sinks.append(UdpSink(VmcEncoder(), *args.vmc_out, name="vmc-out"))
        if args.osc_out is not None:
            sinks.append(UdpSink(OscEncoder(mode=args.osc_mode), *args.osc_out, name="osc-out"))
        if args.livelink_out is not None:
            encoder = LiveLinkEncoder(fps=take.frame_rate)
            sinks.append(UdpSink(encoder, *args.livelink_out, name="livelink-out"))
    except OSError:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def _describe(sink: UdpSink) -> str:
    return f"{sink.name} {sink.host}:{sink.port}"


def run_replay(args: argparse.Namespace) -> int:
    if args.vmc_out is None and args.osc_out is None and args.livelink_out is None:
        return fail("replay", "choose at least one of --vmc-out, --osc-out, --livelink-out")
    try:
        take = load_take(args.take, timecode_fps=args.timecode_fps)
    except (TakeError, OSError, UnicodeDecodeError, csv.Error) as error:
        return fail("replay", error)
    if take.warning is not None:
        print(f"vadbridge replay: warning: {take.warning}", file=sys.stderr)
    try:
        sinks = _sinks(args, take)
    except OSError as error:
        return fail("replay", error)
    print(
        f"replaying {args.take}: {len(take)} frames, {take.duration_s:.2f} s at ~{take.frame_rate}"
        f" fps{' (looping)' if args.loop else ''} to {', '.join(_describe(s) for s in sinks)}"
    )
    status = 0
    try:
        replay(take, sinks, speed=args.speed, repeat=None if args.loop else 1)
    except KeyboardInterrupt:
        status = 130
    finally:
        neutral = Frame(np.zeros(NUM_BLENDSHAPES, dtype=np.float32))
        for sink in sinks:
            sink.send(neutral)  # leave receivers on a neutral face, like the daemon
            sink.close()
    errors = {sink.name: sink.send_errors for sink in sinks if sink.send_errors}
    if errors:
        print(f"vadbridge replay: send errors (receiver down?): {errors}", file=sys.stderr)
    return status


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="stream a Live Link Face CSV take to VMC/OSC/Live Link receivers",
        description=(
            "Stream a recording (ours or the Live Link Face app's CSV) at its original timing "
            "to one or more receivers."
        ),
    )
    parser.add_argument("take", help="the CSV file")
    parser.add_argument(
        "--vmc-out", type=host_port, metavar="HOST:PORT",
        help="VMC receiver (VSeeFace listens on port 39539)",
    )  # fmt: skip
    parser.add_argument("--osc-out", type=host_port, metavar="HOST:PORT", help="OSC receiver")
    parser.add_argument(
        "--osc-mode", choices=("per_shape", "array"), default="per_shape",
        help="OSC layout: one bundle of /blendshape/<name> f (per_shape) or one /blendshape "
        "message with 52 floats (array)",
    )  # fmt: skip
    parser.add_argument(
        "--livelink-out", type=host_port, metavar="HOST:PORT",
        help="Unreal Live Link Face receiver (Unreal listens on port 11111)",
    )  # fmt: skip
    parser.add_argument(
        "--speed", type=positive_float, default=1.0, metavar="F", help="play F times faster"
    )
    parser.add_argument("--loop", action="store_true", help="repeat until interrupted (Ctrl-C)")
    parser.add_argument(
        "--timecode-fps", type=integer(1, 1000), default=TIMECODE_FPS, metavar="N",
        help="frame rate of the Timecode column's FF field (the Live Link Face app and "
        "vadbridge write it at the default)",
    )  # fmt: skip
    parser.set_defaults(func=run_replay)
