"""Profiles: how much work a run does (``smoke``, ``quick``, ``paper``), and ``--set`` overrides.

Each trainer reads its own fields: the ANN ``ann_*``, ASF ``asf_*``, direct training ``dt_*``, the
three-stage fine-tuning ``three_stage_*``. ``max_patches``, ``max_train_batches``, ``dt_max_batches`` and
``dt_grad_clip`` take 0 for "none"; every other number must be positive. A dataset may change a profile
for itself (its ``profile_settings``), between the volume sizes and the user's ``--set``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, Literal

from bench_suite.core.errors import BenchSuiteError, did_you_mean, unknown_name_message

Optimizer = Literal["adam", "rmsprop"]
#: how direct training starts: PyTorch's default random weights (the reference), or those weights
#: normalized on the training patches as a conversion would (each layer's 99.9th-percentile activation
#: at the threshold, so every layer fires from the first step) with the head's bias at the foreground prior
DTInit = Literal["random", "normalized"]
Schedule = Literal["constant", "cosine"]
ThreeStageSchedule = Literal["plateau", "cosine"]
#: the ANN's learning rate per batch: constant (the reference), cosine to 0, or one-cycle (warm-up to
#: ``ann_lr`` over the first 30 % of the batches, then cosine down; Smith 2019)
ANNSchedule = Literal["constant", "cosine", "onecycle"]
#: per-patch augmentation of the ANN's training patches: none (the reference), or one of the 8 flips and
#: quarter turns of the square (a flip of the last axis where the patch is not square)
Augment = Literal["none", "dihedral"]
#: class weights of the segmentation cross-entropy (every trainer that uses it): none (the reference), or
#: median-frequency balancing (Eigen & Fergus 2015; SegNet on CamVid): w_c = median_k f_k / f_c with f_c
#: class c's pixels over the pixels of the training patches that contain c
ClassWeighting = Literal["none", "median-frequency"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much work a run does. ``paper`` is the reference studies' settings (for a GPU)."""

    name: str
    width: int  # U-Net base width
    ann_epochs: int
    ann_lr: float
    asf_epochs: int  # ASF fine-tuning after conversion
    asf_lr: float
    patches_per_image: int
    batch_size: int
    calibration_samples: int  # reference: 64 segmentation / 32 denoising patches
    ann_optimizer: Optimizer = "adam"  # segmentation ANNs (Spiking-UNet: RMSprop)
    ann_optimizer_denoising: Optimizer = "adam"  # denoising ANNs (Spiking-UNet: Adam with L1)
    ann_schedule: ANNSchedule = "constant"  # the reference: a constant rate
    ann_augment: Augment = "none"  # the reference: patches as sampled
    class_weighting: ClassWeighting = "none"  # the reference: plain cross-entropy
    max_patches: int = 0  # cap on training patches per epoch over all images (0: none); keeps big sets quick
    dt_epochs: int = 1  # direct training (BPTT through T steps) epochs
    dt_lr: float = 1e-3
    dt_init: DTInit = "random"  # the reference: default initialization
    dt_schedule: Schedule = "constant"  # the reference: Adam at a constant lr; cosine decays it to 0 per batch
    # cap on BPTT batches per DT epoch (0: none), on top of max_train_batches: a DT batch costs T forward
    # and backward passes, so quick gives every training set the same budget (demo-vessels' 64 batches)
    dt_max_batches: int = 0
    dt_grad_clip: float = 0.0  # the gradients' global L2 norm clipped to this before each DT step; 0: none
    three_stage_epochs: int = 1  # three-stage spike-based fine-tuning epochs (Yue 2023: 35)
    three_stage_lr: float = 1e-3  # Yue 2023: Adam 1e-3 with ReduceLROnPlateau
    three_stage_schedule: ThreeStageSchedule = "plateau"  # Yue 2023: ReduceLROnPlateau per epoch
    eval_batch_size: int = 16  # whole test images per forward pass
    eval_tile_batch: int = 128  # test tiles per forward pass, where a dataset tiles its test images
    max_train_batches: int = 0  # cap on batches per epoch of spiking training (asf, dt, three-stage); 0: none


#: settings where 0 means "no cap" (no clipping) rather than nothing
ZERO_MEANS_NONE = frozenset({"max_patches", "max_train_batches", "dt_max_batches", "dt_grad_clip"})
#: settings renamed since earlier versions, so that an old --set gets a useful answer
RENAMED = {"finetune_epochs": "asf_epochs", "finetune_lr": "asf_lr"}

PROFILES: dict[str, Profile] = {
    # smoke learns in seconds (demo-vessels ANN F1 0.70, demo-denoise 25.8 dB from 20.2 noisy; 3 s of
    # training each on 2 cores), so that smoke tests can assert orderings and not only that things ran
    "smoke": Profile("smoke", width=8, ann_epochs=15, ann_lr=5e-3, asf_epochs=1, asf_lr=1e-4,
                     patches_per_image=32, batch_size=8, calibration_samples=16, dt_epochs=1,
                     dt_lr=2e-3, dt_init="normalized", dt_schedule="cosine", three_stage_epochs=1,
                     max_patches=256),
    "quick": Profile("quick", width=16, ann_epochs=12, ann_lr=2e-3, asf_epochs=1, asf_lr=1e-4,
                     patches_per_image=64, batch_size=16, calibration_samples=64, dt_epochs=3,
                     dt_lr=5e-3, dt_init="normalized", dt_schedule="cosine", dt_max_batches=64,
                     three_stage_epochs=2, three_stage_lr=3e-3, three_stage_schedule="cosine", max_patches=4096),
    "paper": Profile("paper", width=64, ann_epochs=200, ann_lr=1e-3, asf_epochs=100, asf_lr=1e-6,
                     patches_per_image=600, batch_size=8, calibration_samples=64, ann_optimizer="rmsprop",
                     dt_epochs=100, three_stage_epochs=35, three_stage_lr=1e-3),
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


def check_dataset_settings(settings: Mapping[str, Mapping[str, Any]], who: str = "the dataset") -> dict:
    """A dataset's ``profile_settings`` ({profile: {setting: value}}) checked as ``--set`` values are:
    known profiles, known settings, valid values; returns it with each value parsed."""
    checked: dict[str, dict[str, Any]] = {}
    for profile, values in settings.items():
        if profile not in PROFILES:
            raise BenchSuiteError(f"profile_settings of {who}: " + unknown_name_message("profile", profile, PROFILES))
        checked[profile] = {}
        for key, raw in values.items():
            if key not in setting_names():
                raise BenchSuiteError(f"profile_settings of {who}, {profile}: no setting '{key}'"
                                      f"{did_you_mean(key, setting_names())}")
            try:
                checked[profile][key] = _parse_setting(key, raw)
            except BenchSuiteError as error:
                raise BenchSuiteError(f"profile_settings of {who}, {profile}: {error}") from None
    return checked


def setting_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Profile) if f.name != "name"]


def _parse_setting(key: str, raw: Any) -> Any:
    hint = typing.get_type_hints(Profile)[key]
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            raise BenchSuiteError(f"--set {key}={raw}: choose one of {', '.join(choices)}")
        return raw
    kind = int if hint is int else float
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise BenchSuiteError(f"--set {key}={raw}: '{raw}' is not a valid {kind.__name__}") from None
    if not math.isfinite(value):
        raise BenchSuiteError(f"--set {key}={raw}: give a finite number")
    if key in ZERO_MEANS_NONE:
        if value < 0:
            raise BenchSuiteError(f"--set {key}={raw}: give a positive cap, or 0 for none")
    elif not value > 0:
        raise BenchSuiteError(f"--set {key}={raw}: the value must be positive")
    return value


def resolve_profile(name: str, overrides: dict[str, str] | None = None, spatial_dims: int = 2,
                    dataset_settings: Mapping[str, Mapping[str, Any]] | None = None) -> Profile:
    """The named profile, adjusted for volumes when ``spatial_dims`` is 3, then by the dataset's own
    ``profile_settings`` for this profile, then the ``--set`` overrides (each later one wins)."""
    if name not in PROFILES:
        raise BenchSuiteError(unknown_name_message("profile", name, PROFILES))
    profile = PROFILES[name]
    if spatial_dims == 3 and VOLUME_SETTINGS.get(name):
        profile = dataclasses.replace(profile, **VOLUME_SETTINGS[name])
    if dataset_settings and dataset_settings.get(name):
        profile = dataclasses.replace(profile, **check_dataset_settings(dataset_settings)[name])
    if not overrides:
        return profile
    fields = setting_names()
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key in RENAMED:
            raise BenchSuiteError(f"--set {key}: this setting is now called {RENAMED[key]}; use --set "
                                  f"{RENAMED[key]}={raw}")
        if key not in fields:
            raise BenchSuiteError(
                f"--set {key}: no such setting{did_you_mean(key, fields)} settings: {', '.join(fields)}"
            )
        changes[key] = _parse_setting(key, raw)
    return dataclasses.replace(profile, **changes)
