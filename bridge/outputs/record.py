"""Recording sink: every frame as one row of a Live Link Face CSV (Unreal, Blender, Maya importers).

Layout as Epic's Live Link Face app writes it (checked against a real capture,
alexdjulin/LiveLinkFace-CSV-Retarget-For-Motionbuilder ``anim/S07-001.csv``):

- header ``Timecode,BlendShapeCount,`` + the 52 shapes in UpperCamelCase + ``HeadYaw,HeadPitch,
  HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll``. The
  shapes follow the packet order of docs/references.md ("Live Link Face") except
  that the app's CSV lists ``JawRight,JawLeft`` and ``MouthRight,MouthLeft`` (right first).
  Importers that read columns by position (e.g. nmfisher/blender_livelinkface) hard-code that
  header, so we write it byte for byte and place every value by name.
- ``Timecode`` = ``HH:MM:SS:FF.fff``: time of day, ``FF`` the frame at a 60 fps timecode rate
  (00-59) and ``.fff`` the fraction of that frame (the subframe) in thousandths. In the real
  capture consecutive 30 Hz rows read ``12:27:47:47.169``, ``…:49.169``, ``…:51.168``, … so
  ``FF`` steps by two and the fraction drifts slowly: it is a subframe, not milliseconds.
- ``BlendShapeCount`` = 61; values with 10 decimals; head and eye rotations 0.

``send`` runs in the frame loop, so it only formats the line and appends it to a bounded queue;
a writer thread owns the file and writes the rows in order, so a slow or network disk never
stalls frames. The writer wakes per queued row and flushes every batch it drains, so a crash
(kill -9) loses only the rows still queued, normally the last frame's. A writer more than
``max_pending_rows`` behind drops new rows. Dropped rows, disk full or any other ``OSError``
are counted in ``send_errors`` and logged once per kind, never raised (docs/DESIGN.md, "Sources
and sinks"). Once a second the writer checks the file is still at its path: a file (or folder)
deleted or replaced mid-take is logged once and every row written after that is counted in
``send_errors`` (it goes to a file nobody can open any more).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

import numpy as np

from vadbridge.config import FRAME_RATE_RANGE
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES, upper_camel
from vadbridge.outputs.livelink import LIVE_LINK_NAMES
from vadbridge.outputs.timecode import SECONDS_PER_DAY, TimeOfDayAnchor, local_time_of_day_s

__all__ = [
    "CSV_BLENDSHAPE_NAMES",
    "CSV_COLUMNS",
    "HEAD_EYE_COLUMNS",
    "MAX_PENDING_ROWS",
    "TIMECODE_FPS",
    "RecordSink",
    "csv_header",
    "format_row",
    "format_timecode",
]

logger = logging.getLogger("vadbridge.outputs")

TIMECODE_FPS: Final = 60  # the app's CSV timecode counts frames 00-59
BLENDSHAPE_COUNT: Final = 61
PATH_CHECK_INTERVAL_S: Final = 1.0  # how often the writer checks its file is still there
_BUFFER_BYTES: Final = 256 * 1024  # a batch of up to ~370 rows (~700 bytes each) per write
# 10 s of frames at the highest frame rate: ~1.7 MB of rows.
MAX_PENDING_ROWS: Final = 10 * FRAME_RATE_RANGE[1]
CLOSE_TIMEOUT_S: Final = 5.0  # close() waits this long for the writer, then leaves it running

_CSV_SWAPS: Final = {"JawLeft": "JawRight", "JawRight": "JawLeft",
                     "MouthLeft": "MouthRight", "MouthRight": "MouthLeft"}  # fmt: skip
CSV_BLENDSHAPE_NAMES: Final[tuple[str, ...]] = tuple(
    _CSV_SWAPS.get(name, name) for name in LIVE_LINK_NAMES[:NUM_BLENDSHAPES]
)
HEAD_EYE_COLUMNS: Final[tuple[str, ...]] = LIVE_LINK_NAMES[NUM_BLENDSHAPES:]
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "Timecode",
    "BlendShapeCount",
    *CSV_BLENDSHAPE_NAMES,
    *HEAD_EYE_COLUMNS,
)

# _SOURCE[j] is the model index of the j-th blendshape column (mapped by name, never by index).
_MODEL_INDEX: Final = {upper_camel(name): i for i, name in enumerate(ARKIT_NAMES)}
_SOURCE: Final = np.array([_MODEL_INDEX[name] for name in CSV_BLENDSHAPE_NAMES], dtype=np.intp)
if sorted(_SOURCE.tolist()) != list(range(NUM_BLENDSHAPES)):
    raise AssertionError("CSV_BLENDSHAPE_NAMES must be the 52 ARKit blendshapes")

_ROW_FORMAT: Final = (
    "%s," + str(BLENDSHAPE_COUNT) + ",%.10f" * NUM_BLENDSHAPES
    + ",0.0000000000" * len(HEAD_EYE_COLUMNS) + "\n"
)  # fmt: skip


_GONE_REASON: Final = (
    "the file was deleted, moved or replaced (or its folder was); rows go to a file no longer "
    "at that path and are counted as lost"
)


def csv_header() -> str:
    """The header line (no newline), identical to the Live Link Face app's."""
    return ",".join(CSV_COLUMNS)


def format_timecode(seconds: float, fps: int = TIMECODE_FPS) -> str:
    """``HH:MM:SS:FF.fff`` for ``seconds`` since midnight (wrapping at 24 h).

    ``FF`` is the whole frame at ``fps``, ``.fff`` the rest of the frame in thousandths; a
    fraction that rounds to 1.000 carries into the next frame.
    """
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ValueError(f"timecode fps must be a positive integer, got {fps!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"timecode seconds must be finite and >= 0, got {seconds!r}")
    frames = seconds * fps
    whole = math.floor(frames)
    thousandths = round((frames - whole) * 1000)
    if thousandths == 1000:
        whole, thousandths = whole + 1, 0
    total_s, frame = divmod(whole, fps)
    total_s %= SECONDS_PER_DAY
    return (
        f"{total_s // 3600:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d}:"
        f"{frame:02d}.{thousandths:03d}"
    )


def format_row(weights: np.ndarray, time_of_day_s: float, fps: int = TIMECODE_FPS) -> str:
    """One CSV line (with newline): ``weights`` (52,) in model order, reordered by name."""
    if weights.shape != (NUM_BLENDSHAPES,):
        raise ValueError(f"expected weights of shape (52,), got {weights.shape}")
    values: list[float] = weights[_SOURCE].tolist()
    return _ROW_FORMAT % (format_timecode(time_of_day_s, fps), *values)


def _open_csv(path: Path) -> TextIO:
    return path.open("w", encoding="utf-8", newline="", buffering=_BUFFER_BYTES)


class RecordSink:
    """Writes every frame of one avatar to ``path`` (created or truncated at construction).

    The timecode is the local time of day, anchored at the first frame (that frame's wall
    clock minus its ``time_s``) and advanced by ``time_s``, so rows keep the frame loop's exact
    spacing (``TimeOfDayAnchor``, shared with the Live Link packets). Opening the file raises
    ``OSError`` at construction (fail at start); later I/O errors happen in the writer thread
    and are counted in ``send_errors``, one per row lost.
    ``frames_written`` counts rows flushed to the file. ``time_of_day``, ``clock`` (when to
    check the file is still at its path), ``opener`` and ``max_pending_rows`` are injectable for
    tests.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        avatar: str = "default",
        name: str,
        time_of_day: Callable[[], float] = local_time_of_day_s,
        clock: Callable[[], float] = time.monotonic,
        opener: Callable[[Path], TextIO] = _open_csv,
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        if isinstance(max_pending_rows, bool) or not isinstance(max_pending_rows, int):
            raise ValueError(f"max_pending_rows must be an integer, got {max_pending_rows!r}")
        if max_pending_rows < 1:
            raise ValueError(f"max_pending_rows must be >= 1, got {max_pending_rows}")
        self.path = Path(path)
        self.avatar = avatar
        self.name = name
        self.frames_written = 0  # only the writer thread changes it
        self.send_errors = 0  # changed under _errors_lock: both threads count
        self._anchor = TimeOfDayAnchor(time_of_day)
        self._clock = clock
        self._max_pending_rows = max_pending_rows
        self._logged: set[int | str | None] = set()
        self._errors_lock = threading.Lock()
        # One producer (send) and one consumer (the writer): deque append/popleft are atomic,
        # so the frame loop never waits for a lock the writer holds during I/O.
        self._pending: deque[str] = deque()
        self._wake = threading.Event()
        self._closing = False
        try:
            self._file = opener(self.path)
        except OSError as error:
            raise OSError(
                error.errno, f"output {name!r}: cannot open {str(self.path)!r} for writing: "
                f"{error.strerror or error}",
            ) from error  # fmt: skip
        self._unflushed_rows = 0
        self._detached = False  # the file is no longer at self.path (deleted or replaced)
        self._writer = threading.Thread(
            target=self._run_writer, name=f"vadbridge {name}", daemon=True
        )
        self._writer.start()

    def send(self, frame: Frame) -> None:
        """Queue one row for the writer thread. Never blocks on I/O, never raises OSError."""
        if self._closing:
            self._fail("closed", "the recording is already closed")
            return
        row = format_row(frame.weights, self._anchor.seconds(frame.time_s))
        # Only the writer shrinks the queue meanwhile, so this check can only be pessimistic.
        if len(self._pending) >= self._max_pending_rows:
            self._fail(
                "overflow",
                f"the writer is {self._max_pending_rows} rows behind, new rows are dropped",
            )
            return
        self._pending.append(row)
        self._wake.set()

    def close(self) -> None:
        """Write the queued rows, flush and close the file (idempotent).

        Waits at most ``CLOSE_TIMEOUT_S`` for the writer; a writer stuck on a dead disk is left
        to finish (it is a daemon thread) and the wait is logged.
        """
        if self._closing:
            return
        self._closing = True  # set after the caller's last send: the writer drains everything
        self._wake.set()
        self._writer.join(CLOSE_TIMEOUT_S)
        if self._writer.is_alive():
            logger.warning(
                "output %s (%s): the writer is still busy after %.0f s; %d rows not yet written",
                self.name, self.path, CLOSE_TIMEOUT_S, len(self._pending),
            )  # fmt: skip

    @property
    def closed(self) -> bool:
        return self._closing

    def _run_writer(self) -> None:
        self._write_text(csv_header() + "\n", rows=0)
        self._flush()
        last_check_s = self._clock()
        while True:
            self._wake.wait(PATH_CHECK_INTERVAL_S)
            self._wake.clear()
            closing = self._closing  # read before draining: no row is queued after it is set
            batch: list[str] = []
            while self._pending:
                batch.append(self._pending.popleft())
            if batch:
                # One write and one flush per batch: send() wakes the writer per row, so a
                # batch is normally one frame's row and a crash loses at most what is queued.
                self._write_text("".join(batch), rows=len(batch))
                self._flush()
            if closing:
                break
            now_s = self._clock()
            if not self._detached and now_s - last_check_s >= PATH_CHECK_INTERVAL_S:
                last_check_s = now_s
                self._check_still_at_path()
        self._flush()
        try:
            self._file.close()
        except OSError as error:  # close() flushes again; a still-full disk fails here too
            self._fail(error.errno, error)

    def _check_still_at_path(self) -> None:
        """Notice a file (or its folder) deleted or replaced mid-take: writes still succeed,
        into a file nobody can open any more, so from now on every row counts as lost."""
        try:
            opened = os.fstat(self._file.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (a test's stand-in)
            return
        try:
            current = os.stat(self.path)
            same = (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)
        except OSError:
            same = False
        if not same:
            self._detached = True
            self._fail("gone", _GONE_REASON, count=0)

    def _write_text(self, text: str, rows: int) -> None:
        self._unflushed_rows += rows
        try:
            self._file.write(text)
        except OSError as error:
            self._lose_unflushed(error)

    def _flush(self) -> None:
        try:
            self._file.flush()
        except OSError as error:
            self._lose_unflushed(error)
            return
        rows, self._unflushed_rows = self._unflushed_rows, 0
        if self._detached:
            if rows:
                self._fail("gone", _GONE_REASON, count=rows)
            return
        self.frames_written += rows

    def _lose_unflushed(self, error: OSError) -> None:
        rows, self._unflushed_rows = self._unflushed_rows, 0
        self._fail(error.errno, error, count=max(rows, 1))

    def _fail(self, key: int | str | None, error: OSError | str, count: int = 1) -> None:
        with self._errors_lock:
            self.send_errors += count
            if key in self._logged:
                return
            self._logged.add(key)
        kind = errno.errorcode.get(key, "?") if isinstance(key, int) else str(key)
        reason = error.strerror or str(error) if isinstance(error, OSError) else error
        logger.warning(
            "output %s (%s): write failed with %s (%s); further %s failures are only counted",
            self.name, self.path, kind, reason, kind,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"RecordSink({self.name!r}, {str(self.path)!r}, avatar={self.avatar!r})"
