"""The training recipe and the ``dataset``/``train`` subcommands, on small generated sets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from models import run_cli_without_torch

from vadbridge.commands import main
from vadbridge.commands.args import NEEDS_TORCH
from vadbridge.model.api import load_model, predict
from vadbridge.model.arkit import LEFT_INDICES, RIGHT_INDICES, mirror
from vadbridge.training.data import load_dataset
from vadbridge.training.generator import generate_dataset
from vadbridge.training.train import (
    SPARSITY_WEIGHT,
    TrainConfig,
    recipe_loss,
    split_indices,
    train,
    with_mirrors,
)


@pytest.fixture(scope="module")
def smoke() -> tuple[dict[str, list[float]], str]:
    progress = io.StringIO()
    result = train(generate_dataset(2000, seed=1), TrainConfig(epochs=2, seed=1), progress=progress)
    return result.history, progress.getvalue()


def test_two_epoch_smoke_run_lowers_the_loss(smoke: tuple[dict[str, list[float]], str]) -> None:
    history, _ = smoke
    assert history["train_loss"][1] < history["train_loss"][0]
    assert history["val_loss"][1] < history["val_loss"][0]


def test_progress_is_one_plain_line_per_epoch(smoke: tuple[dict[str, list[float]], str]) -> None:
    lines = smoke[1].splitlines()
    assert [line.split("[")[0].split() for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "\r" not in smoke[1] and "val" in lines[0]


def test_same_seed_trains_bit_identical_weights() -> None:
    data = generate_dataset(600, seed=2)
    config = TrainConfig(epochs=1, batch_size=128, seed=5)
    first = train(data, config, progress=None).model.state_dict()
    second = train(data, config, progress=None).model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_training_restores_torch_global_settings() -> None:
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    train(generate_dataset(100, seed=2), TrainConfig(epochs=1, threads=1), progress=None)
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == before


def test_split_is_seeded_disjoint_and_complete() -> None:
    train_idx, val_idx = split_indices(1000, 0.1, seed=3)
    again = split_indices(1000, 0.1, seed=3)
    assert np.array_equal(train_idx, again[0]) and np.array_equal(val_idx, again[1])
    assert len(val_idx) == 100
    assert sorted([*train_idx, *val_idx]) == list(range(1000))
    assert not np.array_equal(val_idx, split_indices(1000, 0.1, seed=4)[1])


def test_every_sample_is_also_mirrored() -> None:
    data = generate_dataset(10, seed=0)
    x, y = with_mirrors(data.vad, data.blendshapes)
    assert torch.equal(x[:10], x[10:])
    np.testing.assert_array_equal(y[10:].numpy(), mirror(data.blendshapes))


def test_loss_of_a_perfect_symmetric_prediction_is_only_the_sparsity_term() -> None:
    target = torch.full((4, 52), 0.25)
    loss = recipe_loss(target.clone(), target, TrainConfig())
    assert float(loss) == pytest.approx(SPARSITY_WEIGHT * 0.25)


def test_symmetry_term_weighs_left_right_differences_twice() -> None:
    target = torch.zeros(1, 52)
    prediction = torch.zeros(1, 52)
    prediction[0, LEFT_INDICES[0]] = 0.5
    config = TrainConfig(sparsity_weight=0.0)
    smooth_l1 = 0.5 * 0.25 / 52
    symmetry = 0.25 / len(RIGHT_INDICES)
    assert float(recipe_loss(prediction, target, config)) == pytest.approx(smooth_l1 + 2 * symmetry)


@pytest.mark.parametrize(
    "field", [{"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"val_fraction": 1.0}]
)
def test_bad_config_is_rejected(field: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**field)  # type: ignore[arg-type]


# --- CLI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_dataset_command_writes_what_the_loader_reads(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"builtin{suffix}"
    assert main(["dataset", "--out", str(out), "--n", "120", "--seed", "9"]) == 0
    loaded = load_dataset(out)
    expected = generate_dataset(120, seed=9)
    assert np.array_equal(loaded.vad, expected.vad)
    assert np.array_equal(loaded.blendshapes, expected.blendshapes)


def test_train_command_writes_checkpoint_metrics_and_curve(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    assert main(["dataset", "--out", str(data), "--n", "300"]) == 0
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--name", "m"]
    assert main([*argv, "--batch-size", "64", "--seed", "3", "--lr", "0.002"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["per_epoch"]["val_loss"]) == 2
    assert metrics["training"]["lr"] == 0.002 and metrics["training"]["data"] == "csv:d.csv"
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    model, meta = load_model(out / "m.npz")
    assert meta["metrics"]["best_val_mse"] == metrics["best_val_mse"]
    assert predict(model, np.zeros(3, dtype=np.float32)).shape == (52,)


def test_train_command_accepts_builtin_data(tmp_path: Path) -> None:
    argv = ["train", "--data", "builtin", "--n", "200", "--epochs", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert (tmp_path / "vadbridge-v2.npz").is_file() and (tmp_path / "vadbridge-v2.pt").is_file()


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["dataset", "--out", "x.txt"], "--out must end in .csv or .npz"),
        (["dataset", "--out", "x.csv", "--n", "0"], "must be at least 1"),
        (["train", "--data", "builtin", "--out", "d", "--epochs", "-3"], "must be at least 1"),
        (["train", "--data", "builtin", "--out", "d", "--lr", "fast"], "not a number"),
        (["train", "--data", "builtin", "--out", "d", "--format", "csv"], "does not apply"),
        (["train", "--data", "absent.csv", "--out", "d"], "absent.csv: no such file"),
        (["train", "--data", "e.csv", "--format", "emo3d", "--out", "d"], "e.csv: no such file"),
        (["train", "--data", "d.csv", "--out", "d", "--format", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_reason(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    reason: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert status == 2
    assert reason in err and len(err.strip().splitlines()) == 1


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit status and stderr of ``vadbridge ARGV`` run in this process."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code  # type: ignore[assignment]
    return status, capsys.readouterr().err


def test_train_out_that_is_a_file_fails_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    # --data names a missing file: reaching the data loader would report that instead.
    argv = ["train", "--data", str(tmp_path / "absent.csv"), "--out", str(taken)]
    status, err = run_cli(argv, capsys)
    assert status == 2
    assert err == f"vadbridge train: error: --out {str(taken)!r} exists and is not a directory\n"
    assert taken.read_text() == "not a directory"


def test_train_out_below_a_file_is_not_a_writable_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    status, err = run_cli(["train", "--data", "builtin", "--out", str(out)], capsys)
    assert status == 2
    assert err.startswith(f"vadbridge train: error: --out {str(out)!r} is not a writable directory")
    assert len(err.splitlines()) == 1


def test_train_creates_the_out_directory_before_loading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "run"
    status, err = run_cli(
        ["train", "--data", str(tmp_path / "absent.csv"), "--out", str(out)], capsys
    )
    assert status == 2 and "absent.csv: no such file" in err
    assert out.is_dir() and list(out.iterdir()) == []


def test_dataset_out_that_is_a_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.csv"
    out.mkdir()
    status, err = run_cli(["dataset", "--out", str(out), "--n", "10"], capsys)
    assert status == 2
    assert err == (
        f"vadbridge dataset: error: --out is a directory, expected a file: {str(out)!r}\n"
    )


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_dataset_out_that_cannot_be_opened_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    # A dangling symlink: its directory exists, yet opening it for writing fails (even as root).
    out = tmp_path / f"link{suffix}"
    out.symlink_to(tmp_path / "missing" / f"target{suffix}")
    status, err = run_cli(["dataset", "--out", str(out), "--n", "10"], capsys)
    assert status == 2
    assert err == (
        f"vadbridge dataset: error: cannot write --out {str(out)!r}: No such file or directory\n"
    )





def test_train_without_torch_says_how_to_install_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli_without_torch(["train", "--data", "builtin", "--out", str(out)])
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"vadbridge train: error: {NEEDS_TORCH}\n"
    assert NEEDS_TORCH == (
        "needs torch: pip install 'vadbridge[train]' (CPU build: pip install torch==2.13.0 first)"
    )
    assert not out.exists()  # stopped before touching --out or the data
