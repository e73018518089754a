"""The dataset type shared by every loader: VAD (N, 3) and ARKit blendshapes (N, 52) in model
order, and the error a loader raises with the place in the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import NUM_BLENDSHAPES

__all__ = ["Dataset", "DatasetError"]


class DatasetError(ValueError):
    """Bad dataset input; ``path``, ``row`` (1-based file line, CSV) and ``column`` say where."""

    def __init__(
        self, path: str | Path, reason: str, row: int | None = None, column: str | None = None
    ) -> None:
        self.path = str(path)
        self.row = row
        self.column = column
        self.reason = reason
        where = self.path
        if row is not None:
            where += f", line {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Dataset:
    vad: npt.NDArray[np.float32]  # (N, 3), each in [-1, 1]
    blendshapes: npt.NDArray[np.float32]  # (N, 52) in model order, each in [0, 1]

    def __post_init__(self) -> None:
        if self.vad.ndim != 2 or self.vad.shape[1] != 3:
            raise ValueError(f"vad must have shape (N, 3), got {self.vad.shape}")
        if self.blendshapes.shape != (self.vad.shape[0], NUM_BLENDSHAPES):
            raise ValueError(
                f"blendshapes must have shape ({self.vad.shape[0]}, 52), "
                f"got {self.blendshapes.shape}"
            )

    def __len__(self) -> int:
        return int(self.vad.shape[0])
