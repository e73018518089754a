"""The baked VAD lookup grid: trilinear reads, error measurement, and both file layouts."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from models import FLOAT32_PATH_ATOL, random_arrays

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.config import MLPConfig
from vadbridge.model.engine import NumpyMLP
from vadbridge.model.lut import (
    INDEX_FORMULA,
    LutEngine,
    LutError,
    bake_lut,
    grid_axis,
    interpolation_error,
    load_lut,
    max_interpolation_error,
    save_lut_npz,
    save_lut_raw,
)

SMALL = MLPConfig(hidden=(32, 32, 32))


def _random_engine(seed: int, config: MLPConfig = SMALL) -> NumpyMLP:
    arrays = random_arrays(config, seed)
    # Biases near 0.5 keep most outputs inside (0, 1), away from the clamp, like a trained model.
    last = f"layers.{4 * len(config.hidden)}"
    arrays[f"{last}.weight"] *= 0.1
    arrays[f"{last}.bias"] = np.full(config.out_features, 0.5, dtype=np.float32)
    return NumpyMLP.from_state_dict(arrays, config)


@pytest.fixture(scope="module")
def engine() -> NumpyMLP:
    return _random_engine(0)


def _multilinear_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A grid of a function trilinear interpolation reproduces exactly, and its coefficients."""
    rng = np.random.default_rng(1)
    coefficients = rng.uniform(-0.06, 0.06, (8, 52))
    coefficients[0] = 0.5
    axis = grid_axis(size).astype(np.float64)
    v, a, d = np.meshgrid(axis, axis, axis, indexing="ij")
    grid = _multilinear(np.stack((v, a, d), axis=-1).reshape(-1, 3), coefficients)
    return grid.reshape(size, size, size, 52), coefficients


def _multilinear(points: np.ndarray, c: np.ndarray) -> np.ndarray:
    v, a, d = (points[:, i : i + 1].astype(np.float64) for i in range(3))
    terms = [np.ones_like(v), v, a, d, v * a, v * d, a * d, v * a * d]
    result: np.ndarray = sum(t * c[i] for i, t in enumerate(terms))
    return result


def test_bake_samples_the_engine_on_every_grid_point(engine: NumpyMLP) -> None:
    lut = bake_lut(engine, 5)
    assert lut.grid.shape == (5, 5, 5, 52) and lut.grid.dtype == np.float32
    axis = grid_axis(5)
    expected = engine.forward(np.array([[axis[1], axis[4], axis[2]]], dtype=np.float32))[0]
    # atol: BLAS may round a 125-row batch differently from a 1-row one.
    np.testing.assert_allclose(lut.grid[1, 4, 2], expected, rtol=0, atol=FLOAT32_PATH_ATOL)


def test_forward_at_grid_points_returns_the_baked_values(engine: NumpyMLP) -> None:
    lut = bake_lut(engine, 9)
    axis = grid_axis(9)
    index = np.array([[0, 0, 0], [8, 8, 8], [4, 4, 4], [1, 7, 3], [8, 0, 5]])
    points = axis[index]
    # LUT vs MLP: the grid was baked in a 729-row batch (BLAS rounding), and a float32 position a
    # rounding away from a grid point mixes in its neighbours with weights of a few ulps.
    np.testing.assert_allclose(
        lut.forward(points), engine.forward(points), rtol=0, atol=FLOAT32_PATH_ATOL
    )


def test_interpolation_is_exact_for_a_multilinear_function() -> None:
    grid, coefficients = _multilinear_grid(7)
    lut = LutEngine(grid)
    points = np.random.default_rng(2).uniform(-1, 1, (500, 3)).astype(np.float32)
    np.testing.assert_allclose(lut.forward(points), _multilinear(points, coefficients), atol=2e-6)


def test_forward_of_a_batch_equals_forward_of_each_row(engine: NumpyMLP) -> None:
    lut = bake_lut(engine, 9)
    points = np.random.default_rng(3).uniform(-1, 1, (64, 3)).astype(np.float32)
    batch = lut.forward(points)
    rows = np.concatenate([lut.forward(points[i : i + 1]) for i in range(64)])
    assert batch.shape == (64, 52) and batch.dtype == np.float32
    # Batch vs single rows are two paths: the 8-corner blend is a batched matmul whose kernel
    # may sum a 1-row and a 64-row call in different orders (8 terms, weights summing to 1:
    # a few ulps). A row mixed up with another would be off by far more.
    np.testing.assert_allclose(batch, rows, rtol=0, atol=FLOAT32_PATH_ATOL)


def test_inputs_outside_the_grid_are_clamped_to_its_faces(engine: NumpyMLP) -> None:
    lut = bake_lut(engine, 5)
    outside = lut.forward(np.array([[2.0, -3.0, 1.5], [0.25, 9.0, -0.5]], dtype=np.float32))
    inside = lut.forward(np.array([[1.0, -1.0, 1.0], [0.25, 1.0, -0.5]], dtype=np.float32))
    np.testing.assert_array_equal(outside, inside)  # exact: the same clamped (2, 3) batch
    # Exact: at the corner (1, -1, 1) every blend weight is exactly 0 or 1.
    np.testing.assert_array_equal(outside[0], lut.grid[4, 0, 4])


def test_outputs_are_clipped_to_unit_range() -> None:
    grid = np.full((3, 3, 3, 52), 0.5, dtype=np.float32)
    grid[0] = 1.0
    grid[2] = 0.0
    lut = LutEngine(grid)
    out = lut.forward(np.random.default_rng(4).uniform(-1, 1, (200, 3)).astype(np.float32))
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(lut.forward(np.array([[-0.5, 0, 0]], np.float32)), 0.75, atol=1e-6)


def test_forward_returns_a_new_array_not_a_view_of_the_grid(engine: NumpyMLP) -> None:
    lut = bake_lut(engine, 3)
    out = lut.forward(np.zeros((1, 3), dtype=np.float32))
    out[:] = 7.0
    assert lut.grid.max() <= 1.0


@pytest.mark.parametrize(
    ("vad", "message"),
    [(np.zeros((4, 2)), r"shape \(N, 3\)"), (np.array([[0.0, np.nan, 0.0]]), "NaN")],
)
def test_forward_rejects_bad_input(engine: NumpyMLP, vad: np.ndarray, message: str) -> None:
    lut = bake_lut(engine, 3)
    with pytest.raises(ValueError, match=message):
        lut.forward(vad)


@pytest.mark.parametrize("size", [1, 66, 2.5])
def test_bake_rejects_bad_sizes(engine: NumpyMLP, size: int) -> None:
    with pytest.raises(ValueError, match="LUT size"):
        bake_lut(engine, size)


def test_grid_of_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(S, S, S, 52\)"):
        LutEngine(np.zeros((4, 4, 5, 52), dtype=np.float32))


def test_max_error_is_zero_for_a_function_the_grid_represents_exactly() -> None:
    grid, coefficients = _multilinear_grid(5)
    lut = LutEngine(grid)

    class Multilinear:
        def forward(self, vad: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return _multilinear(vad, coefficients).astype(np.float32)

    assert max_interpolation_error(lut, Multilinear(), samples=2000) < 2e-6


def test_max_error_bounds_the_error_at_random_points_and_shrinks_with_size(
    engine: NumpyMLP,
) -> None:
    coarse, fine = bake_lut(engine, 9), bake_lut(engine, 17)
    report = interpolation_error(coarse, engine, samples=3000, seed=5)
    points = np.random.default_rng(6).uniform(-1, 1, (1000, 3)).astype(np.float32)
    seen = np.abs(coarse.forward(points) - engine.forward(points)).max()
    assert 0.0 < seen <= report.max_abs
    assert report.points == 3000 + 8**3
    assert report.worst_blendshape in ARKIT_NAMES
    worst = np.array([report.worst_vad], dtype=np.float32)
    col = ARKIT_NAMES.index(report.worst_blendshape)
    actual = abs(float(coarse.forward(worst)[0, col]) - float(engine.forward(worst)[0, col]))
    assert actual == pytest.approx(report.max_abs, abs=1e-6)
    assert max_interpolation_error(fine, engine, samples=3000, seed=5) < report.max_abs


def test_npz_round_trip_keeps_grid_and_meta(engine: NumpyMLP, tmp_path: Path) -> None:
    lut = bake_lut(engine, 5, meta={"max_interpolation_error": 0.01})
    path = save_lut_npz(tmp_path / "lut.npz", lut)
    loaded = load_lut(path)
    np.testing.assert_array_equal(loaded.grid, lut.grid)
    assert loaded.meta["max_interpolation_error"] == 0.01
    assert loaded.meta["axes"] == ["valence", "arousal", "dominance", "blendshape"]


def test_raw_file_is_little_endian_float32_at_the_documented_index(
    engine: NumpyMLP, tmp_path: Path
) -> None:
    lut = bake_lut(engine, 5)
    data, header = save_lut_raw(tmp_path / "lut.f32", tmp_path / "lut.json", lut)
    info = json.loads(header.read_text())
    assert info["shape"] == [5, 5, 5, 52]
    assert info["byte_order"] == "little" and info["dtype"] == "float32"
    assert info["range"] == [-1.0, 1.0]
    assert info["blendshape_names"] == list(ARKIT_NAMES)
    assert info["index_formula"] == INDEX_FORMULA
    payload = data.read_bytes()
    assert len(payload) == info["byte_length"] == 5**3 * 52 * 4
    size = info["size"]
    for v, a, d, b in [(0, 0, 0, 0), (1, 2, 3, 4), (4, 4, 4, 51), (3, 0, 2, 24)]:
        index = eval(INDEX_FORMULA, {}, {"v": v, "a": a, "d": d, "b": b, "size": size})
        (value,) = struct.unpack_from("<f", payload, 4 * index)
        assert value == lut.grid[v, a, d, b]


def test_raw_round_trip_through_the_header(engine: NumpyMLP, tmp_path: Path) -> None:
    lut = bake_lut(engine, 5)
    save_lut_raw(tmp_path / "lut.f32", tmp_path / "lut.json", lut)
    np.testing.assert_array_equal(load_lut(tmp_path / "lut.json").grid, lut.grid)


def test_truncated_raw_data_is_reported_with_its_size(engine: NumpyMLP, tmp_path: Path) -> None:
    save_lut_raw(tmp_path / "lut.f32", tmp_path / "lut.json", bake_lut(engine, 3))
    data = tmp_path / "lut.f32"
    data.write_bytes(data.read_bytes()[:-4])
    with pytest.raises(LutError, match="5612 bytes, the header's shape needs 5616"):
        load_lut(tmp_path / "lut.json")


def test_edited_raw_data_fails_the_checksum(engine: NumpyMLP, tmp_path: Path) -> None:
    save_lut_raw(tmp_path / "lut.f32", tmp_path / "lut.json", bake_lut(engine, 3))
    data = tmp_path / "lut.f32"
    payload = bytearray(data.read_bytes())
    payload[0] ^= 0xFF
    data.write_bytes(bytes(payload))
    with pytest.raises(LutError, match="sha256"):
        load_lut(tmp_path / "lut.json")


def test_load_rejects_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    other = tmp_path / "lut.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(LutError, match=r"expected \.npz or \.json"):
        load_lut(other)
    with pytest.raises(FileNotFoundError, match="LUT not found"):
        load_lut(tmp_path / "missing.npz")


def test_load_rejects_a_checkpoint_npz(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.savez(path, grid=np.zeros((3, 3, 3, 52), np.float32), __meta__=np.array("{}"))
    with pytest.raises(LutError, match="not a vadbridge LUT"):
        load_lut(path)
