"""Core types shared by inputs, avatar table and daemon (docs/DESIGN.md, "Core types")."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InputError", "VadSample"]


@dataclass(frozen=True, slots=True)
class VadSample:
    """One accepted input: finite values, already clipped to [-1, 1].

    ``None`` on an axis keeps the avatar's current target for it (a partial update).
    """

    avatar: str
    vad: tuple[float | None, float | None, float | None]


class InputError(Exception):
    """Raised by the pure input parsers; the source counts ``kind`` and drops the message."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
