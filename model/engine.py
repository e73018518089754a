"""Torch-free inference: the model card's MLP in eval mode, in numpy float32.

The forward pass is Linear -> LayerNorm -> LeakyReLU (-> Dropout, the identity in eval mode) for
each hidden layer, then Linear and a clamp to [0, 1] (docs/references.md, "Model card").
LayerNorm uses the biased variance and ``config.layer_norm_eps``, as ``torch.nn.LayerNorm``
does. Weights are stored transposed and contiguous so each Linear is one ``x @ W`` into a work
buffer. There is one set of work buffers, sized to the largest batch seen so far; a smaller
batch uses its first rows, so scratch memory is bounded by the largest batch however many
different batch sizes the frame loop sends (the animator forwards a different number of moving
avatars each frame). ``forward_into`` allocates no array data once a batch at least as
large has been seen (only small views of the buffers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vadbridge.model.config import MLPConfig

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ParameterSpec:
    """One tensor the architecture expects: its state-dict key, shape and a readable role."""

    key: str
    shape: tuple[int, ...]
    role: str


def parameter_layout(config: MLPConfig) -> tuple[ParameterSpec, ...]:
    """The expected tensors in ``VADBlendshapeMLP`` state-dict order.

    Keys follow ``model/network.py``: an ``nn.Sequential`` of Linear, LayerNorm, LeakyReLU,
    Dropout blocks, so hidden layer i has its Linear at index 4i and its LayerNorm at 4i+1.
    """
    specs: list[ParameterSpec] = []
    fan_in = config.in_features
    for i, width in enumerate(config.hidden):
        linear, norm = f"layers.{4 * i}", f"layers.{4 * i + 1}"
        specs += [
            ParameterSpec(f"{linear}.weight", (width, fan_in), f"Linear({fan_in}, {width}) weight"),
            ParameterSpec(f"{linear}.bias", (width,), f"Linear({fan_in}, {width}) bias"),
            ParameterSpec(f"{norm}.weight", (width,), f"LayerNorm({width}) weight"),
            ParameterSpec(f"{norm}.bias", (width,), f"LayerNorm({width}) bias"),
        ]
        fan_in = width
    out, last = config.out_features, f"layers.{4 * len(config.hidden)}"
    specs += [
        ParameterSpec(f"{last}.weight", (out, fan_in), f"Linear({fan_in}, {out}) weight"),
        ParameterSpec(f"{last}.bias", (out,), f"Linear({fan_in}, {out}) bias"),
    ]
    return tuple(specs)


@dataclass(frozen=True)
class _Hidden:
    weight_t: Float32Array  # (in, out), C-contiguous: x @ weight_t == x @ W.T
    bias: Float32Array
    norm_weight: Float32Array
    norm_bias: Float32Array
    inv_width: np.float32


class _Workspace:
    """Scratch arrays for up to ``rows`` inputs; a batch of n uses the first n rows of each.

    Row slices of a C-contiguous array stay C-contiguous, which ``np.dot(..., out=...)`` needs.
    """

    def __init__(self, rows: int, widths: tuple[int, ...]) -> None:
        self.rows = rows
        self.hidden = [np.empty((rows, w), dtype=np.float32) for w in widths]
        self.scratch = [np.empty((rows, w), dtype=np.float32) for w in widths]
        self.column = np.empty((rows, 1), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (*self.hidden, *self.scratch, self.column))


class NumpyMLP:
    """Eval-mode forward pass of ``VADBlendshapeMLP`` without torch.

    Not thread-safe: work buffers are shared between calls (one instance per thread if needed).
    """

    def __init__(
        self,
        config: MLPConfig,
        hidden: list[_Hidden],
        out_weight_t: Float32Array,
        out_bias: Float32Array,
    ) -> None:
        self.config = config
        self._hidden = hidden
        self._out_weight_t = out_weight_t
        self._out_bias = out_bias
        self._slope = np.float32(config.leaky_relu_slope)
        self._eps = np.float32(config.layer_norm_eps)
        self._work = _Workspace(0, config.hidden)

    @classmethod
    def from_state_dict(
        cls, arrays: Mapping[str, npt.ArrayLike], config: MLPConfig | None = None
    ) -> NumpyMLP:
        """Build from arrays keyed like ``VADBlendshapeMLP.state_dict()`` (``parameter_layout``).

        Raises ``KeyError`` for a missing key and ``ValueError`` for a wrong shape; foreign
        layouts are normalised by ``model.checkpoint`` before they get here.
        """
        config = config or MLPConfig()
        if not 0.0 <= config.leaky_relu_slope <= 1.0:
            raise ValueError(f"leaky_relu_slope must be in [0, 1], got {config.leaky_relu_slope}")
        params: dict[str, Float32Array] = {}
        for spec in parameter_layout(config):
            if spec.key not in arrays:
                raise KeyError(f"state dict has no {spec.key!r} ({spec.role})")
            value = np.asarray(arrays[spec.key], dtype=np.float32)
            if value.shape != spec.shape:
                raise ValueError(
                    f"{spec.key} ({spec.role}) has shape {value.shape}, expected {spec.shape}"
                )
            params[spec.key] = value
        hidden = []
        for i in range(len(config.hidden)):
            linear, norm = f"layers.{4 * i}", f"layers.{4 * i + 1}"
            hidden.append(
                _Hidden(
                    weight_t=np.ascontiguousarray(params[f"{linear}.weight"].T),
                    bias=params[f"{linear}.bias"].copy(),
                    norm_weight=params[f"{norm}.weight"].copy(),
                    norm_bias=params[f"{norm}.bias"].copy(),
                    inv_width=np.float32(1.0 / config.hidden[i]),
                )
            )
        last = f"layers.{4 * len(config.hidden)}"
        return cls(
            config,
            hidden,
            np.ascontiguousarray(params[f"{last}.weight"].T),
            params[f"{last}.bias"].copy(),
        )

    def state_dict(self) -> dict[str, Float32Array]:
        """The parameters under ``VADBlendshapeMLP`` keys (e.g. to export a foreign .pt as .npz)."""
        arrays: dict[str, Float32Array] = {}
        for i, layer in enumerate(self._hidden):
            arrays[f"layers.{4 * i}.weight"] = np.ascontiguousarray(layer.weight_t.T)
            arrays[f"layers.{4 * i}.bias"] = layer.bias.copy()
            arrays[f"layers.{4 * i + 1}.weight"] = layer.norm_weight.copy()
            arrays[f"layers.{4 * i + 1}.bias"] = layer.norm_bias.copy()
        last = f"layers.{4 * len(self._hidden)}"
        arrays[f"{last}.weight"] = np.ascontiguousarray(self._out_weight_t.T)
        arrays[f"{last}.bias"] = self._out_bias.copy()
        return arrays

    @property
    def parameter_count(self) -> int:
        return sum(int(a.size) for a in self.state_dict().values())

    @property
    def scratch_nbytes(self) -> int:
        """Bytes in work buffers: largest batch seen x ``2 * sum(hidden) + 1`` float32s."""
        return self._work.nbytes

    def forward(self, vad: npt.ArrayLike) -> Float32Array:
        """(N, 3) VAD -> a new (N, 52) float32 array of weights clipped to [0, 1]."""
        batch = np.asarray(vad, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.config.in_features:
            raise ValueError(
                f"expected VAD of shape (N, {self.config.in_features}), got {batch.shape}"
            )
        out = np.empty((batch.shape[0], self.config.out_features), dtype=np.float32)
        self.forward_into(batch, out)
        return out

    def __call__(self, vad: npt.ArrayLike) -> Float32Array:
        return self.forward(vad)

    def forward_into(self, vad: Float32Array, out: Float32Array) -> Float32Array:
        """``forward`` writing into ``out`` ((N, 52) float32); allocation-free after warm-up.

        ``vad`` must already be a float32 (N, 3) array: the hot path does not convert.
        """
        n = vad.shape[0]
        if vad.dtype != np.float32 or vad.shape != (n, self.config.in_features):
            raise ValueError(f"vad must be float32 of shape (N, 3), got {vad.dtype} {vad.shape}")
        if (
            out.shape != (n, self.config.out_features)
            or out.dtype != np.float32
            or not out.flags.c_contiguous
        ):
            raise ValueError(
                f"out must be C-contiguous float32 of shape ({n}, 52), got {out.dtype} {out.shape}"
            )
        work = self._work
        if n > work.rows:
            # Grow to exactly n: batch sizes only grow when avatars join, so regrowth is rare, and
            # the old buffers are dropped here rather than kept per size.
            work = self._work = _Workspace(n, self.config.hidden)
        x = vad
        column = work.column[:n]
        for layer, h_all, tmp_all in zip(self._hidden, work.hidden, work.scratch, strict=True):
            h, tmp = h_all[:n], tmp_all[:n]
            np.dot(x, layer.weight_t, out=h)
            h += layer.bias
            # LayerNorm with the biased variance, as torch computes it. add.reduce times 1/width
            # rather than np.mean: mean's Python-level wrapper costs ~8 us per call on one row.
            np.add.reduce(h, axis=1, keepdims=True, out=column)
            column *= layer.inv_width
            h -= column
            np.multiply(h, h, out=tmp)
            np.add.reduce(tmp, axis=1, keepdims=True, out=column)
            column *= layer.inv_width
            column += self._eps
            np.sqrt(column, out=column)
            h /= column
            h *= layer.norm_weight
            h += layer.norm_bias
            # LeakyReLU as max(h, slope*h): equal to torch's for 0 <= slope <= 1.
            np.multiply(h, self._slope, out=tmp)
            np.maximum(h, tmp, out=h)
            x = h
        np.dot(x, self._out_weight_t, out=out)
        out += self._out_bias
        np.clip(out, 0.0, 1.0, out=out)
        return out
