"""Torch-free inference: the model card's MLP in eval mode, in numpy float32.

The forward pass is Linear -> LayerNorm -> LeakyReLU (-> Dropout, the identity in eval mode) for
each hidden layer, then Linear and a clamp to [0, 1] (docs/references.md, "Model card").
LayerNorm uses the biased variance and ``config.layer_norm_eps``, as ``torch.nn.LayerNorm``
does.

The weights are rearranged once, at load, so a batch makes 6 passes over each hidden
activation instead of 10 (docs/performance.md, "MLP kernel"); every step is exact algebra, so
only float32 rounding differs from the textbook order:
- LayerNorm subtracts the row mean. The mean of ``x @ W + b`` is ``x @ mean_col(W) + mean(b)``,
  so each Linear's weight columns and bias are centred at load: its output already has zero
  row mean, and LayerNorm keeps only the division by the standard deviation.
- Biases ride in the matmul: each activation buffer has one more column, fixed at 1, and each
  weight matrix one more row, the bias.
- LeakyReLU is positively homogeneous (``f(g*z) = g*f(z)`` for ``g > 0``): when every LayerNorm
  gain ``g`` of a layer is positive, ``f(g*z + beta) = g * f(z + beta/g)``, and ``g`` moves into
  the next layer's weight rows. A layer with a gain <= 0 keeps its multiply.

There is one set of work buffers, sized to the largest batch seen so far up to ``BLOCK_ROWS``
(a larger batch runs block by block); a smaller batch uses its first rows, so scratch memory is
bounded however many different batch sizes the frame loop sends (the animator forwards a
different number of moving avatars each frame). ``forward_into`` allocates no array data once
a batch at least as large has been seen (only small views of the buffers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vadbridge.model.config import MLPConfig

Float32Array = npt.NDArray[np.float32]

# Rows per kernel pass: a larger batch is cut into blocks of this many, so a block's activations
# (256 x 512 float32 = 0.5 MB) stay in the core's L2 between the passes over them. Measured at
# 1,000 rows (docs/performance.md, "MLP kernel"): 256-500 rows ~9% faster than one pass, 128
# no gain, 64 slower (per-call overhead).
BLOCK_ROWS = 256


def _row_dot(a: Float32Array, b: Float32Array, out: Float32Array) -> None:
    """``out[i] = a[i] @ b[i]``: numpy 2's ``vecdot`` (measured 1.6x faster than einsum at
    256 x 512), einsum on numpy 1.26."""
    if _VECDOT is not None:
        _VECDOT(a, b, out=out)
    else:
        np.einsum("ij,ij->i", a, b, out=out)


_VECDOT = getattr(np, "vecdot", None)


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


@dataclass(frozen=True)
class _FusedLayer:
    """One hidden layer as the kernel runs it (see the module docstring)."""

    weight: Float32Array  # (in + 1, out): centred weight rows, then the centred bias row
    gain: Float32Array | None  # LayerNorm gain, None when folded into the next layer's weight
    shift: Float32Array  # LayerNorm bias, divided by the gain when that was folded
    inv_width: np.float32


def _fuse(
    hidden: list[_Hidden], out_weight_t: Float32Array, out_bias: Float32Array
) -> tuple[list[_FusedLayer], Float32Array]:
    """The kernel's layers and augmented output weight, computed in float64 once."""
    fused: list[_FusedLayer] = []
    carried: np.ndarray | None = None  # the previous layer's folded gain, scales these rows
    for layer in hidden:
        weight = layer.weight_t.astype(np.float64)
        if carried is not None:
            weight *= carried[:, None]
        bias = layer.bias.astype(np.float64)
        weight -= weight.mean(axis=1, keepdims=True)
        bias -= bias.mean()
        gain = layer.norm_weight.astype(np.float64)
        shift = layer.norm_bias.astype(np.float64)
        foldable = bool(np.all(gain > 0))
        fused.append(
            _FusedLayer(
                weight=np.ascontiguousarray(np.vstack([weight, bias]), dtype=np.float32),
                gain=None if foldable else layer.norm_weight.copy(),
                shift=(shift / gain if foldable else shift).astype(np.float32),
                inv_width=layer.inv_width,
            )
        )
        carried = gain if foldable else None
    out = out_weight_t.astype(np.float64)
    if carried is not None:
        out *= carried[:, None]
    augmented = np.vstack([out, out_bias.astype(np.float64)])
    return fused, np.ascontiguousarray(augmented, dtype=np.float32)


class _Workspace:
    """Scratch arrays for up to ``rows`` inputs; a batch of n uses the first n rows of each.

    ``inputs[i]`` is layer i's input with a last column of ones (the bias column; nothing writes
    it after construction). Row slices of a C-contiguous array stay C-contiguous, which
    ``np.dot(..., out=...)`` needs.
    """

    def __init__(self, rows: int, in_features: int, widths: tuple[int, ...]) -> None:
        self.rows = rows
        self.inputs = [np.ones((rows, w + 1), dtype=np.float32) for w in (in_features, *widths)]
        self.hidden = [np.empty((rows, w), dtype=np.float32) for w in widths]
        self.scratch = [np.empty((rows, w), dtype=np.float32) for w in widths]
        self.column = np.empty((rows, 1), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (*self.inputs, *self.hidden, *self.scratch, self.column))


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
        self._fused, self._out_weight = _fuse(hidden, out_weight_t, out_bias)
        self._work = _Workspace(0, config.in_features, config.hidden)

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
        """Bytes in work buffers: min(largest batch seen, BLOCK_ROWS) rows of
        ``3 * sum(hidden) + len(hidden) + in_features + 2`` float32s (per hidden width: matmul
        output, scratch, next input + its ones column; the input + ones; the row statistics)."""
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
        for first in range(0, n, BLOCK_ROWS):
            last = min(first + BLOCK_ROWS, n)
            self._forward_block(vad[first:last], out[first:last])
        return out

    def _forward_block(self, vad: Float32Array, out: Float32Array) -> None:
        n = vad.shape[0]
        work = self._work
        if n > work.rows:
            # Grow to exactly n (at most BLOCK_ROWS): batch sizes only grow when avatars join, so
            # regrowth is rare, and the old buffers are dropped here rather than kept per size.
            work = self._work = _Workspace(n, self.config.in_features, self.config.hidden)
        x = work.inputs[0][:n]
        x[:, :-1] = vad
        column = work.column[:n]
        squares = work.column[:n, 0]
        for layer, h_all, tmp_all, next_all in zip(
            self._fused, work.hidden, work.scratch, work.inputs[1:], strict=True
        ):
            h, tmp = h_all[:n], tmp_all[:n]
            np.dot(x, layer.weight, out=h)  # + bias, already zero-mean per row (centred weights)
            # The biased variance: one pass, no temporary (a sum of products per row).
            _row_dot(h, h, squares)
            column *= layer.inv_width
            column += self._eps
            np.sqrt(column, out=column)
            h /= column
            if layer.gain is not None:
                h *= layer.gain
            h += layer.shift
            # LeakyReLU as max(h, slope*h): equal to torch's for 0 <= slope <= 1. It writes the
            # next layer's input, whose last column stays the ones of the bias.
            x = next_all[:n]
            np.multiply(h, self._slope, out=tmp)
            np.maximum(h, tmp, out=x[:, :-1])
        np.dot(x, self._out_weight, out=out)
        np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)  # np.clip's wrapper costs 3 µs
