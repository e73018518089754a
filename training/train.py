"""The model card's training recipe (docs/references.md, "Model card").

- Every sample is also used mirrored (left and right shapes swapped), in train and validation.
- Loss: Smooth L1 (Huber, beta 1) + ``SYMMETRY_WEIGHT`` (2.0) x mean squared (left - right) of
  the prediction + ``SPARSITY_WEIGHT`` x mean |prediction| (L1 sparsity; the card gives no weight,
  1e-3 is ours: it biases each output by about -1e-3, enough to keep unused shapes at zero).
- The loss is computed on the *unclamped* output by default: the module's ``forward`` clamps to
  [0, 1], whose gradient is zero outside the range, so a unit pushed below zero early on could never
  come back. Validation metrics use the clamped output, which is what inference returns.
- AdamW (lr 1e-3, weight decay 1e-4), CosineAnnealingLR over all epochs, seeded train/val split,
  deterministic on CPU for a seed; the best epoch by validation MSE is kept.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TextIO

import numpy as np
import torch
from torch import nn

from vadbridge.model.arkit import LEFT_INDICES, RIGHT_INDICES, mirror
from vadbridge.model.config import MLPConfig
from vadbridge.model.network import VADBlendshapeMLP
from vadbridge.training.dataset import Dataset
from vadbridge.training.generator import mean_abs_left_right, mean_abs_left_right_moving

SYMMETRY_WEIGHT = 2.0
SPARSITY_WEIGHT = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    val_fraction: float = 0.1
    symmetry_weight: float = SYMMETRY_WEIGHT
    sparsity_weight: float = SPARSITY_WEIGHT
    loss_on_clamped_output: bool = False
    threads: int = 2

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class TrainResult:
    model: VADBlendshapeMLP  # holds the best epoch's weights, in eval mode
    metrics: dict[str, Any]
    training: dict[str, Any]  # the checkpoint meta's "training" section
    history: dict[str, list[float]] = field(default_factory=dict)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/val split of ``n`` samples (at least one in each part when n >= 2)."""
    if n < 2:
        raise ValueError(f"need at least 2 samples to split into train and validation, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def with_mirrors(vad: np.ndarray, blendshapes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples followed by their mirror images (same VAD, left and right swapped)."""
    x = np.concatenate([vad, vad]).astype(np.float32)
    y = np.concatenate([blendshapes, mirror(blendshapes)]).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def _left_right(prediction: torch.Tensor) -> torch.Tensor:
    return prediction[:, LEFT_INDICES] - prediction[:, RIGHT_INDICES]


def recipe_loss(
    prediction: torch.Tensor, target: torch.Tensor, config: TrainConfig
) -> torch.Tensor:
    reconstruction = nn.functional.smooth_l1_loss(prediction, target)
    symmetry = _left_right(prediction).pow(2).mean()
    sparsity = prediction.abs().mean()
    return reconstruction + config.symmetry_weight * symmetry + config.sparsity_weight * sparsity


def _output(model: VADBlendshapeMLP, x: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    raw: torch.Tensor = model.layers(x)
    return raw.clamp(0.0, 1.0) if config.loss_on_clamped_output else raw


@torch.no_grad()
def evaluate(
    model: VADBlendshapeMLP, x: torch.Tensor, y: torch.Tensor, config: TrainConfig
) -> dict[str, float]:
    """Loss, MSE and symmetry term (mean squared L - R) on ``x``; the model is left in eval mode."""
    model.eval()
    raw = model.layers(x)
    clamped = raw.clamp(0.0, 1.0)
    loss_input = clamped if config.loss_on_clamped_output else raw
    return {
        "loss": float(recipe_loss(loss_input, y, config)),
        "mse": float((clamped - y).pow(2).mean()),
        "symmetry": float(_left_right(clamped).pow(2).mean()),
        "symmetry_unclamped": float(_left_right(raw).pow(2).mean()),
    }


def _progress_line(epoch: int, epochs: int, record: dict[str, float], width: int = 20) -> str:
    filled = round(width * epoch / epochs)
    bar = "#" * filled + "." * (width - filled)
    return (
        f"epoch {epoch:>4}/{epochs} [{bar}] train {record['train_loss']:.5f} "
        f"val {record['val_loss']:.5f} mse {record['val_mse']:.5f} "
        f"sym {record['val_symmetry']:.2e} lr {record['lr']:.2e} {record['epoch_s']:.1f}s"
    )


def train(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    data_source: str = "unknown",
    progress: TextIO | Literal["stderr"] | None = "stderr",
) -> TrainResult:
    """Train a fresh ``VADBlendshapeMLP`` on ``dataset`` with the card's recipe. A line per
    epoch goes to ``progress``: ``"stderr"`` is the ``sys.stderr`` of the time of the call (a
    default of ``sys.stderr`` itself would be the stream of the first import, which a test's
    capture may have closed since); None prints nothing."""
    config = config or TrainConfig()
    if progress == "stderr":
        progress = sys.stderr
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(dataset, config, data_source, progress)
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


def _train(
    dataset: Dataset, config: TrainConfig, data_source: str, progress: TextIO | None
) -> TrainResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    train_idx, val_idx = split_indices(len(dataset), config.val_fraction, config.seed)
    x_train, y_train = with_mirrors(dataset.vad[train_idx], dataset.blendshapes[train_idx])
    x_val, y_val = with_mirrors(dataset.vad[val_idx], dataset.blendshapes[val_idx])

    model = VADBlendshapeMLP(MLPConfig())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    shuffle = torch.Generator().manual_seed(config.seed)

    history: dict[str, list[float]] = {
        key: [] for key in ("train_loss", "val_loss", "val_mse", "val_symmetry", "lr")
    }
    best: dict[str, Any] = {"val_mse": float("inf")}
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train), generator=shuffle)
        total, count = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = recipe_loss(_output(model, x_train[batch], config), y_train[batch], config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val = evaluate(model, x_val, y_val, config)
        record = {
            "train_loss": total / count,
            "val_loss": val["loss"],
            "val_mse": val["mse"],
            "val_symmetry": val["symmetry"],
            "lr": lr,
        }
        for key, value in record.items():
            history[key].append(value)
        if val["mse"] < best["val_mse"]:
            best = {
                "epoch": epoch,
                "val_mse": val["mse"],
                **{f"val_{k}": v for k, v in val.items()},
            }
            best_state = copy.deepcopy(model.state_dict())
        if progress is not None:
            line = _progress_line(
                epoch, config.epochs, {**record, "epoch_s": time.perf_counter() - epoch_started}
            )
            print(line, file=progress, flush=True)

    model.load_state_dict(best_state)
    model.eval()
    metrics: dict[str, Any] = {
        "best_epoch": best["epoch"],
        "best_val_mse": best["val_mse"],
        "val_loss": best["val_loss"],
        "val_symmetry": best["val_symmetry"],
        "val_symmetry_unclamped": best["val_symmetry_unclamped"],
        "wall_time_s": round(time.perf_counter() - started, 2),
        "pairs": len(dataset),
        "train_samples_mirrored": len(x_train),
        "val_samples_mirrored": len(x_val),
        "raw_mean_abs_left_right": mean_abs_left_right(dataset.blendshapes),
        "raw_mean_abs_left_right_moving": mean_abs_left_right_moving(dataset.blendshapes),
        "per_epoch": history,
    }
    training_meta: dict[str, Any] = {
        "recipe": "smooth_l1 + symmetry_weight*mse(L-R) + sparsity_weight*mean|y|; mirrored",
        "data": data_source,
        **asdict(config),
        "optimizer": "AdamW",
        "scheduler": "CosineAnnealingLR(T_max=epochs)",
        "torch_version": torch.__version__,
    }
    return TrainResult(model=model, metrics=metrics, training=training_meta, history=history)
