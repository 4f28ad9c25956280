"""The conformance kit: behavioural checks of a plugin against its kind's contract.

In the spirit of scikit-learn's ``check_estimator``: each ``check_<kind>`` runs every check of that kind
on a plugin class, on tiny generated data, in about a second, and raises :class:`ConformanceError`
listing every check that failed (with what was expected and found). ``plugin_checks`` gives the
individual checks, for ``pytest.mark.parametrize``. The written contracts are in
:mod:`bench_suite.core.contracts`; this kit checks what a signature cannot say.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench_suite.core.contracts import TRAINER_USES, TrainerContext
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.profiles import PROFILES, check_dataset_settings
from bench_suite.core.tasks import DatasetBundle, Sample, Task, Tiling


class ConformanceError(AssertionError):
    """One or more conformance checks failed; the message lists each with its reason."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    message: str = ""

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}" + ("" if self.passed else f": {self.message}")


Check = Callable[[], None]


def _instantiate(kind: str, plugin: type, params: Any = None, **kwargs) -> Any:
    if params is None and getattr(plugin, "Params", None) is not None:
        params = plugin.Params()
    return plugin(params, **kwargs)


def _run(checks: Iterator[tuple[str, Check]]) -> list[CheckResult]:
    results = []
    for name, check in checks:
        try:
            check()
        except Exception as error:  # every failure is reported, not only the first
            results.append(CheckResult(name, False, f"{type(error).__name__}: {error}"))
        else:
            results.append(CheckResult(name, True))
    return results


def _raise_failures(plugin: Any, results: list[CheckResult]) -> list[CheckResult]:
    failed = [r for r in results if not r.passed]
    if failed:
        who = getattr(plugin, "__qualname__", repr(plugin))
        raise ConformanceError(f"{who} fails {len(failed)} of {len(results)} checks:\n"
                               + "\n".join(f"  - {r.name}: {r.message}" for r in failed))
    return results


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class _StateDict(dict):
    """Shared state of one kit run: a later check that needs what an earlier one failed to make says so."""

    def __missing__(self, key: str) -> Any:
        raise AssertionError(f"not run: an earlier check failed before '{key}' was made")


def _reset(module: nn.Module) -> None:
    from bench_suite.snn.network import functional

    functional.reset_net(module)


# -- neurons --------------------------------------------------------------------------------------------

_SHAPE = (2, 3, 5, 4)  # [B, C, H, W]
_STEPS = 6


def _neuron_inputs(seed: int = 0, steps: int = _STEPS, scale: float = 1.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # mixed signs and values around the threshold, away from exact level boundaries (measure zero)
    return (torch.rand((steps, *_SHAPE), generator=generator, device="cpu") * 2 - 0.6) * scale


def _simulate_neuron(neuron: SpikingNeuron, inputs: torch.Tensor, grad: bool) -> tuple[list[torch.Tensor], Any]:
    _reset(neuron)
    outputs = []
    with torch.set_grad_enabled(grad):
        for x in inputs:
            x = x.clone().requires_grad_(grad)
            outputs.append(neuron(x).detach().clone())
    v = neuron.v.detach().clone() if torch.is_tensor(neuron.v) else neuron.v
    return outputs, v


def neuron_checks(neuron_cls: type, params: Any = None) -> Iterator[tuple[str, Check]]:
    def make(threshold: float = 1.0) -> SpikingNeuron:
        return _instantiate("neuron", neuron_cls, params, threshold=threshold, channels=_SHAPE[1])

    def subclasses_the_base() -> None:
        _expect(issubclass(neuron_cls, SpikingNeuron), "a neuron must subclass bench_suite.core.neuron.SpikingNeuron")
        make()

    def keeps_the_input_shape() -> None:
        neuron = make()
        for x in _neuron_inputs(steps=2):
            out = neuron(x)
            _expect(tuple(out.shape) == tuple(x.shape),
                    f"output shape {tuple(out.shape)} for input {tuple(x.shape)}")
            _expect(bool(torch.isfinite(out).all()), "non-finite output for finite input")

    def multi_step_equals_single_steps() -> None:
        inputs = _neuron_inputs(1)
        single, _ = _simulate_neuron(make(), inputs, grad=False)
        neuron = make()
        neuron.step_mode = "m"
        _reset(neuron)
        with torch.no_grad():
            multi = neuron(inputs)
        for step, (a, b) in enumerate(zip(single, multi, strict=True)):
            _expect(torch.allclose(a, b, atol=1e-6), f"multi-step output differs from single steps at step {step}")

    def grad_and_no_grad_dynamics_agree() -> None:
        # training (autograd) and evaluation (no grad) must simulate the same neuron: same outputs and
        # the same membrane after every step
        inputs = _neuron_inputs(2)
        neuron = make()
        with_grad, v_grad = _simulate_neuron(neuron, inputs, grad=True)
        without, v_plain = _simulate_neuron(neuron, inputs, grad=False)
        for step, (a, b) in enumerate(zip(with_grad, without, strict=True)):
            _expect(torch.allclose(a, b, atol=1e-5),
                    f"outputs differ at step {step} (max |Δ| {float((a - b).abs().max()):.3g}) "
                    "with and without autograd")
        _expect(torch.allclose(torch.as_tensor(v_grad), torch.as_tensor(v_plain), atol=1e-5),
                "the membrane potential after the last step differs with and without autograd "
                f"(max |Δ| {float((torch.as_tensor(v_grad) - torch.as_tensor(v_plain)).abs().max()):.3g}); "
                "override neuronal_charge / neuronal_reset only (the hooks run on both paths)")

    def reset_clears_state() -> None:
        inputs = _neuron_inputs(3)
        neuron = make()
        first, _ = _simulate_neuron(neuron, inputs, grad=False)
        with torch.no_grad():
            for x in _neuron_inputs(4):
                neuron(x)  # leave state behind
        second, _ = _simulate_neuron(neuron, inputs, grad=False)  # _simulate_neuron resets first
        for step, (a, b) in enumerate(zip(first, second, strict=True)):
            _expect(torch.equal(a, b), f"after reset_net the outputs differ at step {step}: some state is not "
                                       "registered with register_memory")

    def surrogate_gradient_near_threshold() -> None:
        neuron = make()
        _reset(neuron)
        x = torch.full(_SHAPE, 1.02, device="cpu").requires_grad_(True)  # just above θ = 1
        with torch.enable_grad():
            out = neuron(x)
            out.sum().backward()
        _expect(x.grad is not None and bool(x.grad.abs().sum() > 0),
                "no gradient reaches the input near the threshold: use self.spike(v, θ) where v.requires_grad")
        _expect(bool(torch.isfinite(x.grad).all()), "the surrogate gradient is not finite")

    def asf_accumulated_input_is_the_sum_of_inputs() -> None:
        inputs = _neuron_inputs(5)
        neuron = make()
        _reset(neuron)
        neuron.record = True
        with torch.no_grad():
            for x in inputs:
                neuron(x)
        found = neuron.accumulated_input()
        _expect(tuple(found.shape) == _SHAPE, f"accumulated input has shape {tuple(found.shape)}, not {_SHAPE}")
        _expect(torch.allclose(found, inputs.sum(0), atol=1e-4),
                "the accumulated input ASF gates on is not the sum of the inputs "
                f"(max |Δ| {float((found - inputs.sum(0)).abs().max()):.3g})")
        neuron.record = False

    def statistics_are_counts() -> None:
        neuron = make()
        _reset(neuron)
        neuron.record = "stats"
        with torch.no_grad():
            for x in _neuron_inputs(6):
                neuron(x)
        events, spikes = float(neuron.events), float(neuron.spikes)
        _expect(events >= 0 and spikes >= events - 1e-6 and math.isfinite(spikes),
                f"events {events} and level spikes {spikes}: each event carries at least one spike")
        neuron.record = False

    yield "subclasses SpikingNeuron and builds", subclasses_the_base
    yield "keeps the input shape", keeps_the_input_shape
    yield "multi-step equals single steps", multi_step_equals_single_steps
    yield "same dynamics with and without autograd", grad_and_no_grad_dynamics_agree
    yield "reset_net clears its state", reset_clears_state
    yield "surrogate gradient near the threshold", surrogate_gradient_near_threshold
    yield "ASF accumulated input equals the sum of inputs", asf_accumulated_input_is_the_sum_of_inputs
    yield "spike statistics are counts", statistics_are_counts


def check_neuron(neuron_cls: type, params: Any = None) -> list[CheckResult]:
    """Run every neuron check; raise :class:`ConformanceError` if any fails."""
    return _raise_failures(neuron_cls, _run(neuron_checks(neuron_cls, params)))


# -- tiny shared fixtures ---------------------------------------------------------------------------------


def tiny_task(kind: str = "segmentation", dims: int = 2) -> Task:
    return Task(kind, 1, 2, spatial_dims=dims) if kind == "segmentation" else Task("denoising", 1, spatial_dims=dims)


def tiny_bundle(kind: str = "segmentation", side: int = 16, n_train: int = 4, n_test: int = 2) -> DatasetBundle:
    """Bright squares on noise (segmentation: label = square), or the same images to denoise."""
    rng = np.random.default_rng(0)

    def sample(index: int, split: str) -> Sample:
        label = np.zeros((side, side), dtype=np.int64)
        r, c = rng.integers(0, side // 2, 2)
        label[r : r + side // 3, c : c + side // 3] = 1
        image = np.clip(0.2 + 0.6 * label + rng.normal(0, 0.1, label.shape), 0, 1).astype(np.float32)[None]
        return Sample(f"{split}-{index}", image, label if kind == "segmentation" else None)

    train = [sample(i, "train") for i in range(n_train)]
    test = [sample(i, "test") for i in range(n_test)]
    return DatasetBundle("tiny", tiny_task(kind), train, test, patch_size=side, source="generated by the kit")


def tiny_unet(task: Task, width: int = 4, depth: int = 2) -> nn.Module:
    from bench_suite.models.unet import UNet

    return UNet(task.in_channels, task.out_channels, width=width, depth=depth, head=task.kind, dims=task.spatial_dims)


class ChainNet(nn.Module):
    """conv → ReLU → average pool → conv → ReLU → up-sampling conv → ReLU → head: no concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.relu1 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.middle, self.relu2 = nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()
        self.up, self.relu3 = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu1(self.first(x)))
        return self.head(self.relu3(self.up(self.relu2(self.middle(x)))))


class ReLUNeuron(SpikingNeuron):
    """Fires max(v, 0) and resets to zero: at T = 1 a converted network computes exactly its ANN."""

    def __init__(self, params=None, threshold: float = 1.0, channels: int | None = None) -> None:
        super().__init__(params, threshold, reset="zero", channels=channels)

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        return v.clamp(min=0.0)

    def neuronal_reset(self, out: torch.Tensor) -> None:
        self.v = self.v * 0.0


def _if_factory(threshold: float, channels: int) -> SpikingNeuron:
    from bench_suite.neurons.integrate_fire import IFNeuron

    return IFNeuron(None, threshold=threshold, channels=channels)


# -- norms ------------------------------------------------------------------------------------------------


def norm_checks(norm_cls: type, params: Any = None) -> Iterator[tuple[str, Check]]:
    from bench_suite.snn.calibration import CalibrationCache, Normalized
    from bench_suite.snn.convert import analyse, build_spiking_network

    torch.manual_seed(0)
    task = tiny_task()
    ann = tiny_unet(task).eval()
    calibration = torch.rand(4, 1, 16, 16, device="cpu")  # the kit checks on the CPU
    state: dict[str, Any] = _StateDict()

    def normalizes() -> None:
        structure = analyse(ann, calibration)
        before = {k: v.clone() for k, v in structure.graph.state_dict().items()}
        with tempfile.TemporaryDirectory() as folder:
            result = _instantiate("norm", norm_cls, params).normalize(
                structure, calibration, cache=CalibrationCache(Path(folder)), make_neuron=_if_factory)
        _expect(isinstance(result, Normalized), f"normalize returned {type(result).__name__}, not Normalized")
        after = structure.graph.state_dict()
        _expect(all(torch.equal(before[k], after[k]) for k in before),
                "normalize modified the traced ANN it was given; work on a copy (the ANN is shared by cells)")
        state["structure"], state["result"] = structure, result

    def thresholds_name_neuron_sites() -> None:
        structure, result = state["structure"], state["result"]
        sites = set(structure.sites) | set(structure.pools)
        unknown = set(result.thresholds) - sites
        _expect(not unknown, f"thresholds for unknown sites {sorted(unknown)}; sites are ReLU and pool node names")
        bad = {k: v for k, v in result.thresholds.items() if not (math.isfinite(v) and v > 0)}
        _expect(not bad, f"thresholds must be positive and finite, got {bad}")
        _expect(all(isinstance(v, (int, float)) and math.isfinite(v) for v in result.scales.values()),
                "scales must be finite numbers (they are stored with the cell)")

    def scaling_keeps_the_ann_function() -> None:
        # ReLU layers are positively homogeneous: W·λ_in/λ_out with λ_out = 1 at the head leaves the output
        # unchanged where no concatenation mixes branches of different λ (where LW's one λ differs from CW's)
        chain = ChainNet().eval()
        structure = analyse(chain, calibration)
        result = _instantiate("norm", norm_cls, params).normalize(structure, calibration, make_neuron=_if_factory)
        with torch.no_grad():
            expected, found = chain(calibration), result.graph(calibration)
        gap = float((expected - found).abs().max())
        _expect(torch.allclose(expected, found, rtol=1e-3, atol=1e-4),
                f"on a network without concatenation the normalized graph computes another function (max |Δ| "
                f"{gap:.3g}); a norm scales weights, it must not change what the ANN computes")

    def converts_and_simulates() -> None:
        structure, result = state["structure"], state["result"]
        network = build_spiking_network(structure, result.graph, _if_factory, result.thresholds)
        with torch.no_grad():
            out = network.simulate(calibration, 4)
        _expect(tuple(out.shape) == (4, 2, 16, 16) and bool(torch.isfinite(out).all()),
                f"the converted network gave shape {tuple(out.shape)} or non-finite values")

    yield "normalize returns Normalized and leaves the ANN alone", normalizes
    yield "thresholds name neuron sites and are positive", thresholds_name_neuron_sites
    yield "the normalized graph computes the ANN's function", scaling_keeps_the_ann_function
    yield "the result converts and simulates", converts_and_simulates


def check_norm(norm_cls: type, params: Any = None) -> list[CheckResult]:
    return _raise_failures(norm_cls, _run(norm_checks(norm_cls, params)))


# -- trainers ---------------------------------------------------------------------------------------------


def _trainer_context(trainer, bundle: DatasetBundle, seed: int = 0) -> TrainerContext:
    from bench_suite.models.unet import UNet2d, UNet2dParams
    from bench_suite.norms.scaling import ConnectionWiseNorm
    from bench_suite.trainers.ann import train_ann

    profile = dataclasses.replace(PROFILES["smoke"], width=4, ann_epochs=1, asf_epochs=1, dt_epochs=1,
                                  three_stage_epochs=1, patches_per_image=2, batch_size=4,
                                  calibration_samples=4, max_train_batches=2)
    model_plugin = UNet2d(UNet2dParams(depth=2))
    anns: dict[Any, nn.Module] = {}

    def get_ann(loss: str | None = None) -> nn.Module:
        if loss not in anns:
            torch.manual_seed(seed)
            model = model_plugin.build(bundle.task, profile.width, out_channels=bundle.task.output_channels(loss))
            train_ann(model, bundle, profile, seed, lambda *row: None, ctx.progress, loss)
            anns[loss] = model.eval()
        return anns[loss]

    uses = getattr(type(trainer), "uses", TRAINER_USES)
    ctx = TrainerContext(
        bundle=bundle, profile=profile, model_plugin=model_plugin, get_ann=get_ann,
        make_neuron=_if_factory if "neuron" in uses else None,
        norm=ConnectionWiseNorm() if "norm" in uses else None, seed=seed, time_steps=4 if "T" in uses else 0,
        title="conformance cell",
    )
    return ctx


def trainer_checks(trainer_cls: type, params: Any = None) -> Iterator[tuple[str, Check]]:
    from bench_suite.experiment.evaluation import evaluate
    from bench_suite.snn.network import TrainedNetwork

    bundle = tiny_bundle()
    state: dict[str, Any] = _StateDict()

    def runs_and_returns_a_trained_network() -> None:
        trainer = _instantiate("trainer", trainer_cls, params)
        ctx = _trainer_context(trainer, bundle)
        anns_before = {}
        original_get_ann = ctx.get_ann

        def watched_get_ann(loss=None):
            model = original_get_ann(loss)
            anns_before.setdefault(loss, copy.deepcopy(model.state_dict()))
            return model

        ctx.get_ann = watched_get_ann
        torch.manual_seed(0)
        trained = trainer.run(ctx)
        _expect(isinstance(trained, TrainedNetwork), f"run returned {type(trained).__name__}, not TrainedNetwork")
        expected_t = ctx.time_steps if trained.spiking is not None else 0
        _expect(trained.time_steps == expected_t, f"time_steps {trained.time_steps}, expected {expected_t}")
        for loss, before in anns_before.items():
            after = original_get_ann(loss).state_dict()
            _expect(all(torch.equal(before[k], after[k]) for k in before),
                    "run changed the shared ANN's weights; convert or fine-tune a copy")
        state["trained"], state["ctx"] = trained, ctx

    def curves_are_well_formed() -> None:
        for stage, epoch, metric, value in state["ctx"].curves:
            _expect(isinstance(stage, str) and isinstance(metric, str) and int(epoch) == epoch,
                    f"curve row {(stage, epoch, metric, value)} is not (stage, epoch, metric, value)")
            _expect(math.isfinite(value), f"curve {stage}/{metric} has a non-finite value at epoch {epoch}")

    def evaluates() -> None:
        result = evaluate(state["trained"], bundle, 4, 2, who="conformance cell")
        values = [v for _, _, v in result.sample_metrics]
        _expect(len({s for s, _, _ in result.sample_metrics}) == len(bundle.test), "not every test sample was scored")
        _expect(all(math.isfinite(v) for v in values if not math.isnan(v)), "non-finite metrics")

    def same_seed_same_network() -> None:
        trainer = _instantiate("trainer", trainer_cls, params)
        torch.manual_seed(0)
        again = trainer.run(_trainer_context(trainer, bundle))
        x = torch.from_numpy(np.stack([s.image for s in bundle.test]))
        for trained in (state["trained"], again):
            if trained.spiking is not None:
                trained.spiking.restart_coding()  # random input coding: compare the same spike stream
        with torch.no_grad():
            first, second = state["trained"](x), again(x)
        _expect(torch.allclose(first, second, atol=1e-5), "two runs with the same seed give different networks")

    yield "run returns a TrainedNetwork and leaves the shared ANN alone", runs_and_returns_a_trained_network
    yield "curves are (stage, epoch, metric, finite value)", curves_are_well_formed
    yield "the result is evaluated on every test sample", evaluates
    yield "the same seed gives the same network", same_seed_same_network


def check_trainer(trainer_cls: type, params: Any = None) -> list[CheckResult]:
    return _raise_failures(trainer_cls, _run(trainer_checks(trainer_cls, params)))


# -- datasets ---------------------------------------------------------------------------------------------


def dataset_checks(
    dataset_cls: type, params: Any = None, data_root: Path | str | None = None, profile: str = "smoke",
    multiple: int = 16,
) -> Iterator[tuple[str, Check]]:
    state: dict[str, Any] = _StateDict()

    def loads() -> None:
        dataset = _instantiate("dataset", dataset_cls, params)
        with tempfile.TemporaryDirectory() as scratch:
            bundle = dataset.load(Path(data_root) if data_root is not None else Path(scratch), profile)
        _expect(isinstance(bundle, DatasetBundle), f"load returned {type(bundle).__name__}, not DatasetBundle")
        _expect(bool(bundle.train) and bool(bundle.test), f"{len(bundle.train)} training and {len(bundle.test)} "
                                                          "test samples; both must be non-empty")
        state["bundle"] = bundle

    def ids_are_unique() -> None:
        bundle = state["bundle"]
        ids = [s.id for s in bundle.train + bundle.test]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        _expect(not duplicates, f"sample ids repeat: {duplicates[:5]}")
        _expect(all(isinstance(i, str) and i for i in ids), "every sample id must be a non-empty string")

    def images_as_declared() -> None:
        bundle = state["bundle"]
        task = bundle.task
        for sample in bundle.train + bundle.test:
            image = sample.image
            _expect(isinstance(image, np.ndarray) and image.dtype == np.float32,
                    f"{sample.id}: image must be a float32 array, got {getattr(image, 'dtype', type(image))}")
            _expect(image.ndim == 1 + task.spatial_dims and image.shape[0] == task.in_channels,
                    f"{sample.id}: image shape {image.shape}, expected "
                    f"[{task.in_channels}, *{task.spatial_dims} sides]")
            _expect(bool(np.isfinite(image).all()), f"{sample.id}: image has NaN or infinite values")
            if task.spatial_dims == 2:
                _expect(float(image.min()) >= 0 and float(image.max()) <= 1,
                        f"{sample.id}: image values {float(image.min()):.3g}…{float(image.max()):.3g} "
                        "are not in [0, 1]")

    def targets_as_declared() -> None:
        bundle = state["bundle"]
        task = bundle.task
        for sample in bundle.train + bundle.test:
            if task.kind == "denoising":
                _expect(sample.target is None, f"{sample.id}: a denoising sample holds the clean image and no target")
                continue
            target = sample.target
            _expect(isinstance(target, np.ndarray) and target.dtype == np.int64,
                    f"{sample.id}: target must be an int64 class map, got {getattr(target, 'dtype', type(target))}")
            _expect(target.shape == sample.image.shape[1:],
                    f"{sample.id}: target shape {target.shape} differs from the image's sides {sample.image.shape[1:]}")
            values = np.unique(target)
            _expect(int(values.min()) >= 0 and int(values.max()) < task.n_classes,
                    f"{sample.id}: label values {values.tolist()[:10]} outside 0…{task.n_classes - 1}")
            if sample.fov is not None:
                _expect(sample.fov.dtype == bool and sample.fov.shape == target.shape,
                        f"{sample.id}: fov must be a bool mask shaped like the target")

    def patch_size_fits() -> None:
        bundle = state["bundle"]
        if bundle.task.spatial_dims != 2:
            return
        _expect(bundle.patch_size % multiple == 0, f"patch_size {bundle.patch_size} is not a multiple of {multiple}")
        smallest = min(min(s.image.shape[1:]) for s in bundle.train)
        _expect(bundle.patch_size <= smallest,
                f"patch_size {bundle.patch_size} is larger than the smallest training image side {smallest}")
        tiling = bundle.test_tiling
        if tiling is not None:
            _expect(isinstance(tiling, Tiling),
                    f"test_tiling must be a Tiling(size, stride), got {type(tiling).__name__}")
            _expect(tiling.size % multiple == 0,
                    f"the test tile side {tiling.size} is not a multiple of {multiple}")

    def profile_settings_are_valid() -> None:
        settings = getattr(dataset_cls, "profile_settings", None)
        if settings is None:
            return
        _expect(isinstance(settings, Mapping) and all(isinstance(v, Mapping) for v in settings.values()),
                f"profile_settings must map a profile name to {{setting: value}}, got {settings!r}")
        try:
            check_dataset_settings(settings, dataset_cls.__name__)
        except BenchSuiteError as error:
            raise AssertionError(str(error)) from None

    yield "load returns a DatasetBundle with train and test samples", loads
    yield "profile_settings name known profiles, settings and valid values", profile_settings_are_valid
    yield "sample ids are unique", ids_are_unique
    yield "images have the declared channels, sides and range", images_as_declared
    yield "targets have the declared shape and classes", targets_as_declared
    yield "the training patch and the test tiles fit the images and the model", patch_size_fits


def check_dataset(
    dataset_cls: type, params: Any = None, data_root: Path | str | None = None, profile: str = "smoke",
) -> list[CheckResult]:
    return _raise_failures(dataset_cls, _run(dataset_checks(dataset_cls, params, data_root, profile)))


# -- models -----------------------------------------------------------------------------------------------


def model_checks(model_cls: type, params: Any = None) -> Iterator[tuple[str, Check]]:
    from bench_suite.snn.convert import analyse, build_spiking_network

    state: dict[str, Any] = _StateDict()
    dims = getattr(model_cls, "dims", 2)

    def example(task: Task, multiple: int) -> torch.Tensor:
        torch.manual_seed(0)
        return torch.rand(2, task.in_channels, *([multiple * 2] * task.spatial_dims), device="cpu")

    def builds_with_the_declared_shapes() -> None:
        plugin = _instantiate("model", model_cls, params)
        multiple = plugin.input_multiple()
        _expect(isinstance(multiple, int) and multiple >= 1, f"input_multiple() gave {multiple!r}")
        for task in (tiny_task("segmentation", dims), tiny_task("denoising", dims)):
            torch.manual_seed(0)
            model = plugin.build(task, 4)
            x = example(task, multiple)
            with torch.no_grad():
                out = model(x)
            expected = (2, task.out_channels, *x.shape[2:])
            _expect(tuple(out.shape) == expected, f"{task.kind}: output {tuple(out.shape)}, expected {expected}")
        one = plugin.build(tiny_task("segmentation", dims), 4, out_channels=1)
        with torch.no_grad():
            out = one(example(tiny_task("segmentation", dims), multiple))
        _expect(out.shape[1] == 1, f"build(..., out_channels=1) gave {out.shape[1]} output channels")
        state["plugin"], state["multiple"] = plugin, multiple

    def conversion_round_trips() -> None:
        # every ReLU → a neuron that fires max(v, 0): at T = 1 the spiking network must compute the ANN
        plugin, multiple = state["plugin"], state["multiple"]
        task = tiny_task("segmentation", dims)
        torch.manual_seed(0)
        model = plugin.build(task, 4).eval()
        x = example(task, multiple)
        structure = analyse(model, x)
        network = build_spiking_network(structure, copy.deepcopy(structure.graph),
                                        lambda threshold, channels: ReLUNeuron(None, threshold, channels))
        with torch.no_grad():
            expected, found = model(x), network.simulate(x, 1)
        _expect(torch.allclose(expected, found, rtol=1e-4, atol=1e-5),
                f"the converted network differs from the ANN (max |Δ| {float((expected - found).abs().max()):.3g})")

    yield "builds modules with the declared input and output shapes", builds_with_the_declared_shapes
    yield "traces with torch.fx and its conversion round-trips", conversion_round_trips


def check_model(model_cls: type, params: Any = None) -> list[CheckResult]:
    return _raise_failures(model_cls, _run(model_checks(model_cls, params)))


# -- by kind ----------------------------------------------------------------------------------------------

CHECKS = {"neuron": neuron_checks, "norm": norm_checks, "trainer": trainer_checks, "dataset": dataset_checks,
          "model": model_checks}


def plugin_checks(kind: str, plugin: type, params: Any = None, **options) -> list[tuple[str, Check]]:
    """The named checks of ``kind`` for ``plugin``: ``[(name, check), ...]`` (for pytest parametrization)."""
    if kind not in CHECKS:
        raise BenchSuiteError(f"no conformance checks for kind '{kind}'; kinds: {', '.join(CHECKS)}")
    return list(CHECKS[kind](plugin, params, **options))


def run_checks(kind: str, plugin: type, params: Any = None, **options) -> list[CheckResult]:
    """Every check of ``kind`` on ``plugin``, each passed or failed with its reason (nothing raised)."""
    return _run(iter(plugin_checks(kind, plugin, params, **options)))
