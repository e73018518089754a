"""A baked VAD lookup grid: the MLP sampled on a size^3 grid over [-1, 1]^3, read back trilinearly.

``LutEngine`` has the same ``forward((N, 3)) -> (N, 52)`` protocol as ``NumpyMLP``, so the daemon
can use either (config ``model.engine: lut``). It trades a bounded interpolation error (measure it
with ``interpolation_error``) for a forward pass that costs a gather and a weighted sum.

Two file layouts:

- ``.npz``: ``grid`` (float32, (size, size, size, 52)) and ``__meta__`` (a 0-d unicode array
  holding JSON), like the checkpoint ``.npz`` (docs/DESIGN.md, "model/checkpoint.py").
- raw: a ``.f32`` file of little-endian float32 in C order plus a ``.json`` header (shape, axis
  order, range, blendshape names, the index formula), so game engines read it without numpy.

Axis ``v`` of the grid holds valence ``-1 + 2 * v / (size - 1)``; likewise arousal and dominance.
Odd sizes put neutral (0, 0, 0) exactly on a grid point, so the resting face is the MLP's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_NAMES, NUM_BLENDSHAPES

Float32Array = npt.NDArray[np.float32]

LUT_FORMAT = "vadbridge-lut"
LUT_FORMAT_VERSION = 1
AXES: tuple[str, ...] = ("valence", "arousal", "dominance")
VAD_RANGE: tuple[float, float] = (-1.0, 1.0)
MIN_SIZE = 2
MAX_SIZE = 65  # 65^3 x 52 float32 is 57 MB; finer grids gain little over 33 (see docs)
META_KEY = "__meta__"
GRID_KEY = "grid"
_BAKE_CHUNK = 1024  # rows per MLP call while baking: bounds the engine's cached work buffers
INDEX_FORMULA = "((v * size + a) * size + d) * 52 + b"


class Engine(Protocol):
    """Anything with the numpy engine's forward pass (``NumpyMLP``, ``LutEngine``)."""

    def forward(self, vad: Float32Array) -> Float32Array: ...


class LutError(ValueError):
    """A LUT file that cannot be read or written; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def check_size(size: int) -> int:
    """``size`` if it is a usable grid size, else ``ValueError`` naming the allowed range."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ValueError(f"LUT size must be an integer, got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"LUT size must be in [{MIN_SIZE}, {MAX_SIZE}], got {size}")
    return int(size)


def grid_axis(size: int) -> Float32Array:
    """The ``size`` sample positions along each axis, ``-1 .. 1`` inclusive."""
    return np.linspace(VAD_RANGE[0], VAD_RANGE[1], check_size(size), dtype=np.float32)


class LutEngine:
    """Trilinear interpolation in a baked (size, size, size, 52) grid.

    Inputs outside [-1, 1] are clamped to the grid (the MLP's training domain; ``predict`` clips
    the same way); outputs are clipped to [0, 1]. Stateless, so safe to share between threads.
    """

    def __init__(self, grid: npt.ArrayLike, meta: Mapping[str, Any] | None = None) -> None:
        array = np.ascontiguousarray(grid, dtype=np.float32)
        if array.ndim != 4 or array.shape[3] != NUM_BLENDSHAPES or len(set(array.shape[:3])) != 1:
            raise ValueError(f"LUT grid must have shape (S, S, S, 52), got {array.shape}")
        self.size = check_size(array.shape[0])
        if not np.isfinite(array).all():
            raise ValueError("LUT grid contains NaN or infinite values")
        array.setflags(write=False)
        self.grid = array
        self.meta: dict[str, Any] = dict(meta or {})
        size = self.size
        self._flat = array.reshape(size**3, NUM_BLENDSHAPES)
        self._scale = np.float32((size - 1) / (VAD_RANGE[1] - VAD_RANGE[0]))
        # Flat-row offsets of a cell's 8 corners, ordered (v, a, d) bits: 000, 001, 010, ... 111.
        stride = np.array([size * size, size, 1], dtype=np.intp)
        bits = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=np.intp)
        self._corner_offsets = bits @ stride
        self._stride = stride

    def forward(self, vad: npt.ArrayLike) -> Float32Array:
        """(N, 3) VAD -> a new (N, 52) float32 array of weights in [0, 1]."""
        batch = np.asarray(vad, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != len(AXES):
            raise ValueError(f"expected VAD of shape (N, 3), got {batch.shape}")
        if not np.isfinite(batch).all():
            raise ValueError("VAD contains NaN or infinite values")
        clamped = np.minimum(np.maximum(batch, VAD_RANGE[0]), VAD_RANGE[1])
        position = (clamped - VAD_RANGE[0]) * self._scale
        # The lower corner stops one short of the edge so an input of exactly +1 interpolates
        # inside the last cell with fraction 1 instead of reading past the grid.
        lower = np.minimum(position.astype(np.intp), self.size - 2)
        frac = position - lower.astype(np.float32)
        rows = (lower @ self._stride)[:, None] + self._corner_offsets  # (N, 8)
        corners = np.take(self._flat, rows, axis=0)  # (N, 8, 52); faster than fancy indexing
        # Corner (v, a, d bits) weight: the product over axes of 1 - f (bit 0) or f (bit 1).
        pair = np.stack((1.0 - frac, frac), axis=2)  # (N, 3, 2)
        weights = pair[:, 0, :, None, None] * pair[:, 1, None, :, None] * pair[:, 2, None, None, :]
        weights = weights.reshape(-1, 8)
        out: Float32Array = np.matmul(weights[:, None, :], corners)[:, 0, :]
        np.clip(out, 0.0, 1.0, out=out)
        return out

    def __call__(self, vad: npt.ArrayLike) -> Float32Array:
        return self.forward(vad)


def bake_lut(engine: Engine, size: int = 33, meta: Mapping[str, Any] | None = None) -> LutEngine:
    """Evaluate ``engine`` on every point of a size^3 grid over [-1, 1]^3."""
    axis = grid_axis(size)
    v, a, d = np.meshgrid(axis, axis, axis, indexing="ij")
    points = np.stack((v.ravel(), a.ravel(), d.ravel()), axis=1)
    values = np.empty((points.shape[0], NUM_BLENDSHAPES), dtype=np.float32)
    for start in range(0, points.shape[0], _BAKE_CHUNK):
        values[start : start + _BAKE_CHUNK] = engine.forward(points[start : start + _BAKE_CHUNK])
    return LutEngine(values.reshape(size, size, size, NUM_BLENDSHAPES), meta)


# --- error ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterpolationError:
    """How far the LUT strays from the engine it was baked from (absolute weight units)."""

    max_abs: float
    mean_abs: float
    worst_vad: tuple[float, float, float]
    worst_blendshape: str
    points: int


def interpolation_error(
    lut: LutEngine, engine: Engine, samples: int = 20000, seed: int = 0
) -> InterpolationError:
    """Compare on ``samples`` uniform random points plus every cell centre.

    Cell centres are where trilinear interpolation is farthest from the grid points, so the
    worst case is usually found there; the random points catch curvature elsewhere.
    """
    if samples < 0:
        raise ValueError(f"samples must be >= 0, got {samples}")
    rng = np.random.default_rng(seed)
    random_points = rng.uniform(VAD_RANGE[0], VAD_RANGE[1], size=(samples, 3)).astype(np.float32)
    axis = grid_axis(lut.size)
    mid = (axis[:-1] + axis[1:]) * np.float32(0.5)
    v, a, d = np.meshgrid(mid, mid, mid, indexing="ij")
    centres = np.stack((v.ravel(), a.ravel(), d.ravel()), axis=1)
    points = np.concatenate((random_points, centres)).astype(np.float32)
    worst = (-1.0, 0, 0)
    total = 0.0
    for start in range(0, points.shape[0], _BAKE_CHUNK):
        chunk = points[start : start + _BAKE_CHUNK]
        diff = np.abs(lut.forward(chunk).astype(np.float64) - engine.forward(chunk))
        total += float(diff.sum())
        flat = int(np.argmax(diff))
        row, col = divmod(flat, NUM_BLENDSHAPES)
        if diff[row, col] > worst[0]:
            worst = (float(diff[row, col]), start + row, col)
    max_abs, row, col = worst
    return InterpolationError(
        max_abs=max_abs,
        mean_abs=total / (points.shape[0] * NUM_BLENDSHAPES),
        worst_vad=(float(points[row, 0]), float(points[row, 1]), float(points[row, 2])),
        worst_blendshape=ARKIT_NAMES[col],
        points=int(points.shape[0]),
    )


def max_interpolation_error(
    lut: LutEngine, engine: Engine, samples: int = 20000, seed: int = 0
) -> float:
    """The worst absolute difference found by ``interpolation_error``."""
    return interpolation_error(lut, engine, samples, seed).max_abs


# --- files ---------------------------------------------------------------------------------------


def lut_meta(lut: LutEngine) -> dict[str, Any]:
    """The self-description stored with a LUT (both layouts), merged over ``lut.meta``."""
    return {
        **lut.meta,
        "format": LUT_FORMAT,
        "format_version": LUT_FORMAT_VERSION,
        "size": lut.size,
        "shape": [lut.size, lut.size, lut.size, NUM_BLENDSHAPES],
        "axes": [*AXES, "blendshape"],
        "range": list(VAD_RANGE),
        "blendshape_names": list(ARKIT_NAMES),
    }


def save_lut_npz(path: str | os.PathLike[str], lut: LutEngine) -> Path:
    file = Path(path)
    meta = json.dumps(lut_meta(lut))
    try:
        with file.open("wb") as handle:
            arrays: dict[str, Any] = {GRID_KEY: lut.grid, META_KEY: np.array(meta)}
            np.savez(handle, **arrays)
    except OSError as error:
        raise LutError(file, f"cannot write: {error.strerror or error}") from None
    return file


def save_lut_raw(
    data_path: str | os.PathLike[str], header_path: str | os.PathLike[str], lut: LutEngine
) -> tuple[Path, Path]:
    """Write the grid as little-endian float32 and a JSON header describing how to index it."""
    data_file, header_file = Path(data_path), Path(header_path)
    payload = lut.grid.astype("<f4", copy=False).tobytes(order="C")
    header = {
        **lut_meta(lut),
        "data_file": data_file.name,
        "dtype": "float32",
        "byte_order": "little",
        "byte_length": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "grid_value": "axis value at index i = range[0] + (range[1] - range[0]) * i / (size - 1)",
        "index_formula": INDEX_FORMULA,
        "index_note": (
            "v, a, d are the valence, arousal and dominance grid indices, b the blendshape index "
            "in blendshape_names order; the result indexes float32 elements (multiply by 4 for "
            "the byte offset)"
        ),
        "interpolation": (
            "clamp each input to range; t = (x - range[0]) * (size - 1) / (range[1] - range[0]); "
            "lower index = min(floor(t), size - 2); blend the 8 corners trilinearly; clamp the "
            "result to [0, 1]"
        ),
    }
    try:
        data_file.write_bytes(payload)
        header_file.write_text(json.dumps(header, indent=2) + "\n")
    except OSError as error:
        raise LutError(error.filename or data_file, f"cannot write: {error.strerror}") from None
    return data_file, header_file


def load_lut(path: str | os.PathLike[str]) -> LutEngine:
    """Read a ``.npz`` LUT, or a raw LUT through its ``.json`` header."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"LUT not found: {file}")
    suffix = file.suffix.lower()
    if suffix == ".npz":
        grid, meta = _read_npz(file)
    elif suffix == ".json":
        grid, meta = _read_raw(file)
    else:
        raise LutError(file, f"unknown LUT file type {suffix!r}; expected .npz or .json")
    if meta.get("format") != LUT_FORMAT:
        raise LutError(file, f"not a vadbridge LUT (format {meta.get('format')!r})")
    if meta.get("blendshape_names") != list(ARKIT_NAMES):
        raise LutError(file, "blendshape_names differ from the ARKit order this build uses")
    try:
        return LutEngine(grid, meta)
    except ValueError as error:
        raise LutError(file, str(error)) from None


def _read_npz(file: Path) -> tuple[Float32Array, dict[str, Any]]:
    with file.open("rb") as handle:
        try:
            with np.load(handle, allow_pickle=False) as data:
                if GRID_KEY not in data.files or META_KEY not in data.files:
                    raise LutError(file, f"expected arrays {GRID_KEY!r} and {META_KEY!r}")
                meta = json.loads(str(data[META_KEY][()]))
                grid = np.asarray(data[GRID_KEY], dtype=np.float32)
        except LutError:
            raise
        except (OSError, ValueError, EOFError, AttributeError, zipfile.BadZipFile) as error:
            raise LutError(file, f"unreadable .npz: {error}") from None
    if not isinstance(meta, dict):
        raise LutError(file, f"{META_KEY} is not a JSON object")
    return grid, meta


def _read_raw(header_file: Path) -> tuple[Float32Array, dict[str, Any]]:
    try:
        header = json.loads(header_file.read_text())
    except (OSError, ValueError) as error:
        raise LutError(header_file, f"unreadable JSON header: {error}") from None
    if not isinstance(header, dict) or not isinstance(header.get("data_file"), str):
        raise LutError(header_file, "header has no 'data_file'")
    shape = header.get("shape")
    if not (isinstance(shape, list) and len(shape) == 4 and all(isinstance(n, int) for n in shape)):
        raise LutError(header_file, f"header 'shape' must be 4 integers, got {shape!r}")
    if header.get("dtype") != "float32" or header.get("byte_order") != "little":
        raise LutError(header_file, "only little-endian float32 data is supported")
    data_file = header_file.parent / header["data_file"]
    try:
        payload = data_file.read_bytes()
    except OSError as error:
        raise LutError(data_file, f"cannot read the LUT data: {error.strerror}") from None
    expected = int(np.prod(shape)) * 4
    if len(payload) != expected:
        raise LutError(data_file, f"has {len(payload)} bytes, the header's shape needs {expected}")
    digest = header.get("sha256")
    if digest is not None and hashlib.sha256(payload).hexdigest() != digest:
        raise LutError(data_file, "sha256 does not match the header (truncated or edited file?)")
    grid = np.frombuffer(payload, dtype="<f4").reshape(shape).astype(np.float32)
    return grid, header
