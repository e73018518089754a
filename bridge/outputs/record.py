"""Recording sink: every frame as one row of a Live Link Face CSV (Unreal, Blender, Maya importers).

Layout as Epic's Live Link Face app writes it (checked against a real capture,
alexdjulin/LiveLinkFace-CSV-Retarget-For-Motionbuilder ``anim/S07-001.csv``):

- header ``Timecode,BlendShapeCount,`` + the 52 shapes in UpperCamelCase + ``HeadYaw,HeadPitch,
  HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll``. The
  shapes follow the packet order of ../shared/reference/protocols.md ("Live Link Face") except
  that the app's CSV lists ``JawRight,JawLeft`` and ``MouthRight,MouthLeft`` (right first).
  Importers that read columns by position (e.g. nmfisher/blender_livelinkface) hard-code that
  header, so we write it byte for byte and place every value by name.
- ``Timecode`` = ``HH:MM:SS:FF.fff``: time of day, ``FF`` the frame at a 60 fps timecode rate
  (00-59) and ``.fff`` the fraction of that frame (the subframe) in thousandths. In the real
  capture consecutive 30 Hz rows read ``12:27:47:47.169``, ``…:49.169``, ``…:51.168``, … so
  ``FF`` steps by two and the fraction drifts slowly: it is a subframe, not milliseconds.
- ``BlendShapeCount`` = 61; values with 10 decimals; head and eye rotations 0.

``send`` only formats one line into a buffered file; the buffer is flushed at least once a
second and on ``close``. Disk full or any other ``OSError`` is counted in ``send_errors`` and
logged once per kind, never raised (docs/DESIGN.md, "Sources and sinks").
"""

from __future__ import annotations

import datetime
import errno
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

import numpy as np

from bridge.outputs.livelink import LIVE_LINK_NAMES
from model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES, upper_camel

__all__ = [
    "CSV_BLENDSHAPE_NAMES",
    "CSV_COLUMNS",
    "HEAD_EYE_COLUMNS",
    "TIMECODE_FPS",
    "RecordSink",
    "csv_header",
    "format_row",
    "format_timecode",
]

logger = logging.getLogger("vadbridge.outputs")

TIMECODE_FPS: Final = 60  # the app's CSV timecode counts frames 00-59
BLENDSHAPE_COUNT: Final = 61
FLUSH_INTERVAL_S: Final = 1.0
_BUFFER_BYTES: Final = 256 * 1024  # > 1 s of rows at 120 fps (~700 bytes each)
_SECONDS_PER_DAY: Final = 86400

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
    total_s %= _SECONDS_PER_DAY
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


def _local_time_of_day_s() -> float:
    now = datetime.datetime.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (now - midnight).total_seconds()


class RecordSink:
    """Writes every frame of one avatar to ``path`` (created or truncated at construction).

    The timecode is the local time of day, anchored at the first frame (that frame's wall
    clock minus its ``time_s``) and advanced by ``time_s``, so rows keep the frame loop's exact
    spacing. Opening the file raises ``OSError`` at construction (fail at start); later I/O
    errors are counted in ``send_errors``. ``time_of_day`` is injectable for tests.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        avatar: str = "default",
        name: str,
        time_of_day: Callable[[], float] = _local_time_of_day_s,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.avatar = avatar
        self.name = name
        self.frames_written = 0
        self.send_errors = 0
        self._time_of_day = time_of_day
        self._clock = clock
        self._origin_s: float | None = None
        self._logged: set[int | str | None] = set()
        try:
            self._file: TextIO | None = self.path.open(
                "w", encoding="utf-8", newline="", buffering=_BUFFER_BYTES
            )
        except OSError as error:
            raise OSError(
                error.errno, f"output {name!r}: cannot open {str(self.path)!r} for writing: "
                f"{error.strerror or error}",
            ) from error  # fmt: skip
        self._last_flush_s = clock()
        self._write(csv_header() + "\n")

    def send(self, weights: np.ndarray, frame_number: int, time_s: float) -> None:
        """Append one row; flush if the last flush is a second old. Never raises OSError."""
        if self._file is None:
            self._fail("closed", "the recording is already closed")
            return
        if self._origin_s is None:
            self._origin_s = self._time_of_day() - time_s
        seconds = (self._origin_s + time_s) % _SECONDS_PER_DAY
        if self._write(format_row(weights, seconds)):
            self.frames_written += 1
        now_s = self._clock()
        if now_s - self._last_flush_s >= FLUSH_INTERVAL_S:
            self._last_flush_s = now_s
            self._flush()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        file, self._file = self._file, None
        if file is None:
            return
        self._flush(file)
        try:
            file.close()
        except OSError as error:  # close() flushes again; a still-full disk fails here too
            self._fail(error.errno, error)

    @property
    def closed(self) -> bool:
        return self._file is None

    def _write(self, text: str) -> bool:
        assert self._file is not None
        try:
            self._file.write(text)
        except OSError as error:
            self._fail(error.errno, error)
            return False
        return True

    def _flush(self, file: TextIO | None = None) -> None:
        target = file if file is not None else self._file
        if target is None:
            return
        try:
            target.flush()
        except OSError as error:
            self._fail(error.errno, error)

    def _fail(self, key: int | str | None, error: OSError | str) -> None:
        self.send_errors += 1
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
