"""The network's architecture arguments: shared by the torch module and the numpy engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any


@dataclass(frozen=True)
class MLPConfig:
    """3 -> 256 -> 512 -> 256 -> 52, as in the model card (279,348 parameters)."""

    in_features: int = 3
    hidden: tuple[int, ...] = (256, 512, 256)
    out_features: int = 52
    dropout: float = 0.1
    leaky_relu_slope: float = 0.01
    layer_norm_eps: float = 1e-5

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "hidden" in known:
            known["hidden"] = tuple(int(h) for h in known["hidden"])
        return cls(**known)

    def parameter_count(self) -> int:
        sizes = (self.in_features, *self.hidden)
        count = 0
        for fan_in, fan_out in pairwise(sizes):
            count += fan_in * fan_out + fan_out + 2 * fan_out  # Linear + LayerNorm
        return count + self.hidden[-1] * self.out_features + self.out_features
