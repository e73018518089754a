"""``vadbridge infer``: one VAD or emotion in, the blendshape weights out (a table or JSON).

The flags are the model card's ``inference.py`` ones (../shared/reference/model-card.md, "Public
interface of the original"): ``--checkpoint``, ``--emotion`` (mixes such as
``happiness:0.7+surprise:0.3``), ``--intensity``, ``--vad V A D``, ``--enforce-symmetry``; plus
``--json``. Bad arguments exit 2 with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.commands.args import UsageError, check_finite, check_range, fail
from vadbridge.model.api import load_model, predict
from vadbridge.model.arkit import ARKIT_NAMES, enforce_symmetry
from vadbridge.model.emotions import emotion_to_vad

SHOWN_MIN_WEIGHT = 0.005  # the table hides weights below this: invisible on a face
BAR_WIDTH = 20


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="predict ARKit blendshapes for one emotion or VAD",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a .npz or .pt checkpoint (default: the bundled model/weights/vadbridge-v1.npz)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--emotion",
        metavar="NAME[+NAME...]",
        help="an emotion name or mix, e.g. happiness or happiness:0.7+surprise:0.3",
    )
    source.add_argument(
        "--vad",
        nargs=3,
        type=float,
        metavar=("V", "A", "D"),
        help="valence, arousal, dominance in [-1, 1] (values outside are clipped)",
    )
    parser.add_argument(
        "--intensity",
        type=float,
        metavar="F",
        help="with --emotion: 0 (neutral) .. 1 (full emotion, the default)",
    )
    parser.add_argument(
        "--enforce-symmetry",
        action="store_true",
        help="make each left/right pair exactly equal (their mean)",
    )
    parser.add_argument("--json", action="store_true", help="print all 52 weights as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        vad = _vad_from_args(args)
        model, _meta = load_model(args.checkpoint)
    except (UsageError, ValueError, FileNotFoundError) as error:
        # CheckpointError is a ValueError whose message already names the file.
        return fail("infer", error)
    clipped = np.clip(vad, -1.0, 1.0).astype(np.float32)
    weights = predict(model, clipped)
    if args.enforce_symmetry:
        weights = enforce_symmetry(weights)
    print(_as_json(clipped, weights) if args.json else _as_table(vad, clipped, weights, args))
    return 0


def _vad_from_args(args: argparse.Namespace) -> npt.NDArray[np.float32]:
    if args.emotion is not None:
        intensity = 1.0 if args.intensity is None else args.intensity
        check_range("--intensity", intensity, 0.0, 1.0)
        return emotion_to_vad(args.emotion, intensity)
    if args.intensity is not None:
        raise UsageError("--intensity applies to --emotion only")
    check_finite("--vad", args.vad)
    return np.asarray(args.vad, dtype=np.float32)


def _as_json(vad: npt.NDArray[np.float32], weights: npt.NDArray[np.float32]) -> str:
    return json.dumps(
        {
            "vad": [round(float(v), 6) for v in vad],
            "blendshapes": {
                name: round(float(w), 6) for name, w in zip(ARKIT_NAMES, weights, strict=True)
            },
        },
        indent=2,
    )


def _as_table(
    vad: npt.NDArray[np.float32],
    clipped: npt.NDArray[np.float32],
    weights: npt.NDArray[np.float32],
    args: argparse.Namespace,
) -> str:
    axes = "  ".join(
        f"{label} {value:+.3f}"
        for label, value in zip(("valence", "arousal", "dominance"), clipped, strict=True)
    )
    header = f"VAD  {axes}"
    if args.emotion is not None:
        intensity = 1.0 if args.intensity is None else args.intensity
        header += f"  ({args.emotion.strip()}, intensity {intensity:g})"
    elif not np.array_equal(vad, clipped):
        header += "  (clipped to [-1, 1])"
    # A stable sort keeps ARKit order among equal weights (e.g. symmetric pairs).
    order = sorted(range(len(ARKIT_NAMES)), key=lambda i: -float(weights[i]))
    shown = [i for i in order if weights[i] >= SHOWN_MIN_WEIGHT]
    if not shown:
        return f"{header}\n(no blendshape weight >= {SHOWN_MIN_WEIGHT})"
    width = max(len(ARKIT_NAMES[i]) for i in shown)
    rows = [
        f"{ARKIT_NAMES[i]:<{width}}  {float(weights[i]):.3f}  {'#' * round(weights[i] * BAR_WIDTH)}"
        for i in shown
    ]
    return "\n".join([header, *(row.rstrip() for row in rows)])
