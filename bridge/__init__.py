"""vadbridge: VAD in over OSC/MQTT, ARKit blendshapes out over VMC, OSC and Live Link.

The model card's API (docs/DESIGN.md, "Layers"): ``load_model``, ``predict``,
``emotion_to_vad`` and ``enforce_symmetry``. Importing ``vadbridge`` imports the model layer
only: no torch, no sockets, no daemon.
"""

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
