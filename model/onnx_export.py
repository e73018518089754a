"""Export the MLP to ONNX for Unity Sentis / Inference Engine and Unreal NNE, without torch.

The graph is built node by node with ``onnx.helper`` from the numpy weights, so it is exactly
the eval-mode network of ``model/engine.py`` (docs/references.md, "Model card"): per hidden layer
MatMul + Add, LayerNormalization, LeakyRelu (Dropout is the identity at inference and is left
out), then MatMul + Add and a Clip to [0, 1].

- Input ``vad``: float32 [N, 3] (valence, arousal, dominance), N a dynamic batch dimension.
- Output ``blendshapes``: float32 [N, 52] in ARKit alphabetical order; the names are also in
  the model's ``metadata_props`` (key ``blendshape_names``, a JSON list).

Opset 17 is the first with a LayerNormalization operator. Runtimes limited to older opsets
(Sentis 1.x-2.1 documents opsets 7-15) get ``opset=15``, where LayerNorm is spelled out as
ReduceMean, Sub, Mul, Add, Sqrt and Div, the same arithmetic as ``torch.nn.LayerNorm``.

``onnx`` is imported inside the functions: it is only needed to export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.config import MLPConfig
from vadbridge.model.engine import NumpyMLP

INPUT_NAME = "vad"
OUTPUT_NAME = "blendshapes"
BATCH_DIM = "N"
SUPPORTED_OPSETS: tuple[int, ...] = (15, 17)
DEFAULT_OPSET = 17
PRODUCER = "vadbridge"


class OnnxUnavailableError(RuntimeError):
    """The ``onnx`` package is not installed."""


def require_onnx() -> Any:
    """The ``onnx`` module, or ``OnnxUnavailableError`` saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise OnnxUnavailableError(
            "ONNX export needs the onnx package: pip install 'vadbridge[export]'"
        ) from None
    return onnx


def build_onnx_model(
    engine: NumpyMLP, meta: Mapping[str, Any] | None = None, opset: int = DEFAULT_OPSET
) -> Any:
    """The ``onnx.ModelProto`` of ``engine``'s forward pass (checked with ``onnx.checker``)."""
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(f"opset must be one of {SUPPORTED_OPSETS}, got {opset}")
    onnx = require_onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    config: MLPConfig = engine.config
    state = engine.state_dict()
    nodes: list[Any] = []
    initializers: list[Any] = []

    def constant(name: str, value: npt.ArrayLike) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    x = INPUT_NAME
    for i in range(len(config.hidden)):
        linear, norm, tag = f"layers.{4 * i}", f"layers.{4 * i + 1}", f"hidden{i}"
        weight_t = constant(f"{linear}.weight_t", state[f"{linear}.weight"].T)
        bias = constant(f"{linear}.bias", state[f"{linear}.bias"])
        nodes.append(helper.make_node("MatMul", [x, weight_t], [f"{tag}.matmul"]))
        nodes.append(helper.make_node("Add", [f"{tag}.matmul", bias], [f"{tag}.linear"]))
        scale = constant(f"{norm}.weight", state[f"{norm}.weight"])
        shift = constant(f"{norm}.bias", state[f"{norm}.bias"])
        normed = f"{tag}.norm"
        if opset >= 17:
            nodes.append(
                helper.make_node(
                    "LayerNormalization",
                    [f"{tag}.linear", scale, shift],
                    [normed],
                    axis=-1,
                    epsilon=config.layer_norm_eps,
                )
            )
        else:
            eps = constant(f"{tag}.eps", config.layer_norm_eps)
            nodes += _layer_norm_nodes(helper, f"{tag}.linear", scale, shift, eps, normed)
        x = f"{tag}.act"
        nodes.append(helper.make_node("LeakyRelu", [normed], [x], alpha=config.leaky_relu_slope))

    last = f"layers.{4 * len(config.hidden)}"
    weight_t = constant(f"{last}.weight_t", state[f"{last}.weight"].T)
    bias = constant(f"{last}.bias", state[f"{last}.bias"])
    low, high = constant("clip.min", 0.0), constant("clip.max", 1.0)
    nodes.append(helper.make_node("MatMul", [x, weight_t], ["out.matmul"]))
    nodes.append(helper.make_node("Add", ["out.matmul", bias], ["out.linear"]))
    nodes.append(helper.make_node("Clip", ["out.linear", low, high], [OUTPUT_NAME]))

    float_type = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "vadbridge_vad_to_arkit",
        [helper.make_tensor_value_info(INPUT_NAME, float_type, [BATCH_DIM, config.in_features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, float_type, [BATCH_DIM, config.out_features])],
        initializers,
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER,
        opset_imports=[helper.make_opsetid("", opset)],
        doc_string="VAD (valence, arousal, dominance in [-1, 1]) -> 52 ARKit blendshape weights",
    )
    # Runtimes that bundle an older onnx reject files stamped with a newer IR version; 8 is
    # the IR of the onnx 1.10-1.12 era and covers opset 17.
    model.ir_version = 8
    helper.set_model_props(model, _metadata(meta, config))
    onnx.checker.check_model(model, full_check=True)
    return model


def _layer_norm_nodes(helper: Any, x: str, scale: str, shift: str, eps: str, out: str) -> list[Any]:
    """LayerNorm over the last axis with the biased variance, for opsets without the operator."""
    return [
        helper.make_node("ReduceMean", [x], [f"{out}.mean"], axes=[-1], keepdims=1),
        helper.make_node("Sub", [x, f"{out}.mean"], [f"{out}.centred"]),
        helper.make_node("Mul", [f"{out}.centred", f"{out}.centred"], [f"{out}.square"]),
        helper.make_node("ReduceMean", [f"{out}.square"], [f"{out}.var"], axes=[-1], keepdims=1),
        helper.make_node("Add", [f"{out}.var", eps], [f"{out}.var_eps"]),
        helper.make_node("Sqrt", [f"{out}.var_eps"], [f"{out}.std"]),
        helper.make_node("Div", [f"{out}.centred", f"{out}.std"], [f"{out}.unit"]),
        helper.make_node("Mul", [f"{out}.unit", scale], [f"{out}.scaled"]),
        helper.make_node("Add", [f"{out}.scaled", shift], [out]),
    ]


def _metadata(meta: Mapping[str, Any] | None, config: MLPConfig) -> dict[str, str]:
    props = {
        "blendshape_names": json.dumps(list(ARKIT_NAMES)),
        "input_axes": json.dumps(["valence", "arousal", "dominance"]),
        "input_range": json.dumps([-1.0, 1.0]),
        "output_range": json.dumps([0.0, 1.0]),
        "architecture": json.dumps(config.to_dict()),
    }
    metrics = (meta or {}).get("metrics")
    if metrics:
        props["metrics"] = json.dumps(metrics)
    return props


def export_onnx(
    path: str | os.PathLike[str],
    engine: NumpyMLP,
    meta: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``engine`` as an ``.onnx`` file; returns the path."""
    file = Path(path)
    model = build_onnx_model(engine, meta, opset)
    file.write_bytes(model.SerializeToString())
    return file
