"""``vadbridge infer``: the table, --json, and exit status 2 with a one-line reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models import run_cli, seeded_model

from vadbridge.model import api
from vadbridge.model.api import load_model, predict
from vadbridge.model.arkit import ARKIT_NAMES, LEFT_INDICES, RIGHT_INDICES, enforce_symmetry
from vadbridge.model.checkpoint import export_npz, make_meta, save_checkpoint
from vadbridge.model.emotions import emotion_to_vad
from vadbridge.model.engine import NumpyMLP
from vadbridge.model.network import VADBlendshapeMLP

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def torch_model() -> VADBlendshapeMLP:
    return seeded_model()


@pytest.fixture(scope="module")
def checkpoint(torch_model: VADBlendshapeMLP, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_npz(tmp_path_factory.mktemp("cli") / "m.npz", torch_model, make_meta())


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> NumpyMLP:
    return load_model(checkpoint)[0]


def json_output(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_table_lists_visible_weights_sorted_with_the_vad_first(
    capsys: pytest.CaptureFixture[str], checkpoint: Path, engine: NumpyMLP
) -> None:
    code, out, err = run_cli(
        capsys, "infer", "--checkpoint", str(checkpoint), "--emotion", "happiness",
        "--intensity", "0.9",
    )  # fmt: skip
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.startswith("VAD  valence +0.720  arousal +0.540  dominance +0.450")
    assert "happiness" in header and "intensity 0.9" in header
    expected = predict(engine, emotion_to_vad("happiness", 0.9))
    visible = {ARKIT_NAMES[i]: float(w) for i, w in enumerate(expected) if w >= 0.005}
    assert len(rows) == len(visible) > 0
    names = [row.split()[0] for row in rows]
    values = [float(row.split()[1]) for row in rows]
    assert set(names) == set(visible)
    assert values == sorted(values, reverse=True)
    for name, value in zip(names, values, strict=True):
        assert value == pytest.approx(visible[name], abs=0.0005)
    # Aligned: every weight column starts at the same offset.
    assert len({row.index(row.split()[1]) for row in rows}) == 1


def test_json_prints_all_52_weights_in_arkit_order(
    capsys: pytest.CaptureFixture[str], checkpoint: Path, engine: NumpyMLP
) -> None:
    data = json_output(
        capsys, "infer", "--checkpoint", str(checkpoint), "--vad", "0.8", "0.6", "0.5"
    )
    assert set(data) == {"vad", "blendshapes"}
    assert data["vad"] == pytest.approx([0.8, 0.6, 0.5])
    assert list(data["blendshapes"]) == list(ARKIT_NAMES)
    expected = predict(engine, np.array([0.8, 0.6, 0.5], dtype=np.float32))
    got = np.array(list(data["blendshapes"].values()))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_enforce_symmetry_makes_left_and_right_equal(
    capsys: pytest.CaptureFixture[str], checkpoint: Path, engine: NumpyMLP
) -> None:
    argv = ["infer", "--checkpoint", str(checkpoint), "--vad", "-0.7", "0.8", "0.7"]
    plain = np.array(list(json_output(capsys, *argv)["blendshapes"].values()))
    sym = np.array(list(json_output(capsys, *argv, "--enforce-symmetry")["blendshapes"].values()))
    np.testing.assert_array_equal(sym[LEFT_INDICES], sym[RIGHT_INDICES])
    assert not np.array_equal(plain[LEFT_INDICES], plain[RIGHT_INDICES])
    np.testing.assert_allclose(sym, enforce_symmetry(plain), atol=1e-6)


def test_emotion_mixes_go_through_emotion_to_vad(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    mix = "happiness:0.7+surprise:0.3"
    data = json_output(
        capsys, "infer", "--checkpoint", str(checkpoint), "--emotion", mix, "--intensity", "0.5"
    )
    assert data["vad"] == pytest.approx(emotion_to_vad(mix, 0.5).tolist(), abs=1e-6)
    assert data["vad"] == pytest.approx([0.5 * (0.7 * 0.8 + 0.3 * 0.3), 0.5 * 0.69, 0.5 * 0.41])


def test_vad_outside_the_range_is_clipped_and_said_so(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    argv = ["infer", "--checkpoint", str(checkpoint), "--vad", "2", "-1.5", "0.25"]
    assert json_output(capsys, *argv)["vad"] == [1.0, -1.0, 0.25]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    assert out.splitlines()[0] == (
        "VAD  valence +1.000  arousal -1.000  dominance +0.250  (clipped to [-1, 1])"
    )


def test_pt_checkpoints_work_too(
    capsys: pytest.CaptureFixture[str], torch_model: VADBlendshapeMLP, tmp_path: Path
) -> None:
    pt = save_checkpoint(tmp_path / "m.pt", torch_model, make_meta())
    data = json_output(capsys, "infer", "--checkpoint", str(pt), "--emotion", "fear")
    expected = predict(torch_model, emotion_to_vad("fear"))
    np.testing.assert_allclose(list(data["blendshapes"].values()), expected, atol=1e-5)


BAD_ARGUMENTS = {
    "unknown emotion": (["--emotion", "hapy"], "unknown emotion 'hapy'"),
    "nan vad": (["--vad", "nan", "0", "0"], "--vad values must be finite"),
    "infinite vad": (["--vad", "0", "inf", "0"], "--vad values must be finite"),
    "intensity above 1": (["--emotion", "fear", "--intensity", "1.5"], "--intensity must be in"),
    "negative intensity": (["--emotion", "fear", "--intensity", "-0.1"], "--intensity must be in"),
    "intensity with vad": (["--vad", "0", "0", "0", "--intensity", "0.5"], "--emotion only"),
    "both sources": (["--emotion", "fear", "--vad", "0", "0", "0"], "not allowed with"),
    "no source": ([], "one of the arguments --emotion --vad is required"),
    "two vad values": (["--vad", "0", "0"], "expected 3 arguments"),
    "non-numeric vad": (["--vad", "a", "0", "0"], "invalid float value: 'a'"),
    "bad mix weight": (["--emotion", "fear:x"], "not a number"),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_arguments_exit_2_with_a_one_line_reason(
    case: str, capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    extra, reason = BAD_ARGUMENTS[case]
    code, out, err = run_cli(capsys, "infer", "--checkpoint", str(checkpoint), *extra)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert reason in err
    assert "Traceback" not in err


def test_an_unknown_emotion_points_at_the_list_of_names(
    capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    code, _, err = run_cli(capsys, "infer", "--checkpoint", str(checkpoint), "--emotion", "qwxz")
    assert code == 2
    assert err == (
        "vadbridge infer: error: unknown emotion 'qwxz' (no close match; "
        "`vadbridge infer --list-emotions` lists them all)\n"
    )


def test_a_missing_checkpoint_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.npz"
    code, out, err = run_cli(capsys, "infer", "--checkpoint", str(missing), "--emotion", "fear")
    assert (code, out) == (2, "")
    assert err == f"vadbridge infer: error: checkpoint not found: {missing}\n"


def test_a_missing_bundled_checkpoint_says_how_to_produce_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "DEFAULT_CHECKPOINT", tmp_path / "vadbridge-v1.npz")
    code, _, err = run_cli(capsys, "infer", "--emotion", "fear")
    assert code == 2
    assert "vadbridge train --data builtin --out model/weights" in err
    assert err.count("\n") == 1


def test_a_corrupt_checkpoint_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "infer", "--checkpoint", str(broken), "--vad", "0", "0", "0")
    assert code == 2
    assert err.startswith(f"vadbridge infer: error: {broken}: not a PyTorch checkpoint")
    assert err.count("\n") == 1


def test_the_console_script_runs(checkpoint: Path, engine: NumpyMLP) -> None:
    script = Path(sys.executable).with_name("vadbridge")
    result = subprocess.run(
        [str(script), "infer", "--checkpoint", str(checkpoint), "--emotion", "surprise", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    expected = predict(engine, emotion_to_vad("surprise"))
    np.testing.assert_allclose(list(data["blendshapes"].values()), expected, atol=1e-6)
