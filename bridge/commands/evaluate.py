"""``vadbridge evaluate``: how crisp a checkpoint's faces are, side by side with others.

Prints the figures of ``vadbridge.training.evaluation`` (neutral, each basic emotion's share in
its action units, contradictory pairs, the largest step between neighbouring VAD grid points,
boredom against sadness, ...) as a Markdown table with one column per checkpoint, or as JSON.
Torch-free for ``.npz`` checkpoints and the bundled models.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.commands.args import fail
from vadbridge.model.api import DEFAULT_MODEL_NAME, load_model, predict
from vadbridge.model.arkit import enforce_symmetry
from vadbridge.training.evaluation import Evaluation, FaceFunction, evaluate, table
from vadbridge.training.generator import blend_faces

BLEND_COLUMN = "training blend"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure how crisp a model's faces are (neutral, emotions, the VAD cube)",
        description="Measure a model's faces at the model card's emotions and over the VAD cube "
        "(21^3 points), after enforce_symmetry, and print one column per checkpoint: neutral's "
        "largest shape, each emotion's share in its action units and its largest other shape, "
        "contradictory pairs, the largest change between neighbouring grid points, boredom "
        "against sadness. Give --checkpoint twice to compare two models.",
    )
    parser.add_argument(
        "--checkpoint", action="append", metavar="PATH",
        help="a .npz or .pt checkpoint, or a bundled model by name (vadbridge-v1, vadbridge-v2);"
        f" repeat it to compare several (default: {DEFAULT_MODEL_NAME})",
    )  # fmt: skip
    parser.add_argument(
        "--blend", action="store_true",
        help="add a column for the noiseless training blend the built-in data is drawn from",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=evaluate_command)


def _model_faces(path: str) -> FaceFunction:
    model, _meta = load_model(path)

    def faces(vad: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return enforce_symmetry(predict(model, vad))

    return faces


def _blend_faces(vad: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return blend_faces(vad).astype(np.float32)


def evaluate_command(args: argparse.Namespace) -> int:
    evaluations: dict[str, Evaluation] = {}
    for path in args.checkpoint or [DEFAULT_MODEL_NAME]:
        try:
            faces = _model_faces(path)
        except (ValueError, FileNotFoundError) as error:
            # CheckpointError is a ValueError whose message already names the file.
            return fail("evaluate", error)
        evaluations[path] = evaluate(faces)
    if args.blend:
        evaluations[BLEND_COLUMN] = evaluate(_blend_faces)
    if args.json:
        print(json.dumps({name: e.as_dict() for name, e in evaluations.items()}, indent=2))
    else:
        print(table(evaluations))
    return 0
