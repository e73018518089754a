"""VRM expression presets from VAD, and a VMC encoder that sends them (issue 7, item 6).

Avatars without perfect sync (no 52 ARKit clips) still have the VRM emotion presets. VMC carries
them like any blendshape: ``/VMC/Ext/Blend/Val ,sf <preset> <value>`` before the frame's one
``/VMC/Ext/Blend/Apply`` (docs/references.md, "VMC protocol"). VRM 0.x presets
Joy, Angry, Sorrow, Fun plus the custom ``Surprised`` clip VRoid models carry; VRM 1.0 names
happy, angry, sad, relaxed, surprised (the spec maps Joy->happy, Angry->angry, Sorrow->sad,
Fun->relaxed and asks senders to send the VRM 0 names, so ``vrm0`` is the usual choice).

The rule (``preset_weights``), a soft nearest-prototype lookup in VAD space:

1. Eight prototypes: the model card's seven non-neutral basic emotions
   (docs/references.md, "Model card") and "relaxed" = Russell & Mehrabian 1977 "untroubled"
   #60 (0.79, -0.01, 0.33) ("Emotion VAD tables"; model/emotions.py's alias for relaxed), the
   low-arousal positive region that Fun/relaxed stands for.
2. Each prototype maps to a preset mix (``PROTOTYPE_MIX``): happiness -> Joy, anger -> Angry,
   sadness -> Sorrow, relaxed -> Fun, surprise -> Surprised; the three with no preset of their own
   borrow by their EMFACS action units ("EMFACS prototypes"): fear (1+2+4+5+20+26: raised
   brows, wide eyes, open jaw as in surprise, brows drawn together as in sadness) -> 0.6
   Surprised + 0.4 Sorrow; disgust (9+15+16: a lowered, wrinkled look, lip corners down) -> 0.7
   Angry + 0.3 Sorrow; contempt (R12A+R14A, a faint smirk of a dominant negative state) -> 0.6
   Angry + 0.2 Joy.
3. Direction: a softmax over the cosine similarities of the VAD to the prototypes, sharpness
   ``KAPPA`` = 25 (each basic prototype then gives its own preset >= 0.9).
4. Strength: each prototype's share is scaled by ``min(1, |vad| / |prototype|)``, the distance
   from neutral relative to the prototype's: neutral gives all zeros, half-way gives about half,
   and the result is continuous everywhere (also through neutral).

Presets are in [0, 1] and sum to at most 1 (each mix sums to <= 1 and the shares to 1), so clips
that share morphs (Joy and Fun both smile) never add up past a full expression.

Without ARKit shapes (``arkit=False``) the frame's eyeBlinkLeft/Right (the liveliness layer's
procedural blinks) would never reach the avatar, so the encoder also sends the blink preset,
VRM 0.x ``Blink`` / VRM 1.0 ``blink`` (docs/references.md, "VRM presets"), valued at the mean of the
two. With ARKit shapes on it does not: the avatar blinks through EyeBlinkLeft/Right already and
a Blink preset on top would close the eyes twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt

from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from vadbridge.outputs.vmc import VmcEncoder, VmcNaming, blendshape_names, packet_template

__all__ = [
    "BLINK_PRESET_NAME",
    "KAPPA",
    "PRESET_NAMES",
    "PROTOTYPE_MIX",
    "PROTOTYPE_VAD",
    "VRM0_PRESET_NAMES",
    "VRM1_PRESET_NAMES",
    "VrmPresets",
    "VrmVmcEncoder",
    "preset_weights",
]

VrmPresets = Literal["vrm0", "vrm1"]

VRM0_PRESET_NAMES: Final = ("Joy", "Angry", "Sorrow", "Fun", "Surprised")
VRM1_PRESET_NAMES: Final = ("happy", "angry", "sad", "relaxed", "surprised")
PRESET_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "vrm0": VRM0_PRESET_NAMES, "vrm1": VRM1_PRESET_NAMES}  # fmt: skip
NUM_PRESETS: Final = len(VRM0_PRESET_NAMES)
BLINK_PRESET_NAME: Final[dict[str, str]] = {"vrm0": "Blink", "vrm1": "blink"}
_EYE_BLINKS: Final = (ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"])

KAPPA: Final = 25.0
# name -> (VAD, mix over (Joy, Angry, Sorrow, Fun, Surprised)); sources in the module docstring.
_PROTOTYPES: Final = {
    "happiness": ((0.8, 0.6, 0.5), (1.0, 0.0, 0.0, 0.0, 0.0)),
    "anger": ((-0.7, 0.8, 0.7), (0.0, 1.0, 0.0, 0.0, 0.0)),
    "sadness": ((-0.8, -0.4, -0.3), (0.0, 0.0, 1.0, 0.0, 0.0)),
    "relaxed": ((0.79, -0.01, 0.33), (0.0, 0.0, 0.0, 1.0, 0.0)),
    "surprise": ((0.3, 0.9, 0.2), (0.0, 0.0, 0.0, 0.0, 1.0)),
    "fear": ((-0.7, 0.8, -0.3), (0.0, 0.0, 0.4, 0.0, 0.6)),
    "disgust": ((-0.6, 0.3, 0.4), (0.0, 0.7, 0.3, 0.0, 0.0)),
    "contempt": ((-0.4, 0.3, 0.8), (0.2, 0.6, 0.0, 0.0, 0.0)),
}
# float32 throughout: presets go out as OSC float32 anyway, and float32 keeps the per-frame
# cost down (docs/performance.md).
PROTOTYPE_VAD: Final = np.array([vad for vad, _ in _PROTOTYPES.values()], dtype=np.float32)
PROTOTYPE_MIX: Final = np.array([mix for _, mix in _PROTOTYPES.values()], dtype=np.float32)
_PROTOTYPE_NORM: Final = np.linalg.norm(PROTOTYPE_VAD, axis=1)
_PROTOTYPE_UNIT_T: Final = np.ascontiguousarray((PROTOTYPE_VAD / _PROTOTYPE_NORM[:, None]).T)
_NEUTRAL_NORM: Final = np.float32(1e-9)
_KAPPA32: Final = np.float32(KAPPA)


def preset_weights(vad: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """VAD (N, 3) or (3,) -> preset weights (N, 5) or (5,) in ``VRM0_PRESET_NAMES`` order.

    Values are in [0, 1], sum to at most 1 per row and are all zero at neutral (see the module
    docstring for the rule). Raises ``ValueError`` for a wrong shape or non-finite values.
    """
    array = np.asarray(vad, dtype=np.float32)
    if array.shape[-1:] != (3,) or array.ndim not in (1, 2):
        raise ValueError(f"expected VAD of shape (3,) or (N, 3), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("VAD must be finite")
    rows = array.reshape(-1, 3)
    norm = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    cosine = (rows @ _PROTOTYPE_UNIT_T) / np.maximum(norm, _NEUTRAL_NORM)[:, None]
    logits = _KAPPA32 * (cosine - cosine.max(axis=1, keepdims=True))  # max-shifted: no overflow
    shares = np.exp(logits)
    shares /= shares.sum(axis=1, keepdims=True)
    shares *= np.minimum(norm[:, None] / _PROTOTYPE_NORM, np.float32(1.0))
    # Sums of products of non-negative numbers: >= 0 already; rounding may pass 1 by an ulp.
    out = np.minimum(shares @ PROTOTYPE_MIX, np.float32(1.0))
    result: npt.NDArray[np.float32] = out.reshape((*array.shape[:-1], NUM_PRESETS))
    return result


class VrmVmcEncoder:
    """VMC frames with VRM presets: [52 ARKit Val] + 5 preset Val [+ Blink Val] + Apply (+ OK, T).

    The presets come from the frame's VAD (``Frame.vad``: the smoothed VAD the face shows, in
    either smoothing space), so they glide with the face and a neutral frame (zero VAD) sends
    zero presets. ``arkit``, ``naming``, ``bundle``, ``split`` and ``send_ok_and_time`` mean
    what they mean for ``VmcEncoder``; ``split`` divides the Val messages into two bundles,
    Apply in the second. Without ARKit shapes (``arkit=False``) the blink preset follows the
    presets, valued at the mean of the frame's eyeBlinkLeft/Right (see the module docstring).
    """

    AUTO_REFRESH_HZ: ClassVar[float] = VmcEncoder.AUTO_REFRESH_HZ  # VMC receivers, as VMC

    def __init__(
        self,
        presets: VrmPresets,
        *,
        arkit: bool = True,
        naming: VmcNaming = "perfect_sync",
        bundle: bool = True,
        split: bool = False,
        send_ok_and_time: bool = True,
    ) -> None:
        if presets not in PRESET_NAMES:
            raise ValueError(f"presets must be one of {sorted(PRESET_NAMES)}, got {presets!r}")
        self.preset_names = PRESET_NAMES[presets]
        blink = () if arkit else (BLINK_PRESET_NAME[presets],)
        self.names = (blendshape_names(naming) if arkit else ()) + self.preset_names + blink
        self.arkit = arkit
        # preset_weights of the last VAD seen: a converged face shows the same VAD every frame.
        self._rule_vad: list[float] | None = None
        self._rule_presets = np.zeros(NUM_PRESETS, dtype=np.float32)

        self._template = packet_template(
            self.names, bundle=bundle, split=split, send_ok_and_time=send_ok_and_time
        )
        slots = self._template.float_slots
        count = len(self.names)
        first_preset = NUM_BLENDSHAPES if arkit else 0
        self._floats = self._template.floats
        self._arkit_slots = slots[:first_preset]
        self._preset_slots = slots[first_preset : first_preset + NUM_PRESETS]
        self._blink_slot = None if arkit else int(slots[NUM_PRESETS])
        self._time_slot = int(slots[count]) if send_ok_and_time else None
        self._datagrams = self._template.datagrams()

    @property
    def datagram_sizes(self) -> tuple[int, ...]:
        return self._template.sizes

    def encode(self, frame: Frame) -> Sequence[memoryview | bytes]:
        """The frame's datagrams (presets from its VAD); views valid until the next call."""
        if frame.weights.shape != (NUM_BLENDSHAPES,):
            raise ValueError(f"expected weights of shape (52,), got {frame.weights.shape}")
        return self.encode_values(frame.weights, self._rule(frame.vad), frame.time_s)

    def _rule(self, vad: np.ndarray) -> npt.NDArray[np.float32]:
        """``preset_weights(vad)``, recomputed only when ``vad`` changed since the last call."""
        key = vad.tolist()  # exact float32 values: equal keys = equal presets
        if key != self._rule_vad:
            self._rule_presets = preset_weights(vad)
            self._rule_vad = key
        return self._rule_presets

    def encode_values(
        self, weights: np.ndarray, presets: np.ndarray, time_s: float
    ) -> Sequence[memoryview | bytes]:
        """Pure encoding of given ``weights`` (52,) and ``presets`` (5, in VRM 0 order); without
        ARKit shapes the blink preset is the mean of ``weights``' eyeBlinkLeft/Right."""
        if presets.shape != (NUM_PRESETS,):
            raise ValueError(f"expected presets of shape (5,), got {presets.shape}")
        if self.arkit:
            self._floats[self._arkit_slots] = weights
        self._floats[self._preset_slots] = presets
        if self._blink_slot is not None:
            left, right = _EYE_BLINKS
            self._floats[self._blink_slot] = 0.5 * (float(weights[left]) + float(weights[right]))
        if self._time_slot is not None:
            self._floats[self._time_slot] = time_s
        return self._datagrams
