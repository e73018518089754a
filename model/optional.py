"""Whether an optional dependency (an extra: torch, aiohttp, onnxruntime) can be imported."""

from __future__ import annotations

import importlib.util

__all__ = ["installed"]


def installed(*modules: str) -> bool:
    """Whether every one of ``modules`` can be imported, found without importing it (torch
    takes seconds); False for a broken or blocked installation too."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in modules)
    except (ImportError, ValueError):  # a broken install, or a half-imported module
        return False
