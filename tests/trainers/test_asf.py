import torch
from torch import nn

from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.norms.scaling import NoNorm
from bench_suite.snn.convert import analyse, build_spiking_network


def tiny_network(neuron_cls):
    torch.manual_seed(3)
    ann = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU(), nn.Conv2d(3, 2, 1))
    x = torch.randn(2, 1, 3, 3)
    structure = analyse(ann, x)
    normalized = NoNorm().normalize(structure, x)
    return build_spiking_network(structure, normalized.graph, lambda th, ch: neuron_cls(threshold=th, channels=ch)), x


def test_asf_gradient_is_gated_straight_through_identity():
    for neuron_cls in (IFNeuron, MTNeuron):
        snn, x = tiny_network(neuron_cls)
        T = 7
        with torch.no_grad():
            simulated = snn.simulate(x, T, record=True)
        (_, neuron), = snn.neurons()
        rate = (neuron.acc_out / T).clone()
        with torch.no_grad():
            gate = (T * snn.encoder(x) > 0).float()  # the input current is constant over the T steps
        out = snn.flow_forward(x)
        assert torch.allclose(out, simulated, atol=1e-6)  # the ASF forward is the simulated output
        weight_out = torch.randn_like(out)
        (out * weight_out).sum().backward()

        head_w = snn.head.weight.detach().view(2, 3)
        # by hand: d/d head.weight = Σ_pixels g_out ⊗ rate; d/d encoder.weight = Σ (Wᵀ g_out)·gate·x
        expected_head = torch.einsum("bohw,bihw->oi", weight_out, rate)
        back = torch.einsum("oi,bohw->bihw", head_w, weight_out) * gate
        expected_encoder = torch.einsum("bihw,bchw->ic", back, x)
        assert torch.allclose(snn.head.weight.grad.view(2, 3), expected_head, atol=1e-5)
        assert torch.allclose(snn.encoder.weight.grad.view(3, 1), expected_encoder, atol=1e-5)
        assert torch.allclose(snn.encoder.bias.grad, back.sum((0, 2, 3)), atol=1e-5)


def test_asf_records_no_per_step_state():
    snn, x = tiny_network(IFNeuron)
    with torch.no_grad():
        snn.simulate(x, 50, record=True)
    (_, neuron), = snn.neurons()
    assert neuron.acc_out.shape == (2, 3, 3, 3) and neuron.acc_out.grad_fn is None
    assert neuron.steps == 50


def _asf_ctx(**changes):
    import dataclasses

    from bench_suite.core.contracts import TrainerContext
    from bench_suite.core.profiles import PROFILES
    from bench_suite.models.unet import UNet2d, UNet2dParams
    from bench_suite.norms.scaling import ConnectionWiseNorm
    from bench_suite.testing.checks import tiny_bundle

    bundle = tiny_bundle(side=32, n_train=4)
    torch.manual_seed(0)
    ann = UNet2d(UNet2dParams(depth=2)).build(bundle.task, 4).eval()
    profile = dataclasses.replace(PROFILES["smoke"], width=4, patches_per_image=8, batch_size=4, **changes)
    return TrainerContext(bundle=bundle, profile=profile, model_plugin=UNet2d(UNet2dParams(depth=2)),
                          get_ann=lambda loss=None: ann, norm=ConnectionWiseNorm(), seed=0, time_steps=4,
                          make_neuron=lambda th, ch: MTNeuron(threshold=th, channels=ch))


def test_asf_keeps_the_converted_network_when_fine_tuning_makes_it_worse():
    """A learning rate far too high wrecks the network: keep=best gives back the converted one and says so."""
    from bench_suite.snn.training import TrainingPatches, convert
    from bench_suite.trainers.asf import ASFParams, ASFTrainer

    ctx = _asf_ctx(asf_epochs=1, asf_lr=100.0)
    patches = TrainingPatches.for_cell(ctx)
    x = patches.calibration(4)
    converted = convert(ctx, patches.calibration(ctx.profile.calibration_samples))
    with torch.no_grad():
        expected = converted.simulate(x, 4)
    kept = ASFTrainer(ASFParams(keep="best")).run(ctx)
    info = ctx.info["asf"]
    assert info["kept_epoch"] == 0 and info["improved"] is False and len(info["validation_loss"]) == 2
    with torch.no_grad():
        assert torch.equal(kept.network.simulate(x, 4), expected)
    last_ctx = _asf_ctx(asf_epochs=1, asf_lr=100.0)
    last = ASFTrainer(ASFParams(keep="last")).run(last_ctx)
    assert last_ctx.info["asf"]["kept_epoch"] == 1
    with torch.no_grad():
        assert not torch.equal(last.network.simulate(x, 4), expected)


def test_asf_that_helps_keeps_its_best_epoch():
    from bench_suite.trainers.asf import ASFTrainer

    ctx = _asf_ctx(asf_epochs=2, asf_lr=1e-3)
    ASFTrainer().run(ctx)
    info = ctx.info["asf"]
    losses = info["validation_loss"]
    assert info["kept_epoch"] == losses.index(min(losses))
    assert [row for row in ctx.curves if row[2] == "validation_loss"]  # one curve point per epoch


def test_asf_fine_tunes_and_validates_on_the_weighted_cross_entropy(class_weights_seen):
    from bench_suite.trainers import asf

    seen = class_weights_seen(asf)
    asf.ASFTrainer().run(_asf_ctx(max_train_batches=1, class_weighting="median-frequency"))
    # validation before and after the epoch, and the training batch between them
    assert len(seen) >= 3 and all(w is not None and w.shape == (2,) for w in seen)
