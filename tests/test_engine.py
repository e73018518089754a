"""The numpy engine is the torch module's eval-mode forward pass, without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from models import FLOAT32_PATH_ATOL, seeded_model

from vadbridge.model.checkpoint import export_npz, make_meta
from vadbridge.model.config import MLPConfig
from vadbridge.model.engine import BLOCK_ROWS, NumpyMLP, parameter_layout
from vadbridge.model.network import VADBlendshapeMLP

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # issue 2: numpy must match torch to <= 1e-5 max abs difference


def engine_of(model: VADBlendshapeMLP) -> NumpyMLP:
    arrays = {key: value.numpy() for key, value in model.state_dict().items()}
    return NumpyMLP.from_state_dict(arrays, model.config)


def torch_forward(model: VADBlendshapeMLP, vad: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        result: np.ndarray = model(torch.from_numpy(vad)).numpy()
    return result


def test_the_architecture_has_279348_parameters() -> None:
    model = VADBlendshapeMLP()
    assert sum(p.numel() for p in model.parameters()) == 279_348
    assert MLPConfig().parameter_count() == 279_348
    assert engine_of(model).parameter_count == 279_348
    assert sum(int(np.prod(spec.shape)) for spec in parameter_layout(MLPConfig())) == 279_348


def test_parameter_layout_lists_the_torch_state_dict_in_order() -> None:
    state = VADBlendshapeMLP().state_dict()
    layout = parameter_layout(MLPConfig())
    assert [spec.key for spec in layout] == list(state)
    assert [spec.shape for spec in layout] == [tuple(t.shape) for t in state.values()]


def test_batch_forward_matches_torch() -> None:
    model = seeded_model()
    vad = np.random.default_rng(0).uniform(-1, 1, size=(257, 3)).astype(np.float32)
    expected = torch_forward(model, vad)
    got = engine_of(model).forward(vad)
    assert got.shape == (257, 52) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= TOLERANCE
    # Guard against a vacuous comparison: many outputs lie strictly inside (0, 1).
    assert ((expected > 0.01) & (expected < 0.99)).sum() > 1000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_input_forward_matches_torch(seed: int) -> None:
    model = seeded_model(seed=seed)
    vad = np.random.default_rng(seed).uniform(-1, 1, size=(1, 3)).astype(np.float32)
    got = engine_of(model).forward(vad)
    assert got.shape == (1, 52)
    assert np.abs(got - torch_forward(model, vad)).max() <= TOLERANCE


def test_a_non_default_architecture_matches_torch() -> None:
    config = MLPConfig(hidden=(8, 16), leaky_relu_slope=0.2, layer_norm_eps=1e-3)
    model = seeded_model(config, seed=7)
    vad = np.random.default_rng(7).uniform(-1, 1, size=(32, 3)).astype(np.float32)
    engine = engine_of(model)
    assert engine.parameter_count == config.parameter_count()
    assert np.abs(engine.forward(vad) - torch_forward(model, vad)).max() <= TOLERANCE


def test_a_batch_of_several_kernel_blocks_matches_torch() -> None:
    model = seeded_model(seed=8)
    rows = 2 * BLOCK_ROWS + 7  # two full blocks and a short one
    vad = np.random.default_rng(8).uniform(-1, 1, size=(rows, 3)).astype(np.float32)
    assert np.abs(engine_of(model).forward(vad) - torch_forward(model, vad)).max() <= TOLERANCE


def test_a_layer_norm_gain_at_or_below_zero_is_applied_rather_than_folded() -> None:
    # Folding the gain into the next Linear needs every gain of the layer > 0 (LeakyReLU is
    # homogeneous only for positive factors); a layer with a zero or negative gain keeps it.
    model = seeded_model(MLPConfig(hidden=(16, 32, 16)), seed=9)
    with torch.no_grad():
        model.layers[1].weight[:4] = torch.tensor([-0.7, 0.0, -1.2, 0.3])
        model.layers[5].weight[0] = -0.5
    vad = np.random.default_rng(9).uniform(-1, 1, size=(64, 3)).astype(np.float32)
    assert np.abs(engine_of(model).forward(vad) - torch_forward(model, vad)).max() <= TOLERANCE


def test_outputs_are_clipped_to_the_unit_interval() -> None:
    engine = engine_of(seeded_model())
    vad = np.random.default_rng(8).uniform(-1, 1, size=(500, 3)).astype(np.float32)
    out = engine.forward(vad)
    assert out.min() == 0.0 and out.max() == 1.0  # both bounds are actually hit and held


def test_forward_into_writes_the_given_buffer_and_equals_forward() -> None:
    engine = engine_of(seeded_model())
    rng = np.random.default_rng(9)
    for batch in (4, 1, 4):  # a second call with a seen batch size reuses its workspace
        vad = rng.uniform(-1, 1, size=(batch, 3)).astype(np.float32)
        out = np.full((batch, 52), np.nan, dtype=np.float32)
        returned = engine.forward_into(vad, out)
        assert returned is out
        # forward_into and forward are two paths (different buffers): equal within rounding.
        # A NaN left in ``out`` (a row not written) still fails: NaN is never close to a number.
        np.testing.assert_allclose(out, engine.forward(vad), rtol=0, atol=FLOAT32_PATH_ATOL)


def _scratch_bytes(largest_batch: int, config: MLPConfig) -> int:
    """One set of work buffers (``NumpyMLP.scratch_nbytes``): per row, each hidden width's
    matmul output, scratch and next input (+ its ones column), the input (+ ones), one column."""
    widths = sum(config.hidden)
    per_row = 3 * widths + len(config.hidden) + config.in_features + 2
    return min(largest_batch, BLOCK_ROWS) * per_row * 4


def test_scratch_memory_stays_bounded_by_the_largest_batch_over_many_batch_sizes() -> None:
    # The animator forwards a different number of moving avatars each frame; per-size caches grew
    # without bound (+3.9 GB for sizes 1..1000). One set of buffers serves every size <= the max.
    model = seeded_model(MLPConfig(hidden=(64, 128, 64)), seed=4)
    config = model.config
    arrays = {key: value.numpy() for key, value in model.state_dict().items()}
    engine = NumpyMLP.from_state_dict(arrays, config)
    rng = np.random.default_rng(11)
    one_set_of_300_rows = _scratch_bytes(300, config)
    for batch in rng.permutation(np.arange(1, 301)):
        vad = rng.uniform(-1, 1, size=(int(batch), 3)).astype(np.float32)
        out = np.full((int(batch), 52), np.nan, dtype=np.float32)
        engine.forward_into(vad, out)
        fresh = NumpyMLP.from_state_dict(arrays, config).forward(vad)
        # Rows of larger work buffers vs a fresh engine's own: two paths, equal within rounding.
        np.testing.assert_allclose(out, fresh, rtol=0, atol=FLOAT32_PATH_ATOL)
        assert engine.scratch_nbytes <= one_set_of_300_rows
    assert engine.scratch_nbytes == one_set_of_300_rows


def test_a_smaller_batch_after_a_larger_one_still_matches_torch() -> None:
    model = seeded_model(seed=5)
    engine = engine_of(model)
    rng = np.random.default_rng(12)
    for batch in (64, 3, 1, 64):
        vad = rng.uniform(-1, 1, size=(batch, 3)).astype(np.float32)
        assert np.abs(engine.forward(vad) - torch_forward(model, vad)).max() <= TOLERANCE
    assert engine.scratch_nbytes == _scratch_bytes(64, model.config)


def test_forward_returns_fresh_arrays_across_calls() -> None:
    engine = engine_of(seeded_model())
    first = engine.forward(np.zeros((1, 3), dtype=np.float32))
    kept = first.copy()
    engine.forward(np.ones((1, 3), dtype=np.float32))
    np.testing.assert_array_equal(first, kept)


def test_forward_rejects_a_wrong_input_shape() -> None:
    engine = engine_of(seeded_model())
    with pytest.raises(ValueError, match=r"shape \(N, 3\), got \(3,\)"):
        engine.forward(np.zeros(3, dtype=np.float32))
    vad = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"out must be C-contiguous float32 of shape \(2, 52\)"):
        engine.forward_into(vad, np.zeros((2, 51), np.float32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        engine.forward_into(vad, np.zeros((52, 2), np.float32).T)
    with pytest.raises(ValueError, match=r"vad must be float32 of shape \(N, 3\), got float64"):
        engine.forward_into(vad.astype(np.float64), np.zeros((2, 52), np.float32))


def test_from_state_dict_names_a_missing_or_misshapen_tensor() -> None:
    arrays = {k: v.numpy() for k, v in VADBlendshapeMLP().state_dict().items()}
    missing = dict(arrays)
    del missing["layers.5.weight"]
    with pytest.raises(KeyError, match=r"layers\.5\.weight.*LayerNorm\(512\) weight"):
        NumpyMLP.from_state_dict(missing)
    misshapen = dict(arrays, **{"layers.12.bias": np.zeros(51, np.float32)})
    with pytest.raises(ValueError, match=r"layers\.12\.bias .* shape \(51,\), expected \(52,\)"):
        NumpyMLP.from_state_dict(misshapen)


def test_state_dict_round_trips_exactly() -> None:
    model = seeded_model()
    engine = engine_of(model)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(engine.state_dict()[key], value.numpy())


_NO_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test ({name})")
            return None

    sys.meta_path.insert(0, BlockTorch())

    import numpy as np
    import vadbridge.model as model, vadbridge.model.engine, vadbridge.model.checkpoint
    import vadbridge.model.api, vadbridge.commands.infer
    from vadbridge.model.checkpoint import CheckpointError

    engine, meta = model.load_model(sys.argv[1])
    weights = model.predict(engine, np.array([0.8, 0.6, 0.5], dtype=np.float32))
    assert weights.shape == (52,), weights.shape
    try:
        model.load_model(sys.argv[2])
    except CheckpointError as error:
        assert "needs torch" in str(error), error
    else:
        raise AssertionError("a .pt loaded without torch")
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
    print("ok", round(float(weights.sum()), 6))
    """
)


def test_inference_path_imports_and_runs_without_torch(tmp_path: Path) -> None:
    model = seeded_model()
    npz = export_npz(tmp_path / "m.npz", model, make_meta())
    pt = tmp_path / "m.pt"
    pt.write_bytes(b"not read: torch is blocked first")
    expected = engine_of(model).forward(np.array([[0.8, 0.6, 0.5]], dtype=np.float32)).sum()
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(npz), str(pt)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, total = result.stdout.split()
    assert status == "ok"
    assert float(total) == pytest.approx(float(expected), abs=1e-4)
