"""vadbridge: VAD in over OSC/MQTT, ARKit blendshapes out over VMC, OSC and Live Link.

The model card's API (docs/DESIGN.md, "Layers"): ``load_model``, ``predict``,
``emotion_to_vad`` and ``enforce_symmetry``. Importing ``vadbridge`` imports nothing more:
the model layer (numpy, no torch, no sockets, no daemon) loads on first use of these names.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: importing typing costs the console script ~15 ms before it can
# hold an early SIGHUP (vadbridge.hangup). mypy treats this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from vadbridge.model import (
        ARKIT_NAMES,
        emotion_to_vad,
        enforce_symmetry,
        load_model,
        mirror,
        predict,
    )

__all__ = [
    "ARKIT_NAMES",
    "__version__",
    "emotion_to_vad",
    "enforce_symmetry",
    "load_model",
    "mirror",
    "predict",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The model card's API, imported on first use: ``import vadbridge.commands`` (the console
    script) must not wait for numpy before it can hold an early SIGHUP."""
    if name in __all__ and name != "__version__":
        import vadbridge.model

        return getattr(vadbridge.model, name)
    raise AttributeError(f"module 'vadbridge' has no attribute {name!r}")
