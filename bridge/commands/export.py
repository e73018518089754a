"""``vadbridge export``: the model as ONNX, as a baked VAD lookup grid, or as the torch-free .npz.

- ``--format onnx``: one ``.onnx`` file for Unity Sentis / Unreal NNE (model/onnx_export.py),
  checked against the numpy engine with onnxruntime when it is installed.
- ``--format lut``: ``OUT.npz`` plus ``OUT.f32`` and ``OUT.json`` (raw grid + header for engine
  code, model/lut.py); prints the grid's max interpolation error against the MLP.
- ``--format npz``: the torch-free checkpoint, e.g. from a ``.pt`` (model/checkpoint.py).

Bad arguments (missing checkpoint, unwritable output, bad size) exit 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from vadbridge.commands.args import EXIT_FAILURE, EXIT_USAGE, UsageError, fail
from vadbridge.model.api import load_model
from vadbridge.model.checkpoint import CheckpointError, export_npz
from vadbridge.model.engine import NumpyMLP
from vadbridge.model.lut import (
    MAX_SIZE,
    MIN_SIZE,
    LutError,
    bake_lut,
    check_size,
    interpolation_error,
    save_lut_npz,
    save_lut_raw,
)
from vadbridge.model.onnx_export import DEFAULT_OPSET, SUPPORTED_OPSETS

FORMATS: tuple[str, ...] = ("onnx", "lut", "npz")
DEFAULT_LUT_SIZE = 33
_SUFFIX = {"onnx": ".onnx", "lut": ".npz", "npz": ".npz"}
_VERIFY_SAMPLES = 4096  # random VAD points for the onnxruntime check


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the model as ONNX, a baked VAD lookup grid, or a torch-free .npz",
        description="Export the model for engines and tools: ONNX (Unity Sentis, Unreal NNE), "
        "a lookup grid of precomputed weights over the VAD cube, or a .npz checkpoint that "
        "needs no torch.",
    )
    parser.add_argument(
        "--format", required=True, choices=FORMATS,
        help="what to write: onnx (checked with onnxruntime when installed), lut (the grid; "
        "prints its worst interpolation error) or npz",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a .npz or .pt checkpoint, or a bundled model by name (vadbridge-v1, vadbridge-v2; "
             "default: vadbridge-v2)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output file: .onnx for onnx, .npz for npz and lut (lut also writes .f32 + .json)",
    )
    parser.add_argument(
        "--lut-size",
        type=int,
        metavar="N",
        help=f"lut: grid points per axis, {MIN_SIZE}..{MAX_SIZE}; odd sizes put neutral on the "
        f"grid (default: {DEFAULT_LUT_SIZE})",
    )
    parser.add_argument(
        "--opset",
        type=int,
        choices=SUPPORTED_OPSETS,
        help=f"onnx: opset 17 has LayerNormalization, 15 suits older Sentis versions "
        f"(default: {DEFAULT_OPSET})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        out = _check_args(args)
        if args.format == "onnx":
            _require_onnx()
        engine, meta = _load(args)
    except (UsageError, ValueError, FileNotFoundError, ImportError) as error:
        return fail("export", error, EXIT_USAGE)
    try:
        if args.format == "onnx":
            _export_onnx(out, engine, meta, args.opset or DEFAULT_OPSET)
        elif args.format == "lut":
            _export_lut(out, engine, meta, args.lut_size or DEFAULT_LUT_SIZE)
        else:
            export_npz(out, engine.state_dict(), meta)
            print(f"wrote {out} ({out.stat().st_size} bytes, {engine.parameter_count} parameters)")
    except (OSError, LutError, CheckpointError, RuntimeError) as error:
        return fail("export", error, EXIT_FAILURE)
    return 0


def _check_args(args: argparse.Namespace) -> Path:
    if args.lut_size is not None:
        if args.format != "lut":
            raise UsageError("--lut-size applies to --format lut only")
        try:
            check_size(args.lut_size)
        except ValueError as error:
            raise UsageError(f"--lut-size: {error}") from None
    if args.opset is not None and args.format != "onnx":
        raise UsageError("--opset applies to --format onnx only")
    out = Path(args.out)
    suffix = _SUFFIX[args.format]
    if out.suffix.lower() != suffix:
        raise UsageError(f"--out for --format {args.format} must end in {suffix}, got {out}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory")
    for target in _outputs(out, args.format):
        _check_writable(target)
    return out


def _outputs(out: Path, fmt: str) -> list[Path]:
    return [out, out.with_suffix(".f32"), out.with_suffix(".json")] if fmt == "lut" else [out]


def _check_writable(target: Path) -> None:
    """Fail before the slow work if ``target`` cannot be created (its parents are made later)."""
    if target.exists():
        if not os.access(target, os.W_OK):
            raise UsageError(f"--out: {target} is not writable")
        return
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"--out: cannot create {target}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"--out: cannot create {target}: {ancestor} is not writable")


def _load(args: argparse.Namespace) -> tuple[NumpyMLP, dict[str, Any]]:
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint not found: {args.checkpoint}")
    # The meta comes back as the file holds it (training config, metrics, foreign layout), so
    # the npz export of a .pt keeps its self-description.
    return load_model(args.checkpoint)


def _require_onnx() -> None:
    from vadbridge.model.onnx_export import OnnxUnavailableError, require_onnx

    try:
        require_onnx()
    except OnnxUnavailableError as error:
        raise ImportError(str(error)) from None


def _export_onnx(out: Path, engine: NumpyMLP, meta: dict[str, Any], opset: int) -> None:
    from vadbridge.model.onnx_export import export_onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(out, engine, meta, opset)
    print(f"wrote {out} (opset {opset}, {out.stat().st_size} bytes)")
    difference = _onnxruntime_difference(out, engine)
    if difference is None:
        print("onnxruntime is not installed: the file was checked with onnx.checker only")
    else:
        print(
            f"onnxruntime vs numpy engine on {_VERIFY_SAMPLES} random VADs: "
            f"max abs difference {difference:.2e}"
        )


def _onnxruntime_difference(path: Path, engine: NumpyMLP) -> float | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    vad = np.random.default_rng(0).uniform(-1.0, 1.0, (_VERIFY_SAMPLES, 3)).astype(np.float32)
    result = session.run(None, {"vad": vad})[0]
    return float(np.abs(result - engine.forward(vad)).max())


def _export_lut(out: Path, engine: NumpyMLP, meta: dict[str, Any], size: int) -> None:
    lut = bake_lut(engine, size)
    error = interpolation_error(lut, engine)
    lut.meta.update(
        {
            "source_metrics": meta.get("metrics", {}),
            "max_interpolation_error": error.max_abs,
            "mean_interpolation_error": error.mean_abs,
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    save_lut_npz(out, lut)
    data_file, header_file = save_lut_raw(out.with_suffix(".f32"), out.with_suffix(".json"), lut)
    print(f"wrote {out}, {data_file} and {header_file} ({size}^3 x 52 float32)")
    worst = ", ".join(f"{x:+.3f}" for x in error.worst_vad)
    print(
        f"max interpolation error vs the MLP: {error.max_abs:.5f} ({error.worst_blendshape} at "
        f"VAD {worst}; mean {error.mean_abs:.6f} over {error.points} points)"
    )
