"""Checkpoint files: the project's ``.pt`` and ``.npz`` formats, and foreign ``.pt`` files.

Formats (docs/DESIGN.md, "model/checkpoint.py"):

- ``.pt``: ``{"format_version": 1, "state_dict": {key: tensor}, "meta": {...}}`` written with
  ``torch.save``, read with ``torch.load(weights_only=True)``: reading never runs pickled code.
- ``.npz``: the same state-dict arrays under the same keys plus ``__meta__``, a 0-d unicode array
  holding the meta as JSON. Readable with ``np.load(allow_pickle=False)``; needs no torch.
- ``meta``: ``{"format_version", "architecture": MLPConfig dict, "blendshape_names": [52 names],
  "training": {...}, "metrics": {...}}``; the checkpoint describes itself: the file alone
  rebuilds the model.

Foreign ``.pt`` files (such as the model card's ``best_model.pt``, whose key names we do not
know) may be a raw state dict or one nested under ``model_state_dict``/``state_dict``/``model``,
with any key prefix. Their tensors are matched to our layers by order and shape; non-tensor
entries (epoch numbers, optimizer state) are ignored.

torch is imported only inside the functions that read or write ``.pt`` files.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.config import MLPConfig
from vadbridge.model.engine import NumpyMLP, ParameterSpec, parameter_layout

FORMAT_VERSION = 1
META_KEY = "__meta__"
NESTING_KEYS: tuple[str, ...] = ("model_state_dict", "state_dict", "model")
PT_SUFFIXES: tuple[str, ...] = (".pt", ".pth")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # torch bolds parts of its weights_only message

Float32Array = npt.NDArray[np.float32]


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def make_meta(
    config: MLPConfig | None = None,
    *,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete ``meta`` dict for the writers."""
    return {
        "format_version": FORMAT_VERSION,
        "architecture": (config or MLPConfig()).to_dict(),
        "blendshape_names": list(ARKIT_NAMES),
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
    }


# --- writers -------------------------------------------------------------------------------------


def save_checkpoint(
    pt_path: str | os.PathLike[str], model_or_state_dict: Any, meta: Mapping[str, Any]
) -> Path:
    """Write the project ``.pt`` (atomically: readers never see half a file).

    ``model_or_state_dict`` is a ``VADBlendshapeMLP`` (or any module with ``state_dict()``) or a
    mapping of tensors/arrays under its keys. Missing ``meta`` fields (format version,
    architecture, blendshape names) are filled in; ``meta`` must be JSON-serialisable.
    """
    import torch

    path = Path(pt_path)
    arrays, full_meta = _prepare(path, model_or_state_dict, meta)
    payload = {
        "format_version": FORMAT_VERSION,
        "state_dict": {key: torch.from_numpy(value) for key, value in arrays.items()},
        "meta": full_meta,
    }
    _write_atomically(path, lambda handle: torch.save(payload, handle))
    return path


def export_npz(
    npz_path: str | os.PathLike[str], model_or_state_dict: Any, meta: Mapping[str, Any]
) -> Path:
    """Write the torch-free ``.npz`` (atomically). Same inputs as ``save_checkpoint``."""
    path = Path(npz_path)
    arrays, full_meta = _prepare(path, model_or_state_dict, meta)
    payload: dict[str, Any] = dict(arrays)
    payload[META_KEY] = np.array(json.dumps(full_meta))
    _write_atomically(path, lambda handle: np.savez(handle, **payload))
    return path


def _prepare(
    path: Path, model_or_state_dict: Any, meta: Mapping[str, Any]
) -> tuple[dict[str, Float32Array], dict[str, Any]]:
    if not isinstance(meta, Mapping):
        raise CheckpointError(path, f"meta must be a dict, got {type(meta).__name__}")
    module_config = getattr(model_or_state_dict, "config", None)
    full_meta = dict(meta)
    if "architecture" not in full_meta:
        config = module_config if isinstance(module_config, MLPConfig) else MLPConfig()
        full_meta["architecture"] = config.to_dict()
    full_meta.setdefault("format_version", FORMAT_VERSION)
    full_meta.setdefault("blendshape_names", list(ARKIT_NAMES))
    full_meta.setdefault("training", {})
    full_meta.setdefault("metrics", {})
    try:
        # The round trip also turns tuples into lists, which weights_only loading accepts.
        full_meta = json.loads(json.dumps(full_meta))
    except (TypeError, ValueError) as error:
        raise CheckpointError(path, f"meta is not JSON-serialisable: {error}") from None
    config = _config_from_meta(path, full_meta)

    state = model_or_state_dict
    if callable(getattr(state, "state_dict", None)):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise CheckpointError(
            path, f"expected a module or a state dict, got {type(state).__name__}"
        )
    specs = parameter_layout(config)
    expected = {spec.key for spec in specs}
    unexpected = sorted(set(state) - expected)
    if unexpected:
        raise CheckpointError(path, f"unexpected state-dict keys {unexpected}")
    arrays: dict[str, Float32Array] = {}
    for spec in specs:
        if spec.key not in state:
            raise CheckpointError(path, f"state dict has no {spec.key!r} ({spec.role})")
        array = _as_float32(state[spec.key])
        if array.shape != spec.shape:
            raise CheckpointError(path, _shape_message(spec.key, array.shape, spec))
        arrays[spec.key] = array
    return arrays, full_meta


def _as_float32(value: Any) -> Float32Array:
    if hasattr(value, "detach"):  # a torch tensor; duck-typed so numpy callers need no torch
        value = value.detach().cpu().float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; a checkpoint is meant to be shared and committed
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# --- readers -------------------------------------------------------------------------------------


def load_engine(path: str | os.PathLike[str]) -> tuple[NumpyMLP, dict[str, Any]]:
    """Read a checkpoint into the numpy engine. ``.npz`` needs no torch; ``.pt`` imports it.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` for anything else.
    """
    state, meta = read_state_dict(path)
    config = _config_from_meta(Path(path), meta)
    return NumpyMLP.from_state_dict(state, config), meta


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, Float32Array], dict[str, Any]]:
    """Read any supported checkpoint as float32 arrays under our state-dict keys, plus its meta.

    The meta always has ``architecture`` (``MLPConfig()`` when the file has none) and
    ``blendshape_names``; a foreign file's meta also has ``foreign_layout`` saying how it mapped.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint not found: {file}")
    suffix = file.suffix.lower()
    if suffix == ".npz":
        tensors, meta, notes = _read_npz(file)
    elif suffix in PT_SUFFIXES:
        tensors, meta, notes = _read_pt(file)
    else:
        raise CheckpointError(file, f"unknown checkpoint type {suffix!r}; expected .npz or .pt")

    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            file, f"format_version {version!r} is newer than this vadbridge ({FORMAT_VERSION})"
        )
    names = meta.setdefault("blendshape_names", list(ARKIT_NAMES))
    if list(names) != list(ARKIT_NAMES):
        raise CheckpointError(file, "blendshape_names differ from the ARKit order this build uses")
    config = _config_from_meta(file, meta)
    meta["architecture"] = config.to_dict()
    state, how = _match_layout(file, tensors, parameter_layout(config))
    if notes or how != "by name":
        meta["foreign_layout"] = ", ".join([*notes, f"tensors matched {how}"])
    return state, meta


def _read_npz(path: Path) -> tuple[list[tuple[str, Float32Array]], dict[str, Any], list[str]]:
    # Our own handle: np.load leaks its file when the archive turns out to be corrupt.
    with path.open("rb") as handle:
        try:
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise CheckpointError(path, "not an .npz archive (a single .npy array)")
            with data:
                meta: Any = json.loads(str(data[META_KEY][()])) if META_KEY in data.files else {}
                tensors = [
                    (key, np.asarray(data[key], dtype=np.float32))
                    for key in data.files
                    if key != META_KEY
                ]
        except CheckpointError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise CheckpointError(path, f"unreadable .npz: {error}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(path, f"{META_KEY} is not a JSON object")
    return tensors, meta, []


def _read_pt(path: Path) -> tuple[list[tuple[str, Float32Array]], dict[str, Any], list[str]]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            path, "reading a .pt file needs torch (the [train] extra); use the .npz export instead"
        ) from None

    head = _check_torch_container(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise CheckpointError(
            path,
            "cannot be read with weights_only=True (tensors and plain data only): "
            + _torch_load_reason(error, head),
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"expected a dict of tensors, found {type(obj).__name__}")

    meta = dict(obj["meta"]) if isinstance(obj.get("meta"), Mapping) else {}
    inner, keys = _unwrap(obj)
    ours = keys == ["state_dict"] and "format_version" in obj
    notes = [] if ours else [f"nested under {key!r}" for key in keys]
    tensors = [
        (str(key), value.detach().to(torch.float32).numpy())
        for key, value in inner.items()
        # 0-d tensors are counters such as BatchNorm's num_batches_tracked, never weights.
        if isinstance(value, torch.Tensor) and value.ndim >= 1
    ]
    if not tensors:
        raise CheckpointError(
            path, f"no weight tensors found (top-level keys: {sorted(map(str, obj))})"
        )
    return tensors, meta, notes


def _check_torch_container(path: Path) -> bytes:
    """Refuse a file that is neither of torch.save's containers; return its first bytes.

    torch.save writes a zip archive (torch >= 1.6) or, in the legacy format, a pickle stream,
    which starts with the PROTO opcode ``0x80`` and the protocol number (2 by default). Checking
    first keeps torch's error for other files out of our message: it advises
    ``weights_only=False``, which would run pickled code from an untrusted file.
    """
    with path.open("rb") as handle:
        head = handle.read(8)
    legacy_pickle = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if not (legacy_pickle or zipfile.is_zipfile(path)):
        raise CheckpointError(
            path,
            f"not a PyTorch checkpoint (neither a zip archive nor a pickle stream; starts with "
            f"{head!r}): truncated, corrupt or another format",
        )
    return head


def _torch_load_reason(error: BaseException, head: bytes) -> str:
    """torch.load's reason without its advice to retry with ``weights_only=False`` (unsafe)."""
    text = _ANSI_ESCAPE.sub("", str(error))
    _, found, detail = text.partition("WeightsUnpickler error:")
    # The detail sits on the same or a later line, e.g. "Unsupported global: GLOBAL x.Y was not
    # an allowed global by default. Please use ..." or "Unsupported operand 32".
    detail = detail.split("Check the documentation", 1)[0].split(". Please", 1)[0]
    detail = " ".join(detail.split())
    if found and detail:
        return detail
    if "weights_only" in text:
        return "it holds pickled objects other than tensors and plain data"
    first_line = text.strip().splitlines()[0] if text.strip() else repr(error)
    return f"{first_line} (file starts with {head!r})"


def _unwrap(obj: Mapping[Any, Any]) -> tuple[Mapping[Any, Any], list[str]]:
    """Descend through ``model_state_dict``/``state_dict``/``model`` wrappers, outermost first."""
    keys: list[str] = []
    while True:
        for key in NESTING_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                keys.append(key)
                break
        else:
            return obj, keys


def _match_layout(
    path: Path, tensors: list[tuple[str, Float32Array]], specs: tuple[ParameterSpec, ...]
) -> tuple[dict[str, Float32Array], str]:
    """Map found tensors onto ``specs``: by exact key if all are present, else by order."""
    by_key = dict(tensors)
    if all(spec.key in by_key for spec in specs):
        pairs = [(spec.key, by_key[spec.key], spec) for spec in specs]
        how = "by name"
    else:
        pairs = [(key, value, spec) for (key, value), spec in zip(tensors, specs, strict=False)]
        prefix = _common_prefix([key for key, _ in tensors])
        how = "by order" + (f" (key prefix {prefix!r})" if prefix else "")
    for key, value, spec in pairs:
        if value.shape != spec.shape:
            raise CheckpointError(path, _shape_message(key, value.shape, spec))
    if how != "by name" and len(tensors) != len(specs):
        found = ", ".join(f"{key} {tuple(value.shape)}" for key, value in tensors)
        raise CheckpointError(
            path,
            f"found {len(tensors)} weight tensors, expected {len(specs)} (Linear and LayerNorm "
            f"weight+bias per hidden layer, then the output Linear): {found}",
        )
    return {spec.key: np.ascontiguousarray(value) for _, value, spec in pairs}, how


def _common_prefix(keys: list[str]) -> str:
    """The dotted prefix shared by every key (``module.net.`` for ``module.net.0.weight`` ...)."""
    parts = [key.split(".") for key in keys]
    shared: list[str] = []
    for segments in zip(*(p[:-2] for p in parts), strict=False):
        if len(set(segments)) != 1:
            break
        shared.append(segments[0])
    return ".".join(shared) + "." if shared else ""


def _shape_message(key: str, shape: tuple[int, ...], spec: ParameterSpec) -> str:
    return (
        f"tensor {key!r} has shape {tuple(shape)}, expected {spec.shape} "
        f"(our {spec.key}, {spec.role})"
    )


def _config_from_meta(path: Path, meta: Mapping[str, Any]) -> MLPConfig:
    architecture = meta.get("architecture")
    if architecture is None:
        return MLPConfig()
    try:
        return MLPConfig.from_dict(dict(architecture))
    except (TypeError, ValueError) as error:
        raise CheckpointError(path, f"meta['architecture'] is invalid: {error}") from None
