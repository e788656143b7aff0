"""DCDM's direction generator (Kaneda et al. 2023, Sec. 4.2): a fully convolutional net with one 2x down/up
level, 16 channels and 3x3 (3x3x3) kernels, mapping a residual on the grid to an approximation of A^-1 r up to
scale. Being fully convolutional it runs at any resolution; solid cells are zeroed on the way out."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, conv: type, channels: int) -> None:
        super().__init__()
        self.conv = conv(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


class DirectionNet(nn.Module):
    """conv -> 2 conv+ReLU -> residual, then ``levels`` times: avg-pool 2x -> residuals -> (deeper) ->
    upsample + skip -> residuals; a 1x1 conv out. ``levels`` = 1 is the paper's network (3 coarse, 2 fine
    residuals); more levels widen the receptive field so smooth error modes on larger grids are reached."""

    def __init__(self, dim: int, channels: int = 16, levels: int = 1) -> None:
        super().__init__()
        conv = nn.Conv2d if dim == 2 else nn.Conv3d
        self.dim, self.levels = dim, levels
        self.stem = nn.Sequential(conv(1, channels, 3, padding=1), conv(channels, channels, 3, padding=1), nn.ReLU(),
                                  conv(channels, channels, 3, padding=1), nn.ReLU(), Residual(conv, channels))
        self.pool = (nn.AvgPool2d if dim == 2 else nn.AvgPool3d)(2, ceil_mode=True)
        self.down = nn.ModuleList([nn.Sequential(*[Residual(conv, channels)
                                                   for _ in range(3 if level == levels - 1 else 1)])
                                   for level in range(levels)])
        self.up = nn.ModuleList([nn.Sequential(*[Residual(conv, channels) for _ in range(2)])
                                 for _ in range(levels)])
        self.head = conv(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 1, *grid] -> [B, 1, *grid]. Each input is scaled to unit RMS per cell first, so a residual
        looks the same to the network at every resolution (the output's scale does not matter to DCDM)."""
        x = x / x.flatten(1).pow(2).mean(1).sqrt().clamp(min=1e-30).view(-1, *[1] * (x.dim() - 1))
        skips = [self.stem(x)]
        for level in range(self.levels):
            skips.append(self.down[level](self.pool(skips[-1])))
        out = skips.pop()
        for level in reversed(range(self.levels)):
            skip = skips.pop()
            out = self.up[level](nn.functional.interpolate(out, size=skip.shape[2:], mode="nearest") + skip)
        return self.head(out)


def direction_function(net: DirectionNet, shape: tuple[int, ...], fluid: torch.Tensor):
    """f for DCDM: a float64 residual in (a NumPy array, or a tensor on the net's device), a float64 direction of
    the same kind out; inference in float32."""

    def apply(r):
        as_numpy = isinstance(r, np.ndarray)
        x = torch.from_numpy(r) if as_numpy else r
        with torch.no_grad():
            q = net(x.to(torch.float32).view(1, 1, *shape)).view(-1) * fluid
        return q.numpy().astype(np.float64) if as_numpy else q.to(x.dtype)

    return apply
