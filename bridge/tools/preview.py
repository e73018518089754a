"""``vadbridge preview``: PNG pictures of what the model does, without an avatar app.

- ``--emotion NAME`` / ``--vad V A D``: a cartoon face drawn from the 52 weights next to a bar
  chart of them;
- ``--grid``: the model card's 8 basic emotions (neutral included) in one sheet;
- ``--map SHAPE``: one blendshape's weight over a valence x arousal slice at ``--dominance``,
  with the basic emotions marked.

The weights are symmetrised as the daemon sends them. Needs matplotlib (the ``[preview]``
extra); without it the command says how to install it and exits 2. Drawing lives in
bridge/tools/preview_draw.py, the face geometry in bridge/tools/preview_face.py.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.commands.args import (
    EXIT_FAILURE,
    EXIT_USAGE,
    LIST_SHAPES,
    UsageError,
    check_finite,
    check_range,
    emotion_vad,
    fail,
)
from vadbridge.model.api import load_model
from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES, enforce_symmetry
from vadbridge.model.emotions import BASIC_EMOTIONS, emotion_to_vad
from vadbridge.model.engine import NumpyMLP
from vadbridge.tools.preview_draw import (
    DEFAULT_DPI,
    MatplotlibMissingError,
    Panel,
    render_face_sheet,
    render_grid,
    render_map,
)

MAP_RESOLUTION = 81  # samples per axis of the --map slice (odd: includes 0)
DPI_RANGE = (30, 400)
DEFAULT_OUT = {"face": "face.png", "grid": "emotions.png", "map": "map-{shape}.png"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="draw a face, an emotion grid or a VAD map as a PNG (needs matplotlib)",
        description="Draw what the model does as a PNG, no avatar app needed: a face for one "
        "emotion or VAD, a sheet of the basic emotions, or one blendshape's weight over "
        "valence x arousal (needs matplotlib).",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--emotion", metavar="NAME",
        help="an emotion name or mix, as for infer (`vadbridge infer --list-emotions` shows "
        "the names)",
    )  # fmt: skip
    what.add_argument(
        "--vad", nargs=3, type=float, metavar=("V", "A", "D"),
        help="valence, arousal, dominance in [-1, 1] (values outside are clipped)",
    )  # fmt: skip
    what.add_argument("--grid", action="store_true", help="all basic emotions in one sheet")
    what.add_argument(
        "--map", metavar="SHAPE",
        help=f"a blendshape's weight over valence x arousal (`{LIST_SHAPES}` shows the names)",
    )  # fmt: skip
    parser.add_argument(
        "--intensity", type=float, metavar="F",
        help="with --emotion or --grid: 0 (neutral) .. 1 (the full emotion) (default: 1)",
    )  # fmt: skip
    parser.add_argument(
        "--dominance", type=float, metavar="D",
        help="with --map: the dominance of the slice, in [-1, 1] (default: 0)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint", metavar="PATH",
        help="a .npz or .pt checkpoint, or a bundled model by name (vadbridge-v1, vadbridge-v2; "
             "default: vadbridge-v2)",
    )  # fmt: skip
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="the PNG to write (default: face.png, emotions.png or map-SHAPE.png)",
    )
    low, high = DPI_RANGE
    parser.add_argument(
        "--dpi", type=int, default=DEFAULT_DPI, help=f"pixels per inch, {low}..{high}"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        _check_args(args)
        shape = _shape_name(args.map) if args.map is not None else None
        out = _out_path(args, shape)
        engine, _meta = load_model(args.checkpoint)
        if args.grid:
            size = render_grid(grid_panels(engine, _intensity(args)), out, args.dpi)
        elif shape is not None:
            dominance = 0.0 if args.dominance is None else args.dominance
            values = vad_slice(engine, ARKIT_INDEX[shape], dominance)
            size = render_map(values, shape, dominance, dict(BASIC_EMOTIONS), out, args.dpi)
        else:
            vad, title = _single_vad(args)
            size = render_face_sheet(Panel(title, infer(engine, vad)), out, args.dpi)
    except (UsageError, MatplotlibMissingError, ValueError, FileNotFoundError) as error:
        # CheckpointError is a ValueError whose message already names the file.
        return fail("preview", error, EXIT_USAGE)
    except OSError as error:
        return fail("preview", error, EXIT_FAILURE)
    print(f"wrote {out} ({size[0]}x{size[1]} px)")
    return 0


def _check_args(args: argparse.Namespace) -> None:
    if args.intensity is not None:
        if args.emotion is None and not args.grid:
            raise UsageError("--intensity applies to --emotion and --grid only")
        check_range("--intensity", args.intensity, 0.0, 1.0)
    if args.dominance is not None:
        if args.map is None:
            raise UsageError("--dominance applies to --map only")
        check_range("--dominance", args.dominance, -1.0, 1.0)
    if args.vad is not None:
        check_finite("--vad", args.vad)
    check_range("--dpi", args.dpi, *DPI_RANGE)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint not found: {args.checkpoint}")


def _shape_name(text: str) -> str:
    """An ARKit name, matched case-insensitively (``MouthSmileLeft`` as Live Link spells it)."""
    by_lower = {name.lower(): name for name in ARKIT_NAMES}
    found = by_lower.get(text.strip().lower())
    if found is None:
        close = difflib.get_close_matches(text.strip(), ARKIT_NAMES, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else f" (see `{LIST_SHAPES}`)"
        raise UsageError(f"--map: unknown blendshape {text!r}{hint}")
    return found


def _out_path(args: argparse.Namespace, shape: str | None) -> Path:
    if args.out is None:
        kind = "grid" if args.grid else "map" if shape is not None else "face"
        return Path(DEFAULT_OUT[kind].format(shape=shape))
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must end in .png, got {out}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: directory {out.parent} does not exist")
    return out


def _intensity(args: argparse.Namespace) -> float:
    return 1.0 if args.intensity is None else float(args.intensity)


def _single_vad(args: argparse.Namespace) -> tuple[npt.NDArray[np.float32], str]:
    if args.emotion is not None:
        intensity = _intensity(args)
        vad = emotion_vad(args.emotion, intensity)
        label = args.emotion.strip() + (f" x{intensity:g}" if intensity != 1.0 else "")
    else:
        vad = np.clip(np.asarray(args.vad, dtype=np.float32), -1.0, 1.0)
        label = "VAD"
    return vad, f"{label}  (V {vad[0]:+.2f}, A {vad[1]:+.2f}, D {vad[2]:+.2f})"


def infer(engine: NumpyMLP, vad: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """(3,) VAD -> the (52,) weights the daemon would send (symmetrised)."""
    batch = np.asarray(vad, dtype=np.float32).reshape(1, 3)
    weights: npt.NDArray[np.float32] = enforce_symmetry(engine.forward(batch))[0]
    return weights


def grid_panels(engine: NumpyMLP, intensity: float = 1.0) -> list[Panel]:
    """One panel per basic emotion of the model card (8, neutral first), in table order."""
    names = list(BASIC_EMOTIONS)
    vads = np.stack([emotion_to_vad(name, intensity) for name in names])
    weights = enforce_symmetry(engine.forward(vads))
    return [
        Panel(f"{name}\nV {v[0]:+.2f}  A {v[1]:+.2f}  D {v[2]:+.2f}", w)
        for name, v, w in zip(names, vads, weights, strict=True)
    ]


def vad_slice(
    engine: NumpyMLP, shape_index: int, dominance: float, resolution: int = MAP_RESOLUTION
) -> npt.NDArray[np.float32]:
    """``values[arousal_row, valence_col]`` of one blendshape on a grid over [-1, 1]^2."""
    axis = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    valence, arousal = np.meshgrid(axis, axis, indexing="xy")
    vad = np.column_stack(
        (valence.ravel(), arousal.ravel(), np.full(valence.size, dominance, dtype=np.float32))
    )
    weights = enforce_symmetry(engine.forward(vad))
    return np.ascontiguousarray(weights[:, shape_index].reshape(resolution, resolution))
