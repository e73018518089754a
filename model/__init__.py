"""vadbridge's model: VAD (valence, arousal, dominance) -> the 52 ARKit blendshape weights.

Importing this package never imports torch: inference runs on the numpy engine.
"""

from vadbridge.model.api import load_model, predict
from vadbridge.model.arkit import ARKIT_NAMES, enforce_symmetry, mirror
from vadbridge.model.emotions import emotion_to_vad

__all__ = ["ARKIT_NAMES", "emotion_to_vad", "enforce_symmetry", "load_model", "mirror", "predict"]
