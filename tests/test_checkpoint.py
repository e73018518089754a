"""Checkpoint files: our .pt and .npz round trips, foreign .pt layouts, and clear failures."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from models import seeded_model
from torch import nn

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    export_npz,
    load_engine,
    make_meta,
    read_state_dict,
    save_checkpoint,
)
from vadbridge.model.config import MLPConfig
from vadbridge.model.network import VADBlendshapeMLP

TOLERANCE = 1e-5  # numpy engine vs torch module: issue 2's bound (as in test_engine.py)
VAD = np.random.default_rng(0).uniform(-1, 1, size=(64, 3)).astype(np.float32)


def torch_forward(model: VADBlendshapeMLP, vad: np.ndarray = VAD) -> np.ndarray:
    with torch.no_grad():
        result: np.ndarray = model(torch.from_numpy(vad)).numpy()
    return result


@pytest.fixture(scope="module")
def model() -> VADBlendshapeMLP:
    return seeded_model()


META = make_meta(training={"epochs": 3, "lr": 1e-3}, metrics={"val_mse": 0.0251})


# --- our formats -----------------------------------------------------------------------------


def test_pt_round_trip_keeps_outputs_and_meta(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "model.pt", model, META)
    engine, meta = load_engine(path)
    assert np.abs(engine.forward(VAD) - torch_forward(model)).max() <= TOLERANCE
    assert meta["training"] == {"epochs": 3, "lr": 1e-3}
    assert meta["metrics"] == {"val_mse": 0.0251}
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["blendshape_names"] == list(ARKIT_NAMES)
    assert meta["architecture"] == MLPConfig().to_dict()
    assert "foreign_layout" not in meta


def test_pt_file_is_the_documented_dict_of_plain_data(
    model: VADBlendshapeMLP, tmp_path: Path
) -> None:
    path = save_checkpoint(tmp_path / "model.pt", model, META)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"format_version", "state_dict", "meta"}
    assert raw["format_version"] == 1
    assert list(raw["state_dict"]) == list(model.state_dict())
    assert all(t.dtype == torch.float32 for t in raw["state_dict"].values())
    torch_model = VADBlendshapeMLP(MLPConfig.from_dict(raw["meta"]["architecture"]))
    torch_model.load_state_dict(raw["state_dict"])  # training can resume from it
    # Exact: the same weights through the same torch forward on the same (64, 3) input.
    np.testing.assert_array_equal(torch_forward(torch_model.eval()), torch_forward(model))


def test_npz_round_trip_keeps_outputs_and_meta(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    path = export_npz(tmp_path / "model.npz", model.state_dict(), META)
    engine, meta = load_engine(path)
    assert np.abs(engine.forward(VAD) - torch_forward(model)).max() <= TOLERANCE
    assert meta["metrics"] == {"val_mse": 0.0251}
    assert meta["blendshape_names"] == list(ARKIT_NAMES)


def test_npz_holds_float32_arrays_and_json_meta_without_pickles(
    model: VADBlendshapeMLP, tmp_path: Path
) -> None:
    path = export_npz(tmp_path / "model.npz", model, META)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {*model.state_dict(), "__meta__"}
        for key, tensor in model.state_dict().items():
            assert data[key].dtype == np.float32
            np.testing.assert_array_equal(data[key], tensor.numpy())
        assert data["__meta__"].shape == ()
        assert json.loads(str(data["__meta__"])) == META


def test_npz_can_be_written_from_numpy_arrays(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    arrays = {key: value.numpy().astype(np.float64) for key, value in model.state_dict().items()}
    engine, _ = load_engine(export_npz(tmp_path / "m.npz", arrays, META))
    assert np.abs(engine.forward(VAD) - torch_forward(model)).max() <= TOLERANCE


def test_architecture_in_meta_rebuilds_a_non_default_model(tmp_path: Path) -> None:
    config = MLPConfig(hidden=(16, 8), leaky_relu_slope=0.1)
    small = seeded_model(config, seed=3)
    for path in (tmp_path / "s.pt", tmp_path / "s.npz"):
        writer = save_checkpoint if path.suffix == ".pt" else export_npz
        writer(path, small, {"training": {}})  # architecture filled in from the module
        engine, meta = load_engine(path)
        assert engine.config == config
        assert meta["architecture"]["hidden"] == [16, 8]
        assert np.abs(engine.forward(VAD) - torch_forward(small)).max() <= TOLERANCE


def test_writers_leave_no_temporary_files(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "a.pt", model, META)
    export_npz(tmp_path / "a.npz", model, META)
    save_checkpoint(tmp_path / "a.pt", model, META)  # overwriting is fine too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "a.pt"]


def test_meta_that_is_not_json_is_rejected(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        export_npz(tmp_path / "m.npz", model, {"training": {"optimizer": object()}})
    assert not (tmp_path / "m.npz").exists()


def test_writer_rejects_a_state_dict_that_does_not_fit(tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in VADBlendshapeMLP().state_dict().items()}
    state["layers.12.weight"] = torch.zeros(52, 128)
    with pytest.raises(CheckpointError, match=r"\(52, 128\), expected \(52, 256\)"):
        save_checkpoint(tmp_path / "bad.pt", state, META)


# --- foreign .pt layouts ---------------------------------------------------------------------


def _prefixed(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in model.state_dict().items()}


FOREIGN_LAYOUTS: dict[str, Callable[[nn.Module], Any]] = {
    "raw": lambda m: m.state_dict(),
    "model_state_dict": lambda m: {
        "model_state_dict": m.state_dict(),
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.001}]},
        "epoch": 87,
        "val_loss": 0.0251,
    },
    "state_dict": lambda m: {"state_dict": m.state_dict(), "epoch": 3},
    "model": lambda m: {"model": m.state_dict(), "config": {"hidden": 256}},
    "prefix_module": lambda m: _prefixed(m, "module."),
    "prefix_net": lambda m: _prefixed(m, "net."),
    "nested_and_prefixed": lambda m: {"model_state_dict": _prefixed(m, "module.net.")},
    "other_names": lambda m: {  # a different module with its own names, same tensor order
        f"{name}.{kind}": t
        for (name, kind), t in zip(
            [
                (n, k)
                for n in ("fc1", "ln1", "fc2", "ln2", "fc3", "ln3", "head")
                for k in ("weight", "bias")
            ],
            m.state_dict().values(),
            strict=True,
        )
    },
}


@pytest.mark.parametrize("layout", list(FOREIGN_LAYOUTS))
def test_foreign_layouts_load_by_order_and_shape(
    layout: str, model: VADBlendshapeMLP, tmp_path: Path
) -> None:
    path = tmp_path / "best_model.pt"
    torch.save(FOREIGN_LAYOUTS[layout](model), path)
    engine, meta = load_engine(path)
    assert np.abs(engine.forward(VAD) - torch_forward(model)).max() <= TOLERANCE
    assert meta["architecture"] == MLPConfig().to_dict()
    if layout != "raw":  # a raw state dict under our own keys is not foreign at all
        assert "tensors matched" in meta["foreign_layout"] or "nested" in meta["foreign_layout"]


def test_foreign_layout_note_says_how_it_was_matched(
    model: VADBlendshapeMLP, tmp_path: Path
) -> None:
    path = tmp_path / "best_model.pt"
    torch.save(FOREIGN_LAYOUTS["nested_and_prefixed"](model), path)
    _, meta = read_state_dict(path)
    assert meta["foreign_layout"] == (
        "nested under 'model_state_dict', "
        "tensors matched by order (key prefix 'module.net.layers.')"
    )


def test_wrong_shape_names_the_tensor_its_shape_and_the_expected_one(tmp_path: Path) -> None:
    narrow = nn.Sequential(nn.Linear(3, 128), nn.LayerNorm(128))
    state = {"net." + k: v for k, v in narrow.state_dict().items()}
    path = tmp_path / "narrow.pt"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError) as caught:
        load_engine(path)
    message = str(caught.value)
    assert "'net.0.weight'" in message
    assert "(128, 3)" in message
    assert "expected (256, 3)" in message
    assert caught.value.path == str(path)


def test_missing_tensors_are_counted_and_listed(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    state = _prefixed(model, "net.")
    del state["net.layers.12.weight"], state["net.layers.12.bias"]
    path = tmp_path / "short.pt"
    torch.save(state, path)
    with pytest.raises(
        CheckpointError, match=r"found 12 weight tensors, expected 14.*net\.layers\.9\.bias"
    ):
        load_engine(path)


def test_a_pickled_module_is_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "whole_model.pt"
    torch.save({"model": VADBlendshapeMLP()}, path)  # pickles the class, not just tensors
    with pytest.raises(CheckpointError, match="weights_only=True") as caught:
        load_engine(path)
    unsupported = "Unsupported global: GLOBAL vadbridge.model.network.VADBlendshapeMLP"
    assert unsupported in caught.value.reason
    assert "weights_only=False" not in str(caught.value)  # torch's unsafe advice is dropped
    assert "\x1b" not in str(caught.value)


def test_a_dict_without_tensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    torch.save({"epoch": 3, "optimizer_state_dict": {"state": {}}}, path)
    with pytest.raises(CheckpointError, match=r"no weight tensors found.*'epoch'"):
        load_engine(path)


# --- unreadable files ------------------------------------------------------------------------


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.npz"):
        load_engine(tmp_path / "nope.npz")


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"\x00")
    with pytest.raises(CheckpointError, match=r"unknown checkpoint type '\.onnx'"):
        load_engine(path)


def test_corrupt_files_are_refused(tmp_path: Path) -> None:
    npz, pt = tmp_path / "broken.npz", tmp_path / "broken.pt"
    npz.write_bytes(b"PK\x03\x04 truncated")
    pt.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"unreadable \.npz"):
        load_engine(npz)
    with pytest.raises(CheckpointError, match=r"not a PyTorch checkpoint \(.*b'garbage'"):
        load_engine(pt)


@pytest.mark.parametrize(
    "content",
    [b"garbage", b"", b"PK\x03\x04 truncated zip", b"\x80\x02 not really a pickle"],
    ids=["text", "empty", "truncated-zip", "pickle-header"],
)
def test_a_corrupt_pt_error_never_advises_weights_only_false(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load_engine(path)
    assert caught.value.path == str(path)
    assert "weights_only=False" not in str(caught.value)
    assert "weights_only` set to `False" not in str(caught.value)
    assert caught.value.reason.split(": ", 1)[-1].strip()  # a reason is given, not an empty tail


def test_npz_with_an_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r"unreadable \.npz"):
        load_engine(path)


def test_other_blendshape_order_is_refused(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    path = export_npz(tmp_path / "m.npz", model, META)
    reordered = dict(META, blendshape_names=list(reversed(ARKIT_NAMES)))
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "__meta__"}
    np.savez(path, __meta__=np.array(json.dumps(reordered)), **arrays)
    with pytest.raises(CheckpointError, match="blendshape_names differ"):
        load_engine(path)


def test_newer_format_version_is_refused(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    path = export_npz(tmp_path / "m.npz", model, dict(META, format_version=FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError, match="newer than this vadbridge"):
        load_engine(path)


def test_npz_file_is_a_plain_zip_of_npy_files(model: VADBlendshapeMLP, tmp_path: Path) -> None:
    path = export_npz(tmp_path / "m.npz", model, META)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert names == {f"{key}.npy" for key in [*model.state_dict(), "__meta__"]}
