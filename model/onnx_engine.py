"""The MLP run by onnxruntime: ``model.engine: onnxruntime`` (an optional extra).

The graph is ``model.onnx_export.build_onnx_model`` of the loaded weights, built in memory at
start (no file, no torch), and run on one thread with the input and output bound to the
caller's arrays, so ``forward_into`` copies nothing. The animator hands it the same table rows
frame after frame, so the bindings are kept per (input, rows, output) and reused: binding anew
costs about as much as a one-row forward pass. Measured side by side with the numpy kernel
(``vadbridge bench --only engines``, docs/performance.md): ~20% faster per row at 1,000 rows,
~30% for one row. Its float32 arithmetic differs from the numpy kernel's in the last bits (the
tests compare them at ``FLOAT32_PATH_ATOL``).

Needs ``onnx`` and ``onnxruntime``: ``pip install 'vadbridge[export]'``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.engine import NumpyMLP
from vadbridge.model.optional import installed

__all__ = ["ONNXRUNTIME_EXTRA", "OnnxRuntimeEngine", "onnxruntime_installed"]

ONNXRUNTIME_EXTRA = "pip install 'vadbridge[export]'"
# Bindings kept, least recently used dropped first: the table's rows and the lookahead's batch
# every frame, and gathers of a subset of rows (a new row count, a new binding).
_KEPT_BINDINGS = 16


def onnxruntime_installed() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` can be imported (without importing them)."""
    return installed("onnx", "onnxruntime")


class OnnxRuntimeEngine:
    """``forward``/``forward_into`` like ``NumpyMLP``, on an onnxruntime session."""

    def __init__(self, mlp: NumpyMLP) -> None:
        import onnxruntime as ort

        from vadbridge.model.onnx_export import INPUT_NAME, OUTPUT_NAME, build_onnx_model

        options = ort.SessionOptions()
        # One thread: the frame loop is one thread, and a pool would only fight it for cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            build_onnx_model(mlp).SerializeToString(), options,
            providers=["CPUExecutionProvider"],
        )
        self._ortvalue = ort.OrtValue.ortvalue_from_numpy
        # (input address, rows, output address) -> its binding. A binding's OrtValues keep their
        # arrays alive, so an address cannot be reused by another array while it is cached.
        self._bindings: OrderedDict[tuple[int, int, int], Any] = OrderedDict()
        self._input, self._output = INPUT_NAME, OUTPUT_NAME
        self.config = mlp.config

    def forward(self, vad: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """(N, 3) VAD -> a new (N, 52) float32 array of weights clipped to [0, 1]."""
        batch = np.ascontiguousarray(vad, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.config.in_features:
            raise ValueError(
                f"expected VAD of shape (N, {self.config.in_features}), got {batch.shape}"
            )
        out = np.empty((batch.shape[0], self.config.out_features), dtype=np.float32)
        self._session.run_with_iobinding(self._bind(batch, out))  # a new array: not kept
        return out

    def forward_into(self, vad: npt.NDArray[np.float32],
                     out: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``forward`` writing into ``out`` ((N, 52), C-contiguous float32), through bound
        buffers: the session reads ``vad`` and writes ``out`` in place."""
        if not (vad.flags.c_contiguous and out.flags.c_contiguous
                and vad.dtype == np.float32 and out.dtype == np.float32):
            raise ValueError("vad and out must be C-contiguous float32 arrays")
        if vad.shape[0] != out.shape[0]:
            raise ValueError(f"vad has {vad.shape[0]} rows and out {out.shape[0]}")
        key = (vad.__array_interface__["data"][0], vad.shape[0],
               out.__array_interface__["data"][0])
        bindings = self._bindings
        binding = bindings.get(key)
        if binding is None:
            if len(bindings) >= _KEPT_BINDINGS:
                bindings.popitem(last=False)  # the least recently used
            binding = bindings[key] = self._bind(vad, out)
        else:
            bindings.move_to_end(key)
        self._session.run_with_iobinding(binding)
        return out

    def _bind(self, vad: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> Any:
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(self._input, self._ortvalue(vad))
        binding.bind_ortvalue_output(self._output, self._ortvalue(out))
        return binding
