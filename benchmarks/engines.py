"""Benchmark 6, the MLP's kernels side by side, and the bound behind skipped inference.

Per avatar-row cost of one batched forward pass (1 and 1,000 rows) for each kernel that is
installed, all on one thread, interleaved call by call so machine noise hits each alike:
``NumpyMLP.forward_into`` (the daemon's default engine), ``OnnxRuntimeEngine.forward_into``
(``model.engine: onnxruntime``: the graph ``vadbridge export`` writes, input and output bound
to the caller's arrays on each call), and the torch module in
``inference_mode``. Only numpy is used by the daemon; the others are measured to show what a
different runtime would buy (docs/performance.md, "MLP kernel").

``lipschitz`` estimates how far one weight can move per unit of VAD change (max-norm in and
out, symmetrised output, as the animator uses it): the largest ratio over random pairs a
small step apart in the VAD cube. ``Animator``'s ``SKIP_EPSILON`` times it bounds how far a
skipped face can lag the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vadbridge.benchmarks.harness import Models, Result
from vadbridge.core.animator import SKIP_EPSILON
from vadbridge.model.arkit import enforce_symmetry
from vadbridge.model.engine import NumpyMLP
from vadbridge.model.onnx_engine import OnnxRuntimeEngine, onnxruntime_installed

BATCHES: tuple[int, ...] = (1, 1000)


def lipschitz(engine: NumpyMLP, *, pairs: int, step: float = 1e-3, seed: int = 0) -> float:
    """max |f(x) - f(y)|_inf / |x - y|_inf over ``pairs`` random pairs ``step`` apart."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (pairs, 3)).astype(np.float32)
    direction = rng.uniform(-1.0, 1.0, (pairs, 3))
    direction /= np.abs(direction).max(axis=1, keepdims=True)  # one axis moves the full step
    y = np.clip(x + step * direction, -1.0, 1.0).astype(np.float32)
    moved = np.abs(x - y).max(axis=1)
    change = np.abs(enforce_symmetry(engine.forward(x)) - enforce_symmetry(engine.forward(y)))
    keep = moved > 0
    return float((change.max(axis=1)[keep] / moved[keep]).max())


def _torch_kernel(module: Any, vad: np.ndarray) -> Callable[[], Any]:
    import torch

    torch.set_num_threads(1)
    batch = torch.from_numpy(vad)

    def run() -> Any:
        with torch.inference_mode():
            return module(batch)

    return run


def kernels(models: Models, rows: int) -> dict[str, tuple[Callable[[], Any], np.ndarray | None]]:
    """name -> (one forward pass of ``rows`` rows, its output to check, or None)."""
    vad = np.random.default_rng(rows).uniform(-1.0, 1.0, (rows, 3)).astype(np.float32)
    engine = models.engine
    found: dict[str, tuple[Callable[[], Any], np.ndarray | None]] = {}
    numpy_out = np.empty((rows, 52), dtype=np.float32)
    found["numpy"] = (lambda: engine.forward_into(vad, numpy_out), numpy_out)
    if onnxruntime_installed():  # the daemon's own onnxruntime engine, buffers bound per call
        ort_engine = OnnxRuntimeEngine(engine)
        ort_out = np.empty((rows, 52), dtype=np.float32)
        found["onnxruntime"] = (lambda: ort_engine.forward_into(vad, ort_out), ort_out)
    if models.module is not None:
        found["torch"] = (_torch_kernel(models.module, vad), None)
    return found


def run(models: Models, *, quick: bool) -> list[Result]:
    results: list[Result] = []
    for rows in BATCHES:
        found = kernels(models, rows)
        repeats = (20 if quick else 300) if rows > 1 else (200 if quick else 3000)
        times: dict[str, list[float]] = {name: [] for name in found}
        for call, _ in found.values():
            call()  # warm-up: buffers, sessions
        for _ in range(repeats):
            for name, (call, _) in found.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        reference = found["numpy"][1]
        for name, (_, out) in found.items():
            # Two float32 paths (different kernels): equal within rounding, checked loosely.
            if (
                out is not None
                and reference is not None
                and float(np.abs(out - reference).max()) > 1e-4
            ):
                raise RuntimeError(f"{name} disagrees with numpy on the same input")
            per_row = float(np.median(times[name])) / rows * 1e6
            case = f"forward, batch {rows}, {name}"
            results.append(Result("engines", case, "per avatar-row", per_row, "µs"))
    estimate = lipschitz(models.engine, pairs=20_000 if quick else 200_000)
    case = f"skipped inference, SKIP_EPSILON {SKIP_EPSILON:g}"
    results += [
        Result("engines", case, "Lipschitz estimate", estimate, "weight/VAD"),
        Result("engines", case, "bound on a skipped face's lag", estimate * SKIP_EPSILON, "weight"),
    ]
    return results
