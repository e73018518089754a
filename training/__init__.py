"""Datasets (CSV, NPZ, Emo3D), the built-in prior-derived generator and the training loop.

Torch-free on import: the loop lives in ``training.train`` (imports torch) and is loaded only by
``vadbridge train``. Imports ``model``; ``model`` never imports ``training``.
"""

from vadbridge.training.data import load_dataset, save_dataset
from vadbridge.training.dataset import Dataset, DatasetError
from vadbridge.training.emo3d import load_emo3d
from vadbridge.training.generator import (
    generate_dataset,
    mean_abs_left_right,
    mean_abs_left_right_moving,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "generate_dataset",
    "load_dataset",
    "load_emo3d",
    "mean_abs_left_right",
    "mean_abs_left_right_moving",
    "save_dataset",
]
