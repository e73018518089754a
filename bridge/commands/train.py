"""``vadbridge dataset`` (write the built-in dataset) and ``vadbridge train`` (the card's recipe).

``train --data`` takes a dataset file (format from ``--format`` or the extension), ``emo3d:FILE``
(an Emo3D table as published, .csv or .parquet) or ``builtin``.

Bad arguments exit 2 with a one-line reason on stderr; a bad dataset file exits 2 naming the
file, line and column. torch is imported only when ``train`` runs, and ``train`` checks that it
is installed, and that ``--out`` is a writable directory, before it loads or generates any data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vadbridge.commands.args import (
    EXIT_FAILURE,
    NEEDS_TORCH,
    UsageError,
    fail,
    integer,
    positive_float,
    torch_installed,
)
from vadbridge.model.api import DEFAULT_MODEL_NAME
from vadbridge.training import DatasetError, load_dataset, save_dataset
from vadbridge.training.emo3d import load_emo3d
from vadbridge.training.generator import DEFAULT_PAIRS, generate_dataset, mean_abs_left_right

BUILTIN = "builtin"
EMO3D = "emo3d"  # a --format, and the prefix of --data emo3d:FILE
DEFAULT_NAME = DEFAULT_MODEL_NAME  # a run with the defaults reproduces the bundled model
_positive_int = integer(1)
_seed = integer(0)


def add_parser(subparsers: Any) -> None:
    dataset = subparsers.add_parser(
        "dataset",
        help="write the built-in training dataset (.csv or .npz)",
        description="Write the built-in training dataset: VAD points paired with faces blended "
        "from expression prototypes (the basic emotions and four calm states), with "
        "capture-like noise.",
    )
    dataset.add_argument("--out", required=True, metavar="FILE", help="output .csv or .npz file")
    dataset.add_argument(
        "--n", type=_positive_int, default=DEFAULT_PAIRS, metavar="N",
        help="number of (VAD, blendshapes) pairs to write",
    )  # fmt: skip
    dataset.add_argument(
        "--seed", type=_seed, default=0, metavar="SEED",
        help="random seed: the same seed and --n write the same data",
    )  # fmt: skip
    dataset.set_defaults(func=run_dataset)

    train = subparsers.add_parser(
        "train",
        help="train a model checkpoint (needs torch)",
        description="Train the VAD-to-blendshape model on a dataset file or the built-in data; "
        "writes NAME.pt, NAME.npz, metrics.json and loss_curve.png into DIR (needs torch).",
    )
    train.add_argument(
        "--data", required=True, metavar="FILE|emo3d:FILE|builtin",
        help="a dataset file (.csv or .npz); 'emo3d:FILE' for an Emo3D table as published "
        "(.csv or .parquet; same as FILE with --format emo3d); or 'builtin' to generate the "
        "built-in data",
    )  # fmt: skip
    train.add_argument(
        "--format", choices=("csv", "npz", "emo3d"),
        help="the dataset file's format (default: from its extension, or emo3d for "
        "--data emo3d:FILE)",
    )  # fmt: skip
    train.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (created if missing)"
    )
    train.add_argument("--name", default=DEFAULT_NAME, help="file name stem of the checkpoints")
    train.add_argument(
        "--epochs", type=_positive_int, default=100, metavar="N",
        help="passes over the training data; the epoch with the best validation error is kept",
    )  # fmt: skip
    train.add_argument(
        "--batch-size", type=_positive_int, default=512, metavar="N",
        help="samples per optimiser step",
    )  # fmt: skip
    train.add_argument(
        "--seed", type=_seed, default=0, metavar="SEED",
        help="seed of the train/validation split, the initial weights and the shuffling "
        "(and of the built-in data)",
    )  # fmt: skip
    train.add_argument(
        "--lr", type=positive_float, default=1e-3, metavar="F",
        help="AdamW learning rate (cosine-annealed to 0 over the epochs)",
    )  # fmt: skip
    train.add_argument(
        "--n", type=_positive_int, default=DEFAULT_PAIRS, metavar="N",
        help="with --data builtin: number of pairs to generate",
    )  # fmt: skip
    train.set_defaults(func=run_train)


def run_dataset(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".npz"):
        return fail("dataset", f"--out must end in .csv or .npz, got {args.out!r}")
    if not out.parent.is_dir():
        return fail("dataset", f"--out directory does not exist: {str(out.parent)!r}")
    if out.is_dir():
        return fail("dataset", f"--out is a directory, expected a file: {args.out!r}")
    dataset = generate_dataset(args.n, args.seed)
    try:
        save_dataset(out, dataset)
    except OSError as error:
        return fail("dataset", f"cannot write --out {args.out!r}: {_os_reason(error)}")
    asymmetry = mean_abs_left_right(dataset.blendshapes)
    print(f"wrote {len(dataset)} pairs to {out} (seed {args.seed}, mean |L-R| {asymmetry:.3f})")
    return 0


def prepare_out_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove it is a writable directory; else ``UsageError``.

    Checked before training so that a bad ``--out`` costs seconds, not a whole training run.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # A real file, not os.access: root passes access() even on read-only mounts.
        with tempfile.TemporaryFile(dir=out):
            pass
    except FileExistsError:
        raise UsageError(f"--out {str(path)!r} exists and is not a directory") from None
    except OSError as error:
        raise UsageError(
            f"--out {str(path)!r} is not a writable directory: {_os_reason(error)}"
        ) from None
    return out


def _os_reason(error: OSError) -> str:
    return error.strerror or str(error)


def parse_data_arg(data: str, data_format: str | None) -> tuple[str, str | None]:
    """``--data`` and ``--format`` as ``(file, format)``; ``emo3d:FILE`` names the format.

    Raises ``UsageError`` for ``--format`` with ``builtin``, a prefix that ``--format``
    contradicts, or an ``emo3d:`` without a file.
    """
    if data == BUILTIN:
        if data_format is not None:
            raise UsageError("--format does not apply to --data builtin")
        return data, None
    prefix, colon, path = data.partition(":")
    if not colon or prefix != EMO3D:
        return data, data_format
    if not path:
        raise UsageError("--data emo3d: needs a file after the colon (emo3d:emo3d_data.parquet)")
    if data_format not in (None, EMO3D):
        raise UsageError(f"--format {data_format} contradicts --data {data!r}")
    return path, EMO3D


def run_train(args: argparse.Namespace) -> int:
    try:
        data, data_format = parse_data_arg(args.data, args.format)
    except UsageError as error:
        return fail("train", error)
    if not torch_installed():
        return fail("train", NEEDS_TORCH)
    try:
        out_dir = prepare_out_dir(args.out)
    except UsageError as error:
        return fail("train", error)
    if data == BUILTIN:
        dataset = generate_dataset(args.n, args.seed)
        source = f"builtin(n={args.n}, seed={args.seed})"
    else:
        try:
            if data_format == EMO3D:
                loaded = load_emo3d(data)
                dataset = loaded.dataset
                print(
                    f"{data}: {loaded.rows} rows, {loaded.faces} faces, "
                    f"{loaded.skipped_no_face} score cells without a face skipped",
                    file=sys.stderr,
                )
            else:
                dataset = load_dataset(data, data_format)
        except DatasetError as error:
            return fail("train", error)
        except OSError as error:
            return fail("train", f"{data}: cannot read: {_os_reason(error)}")
        source = f"{data_format or Path(data).suffix.lstrip('.')}:{Path(data).name}"
    if len(dataset) < 2:
        return fail("train", f"{data}: need at least 2 samples, found {len(dataset)}")

    # Spinning OpenMP workers stall each other on a shared, busy machine (measured: 2-threaded
    # steps 5-10x slower than with passive waiting). libgomp reads this when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from vadbridge.training.report import write_run
    from vadbridge.training.train import TrainConfig, train

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, lr=args.lr)
    result = train(dataset, config, data_source=source)
    try:
        paths = write_run(result, out_dir, args.name)
    except OSError as error:
        return fail("train", f"cannot write the run to {args.out!r}: {error}", EXIT_FAILURE)
    metrics = result.metrics
    print(
        f"best epoch {metrics['best_epoch']}: val MSE {metrics['best_val_mse']:.5f}, "
        f"val symmetry {metrics['val_symmetry']:.2e}, {metrics['wall_time_s']:.0f}s; "
        f"wrote {paths['npz']} and {paths['pt']}"
    )
    return 0
