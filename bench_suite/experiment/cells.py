"""One cell computed from plain data, on whatever process or machine runs it: ``run_cell(job) -> CellResult``.

This is the worker's side of a run. A :class:`CellJob` holds everything a cell needs (its plugins with
validated parameters, profile, data root, results folder, environment and, where the executor provides
them, the weights of its ANNs); :func:`run_cell` never opens the results store and returns a
:class:`CellResult` of plain values that the coordinator writes in one transaction. ANNs are computed by
:func:`run_ann` (one task per distinct ANN) or, in-process, on first use; either way the weights are
keyed by everything that shapes them and checkpointed under the results folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from bench_suite import __version__
from bench_suite.core.contracts import NullProgress, TrainerContext
from bench_suite.core.errors import BenchSuiteError, PluginContractError
from bench_suite.core.profiles import Profile, resolve_profile
from bench_suite.core.registry import get_registry
from bench_suite.core.tasks import DatasetBundle
from bench_suite.experiment.environment import Environment, StageMeter, apply, keeps_process_settings, versions
from bench_suite.experiment.evaluation import evaluate, network_input, pad_to_multiple, tiles_per_image, to_tiles
from bench_suite.experiment.spec import Cell
from bench_suite.snn.calibration import CalibrationCache

#: the profile settings ANN training reads (train_ann, TrainingPatches)
ANN_PROFILE_FIELDS = ("name", "width", "ann_epochs", "ann_lr", "ann_optimizer", "ann_optimizer_denoising",
                      "ann_schedule", "ann_augment", "class_weighting", "patches_per_image", "batch_size",
                      "max_patches")


@dataclasses.dataclass(frozen=True)
class AnnWeights:
    """A trained ANN as plain data: its key, weights (serialized state dict), training curves and cost."""

    key: str
    state: bytes
    curves: tuple[tuple, ...]
    train_s: float
    reused: bool
    stages: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class CellJob:
    """Everything one cell needs, picklable (it may travel to a Dask worker)."""

    cell: Cell
    profile_name: str
    overrides: dict[str, str]
    data_root: str
    results_dir: str
    environment: Environment = dataclasses.field(default_factory=Environment)
    anns: dict[str, AnnWeights] = dataclasses.field(default_factory=dict)  # by loss ("" for the default)


@dataclasses.dataclass
class CellResult:
    """What a finished (or failed) cell measured: plain values, written by the coordinator in one transaction."""

    cell_key: str
    status: str  # done | failed
    message: str = ""
    traceback: str = ""
    sample_metrics: list[tuple[str, str, float]] = dataclasses.field(default_factory=list)
    curves: list[tuple[str, int, str, float]] = dataclasses.field(default_factory=list)
    layer_stats: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    anns: dict[str, AnnWeights] = dataclasses.field(default_factory=dict)  # ANNs trained inside this cell

    @property
    def seconds(self) -> float:
        return float(self.timings.get("total_s", 0.0))


# -- shared per process -----------------------------------------------------------------------------------

_BUNDLES: dict[tuple[str, str, str], DatasetBundle] = {}


def load_bundle(cell: Cell, profile_name: str, data_root: str) -> DatasetBundle:
    """The cell's dataset, loaded once per process (workers keep it between the cells they compute)."""
    key = (cell.dataset.label, profile_name, str(data_root))
    if key not in _BUNDLES:
        dataset = get_registry().get("dataset", cell.dataset.name).obj(cell.dataset.params)
        _BUNDLES[key] = dataset.load(Path(data_root), profile_name)
    return _BUNDLES[key]


def neuron_factory(cell: Cell, device: torch.device):
    """``(threshold, channels) → neuron`` of the cell's kind, on the cell's device, labelled for messages."""
    if cell.neuron is None:
        return None
    info = get_registry().get("neuron", cell.neuron.name)
    params = cell.neuron.params
    label = f"neuron '{cell.neuron.label}' ({info.distribution})"

    def make_neuron(threshold: float, channels: int):
        neuron = info.obj(params, threshold=threshold, channels=channels).to(device)
        neuron.plugin_label = label
        return neuron

    return make_neuron


def check_input_sides(bundle: DatasetBundle, model_plugin, model_label: str) -> None:
    """Training inputs the model cannot take are one sentence with the multiple it needs."""
    multiple = model_plugin.input_multiple()
    if bundle.task.spatial_dims == 2:
        sides, what = (bundle.patch_size,), f"training patches of {bundle.patch_size} pixels"
    else:
        sides = tuple(bundle.train[0].image.shape[1:]) if bundle.train else ()
        what = f"training volumes of {'×'.join(map(str, sides))} voxels"
    if any(side % multiple for side in sides):
        raise BenchSuiteError(
            f"dataset '{bundle.name}' gives {what}, but model '{model_label}' needs sides that are a multiple of "
            f"{multiple} (one halving per level); choose a patch_size (or box) that is a multiple of {multiple}, or "
            "a model with fewer levels (e.g. depth=3)"
        )


def check_model_output(model, bundle: DatasetBundle, channels: int, who: str) -> None:
    """A model that maps its input to the wrong shape fails here, naming the plugin and both shapes."""
    sample = bundle.train[0].image
    if bundle.task.spatial_dims == 2:
        side = bundle.patch_size
        sample = sample[:, :side, :side]
    device = next(model.parameters()).device
    x = torch.from_numpy(sample.copy())[None].float().to(device)  # device: moved
    with torch.no_grad():
        out = model.eval()(x)
    model.train()
    expected = (1, channels, *x.shape[2:])
    if tuple(out.shape) != expected:
        raise PluginContractError(
            f"{who} maps an input of shape {tuple(x.shape)} to {tuple(out.shape)}, but the task needs {expected}; "
            "check the model's build() and forward"
        )


# -- ANNs -------------------------------------------------------------------------------------------------


def ann_key(cell: Cell, bundle: DatasetBundle, profile: Profile, loss: str | None = None) -> str:
    """Everything that shapes the ANN, so that a spiking setting (T, fine-tune epochs) reuses it and a
    change of data (the split's ids) does not."""
    identity = {
        "loss": loss, "output_channels": bundle.task.output_channels(loss),
        "dataset": cell.dataset.label, "dataset_params": cell.dataset.params_dict(),
        "model": cell.model.label, "model_params": cell.model.params_dict(),
        "seed": cell.seed, "split": bundle.split,
        "profile": {name: getattr(profile, name) for name in ANN_PROFILE_FIELDS},
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def ann_plan_key(cell: Cell, profile_name: str, overrides: dict[str, str], loss: str | None) -> str:
    """The ANN's identity without loading the data (for the task graph: one ANN task per plan key)."""
    dataset_cls = get_registry().get("dataset", cell.dataset.name).obj
    profile = cell_profile(cell, profile_name, overrides, getattr(dataset_cls, "spatial_dims", 2))
    identity = {"loss": loss, "dataset": cell.dataset.label, "dataset_params": cell.dataset.params_dict(),
                "model": cell.model.label, "model_params": cell.model.params_dict(), "seed": cell.seed,
                "profile": {name: getattr(profile, name) for name in ANN_PROFILE_FIELDS}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def dataset_profile_settings(name: str, registry=None) -> dict:
    """The ``profile_settings`` the dataset plugin ``name`` declares ({} where it declares none)."""
    return getattr((registry or get_registry()).get("dataset", name).obj, "profile_settings", None) or {}


def cell_profile(cell: Cell, profile_name: str, overrides: dict[str, str], spatial_dims: int) -> Profile:
    """The profile a cell trains with: the named one, sized for its dimensionality, with its dataset's
    ``profile_settings`` for that profile (e.g. camseq01's quick ANN schedule), then the user's ``--set``."""
    return resolve_profile(profile_name, overrides, spatial_dims, dataset_profile_settings(cell.dataset.name))


def build_ann(cell: Cell, bundle: DatasetBundle, model_plugin, profile: Profile, loss: str | None, device):
    channels = bundle.task.output_channels(loss)
    torch.manual_seed(cell.seed)
    if channels == bundle.task.out_channels:
        model = model_plugin.build(bundle.task, profile.width)
    else:
        try:
            model = model_plugin.build(bundle.task, profile.width, out_channels=channels)
        except TypeError:
            raise BenchSuiteError(
                f"model '{cell.model.name}' cannot build a {channels}-channel head, which the loss '{loss}' "
                "needs; give its build() an out_channels argument or train with loss=ce"
            ) from None
    model = model.to(device)
    check_model_output(model, bundle, channels, f"model '{cell.model.label}'")
    return model


def state_bytes(model: torch.nn.Module) -> bytes:
    """Device-neutral weights: a state dict saved from the CPU."""
    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def load_state(model: torch.nn.Module, state: bytes) -> None:
    model.load_state_dict(torch.load(io.BytesIO(state), map_location="cpu", weights_only=True))


def checkpoint_path(results_dir: str | Path, key: str) -> Path:
    return Path(results_dir) / "checkpoints" / f"ann-{key}.pt"


def write_checkpoint(results_dir: str | Path, weights: AnnWeights) -> Path:
    """Atomically (a unique temporary file, then a rename): two writers of one key cannot corrupt it."""
    path = checkpoint_path(results_dir, weights.key)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        state_dict = torch.load(io.BytesIO(weights.state), map_location="cpu", weights_only=True)
        with os.fdopen(handle, "wb") as file:  # a plain torch checkpoint: torch.load(path)["state_dict"]
            torch.save({"state_dict": state_dict, "curves": list(weights.curves)}, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(results_dir: str | Path, key: str) -> AnnWeights | None:
    path = checkpoint_path(results_dir, key)
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    buffer = io.BytesIO()
    torch.save(saved["state_dict"], buffer)
    return AnnWeights(key, buffer.getvalue(), tuple(tuple(row) for row in saved["curves"]), 0.0, True)


def train_or_load_ann(cell: Cell, bundle: DatasetBundle, model_plugin, profile: Profile, loss: str | None,
                      device, results_dir: str, environment: Environment, progress,
                      meter: StageMeter | None = None) -> tuple[torch.nn.Module, AnnWeights]:
    """The cell's ANN on ``device``: from its checkpoint where one exists, else trained now."""
    from bench_suite.trainers.ann import train_ann

    model = build_ann(cell, bundle, model_plugin, profile, loss, device)
    key = ann_key(cell, bundle, profile, loss)
    weights = read_checkpoint(results_dir, key)
    if weights is None:
        curves: list[tuple] = []
        started = time.perf_counter()
        meter = meter or StageMeter(device)
        with meter.stage("ann"):
            train_ann(model, bundle, profile, cell.seed, lambda *row: curves.append(row), progress, loss,
                      environment.precision)
        weights = AnnWeights(key, state_bytes(model), tuple(curves), time.perf_counter() - started, False,
                             {"ann": dict(meter.stages.get("ann", {}))})
    else:
        load_state(model, weights.state)
    return model.eval(), weights


@keeps_process_settings
def run_ann(job: CellJob, loss: str | None = None) -> AnnWeights:
    """The ANN task of a task graph: train (or load) one ANN and hand its weights to the cells needing it."""
    device = apply(job.environment)
    bundle = load_bundle(job.cell, job.profile_name, job.data_root)
    profile = cell_profile(job.cell, job.profile_name, job.overrides, bundle.task.spatial_dims)
    model_plugin = get_registry().get("model", job.cell.model.name).obj(job.cell.model.params)
    check_input_sides(bundle, model_plugin, job.cell.model.label)
    _, weights = train_or_load_ann(job.cell, bundle, model_plugin, profile, loss, device, job.results_dir,
                                   job.environment, NullProgress())
    return weights


# -- one cell ---------------------------------------------------------------------------------------------


@keeps_process_settings
def run_cell(job: CellJob, progress=None) -> CellResult:
    """Compute one cell; a failure of any kind becomes a failed :class:`CellResult` naming its cause."""
    cell = job.cell
    started = time.perf_counter()
    progress = progress or NullProgress()
    stage = "setup"
    meter: StageMeter | None = None
    batch_hint = ""
    trained_anns: dict[str, AnnWeights] = {}
    try:
        device = apply(job.environment)
        meter = StageMeter(device)
        torch.manual_seed(cell.seed)
        bundle = load_bundle(cell, job.profile_name, job.data_root)
        profile = cell_profile(cell, job.profile_name, job.overrides, bundle.task.spatial_dims)
        batch_hint = f"batch size {profile.batch_size}, evaluation batch {profile.eval_batch_size}"
        registry = get_registry()
        model_plugin = registry.get("model", cell.model.name).obj(cell.model.params)
        check_input_sides(bundle, model_plugin, cell.model.label)
        anns: dict[str, torch.nn.Module] = {}
        info: dict[str, Any] = {}
        own = dataset_profile_settings(cell.dataset.name, registry).get(job.profile_name)
        if own:  # provenance: the profile a reader expects is not the one this dataset trained with
            info["dataset_profile_settings"] = {key: getattr(profile, key) for key in own}

        def get_ann(loss: str | None = None) -> torch.nn.Module:
            nonlocal stage
            name = loss or ""
            if name not in anns:
                stage, previous = "ann", stage
                given = job.anns.get(name)
                if given is not None:
                    model = build_ann(cell, bundle, model_plugin, profile, loss, device)
                    load_state(model, given.state)
                    weights = given
                else:
                    model, weights = train_or_load_ann(cell, bundle, model_plugin, profile, loss, device,
                                                       job.results_dir, job.environment, progress, meter)
                    if not weights.reused:
                        trained_anns[name] = weights
                info.setdefault("ann_checkpoint", {})[name or "default"] = {
                    "key": weights.key, "reused": weights.reused, "train_s": weights.train_s}
                if cell.trainer.name == "ann":
                    for row_stage, epoch, metric, value in weights.curves:
                        ctx.log_curve(row_stage, int(epoch), metric, float(value))
                anns[name] = model.eval()
                stage = previous
            return anns[name]

        def stage_of(name: str):
            nonlocal stage
            stage = name
            return meter.stage(name)

        ctx = TrainerContext(
            bundle=bundle, profile=profile, model_plugin=model_plugin, get_ann=get_ann,
            make_neuron=neuron_factory(cell, device),
            norm=registry.get("norm", cell.norm.name).obj(cell.norm.params) if cell.norm is not None else None,
            seed=cell.seed, time_steps=cell.time_steps, title=cell.title(),
            calibration_cache=CalibrationCache(Path(job.results_dir) / "cache"), progress=progress,
            info=info, device=device, precision=job.environment.precision, stage=stage_of,
        )
        trainer = registry.get("trainer", cell.trainer.name).obj(cell.trainer.params)
        stage = "training"
        train_started = time.perf_counter()
        trained = trainer.run(ctx)
        train_seconds = time.perf_counter() - train_started
        stage = "evaluation"
        eval_started = time.perf_counter()
        with meter.stage("evaluation"):
            result = evaluate(trained, bundle, model_plugin.input_multiple(), profile.eval_batch_size, progress,
                              who=cell.title(), precision=job.environment.precision,
                              tile_batch=profile.eval_tile_batch)
        eval_seconds = time.perf_counter() - eval_started
        stage = "efficiency accounting"
        layer_stats = efficiency(trained, bundle, model_plugin, result.layer_stats, ctx)
        check_devices(trained, device, cell.title())
        info.update(split=bundle.split, data_source=bundle.source, test_inference=test_inference(bundle),
                    environment=job.environment.to_dict(), versions=versions(device), memory=meter.stages)
        timings = {"train_s": train_seconds, "eval_s": eval_seconds, "total_s": time.perf_counter() - started,
                   **meter.timings()}
        return CellResult(cell.key, "done", sample_metrics=result.sample_metrics, curves=ctx.curves,
                          layer_stats=layer_stats, timings=timings, info=info, anns=trained_anns)
    except KeyboardInterrupt:
        raise
    except torch.OutOfMemoryError as exc:
        peak = _peak_text(meter)
        message = (f"{cell.title()} ran out of device memory in the {stage} stage ({batch_hint}, T = "
                   f"{cell.time_steps}{peak}); lower --set batch_size / eval_batch_size, T or the width, or use "
                   f"--precision bf16 ({str(exc).splitlines()[0]})")
        return _failed(cell, message, started, meter, trained_anns)
    except BenchSuiteError as exc:
        return _failed(cell, str(exc), started, meter, trained_anns)
    except Exception as exc:  # a plugin's bug fails its cell, not the run
        return _failed(cell, f"{cell.title()} failed: {type(exc).__name__}: {exc}", started, meter, trained_anns)


def _peak_text(meter: StageMeter | None) -> str:
    if meter is None or not meter.stages:
        return ""
    peaks = [entry.get("peak_device_mib", 0.0) for entry in meter.stages.values()]
    return f", peak device memory {max(peaks):.0f} MiB" if any(peaks) else ""


def _failed(cell: Cell, message: str, started: float, meter: StageMeter | None,
            anns: dict[str, AnnWeights]) -> CellResult:
    timings = {"total_s": time.perf_counter() - started, **(meter.timings() if meter else {})}
    return CellResult(cell.key, "failed", message, traceback.format_exc(), timings=timings, anns=anns)


def test_inference(bundle: DatasetBundle) -> str:
    """How test images were run, as stored with the cell: whole, or tiles of a size and stride."""
    tiling = bundle.test_tiling
    return "whole images" if tiling is None else f"{tiling.size}x{tiling.size} tiles, stride {tiling.stride}"


def efficiency(trained, bundle: DatasetBundle, model_plugin, layer_stats: list[dict], ctx) -> list[dict]:
    """Synaptic operations per layer and energy per sample (stored in the cell's info)."""
    from bench_suite.snn.efficiency import ann_macs, cell_efficiency, energy

    first = torch.from_numpy(network_input(bundle.test[0], bundle))[None].float()  # device: the CPU copy's input
    tiles = 1
    if bundle.test_tiling is not None:  # counted on one tile, then times the tiles of an image
        example = to_tiles(first, bundle.test_tiling)[:1]
        tiles = tiles_per_image(tuple(first.shape[2:]), bundle.test_tiling)
    else:
        example, _ = pad_to_multiple(first, model_plugin.input_multiple())
    network = trained.spiking if trained.spiking is not None else trained.network
    if next(network.parameters()).device.type != "cpu":
        # the accounting counts fan-outs and MACs from shapes: it runs on a CPU copy of the network
        import copy

        network = copy.deepcopy(network).cpu()
    with torch.no_grad():
        if trained.spiking is not None:
            layer_stats, summary = cell_efficiency(network, example, layer_stats, tiles_per_sample=tiles)
        else:
            macs = sum(ann_macs(network, example).values()) * tiles
            summary = {"ann_macs": macs, "ann_energy_pj": energy(macs, 0, 0, 0)["ann_energy_pj"]}
    ctx.info["efficiency"] = summary
    return layer_stats


def check_devices(trained, device: torch.device, who: str) -> None:
    """Every parameter and buffer of the trained network (and its stages) is on the cell's device."""
    networks = [trained.network, *(stage.network for stage in trained.stages.values())]
    for network in networks:
        for name, tensor in [*network.named_parameters(), *network.named_buffers()]:
            if tensor.device.type != device.type:
                raise BenchSuiteError(
                    f"{who}: '{name}' is on {tensor.device} but the cell runs on {device}; a plugin created a "
                    "tensor without the device of the tensors it was handed")
