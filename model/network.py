"""The torch module of the model card. Imports torch: training and .pt reading only.

State-dict keys are ``layers.{i}.weight/bias`` where i walks Linear, LayerNorm, LeakyReLU,
Dropout blocks (an ``nn.Sequential``), so a foreign checkpoint with the same sequence of tensors
maps onto it by order (see checkpoint.py).
"""

from __future__ import annotations

import torch
from torch import nn

from vadbridge.model.config import MLPConfig


class VADBlendshapeMLP(nn.Module):
    def __init__(self, config: MLPConfig | None = None) -> None:
        super().__init__()
        self.config = config or MLPConfig()
        blocks: list[nn.Module] = []
        fan_in = self.config.in_features
        for width in self.config.hidden:
            blocks += [
                nn.Linear(fan_in, width),
                nn.LayerNorm(width, eps=self.config.layer_norm_eps),
                nn.LeakyReLU(self.config.leaky_relu_slope),
                nn.Dropout(self.config.dropout),
            ]
            fan_in = width
        blocks.append(nn.Linear(fan_in, self.config.out_features))
        self.layers = nn.Sequential(*blocks)

    def forward(self, vad: torch.Tensor) -> torch.Tensor:
        raw: torch.Tensor = self.layers(vad)
        return raw.clamp(0.0, 1.0)
