"""Expand a RunSpec into cells and run each one not yet done, writing each result atomically.

Datasets are loaded once per (dataset, profile); the ANN of a (dataset, model, seed, profile) is
trained once and kept as a checkpoint under the results folder, so every cell (and every later run or
resumed run in that folder) that converts it reuses it. A cell that fails is stored as failed with its
message and the others go on; Ctrl-C or a kill leaves finished cells stored, and ``resume`` skips them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

from bench_suite import __version__
from bench_suite.core.contracts import NullProgress, TrainerContext
from bench_suite.core.errors import BenchSuiteError, PluginContractError
from bench_suite.core.paths import default_data_root
from bench_suite.core.profiles import resolve_profile
from bench_suite.core.registry import Registry, get_registry
from bench_suite.core.tasks import DatasetBundle
from bench_suite.experiment.evaluation import evaluate
from bench_suite.experiment.spec import Cell, RunSpec, expand
from bench_suite.results.store import ResultStore
from bench_suite.snn.calibration import CalibrationCache
from bench_suite.trainers.ann import train_ann

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)


def versions() -> dict[str, str]:
    found = {"bench-suite": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "spikingjelly", "numpy", "scikit-image"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["torch_threads"] = str(torch.get_num_threads())
    return found


@dataclasses.dataclass
class CellOutcome:
    cell: Cell
    status: str  # done | failed | skipped
    message: str = ""
    seconds: float = 0.0
    traceback: str = ""  # of a failed cell, for --debug (also stored with the cell)


#: the profile settings ANN training reads (train_ann, TrainingPatches)
ANN_PROFILE_FIELDS = ("name", "width", "ann_epochs", "ann_lr", "ann_optimizer", "ann_optimizer_denoising",
                      "patches_per_image", "batch_size", "max_patches")


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
    x = torch.from_numpy(sample.copy())[None].float()
    with torch.no_grad():
        out = model.eval()(x)
    model.train()
    expected = (1, channels, *x.shape[2:])
    if tuple(out.shape) != expected:
        raise PluginContractError(
            f"{who} maps an input of shape {tuple(x.shape)} to {tuple(out.shape)}, but the task needs {expected}; "
            "check the model's build() and forward"
        )


class Runner:
    def __init__(
        self, results_dir: Path, data_root: Path | None = None, registry: Registry | None = None,
        progress=None, on_cell_done: Callable[[CellOutcome], None] | None = None,
    ) -> None:
        self.results_dir = Path(results_dir)
        self.data_root = Path(data_root) if data_root else default_data_root()
        self.registry = registry or get_registry()
        self.progress = progress or NullProgress()
        self.on_cell_done = on_cell_done or (lambda outcome: None)
        self._bundles: dict[str, DatasetBundle] = {}

    # -- public -----------------------------------------------------------------------------------
    def plan(self, spec: RunSpec) -> list[Cell]:
        resolve_profile(spec.profile, spec.overrides)
        return expand(spec, self.registry)

    def start(self, spec: RunSpec, store: ResultStore) -> tuple[str, list[Cell]]:
        """Validate the spec, create the run record; the run id exists before any cell is computed."""
        cells = self.plan(spec)
        run_id = store.create_run(spec.to_dict(), versions())
        return run_id, cells

    def execute(self, run_id: str, cells: list[Cell], spec: RunSpec, store: ResultStore) -> list[CellOutcome]:
        if spec.data_root:
            self.data_root = Path(spec.data_root)
        store.plan_cells(run_id, [(cell.key, cell.title()) for cell in cells])
        done = store.done_cell_keys(run_id)
        outcomes = []
        advance = self.progress.stage("cells", len(cells))
        for cell in cells:
            if cell.key in done:
                outcome = CellOutcome(cell, "skipped", "already done")
            else:
                outcome = self._run_cell(run_id, cell, spec, store)
            outcomes.append(outcome)
            self.on_cell_done(outcome)
            advance(1)
        failed = any(o.status == "failed" for o in outcomes)
        store.set_run_status(run_id, "failed" if failed else "done")
        return outcomes

    # -- one cell ---------------------------------------------------------------------------------
    def _run_cell(self, run_id: str, cell: Cell, spec: RunSpec, store: ResultStore) -> CellOutcome:
        cell_id = store.start_cell(run_id, cell.key, cell.config())
        started = time.perf_counter()
        try:
            torch.manual_seed(cell.seed)
            bundle = self.bundle(cell, spec.profile)
            profile = resolve_profile(spec.profile, spec.overrides, bundle.task.spatial_dims)
            model_plugin = self.registry.get("model", cell.model.name).obj(cell.model.params)
            check_input_sides(bundle, model_plugin, cell.model.label)
            ctx = TrainerContext(
                bundle=bundle, profile=profile, model_plugin=model_plugin,
                get_ann=lambda loss=None: self.trained_ann(cell, bundle, model_plugin, profile, ctx, loss),
                make_neuron=self.neuron_factory(cell), norm=self.norm(cell), seed=cell.seed,
                time_steps=cell.time_steps, title=cell.title(),
                calibration_cache=CalibrationCache(self.results_dir / "cache"), progress=self.progress,
            )
            trainer = self.registry.get("trainer", cell.trainer.name).obj(cell.trainer.params)
            train_started = time.perf_counter()
            trained = trainer.run(ctx)
            train_seconds = time.perf_counter() - train_started
            eval_started = time.perf_counter()
            result = evaluate(trained, bundle, model_plugin.input_multiple(), profile.eval_batch_size,
                              self.progress, who=cell.title())
            eval_seconds = time.perf_counter() - eval_started
            layer_stats = self.efficiency(trained, bundle, model_plugin, result.layer_stats, ctx)
            ctx.info["split"] = bundle.split
            ctx.info["data_source"] = bundle.source
            store.finish_cell(
                cell_id, sample_metrics=result.sample_metrics, curves=ctx.curves,
                layer_stats=layer_stats,
                timings={"train_s": train_seconds, "eval_s": eval_seconds,
                         "total_s": time.perf_counter() - started},
                info=ctx.info,
            )
            return CellOutcome(cell, "done", seconds=time.perf_counter() - started)
        except KeyboardInterrupt:
            store.fail_cell(cell_id, "interrupted (Ctrl-C); resume the run to compute it", "")
            raise
        except BenchSuiteError as exc:
            trace = traceback.format_exc()
            store.fail_cell(cell_id, str(exc), trace)
            return CellOutcome(cell, "failed", str(exc), time.perf_counter() - started, trace)
        except Exception as exc:  # a plugin's bug fails its cell, not the run
            message = f"{cell.title()} failed: {type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            store.fail_cell(cell_id, message, trace)
            return CellOutcome(cell, "failed", message, time.perf_counter() - started, trace)

    @staticmethod
    def efficiency(trained, bundle: DatasetBundle, model_plugin, layer_stats: list[dict], ctx) -> list[dict]:
        """Synaptic operations per layer and energy per sample (stored in the cell's info)."""
        from bench_suite.experiment.evaluation import network_input, pad_to_multiple
        from bench_suite.snn.efficiency import ann_macs, cell_efficiency, energy

        example, _ = pad_to_multiple(
            torch.from_numpy(network_input(bundle.test[0], bundle))[None].float(), model_plugin.input_multiple()
        )
        with torch.no_grad():
            if trained.spiking is not None:
                layer_stats, summary = cell_efficiency(trained.spiking, example, layer_stats)
            else:
                macs = sum(ann_macs(trained.network, example).values())
                summary = {"ann_macs": macs, "ann_energy_pj": energy(macs, 0, 0, 0)["ann_energy_pj"]}
        ctx.info["efficiency"] = summary
        return layer_stats

    # -- shared resources -------------------------------------------------------------------------
    def bundle(self, cell: Cell, profile_name: str) -> DatasetBundle:
        key = f"{cell.dataset.label}|{profile_name}"
        if key not in self._bundles:
            dataset = self.registry.get("dataset", cell.dataset.name).obj(cell.dataset.params)
            self._bundles[key] = dataset.load(self.data_root, profile_name)
        return self._bundles[key]

    def neuron_factory(self, cell: Cell):
        if cell.neuron is None:
            return None
        info = self.registry.get("neuron", cell.neuron.name)
        params = cell.neuron.params
        label = f"neuron '{cell.neuron.label}' ({info.distribution})"

        def make_neuron(threshold: float, channels: int):
            neuron = info.obj(params, threshold=threshold, channels=channels)
            neuron.plugin_label = label
            return neuron

        return make_neuron

    def norm(self, cell: Cell):
        if cell.norm is None:
            return None
        return self.registry.get("norm", cell.norm.name).obj(cell.norm.params)

    def ann_key(self, cell: Cell, bundle: DatasetBundle, profile, loss: str | None = None) -> str:
        identity = {
            "loss": loss, "output_channels": bundle.task.output_channels(loss),
            "dataset": cell.dataset.label, "dataset_params": cell.dataset.params_dict(),
            "model": cell.model.label, "model_params": cell.model.params_dict(),
            "seed": cell.seed, "split": bundle.split,
            # only what shapes the ANN, so that changing a spiking setting (T, fine-tune epochs) reuses it
            "profile": {name: getattr(profile, name) for name in ANN_PROFILE_FIELDS},
            "version": __version__,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]

    def trained_ann(self, cell: Cell, bundle: DatasetBundle, model_plugin, profile, ctx: TrainerContext,
                    loss: str | None = None):
        """The cell's ANN: from its checkpoint if one exists, else trained now and checkpointed."""
        path = self.results_dir / "checkpoints" / f"ann-{self.ann_key(cell, bundle, profile, loss)}.pt"
        torch.manual_seed(cell.seed)
        channels = bundle.task.output_channels(loss)
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
        check_model_output(model, bundle, channels, f"model '{cell.model.label}'")
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["state_dict"])
            curves = saved["curves"]
            ctx.info["ann_checkpoint"] = {"path": str(path), "reused": True}
        else:
            curves = []
            started = time.perf_counter()
            train_ann(model, bundle, profile, cell.seed,
                      lambda *row: curves.append(row), self.progress, loss)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({"state_dict": model.state_dict(), "curves": curves}, tmp)
            tmp.replace(path)
            ctx.info["ann_checkpoint"] = {"path": str(path), "reused": False,
                                          "train_s": time.perf_counter() - started}
        if cell.trainer.name == "ann":
            for stage, epoch, metric, value in curves:
                ctx.log_curve(stage, int(epoch), metric, float(value))
        return model.eval()
