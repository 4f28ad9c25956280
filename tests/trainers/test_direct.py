import torch
from torch import nn

from bench_suite.core.tasks import Task
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_level import MLNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.neurons.real_spike import RSNeuron
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.trainers.direct import bptt_step


def test_bptt_trains_every_neuron_from_random_weights():
    task = Task("segmentation", 1, 2)
    x = torch.rand(8, 1, 6, 6)
    target = (x[:, 0] > 0.5).long()
    for neuron_cls in (IFNeuron, MTNeuron, MLNeuron, RSNeuron):
        torch.manual_seed(0)
        ann = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(),
                            nn.Conv2d(8, 2, 1))
        structure = analyse(ann, x)
        snn = build_spiking_network(structure, structure.graph,
                                    lambda th, ch, cls=neuron_cls: cls(threshold=th, channels=ch))
        optimizer = torch.optim.Adam(snn.parameters(), lr=0.02)
        losses = [bptt_step(snn, x, target, 6, task, optimizer) for _ in range(40)]
        assert losses[-1] < 0.7 * losses[0], (neuron_cls.__name__, losses[0], losses[-1])
        assert snn.encoder.weight.grad.abs().sum() > 0, f"{neuron_cls.__name__}: no gradient reached the input"


def _ctx(neuron_cls, profile="smoke", **changes):
    import dataclasses

    from bench_suite.core.contracts import TrainerContext
    from bench_suite.core.profiles import PROFILES
    from bench_suite.models.unet import UNet2d, UNet2dParams
    from bench_suite.testing.checks import tiny_bundle

    bundle = tiny_bundle()
    model = UNet2d(UNet2dParams(depth=2))
    return TrainerContext(bundle=bundle, profile=dataclasses.replace(PROFILES[profile], width=4, **changes),
                          model_plugin=model, get_ann=None, norm=None, seed=0, time_steps=6,
                          make_neuron=lambda th, ch: neuron_cls(threshold=th, channels=ch))


def _firing_layers(network, x, T=6) -> list[float]:
    network.set_record("stats")
    with torch.no_grad():
        network.simulate(x, T, record="stats")
    return [float(neuron.spikes) for _, neuron in network.neurons()]


def test_normalized_start_fires_in_every_layer_where_default_weights_go_silent():
    from bench_suite.snn.training import TrainingPatches
    from bench_suite.trainers.direct import normalized_start, random_start

    ctx = _ctx(IFNeuron)
    patches = TrainingPatches.for_cell(ctx)
    x = patches.calibration(8)
    torch.manual_seed(0)
    model = ctx.model_plugin.build(ctx.bundle.task, 4)
    normalized = _firing_layers(normalized_start(ctx, model, patches), x)
    assert all(spikes > 0 for spikes in normalized), normalized  # gradients can reach every layer
    torch.manual_seed(0)
    silent = _firing_layers(random_start(ctx, ctx.model_plugin.build(ctx.bundle.task, 4), patches), x)
    assert sum(s == 0 for s in silent) > sum(s == 0 for s in normalized)  # what the normalized start fixes


def test_dt_follows_the_profile_recipe_and_its_parameters():
    from bench_suite.trainers.direct import DirectTrainer, DTParams

    ctx = _ctx(MTNeuron, max_train_batches=3, dt_epochs=2)
    trained = DirectTrainer().run(ctx)
    assert ctx.info["dt"] == {"init": "normalized", "schedule": "cosine", "lr": 2e-3, "epochs": 2, "batches": 6,
                              "grad_clip": 0.0}
    assert [c[:3] for c in ctx.curves] == [("dt", 1, "loss"), ("dt", 2, "loss")]
    assert trained.time_steps == 6
    reference = _ctx(MTNeuron, max_train_batches=2, dt_epochs=1)
    DirectTrainer(DTParams(init="random", schedule="constant", lr=1e-3)).run(reference)
    assert reference.info["dt"]["init"] == "random" and reference.info["dt"]["schedule"] == "constant"
    from bench_suite.core.profiles import PROFILES

    paper = PROFILES["paper"]  # the reference's settings stay the paper profile's
    assert (paper.dt_init, paper.dt_schedule, paper.dt_lr, paper.dt_epochs) == ("random", "constant", 1e-3, 100)


def test_dt_trains_on_the_weighted_cross_entropy_where_the_profile_asks(class_weights_seen):
    from bench_suite.trainers import direct

    seen = class_weights_seen(direct)
    direct.DirectTrainer().run(_ctx(IFNeuron, max_train_batches=1, dt_epochs=1, class_weighting="median-frequency"))
    assert seen and all(w is not None and w.shape == (2,) for w in seen)


def test_dt_max_batches_caps_each_epoch_and_the_smaller_cap_wins(monkeypatch):
    from bench_suite.core.profiles import PROFILES
    from bench_suite.trainers import direct

    calls = []
    real_step = direct.bptt_step
    monkeypatch.setattr(direct, "bptt_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))
    for caps, expected in (({"dt_max_batches": 2}, 2), ({"dt_max_batches": 2, "max_train_batches": 1}, 1),
                           ({"dt_max_batches": 1, "max_train_batches": 3}, 1)):
        calls.clear()
        ctx = _ctx(IFNeuron, dt_epochs=2, max_patches=0, **caps)
        direct.DirectTrainer().run(ctx)
        assert len(calls) == ctx.info["dt"]["batches"] == 2 * expected, caps
    # quick gives every training set demo-vessels' 64 batches per epoch; the paper profile has no cap
    assert (PROFILES["quick"].dt_max_batches, PROFILES["paper"].dt_max_batches) == (64, 0)


def test_dt_grad_clip_bounds_the_gradient_norm_of_each_step(monkeypatch):
    from bench_suite.trainers import direct

    norms = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, limit: norms.append(limit) or real_clip(params, limit))
    ctx = _ctx(MTNeuron, dt_epochs=1, max_train_batches=2, dt_grad_clip=1e-3)
    network = direct.DirectTrainer().run(ctx).network
    assert norms == [1e-3, 1e-3] and ctx.info["dt"]["grad_clip"] == 1e-3
    # after the clip, the step Adam takes is the same whatever the clip (Adam normalizes), so the bound is
    # checked on the gradients themselves
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    assert grads and torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) <= 1e-3 * 1.0001
    unclipped = _ctx(MTNeuron, dt_epochs=1, max_train_batches=2)
    norms.clear()
    direct.DirectTrainer().run(unclipped)
    assert norms == [] and unclipped.info["dt"]["grad_clip"] == 0.0
