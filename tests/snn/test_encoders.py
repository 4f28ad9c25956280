import pytest
import torch

from bench_suite.snn.encoders import ENCODERS, DirectEncoder, PoissonBinaryEncoder, PoissonTernaryEncoder, make_encoder

STEPS = 20000
TOL = 0.015  # ≈ 4.6 standard errors of a rate of 0.3–0.7 over 20000 steps


def _spike_train(encoder, x, steps=STEPS, seed=0):
    # Stack the steps into one tensor [steps, *x.shape]; a vectorized draw would be faster but the encoder's
    # one-call-per-step contract is what is under test.
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([encoder.encode(x, t, generator) for t in range(steps)])


def test_registry():
    assert set(ENCODERS) == {"direct", "poisson", "ternary"}
    assert isinstance(make_encoder("direct"), DirectEncoder)
    assert isinstance(make_encoder("poisson"), PoissonBinaryEncoder)
    assert isinstance(make_encoder("ternary"), PoissonTernaryEncoder)
    with pytest.raises(ValueError, match="unknown encoder 'posson'.*available: direct, poisson, ternary"):
        make_encoder("posson")


def test_direct_returns_the_input_every_step():
    x = torch.tensor([[-0.5, 0.2], [3.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    for t in range(3):
        assert torch.equal(make_encoder("direct").encode(x, t, generator), x)


def test_binary_rate_equals_the_input():
    x = torch.tensor([0.0, 0.2, 0.7, 1.0])
    spikes = _spike_train(PoissonBinaryEncoder(), x)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert spikes.dtype == x.dtype
    torch.testing.assert_close(spikes.mean(dim=0), x, atol=TOL, rtol=0)
    assert spikes[:, 0].sum() == 0 and spikes[:, 3].min() == 1  # 0 never fires, 1 always does


def test_ternary_mean_equals_the_input():
    x = torch.tensor([-0.7, -0.2, 0.0, 0.2, 0.7])
    spikes = _spike_train(PoissonTernaryEncoder(), x)
    assert set(spikes.unique().tolist()) == {-1.0, 0.0, 1.0}
    torch.testing.assert_close(spikes.mean(dim=0), x, atol=TOL, rtol=0)
    assert torch.all(spikes[:, 0] <= 0) and torch.all(spikes[:, 4] >= 0)  # the sign follows x
    assert torch.count_nonzero(spikes[:, 2]) == 0  # zero input, no spikes


def test_same_generator_seed_same_spikes():
    x = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for encoder in (PoissonBinaryEncoder(), PoissonTernaryEncoder()):
        xin = x.abs() if isinstance(encoder, PoissonBinaryEncoder) else x
        a = _spike_train(encoder, xin, steps=5, seed=3)
        b = _spike_train(encoder, xin, steps=5, seed=3)
        c = _spike_train(encoder, xin, steps=5, seed=4)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


@pytest.mark.parametrize(
    ("encoder", "x", "found"),
    [
        (PoissonBinaryEncoder(), torch.tensor([-0.1, 0.5]), "min -0.1 and max 0.5"),
        (PoissonBinaryEncoder(), torch.tensor([0.0, 255.0]), "min 0 and max 255"),
        (PoissonTernaryEncoder(), torch.tensor([-1.5, 0.5]), "min -1.5 and max 0.5"),
        (PoissonTernaryEncoder(), torch.tensor([0.0, float("nan")]), "nan"),
    ],
)
def test_out_of_range_inputs_raise(encoder, x, found):
    with pytest.raises(ValueError, match=found):
        encoder.encode(x, 0, torch.Generator().manual_seed(0))


def test_integer_input_raises():
    with pytest.raises(ValueError, match="floating-point"):
        PoissonBinaryEncoder().encode(torch.tensor([0, 1]), 0, torch.Generator())
