"""bench-suite: a benchmark suite for spiking U-Nets (segmentation, 3-D segmentation, denoising)."""

__version__ = "0.1.0"
