"""The classic U-Net as Spiking-UNet uses it: average pooling, ConvTranspose up-sampling, concatenation.

ReLU modules are kept as separate ``nn.ReLU`` instances (one per activation) so that the converter can
replace each with a neuron, and the forward is plain enough for ``torch.fx`` to trace.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import Task


class ConvBlock(nn.Sequential):
    def __init__(self, conv: type[nn.Module], in_ch: int, out_ch: int) -> None:
        super().__init__(
            conv(in_ch, out_ch, 3, padding=1),
            nn.ReLU(),
            conv(out_ch, out_ch, 3, padding=1),
            nn.ReLU(),
        )


class UNet(nn.Module):
    """U-Net with ``depth`` down/up levels; ``dims`` 2 for images, 3 for volumes."""

    def __init__(
        self, in_channels: int, out_channels: int, width: int = 64, depth: int = 4,
        head: str = "segmentation", dims: int = 2,
    ) -> None:
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
        pool = {2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims]
        up_conv = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
        self.depth = depth
        self.head_kind = head
        # channels-last weights (set by the model plugin) are 1.3–4× faster for CPU convolutions here
        # (oneDNN's native layout); a conv with channels-last weights returns channels-last outputs
        # even for a contiguous input, so the layout carries through the network
        self.memory_format = torch.channels_last if dims == 2 else torch.channels_last_3d
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        self.pools = nn.ModuleList()
        in_ch = in_channels
        for level in range(depth):
            self.down.append(ConvBlock(conv, in_ch, widths[level]))
            self.pools.append(pool(2))
            in_ch = widths[level]
        self.bottom = ConvBlock(conv, widths[depth - 1], widths[depth])
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for level in reversed(range(depth)):
            self.ups.append(
                nn.Sequential(
                    up_conv(widths[level + 1], widths[level], 3, stride=2, padding=1, output_padding=1),
                    nn.ReLU(),
                )
            )
            self.up_blocks.append(ConvBlock(conv, 2 * widths[level], widths[level]))
        if head == "segmentation":
            self.head = conv(widths[0], out_channels, 1)
        elif head == "denoising":
            self.head = conv(widths[0], out_channels, 3, padding=1)
        else:
            raise ValueError(f"head must be 'segmentation' or 'denoising', not {head!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block, pool in zip(self.down, self.pools, strict=True):
            x = block(x)
            skips.append(x)
            x = pool(x)
        x = self.bottom(x)
        for up, block, skip in zip(self.ups, self.up_blocks, reversed(skips), strict=True):
            x = block(torch.cat([skip, up(x)], dim=1))
        return self.head(x)


@dataclasses.dataclass(frozen=True)
class UNet2dParams:
    width: int = 0  # 0: the profile's width
    depth: int = 4

    def __post_init__(self) -> None:
        if self.width < 0:
            raise ValueError(f"width must be positive, got {self.width}")
        if not 1 <= self.depth <= 6:
            raise ValueError(f"depth must be between 1 and 6, got {self.depth}")


class UNet2d:
    """2-D U-Net (average pooling, ConvTranspose up-sampling, concatenation); width and depth options."""

    Params = UNet2dParams
    dims = 2

    def __init__(self, params: UNet2dParams | None = None) -> None:
        self.params = params or self.Params()

    def build(self, task: Task, profile_width: int, out_channels: int | None = None) -> UNet:
        if task.spatial_dims != self.dims:
            other = "unet3d" if task.spatial_dims == 3 else "unet2d"
            raise BenchSuiteError(
                f"model '{self.name}' is {self.dims}-D but the dataset is {task.spatial_dims}-D; "
                f"use --plugin model={other}"
            )
        model = UNet(
            task.in_channels, out_channels or task.out_channels, width=self.params.width or profile_width,
            depth=self.params.depth, head=task.kind, dims=self.dims,
        )
        return model.to(memory_format=model.memory_format)

    def input_multiple(self) -> int:
        """Spatial sides must be a multiple of this (one halving per level)."""
        return 2**self.params.depth

    @property
    def name(self) -> str:
        return f"unet{self.dims}d"


@dataclasses.dataclass(frozen=True)
class UNet3dParams(UNet2dParams):
    depth: int = 3  # volumes of about 40×56×40 allow three halvings


class UNet3d(UNet2d):
    """3-D U-Net for volumes (Conv3d, AvgPool3d, ConvTranspose3d, concatenation); width and depth options."""

    Params = UNet3dParams
    dims = 3
