"""Per-sample metrics: binary and multi-class segmentation, denoising, volumes."""
