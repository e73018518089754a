"""``model.engine: onnxruntime``: the same network on onnxruntime, wired like the other engines.

onnx and onnxruntime are in the ``dev`` extra, so these run in CI; a machine without them
skips the first three (the config test checks the refusal either way).
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from bridge_harness import (
    UdpReceiver,
    config_from_yaml,
    expected_vmc_frame,
    osc,
    running_bridge,
    send_osc,
    wait_for_frame,
)
from conftest import free_port
from models import FLOAT32_PATH_ATOL

from vadbridge.config import ConfigError
from vadbridge.model.api import load_model
from vadbridge.model.onnx_engine import OnnxRuntimeEngine, onnxruntime_installed

needs_onnxruntime = pytest.mark.skipif(not onnxruntime_installed(),
                                       reason="onnx/onnxruntime not installed")


@needs_onnxruntime
@pytest.mark.parametrize("rows", [1, 7, 300])
def test_onnxruntime_computes_the_numpy_kernels_faces(rows: int) -> None:
    """Two float32 kernels of the same graph: equal within FLOAT32_PATH_ATOL, written in
    place into the caller's array (what the animator hands it: rows of its tables)."""
    mlp = load_model()[0]
    engine = OnnxRuntimeEngine(mlp)
    vad = np.random.default_rng(rows).uniform(-1, 1, (rows, 3)).astype(np.float32)
    table = np.full((rows + 2, 52), -1.0, dtype=np.float32)
    out = table[:rows]
    assert engine.forward_into(vad, out) is out
    np.testing.assert_allclose(out, mlp.forward(vad), rtol=0, atol=FLOAT32_PATH_ATOL)
    assert np.all(table[rows:] == -1.0)  # nothing written past the rows asked for
    np.testing.assert_allclose(engine.forward(vad.tolist()), out, rtol=0, atol=0)
    vad *= -0.5  # the same arrays again (a kept binding): it reads the new values
    engine.forward_into(vad, out)
    np.testing.assert_allclose(out, mlp.forward(vad), rtol=0, atol=FLOAT32_PATH_ATOL)
    with pytest.raises(ValueError, match="rows"):
        engine.forward_into(vad, table)

    # forward() allocates its output: nothing of it is kept. forward_into's bindings are kept
    # per buffer, the least recently used dropped past 16.
    kept = len(engine._bindings)
    for _ in range(5):
        engine.forward(vad)
    assert len(engine._bindings) == kept
    buffers = [(np.zeros((rows, 3), np.float32), np.zeros((rows, 52), np.float32))
               for _ in range(20)]
    for vad_buffer, out_buffer in buffers:
        engine.forward_into(vad_buffer, out_buffer)
    assert len(engine._bindings) == 16
    engine.forward_into(vad, out)  # dropped long ago: bound again, and still right
    np.testing.assert_allclose(out, mlp.forward(vad), rtol=0, atol=FLOAT32_PATH_ATOL)
    with pytest.raises(ValueError, match="shape"):
        engine.forward(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        engine.forward_into(vad, np.zeros((rows, 104), dtype=np.float32)[:, ::2])


@needs_onnxruntime
def test_a_bridge_on_onnxruntime_sends_the_models_face(tmp_path: Path) -> None:
    vmc = UdpReceiver()
    osc_port = free_port(socket.SOCK_DGRAM)
    config = config_from_yaml(f"""
stats_interval_s: 0
model: {{engine: onnxruntime}}
smoothing: {{tau_ms: 0}}
inputs: [{{type: osc, host: 127.0.0.1, port: {osc_port}}}]
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}}}]
""")
    try:
        with running_bridge(config) as bridge:
            assert isinstance(bridge.animator.engine, OnnxRuntimeEngine)
            send_osc(osc_port, osc("/vad", 0.6, 0.4, 0.2))
            face = wait_for_frame(vmc, expected_vmc_frame(load_model()[0], (0.6, 0.4, 0.2)))
    finally:
        vmc.close()
    assert face  # within FLOAT32_PATH_ATOL of the numpy kernel's face


def test_the_engine_is_refused_at_load_when_its_packages_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vadbridge.config.schema as schema

    monkeypatch.setattr(schema, "onnxruntime_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"model\.engine.*vadbridge\[export\]"):
        config_from_yaml("model: {engine: onnxruntime}\n")
    assert config_from_yaml("model: {engine: mlp}\n").model.engine == "mlp"
