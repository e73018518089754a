"""``vadbridge infer``: one VAD or emotion in, the blendshape weights out (a table or JSON).

The flags are the model card's ``inference.py`` ones: ``--checkpoint``, ``--emotion`` (mixes
such as ``happiness:0.7+surprise:0.3``), ``--intensity``, ``--vad V A D``,
``--enforce-symmetry``; plus ``--json``, and the vocabulary: ``--list-emotions`` (every name
``--emotion`` accepts, with its VAD) and ``--list-shapes`` (the 52 outputs in model order),
which print while parsing, as ``--help`` does, and need neither a VAD nor a checkpoint. Bad
arguments exit 2 with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.commands.args import UsageError, check_finite, check_range, emotion_vad, fail
from vadbridge.model.api import load_model, predict
from vadbridge.model.arkit import ARKIT_NAMES, enforce_symmetry
from vadbridge.model.emotions import ALIASES, EMOTIONS, emotion_to_vad, known_emotion_names

SHOWN_MIN_WEIGHT = 0.005  # the table hides weights below this: invisible on a face
BAR_WIDTH = 20
DESCRIPTION = (
    "Print the 52 ARKit blendshape weights the model gives one emotion (or mix of emotions) "
    "or one valence/arousal/dominance value, as a table or as JSON."
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="predict ARKit blendshapes for one emotion or VAD; list the emotions and shapes",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a .npz or .pt checkpoint, or a bundled model by name (vadbridge-v1, vadbridge-v2; "
             "default: vadbridge-v2)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--emotion",
        metavar="NAME[+NAME...]",
        help="an emotion name or mix, e.g. happiness or happiness:0.7+surprise:0.3 "
        "(--list-emotions shows the names)",
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
        help="with --emotion: 0 (neutral) .. 1 (the full emotion) (default: 1)",
    )
    parser.add_argument(
        "--enforce-symmetry",
        action="store_true",
        help="make each left/right pair exactly equal (their mean)",
    )
    parser.add_argument("--json", action="store_true", help="print all 52 weights as JSON")
    parser.add_argument(
        "--list-emotions", action=_PrintAndExit, render=emotion_listing,
        help="list every emotion name --emotion accepts (aliases too) with its VAD, and exit",
    )  # fmt: skip
    parser.add_argument(
        "--list-shapes", action=_PrintAndExit, render=shape_listing,
        help="list the 52 ARKit blendshapes in the model's output order, and exit",
    )  # fmt: skip
    parser.set_defaults(func=run)


class _PrintAndExit(argparse.Action):
    """A flag that prints ``render()`` and exits 0 while parsing, like ``--version``: the
    required ``--emotion``/``--vad`` choice does not apply and no checkpoint is loaded."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, render: Callable[[], str], help: str
    ) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help
        )
        self._render = render

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(self._render())
        parser.exit()


def emotion_listing() -> str:
    """Every accepted name (sorted) with its VAD and where the numbers come from."""
    names = known_emotion_names()
    width = max(len("name"), *(len(name) for name in names))
    lines = [f"{'name':<{width}}  valence  arousal  dominance  source"]
    for name in names:
        v, a, d = (float(x) for x in emotion_to_vad(name))
        source = f"alias of {ALIASES[name]}" if name in ALIASES else EMOTIONS[name].source
        lines.append(f"{name:<{width}}  {v:+7.2f}  {a:+7.2f}  {d:+9.2f}  {source}")
    return "\n".join(lines)


def shape_listing() -> str:
    """``index  name`` for the 52 blendshapes, in the order of the model's outputs."""
    return "\n".join(f"{index:2d}  {name}" for index, name in enumerate(ARKIT_NAMES))


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
        return emotion_vad(args.emotion, intensity)
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
