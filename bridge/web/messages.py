"""What the panel sends to a page, as JSON text: built once per update and shared by every page
that watches the same thing (docs/panel.md lists the messages).

Pure: numbers in, text out. Floats are rounded to what a page can show (weights and VAD to 1e-4)
so a face update is about 600 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vadbridge.core.stats import interval_counts
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.emotions import BASIC_EMOTIONS
from vadbridge.web.backend import Face

__all__ = ["MAX_LISTED_AVATARS", "dumps", "face_message", "hello_message", "stats_message"]

MAX_LISTED_AVATARS = 200  # the picker lists the first ones; a crowd's page names its count
_DECIMALS = 4


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _rounded(values: np.ndarray) -> list[float]:
    rounded: list[float] = np.round(values.astype(np.float64), _DECIMALS).tolist()
    return rounded


def face_message(avatar: str, face: Face) -> str:
    return dumps({"type": "face", "avatar": avatar, "w": _rounded(face.weights),
                  "vad": _rounded(face.vad), "target": _rounded(face.target)})


def avatar_list(avatars: Sequence[str]) -> dict[str, Any]:
    return {"avatars": list(avatars[:MAX_LISTED_AVATARS]), "avatar_count": len(avatars)}


def hello_message(*, avatar: str, avatars: Sequence[str], frame_rate: float, fps: float,
                  settings: Mapping[str, Any], save_target: str | None) -> str:
    """The first message on a connection: what the page needs to draw and drive."""
    return dumps({
        "type": "hello", "names": list(ARKIT_NAMES), "emotions": list(BASIC_EMOTIONS),
        "avatar": avatar, **avatar_list(avatars), "frame_rate": frame_rate, "fps": fps,
        "settings": settings, "save_target": save_target,
    })


def settings_message(settings: Mapping[str, Any]) -> str:
    return dumps({"type": "settings", "settings": settings})


def stats_message(now: Mapping[str, Any], before: Mapping[str, Any] | None, interval_s: float,
                  *, avatars: Sequence[str], panel: Mapping[str, int]) -> str:
    """The counters of the last ``interval_s`` (the stats line's, from two snapshots of
    ``PanelBackend.stats``), the totals since start, and the states of inputs and outputs."""
    counts = interval_counts(now, before if before is not None else now)
    frames = counts["frames"]
    return dumps({
        "type": "stats",
        "interval_s": round(interval_s, 3),
        "fps": round(frames / interval_s, 1) if before is not None and interval_s > 0 else None,
        "frames": frames, "late": counts["late"], "skipped": counts["skipped"],
        "lateness_ms": {"mean": now["mean_lateness_ms"], "max": now["max_lateness_ms"]},
        "inputs": counts["inputs"],
        "totals": now["inputs"],
        "send_errors": counts["send_errors"],
        "sources": now["sources"], "outputs": now["outputs"], "output_count": now["output_count"],
        "receivers": now.get("receivers", {}),
        **avatar_list(avatars),
        "panel": dict(panel),
    })


def reply(message_type: str, /, **fields: Any) -> str:
    """An answer to one page's message: ``tuned``, ``saved``, ``rejected``."""
    return dumps({"type": message_type, **fields})
