"""Core types shared by inputs, outputs, the avatar table and the daemon (docs/DESIGN.md,
"Core types")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "InputError", "VadSample"]


@dataclass(frozen=True, slots=True)
class VadSample:
    """One accepted input: finite values, already clipped to [-1, 1].

    ``None`` on an axis keeps the avatar's current target for it (a partial update).
    """

    avatar: str
    vad: tuple[float | None, float | None, float | None]


class InputError(Exception):
    """Raised by the pure input parsers; the source counts ``kind`` and drops the message."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class Frame:
    """One avatar's face at one frame: what an output encodes and sends.

    - ``weights``: (52,) float32 in model order (``ARKIT_NAMES``), in [0, 1], symmetric when
      the model's symmetry is on;
    - ``vad``: (3,) float32, the smoothed valence/arousal/dominance the face shows (outputs
      that derive something else from the emotion, such as VRM presets, read it);
    - ``number``: the frame clock's frame number; ``time_s``: seconds since the stream began.

    The daemon keeps one ``Frame`` per avatar row whose arrays are views into its tables and
    updates ``number`` and ``time_s`` in place each frame, so sending allocates nothing: an
    output must not keep a frame or its arrays past the call it received them in.
    """

    __slots__ = ("number", "time_s", "vad", "weights")

    def __init__(
        self,
        weights: np.ndarray,
        number: int = 0,
        time_s: float = 0.0,
        vad: np.ndarray | None = None,
    ) -> None:
        self.weights = weights
        self.number = number
        self.time_s = time_s
        self.vad = np.zeros(3, dtype=np.float32) if vad is None else vad

    def __repr__(self) -> str:
        return f"Frame(number={self.number}, time_s={self.time_s:g}, vad={self.vad.tolist()})"
