"""``vadbridge export`` and the ONNX graph: onnxruntime must agree with the numpy engine."""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models import seeded_model

from vadbridge.commands import main
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.checkpoint import export_npz, load_engine, make_meta, save_checkpoint
from vadbridge.model.engine import NumpyMLP
from vadbridge.model.lut import load_lut
from vadbridge.model.onnx_export import build_onnx_model, export_onnx

needs_onnx = pytest.mark.skipif(
    find_spec("onnx") is None or find_spec("onnxruntime") is None,
    reason="ONNX export needs onnx and onnxruntime: pip install 'vadbridge[export]'",
)
TOLERANCE = 1e-5  # onnxruntime vs the numpy engine: the bound the engine meets against torch


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A seeded random full-size model saved as .pt and .npz (stands in for the bundled one)."""
    module = seeded_model(seed=7, random_layer_norm=False)
    directory = tmp_path_factory.mktemp("model")
    meta = make_meta(training={"seed": 7}, metrics={"val_mse": 0.123})
    return {
        "pt": save_checkpoint(directory / "model.pt", module, meta),
        "npz": export_npz(directory / "model.npz", module, meta),
    }


@pytest.fixture(scope="module")
def engine(model_files: dict[str, Path]) -> NumpyMLP:
    return load_engine(model_files["npz"])[0]


def _session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _vad(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, 3)).astype(np.float32)


@needs_onnx
@pytest.mark.parametrize("opset", [17, 15])
@pytest.mark.parametrize("count", [1, 257])
def test_onnxruntime_matches_the_numpy_engine(
    engine: NumpyMLP, tmp_path: Path, opset: int, count: int
) -> None:
    path = export_onnx(tmp_path / "model.onnx", engine, opset=opset)
    session = _session(path)
    vad = _vad(count, seed=count)
    (result,) = session.run(None, {"vad": vad})
    assert result.shape == (count, 52) and result.dtype == np.float32
    assert np.abs(result - engine.forward(vad)).max() <= TOLERANCE


@needs_onnx
def test_onnx_output_is_clipped_to_unit_range(engine: NumpyMLP, tmp_path: Path) -> None:
    session = _session(export_onnx(tmp_path / "model.onnx", engine))
    (result,) = session.run(None, {"vad": _vad(2000, seed=3) * 3})
    assert result.min() >= 0.0 and result.max() <= 1.0


@needs_onnx
def test_onnx_model_has_a_dynamic_batch_and_names_in_metadata(engine: NumpyMLP) -> None:
    model = build_onnx_model(engine, make_meta(metrics={"val_mse": 0.5}))
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert graph_input.name == "vad" and graph_output.name == "blendshapes"
    in_dims = graph_input.type.tensor_type.shape.dim
    out_dims = graph_output.type.tensor_type.shape.dim
    assert [in_dims[0].dim_param, in_dims[1].dim_value] == ["N", 3]
    assert [out_dims[0].dim_param, out_dims[1].dim_value] == ["N", 52]
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(props["blendshape_names"]) == list(ARKIT_NAMES)
    assert json.loads(props["metrics"]) == {"val_mse": 0.5}


@needs_onnx
def test_opset_17_uses_layer_normalization_and_15_spells_it_out(engine: NumpyMLP) -> None:
    ops17 = {node.op_type for node in build_onnx_model(engine, opset=17).graph.node}
    ops15 = {node.op_type for node in build_onnx_model(engine, opset=15).graph.node}
    assert {"LayerNormalization", "LeakyRelu", "Clip", "MatMul"} <= ops17
    assert "LayerNormalization" not in ops15 and {"ReduceMean", "Sqrt"} <= ops15


@needs_onnx
def test_unsupported_opset_is_rejected(engine: NumpyMLP) -> None:
    with pytest.raises(ValueError, match="opset must be one of"):
        build_onnx_model(engine, opset=11)


# --- the command ---------------------------------------------------------------------------------


@needs_onnx
def test_export_onnx_command_writes_a_verified_model(
    model_files: dict[str, Path],
    engine: NumpyMLP,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sub" / "face.onnx"
    code = main(
        ["export", "--format", "onnx", "--checkpoint", str(model_files["npz"]), "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "opset 17" in printed and "max abs difference" in printed
    (result,) = _session(out).run(None, {"vad": _vad(5)})
    assert np.abs(result - engine.forward(_vad(5))).max() <= TOLERANCE


def test_export_lut_command_writes_three_files_and_prints_the_error(
    model_files: dict[str, Path],
    engine: NumpyMLP,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "face-lut.npz"
    args = ["export", "--format", "lut", "--checkpoint", str(model_files["npz"]), "--out", str(out)]
    assert main([*args, "--lut-size", "9"]) == 0
    printed = capsys.readouterr().out
    assert "max interpolation error vs the MLP" in printed
    from_npz, from_raw = load_lut(out), load_lut(tmp_path / "face-lut.json")
    assert from_npz.size == 9
    np.testing.assert_array_equal(from_npz.grid, from_raw.grid)
    assert (tmp_path / "face-lut.f32").stat().st_size == 9**3 * 52 * 4
    reported = float(printed.split("max interpolation error vs the MLP: ")[1].split()[0])
    assert from_npz.meta["max_interpolation_error"] == pytest.approx(reported, abs=1e-5)
    assert from_npz.meta["source_metrics"] == {"val_mse": 0.123}
    vad = _vad(50)
    assert np.abs(from_npz.forward(vad) - engine.forward(vad)).max() <= reported + 1e-6


def test_export_npz_from_pt_keeps_weights_and_meta(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "converted.npz"
    assert (
        main(
            ["export", "--format", "npz", "--checkpoint", str(model_files["pt"]), "--out", str(out)]
        )
        == 0
    )
    converted, meta = load_engine(out)
    original, _ = load_engine(model_files["pt"])
    # Exact: the same weights through the same numpy forward on the same (20, 3) batch.
    np.testing.assert_array_equal(converted.forward(_vad(20)), original.forward(_vad(20)))
    assert meta["training"] == {"seed": 7} and meta["metrics"] == {"val_mse": 0.123}


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    return lines[0]


def test_missing_checkpoint_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _usage_error(
        [
            "export",
            "--format",
            "onnx",
            "--checkpoint",
            str(tmp_path / "nope.npz"),
            "--out",
            str(tmp_path / "m.onnx"),
        ],
        capsys,
    )
    assert "checkpoint not found" in line and "nope.npz" in line
    assert not (tmp_path / "m.onnx").exists()


def test_unwritable_output_is_a_usage_error(
    model_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    out = blocker / "m.onnx"
    line = _usage_error(
        ["export", "--format", "onnx", "--checkpoint", str(model_files["npz"]), "--out", str(out)],
        capsys,
    )
    assert "cannot create" in line and "is not a directory" in line


@pytest.mark.parametrize("size", ["1", "66"])
def test_bad_lut_size_is_a_usage_error(
    model_files: dict[str, Path], tmp_path: Path, size: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "export",
        "--format",
        "lut",
        "--checkpoint",
        str(model_files["npz"]),
        "--out",
        str(tmp_path / "l.npz"),
    ]
    line = _usage_error([*argv, "--lut-size", size], capsys)
    assert "--lut-size" in line and "[2, 65]" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--format", "onnx", "--out", "x.npz"], "must end in .onnx"),
        (["--format", "npz", "--out", "x.onnx"], "must end in .npz"),
        (["--format", "onnx", "--out", "x.onnx", "--lut-size", "17"], "--lut-size applies to"),
        (["--format", "lut", "--out", "x.npz", "--opset", "15"], "--opset applies to"),
    ],
)
def test_inconsistent_arguments_are_usage_errors(
    model_files: dict[str, Path],
    tmp_path: Path,
    extra: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = [str(tmp_path / a) if a.startswith("x.") else a for a in extra]
    line = _usage_error(["export", "--checkpoint", str(model_files["npz"]), *extra], capsys)
    assert expected in line


def test_unknown_format_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--format", "tflite", "--out", str(tmp_path / "m.tflite")])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_onnx_package_is_a_usage_error_naming_the_extra(
    model_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    out = tmp_path / "m.onnx"
    argv = [
        "export",
        "--format",
        "onnx",
        "--checkpoint",
        str(model_files["npz"]),
        "--out",
        str(out),
    ]
    line = _usage_error(argv, capsys)
    assert "pip install 'vadbridge[export]'" in line
    assert not out.exists()
