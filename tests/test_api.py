"""The model card's Python API: load_model and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from models import FLOAT32_PATH_ATOL, seeded_model

import vadbridge.model as model_package
from vadbridge.model import api
from vadbridge.model.api import load_model, predict
from vadbridge.model.checkpoint import export_npz, make_meta, save_checkpoint
from vadbridge.model.engine import NumpyMLP
from vadbridge.model.network import VADBlendshapeMLP

TOLERANCE = 1e-5  # numpy engine vs torch module: issue 2's bound (as in test_engine.py)


@pytest.fixture(scope="module")
def torch_model() -> VADBlendshapeMLP:
    return seeded_model()


@pytest.fixture(scope="module")
def npz_path(torch_model: VADBlendshapeMLP, tmp_path_factory: pytest.TempPathFactory) -> Path:
    meta = make_meta(metrics={"val_mse": 0.03})
    return export_npz(tmp_path_factory.mktemp("api") / "m.npz", torch_model, meta)


@pytest.fixture(scope="module")
def engine(npz_path: Path) -> NumpyMLP:
    return load_model(npz_path)[0]


def test_package_exports_the_cards_api() -> None:
    assert sorted(model_package.__all__) == sorted(
        ["load_model", "predict", "emotion_to_vad", "enforce_symmetry", "mirror", "ARKIT_NAMES"]
    )
    assert model_package.load_model is load_model
    assert model_package.emotion_to_vad("happiness").tolist() == pytest.approx([0.8, 0.6, 0.5])


def test_load_model_returns_the_numpy_engine_and_meta(npz_path: Path) -> None:
    loaded, meta = load_model(npz_path)
    assert isinstance(loaded, NumpyMLP)
    assert meta["metrics"] == {"val_mse": 0.03}
    assert len(meta["blendshape_names"]) == 52


def test_load_model_reads_pt_files_too(torch_model: VADBlendshapeMLP, tmp_path: Path) -> None:
    loaded, _ = load_model(save_checkpoint(tmp_path / "m.pt", torch_model, make_meta()))
    vad = np.array([0.3, 0.9, 0.2], dtype=np.float32)
    assert np.abs(predict(loaded, vad) - predict(torch_model, vad)).max() <= TOLERANCE


def test_load_model_without_path_reads_the_bundled_checkpoint(
    npz_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "DEFAULT_CHECKPOINT", npz_path)
    _, meta = load_model()
    assert meta["metrics"] == {"val_mse": 0.03}


def test_missing_bundled_checkpoint_says_how_to_produce_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "DEFAULT_CHECKPOINT", tmp_path / "vadbridge-v1.npz")
    with pytest.raises(
        FileNotFoundError, match="vadbridge train --data builtin --out model/weights"
    ):
        load_model()


def test_a_bundled_model_loads_by_name_and_other_words_stay_paths() -> None:
    assert api.resolve_checkpoint("vadbridge-v1") == api.WEIGHTS_DIR / "vadbridge-v1.npz"
    assert api.resolve_checkpoint("vadbridge-v1.npz") == Path("vadbridge-v1.npz")
    assert api.resolve_checkpoint("vadbridge-v9") == Path("vadbridge-v9")
    _, meta = load_model("vadbridge-v1")
    assert meta["metrics"]["best_epoch"] == 97  # v1's own training record
    with pytest.raises(FileNotFoundError):
        load_model("vadbridge-v9")


def test_default_checkpoint_path_is_the_bundled_npz() -> None:
    assert api.DEFAULT_CHECKPOINT.parts[-3:] == ("model", "weights", "vadbridge-v2.npz")


def test_single_vad_gives_52_weights_and_a_batch_gives_n_by_52(engine: NumpyMLP) -> None:
    single = predict(engine, np.array([0.8, 0.6, 0.5], dtype=np.float32))
    batch = predict(engine, np.array([[0.8, 0.6, 0.5], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert single.shape == (52,) and single.dtype == np.float32
    assert batch.shape == (2, 52) and batch.dtype == np.float32
    # Within rounding: BLAS may sum a 1-row and a 2-row product in different orders.
    np.testing.assert_allclose(batch[0], single, rtol=0, atol=FLOAT32_PATH_ATOL)
    assert ((batch >= 0.0) & (batch <= 1.0)).all()


def test_lists_and_float64_are_accepted(engine: NumpyMLP) -> None:
    expected = predict(engine, np.array([0.1, -0.2, 0.3], dtype=np.float32))
    # Exact: predict turns all three into the same float32 (1, 3) batch for the same forward call.
    np.testing.assert_array_equal(predict(engine, [0.1, -0.2, 0.3]), expected)
    np.testing.assert_array_equal(predict(engine, np.array([0.1, -0.2, 0.3])), expected)


def test_torch_module_and_numpy_engine_agree(
    torch_model: VADBlendshapeMLP, engine: NumpyMLP
) -> None:
    vad = np.random.default_rng(0).uniform(-1, 1, size=(50, 3)).astype(np.float32)
    assert np.abs(predict(torch_model, vad) - predict(engine, vad)).max() <= TOLERANCE
    assert predict(torch_model, vad[0]).shape == (52,)


def test_predict_runs_a_training_module_in_eval_mode_and_restores_it(
    torch_model: VADBlendshapeMLP,
) -> None:
    torch_model.train()
    try:
        vad = np.array([0.5, 0.5, 0.5], dtype=np.float32)
        first, second = predict(torch_model, vad), predict(torch_model, vad)
        np.testing.assert_array_equal(first, second)  # dropout off: deterministic
        assert torch_model.training
    finally:
        torch_model.eval()


@pytest.mark.parametrize(
    "bad", [[np.nan, 0.0, 0.0], [0.0, np.inf, 0.0], [[0.0, 0.0, 0.0], [0.0, 0.0, -np.inf]]]
)
def test_nan_or_infinite_vad_raises_value_error(engine: NumpyMLP, bad: list[float]) -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        predict(engine, np.array(bad))


@pytest.mark.parametrize("shape", [(2,), (4,), (2, 4), (1, 1, 3), ()])
def test_wrong_shapes_raise_value_error(engine: NumpyMLP, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(N, 3\)"):
        predict(engine, np.zeros(shape))


def test_non_numeric_vad_raises_value_error(engine: NumpyMLP) -> None:
    with pytest.raises(ValueError, match="VAD must be numbers"):
        predict(engine, np.array(["happy", "0", "0"]))


def test_values_outside_the_unit_range_are_clipped(engine: NumpyMLP) -> None:
    outside = predict(engine, np.array([[2.5, -3.0, 0.5], [1.0001, 0.0, -7.0]]))
    inside = predict(engine, np.array([[1.0, -1.0, 0.5], [1.0, 0.0, -1.0]]))
    np.testing.assert_array_equal(outside, inside)  # exact: the same clipped (2, 3) batch


def test_predict_does_not_modify_its_input(engine: NumpyMLP) -> None:
    vad = np.array([3.0, 0.2, -0.4], dtype=np.float32)
    predict(engine, vad)
    assert vad.tolist() == pytest.approx([3.0, 0.2, -0.4])
