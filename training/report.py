"""What a training run leaves beside the checkpoint: ``metrics.json`` and a loss-curve PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vadbridge.model.checkpoint import export_npz, make_meta, save_checkpoint
from vadbridge.model.config import MLPConfig
from vadbridge.training.train import TrainResult

METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"


def checkpoint_meta(result: TrainResult) -> dict[str, Any]:
    """The checkpoint's meta: headline metrics only (the per-epoch history is in metrics.json)."""
    headline = {k: v for k, v in result.metrics.items() if k != "per_epoch"}
    return make_meta(MLPConfig(), training=result.training, metrics=headline)


def write_run(result: TrainResult, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write ``{name}.pt``, ``{name}.npz``, ``metrics.json`` and ``loss_curve.png`` there."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = checkpoint_meta(result)
    paths = {
        "pt": save_checkpoint(out / f"{name}.pt", result.model, meta),
        "npz": export_npz(out / f"{name}.npz", result.model, meta),
        "metrics": out / METRICS_FILE,
        "loss_curve": out / LOSS_CURVE_FILE,
    }
    document = {"checkpoint": name, "training": result.training, **result.metrics}
    paths["metrics"].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    plot_loss_curve(result.history, paths["loss_curve"])
    return paths


def plot_loss_curve(history: dict[str, list[float]], path: str | Path) -> None:
    """Train/val loss and val MSE per epoch, log scale. matplotlib is imported only here."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = range(1, len(history["train_loss"]) + 1)
    axes.plot(epochs, history["train_loss"], label="train loss")
    axes.plot(epochs, history["val_loss"], label="val loss")
    axes.plot(epochs, history["val_mse"], label="val MSE (clamped output)")
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title("vadbridge training (best epoch kept by val MSE)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
