"""The model card's Python API: ``model, meta = load_model(path)``; ``predict(model, vad)``.

See docs/references.md, "Model card" (the original's public interface). ``load_model`` returns
the torch-free numpy engine; ``predict`` also accepts a torch module (used by training code).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.checkpoint import load_engine
from vadbridge.model.engine import NumpyMLP

if TYPE_CHECKING:
    from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL_NAME = "vadbridge-v2"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / f"{DEFAULT_MODEL_NAME}.npz"
PRODUCE_DEFAULT_COMMAND = (
    f"vadbridge train --data builtin --out model/weights --name {DEFAULT_MODEL_NAME}"
)
VAD_DIMENSIONS = 3


def bundled_model_names() -> list[str]:
    """The names of the checkpoints shipped in ``model/weights`` (``vadbridge-v1``, ...)."""
    return sorted(path.stem for path in WEIGHTS_DIR.glob("vadbridge-v*.npz"))


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A bundled model's name (``vadbridge-v1``) as its file; any other value as a path.

    A name is a bare word without a suffix or a folder, so ``./vadbridge-v1`` or
    ``vadbridge-v1.npz`` always mean files in the working directory.
    """
    text = os.fspath(path)
    if text in bundled_model_names():
        return WEIGHTS_DIR / f"{text}.npz"
    return Path(text)


def load_model(path: str | os.PathLike[str] | None = None) -> tuple[NumpyMLP, dict[str, Any]]:
    """Load a checkpoint (``.npz``, ``.pt`` or a foreign ``.pt``) into the numpy engine.

    ``path=None`` loads the bundled default, ``model/weights/vadbridge-v2.npz``; a bundled
    model's name (``"vadbridge-v1"``, see ``bundled_model_names``) loads that one. Raises
    ``FileNotFoundError`` if the file is missing and ``model.checkpoint.CheckpointError`` if it
    cannot be read.
    """
    if path is not None:
        path = resolve_checkpoint(path)
    if path is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise FileNotFoundError(
                f"the bundled checkpoint {DEFAULT_CHECKPOINT} does not exist; produce it with "
                f"`{PRODUCE_DEFAULT_COMMAND}` or pass a checkpoint path"
            )
        path = DEFAULT_CHECKPOINT
    return load_engine(path)


def predict(model: NumpyMLP | nn.Module, vad: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """VAD -> ARKit blendshape weights in [0, 1], in ``ARKIT_NAMES`` order.

    ``vad`` has shape (3,) (returns (52,)) or (N, 3) (returns (N, 52)): valence, arousal,
    dominance. Values outside [-1, 1] are clipped to that range, the model's training domain,
    because extrapolating an MLP beyond it gives meaningless faces. NaN or infinite values raise
    ``ValueError``. ``model`` is a ``NumpyMLP`` or a torch ``nn.Module``; a module runs under
    ``torch.no_grad()`` in eval mode (its previous train/eval mode is restored afterwards).
    The output is not symmetrised: call ``enforce_symmetry`` for exactly symmetric weights.
    """
    batch = _validated_batch(vad)
    out = model.forward(batch) if isinstance(model, NumpyMLP) else _predict_torch(model, batch)
    return out[0] if np.ndim(vad) == 1 else out


def _validated_batch(vad: npt.ArrayLike) -> npt.NDArray[np.float32]:
    try:
        array = np.asarray(vad, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"VAD must be numbers, got {vad!r}: {error}") from None
    if array.ndim not in (1, 2) or array.shape[-1] != VAD_DIMENSIONS:
        raise ValueError(f"VAD must have shape (3,) or (N, 3), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"VAD contains NaN or infinite values: {array.tolist()}")
    clipped = np.clip(array, -1.0, 1.0).astype(np.float32)
    return clipped.reshape(-1, VAD_DIMENSIONS)


def _predict_torch(module: nn.Module, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import torch

    was_training = module.training
    first = next(module.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    if was_training:  # .eval()/.train() walk every submodule: skip when already in eval
        module.eval()
    try:
        with torch.no_grad():
            result = module(torch.from_numpy(batch).to(device))
    finally:
        if was_training:
            module.train()
    return np.ascontiguousarray(result.detach().cpu().numpy(), dtype=np.float32)
