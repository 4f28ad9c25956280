"""Profiles: how much work a run does (``smoke``, ``quick``, ``paper``), and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench_suite.core.errors import BenchSuiteError, did_you_mean, unknown_name_message


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much work a run does. ``paper`` is the reference studies' settings (for a GPU)."""

    name: str
    width: int  # U-Net base width
    ann_epochs: int
    ann_lr: float
    finetune_epochs: int
    finetune_lr: float
    patches_per_image: int
    batch_size: int
    calibration_samples: int  # reference: 64 segmentation / 32 denoising patches
    max_patches: int = 0  # cap on training patches per epoch over all images (0: none); keeps big sets quick
    dt_epochs: int = 1  # direct training (BPTT through T steps) epochs
    dt_lr: float = 1e-3
    eval_batch_size: int = 16
    max_train_batches: int = 0  # cap on batches per epoch of spiking training (asf, dt, three-stage); 0: none


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", width=4, ann_epochs=2, ann_lr=2e-3, finetune_epochs=1, finetune_lr=1e-4,
                     patches_per_image=24, batch_size=8, calibration_samples=16, dt_epochs=1,
                     max_patches=256),
    "quick": Profile("quick", width=16, ann_epochs=12, ann_lr=2e-3, finetune_epochs=1, finetune_lr=1e-4,
                     patches_per_image=64, batch_size=16, calibration_samples=64, dt_epochs=3,
                     max_patches=4096),
    "paper": Profile("paper", width=64, ann_epochs=200, ann_lr=1e-3, finetune_epochs=100, finetune_lr=1e-6,
                     patches_per_image=600, batch_size=8, calibration_samples=64, dt_epochs=100),
}


#: what changes for volumes (3-D datasets), before the user's --set: a whole 40×56×40 volume is 35× a
#: 48×48 patch and BPTT keeps every step's activations, so the CPU profiles use a narrower 3-D U-Net and
#: smaller batches; quick fine-tunes on 26 random batches of 4 volumes per epoch (on Task04 half of the
#: 208 training volumes; a whole BPTT epoch at T=20 takes about 5 minutes on 2 cores)
VOLUME_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"batch_size": 2, "calibration_samples": 4, "eval_batch_size": 4},
    "quick": {"width": 8, "batch_size": 4, "calibration_samples": 8, "eval_batch_size": 8,
              "max_train_batches": 26},
    "paper": {},
}


def resolve_profile(name: str, overrides: dict[str, str] | None = None, spatial_dims: int = 2) -> Profile:
    """The named profile, adjusted for volumes when ``spatial_dims`` is 3, then the ``--set`` overrides."""
    if name not in PROFILES:
        raise BenchSuiteError(unknown_name_message("profile", name, PROFILES))
    profile = PROFILES[name]
    if spatial_dims == 3 and VOLUME_SETTINGS.get(name):
        profile = dataclasses.replace(profile, **VOLUME_SETTINGS[name])
    if not overrides:
        return profile
    fields = {f.name: f for f in dataclasses.fields(Profile) if f.name != "name"}
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise BenchSuiteError(
                f"--set {key}: no such setting{did_you_mean(key, fields)} settings: {', '.join(fields)}"
            )
        kind = int if fields[key].type in (int, "int") else float
        try:
            value = kind(raw)
        except ValueError:
            raise BenchSuiteError(f"--set {key}={raw}: '{raw}' is not a valid {kind.__name__}") from None
        if value <= 0:
            raise BenchSuiteError(f"--set {key}={raw}: the value must be positive")
        changes[key] = value
    return dataclasses.replace(profile, **changes)
