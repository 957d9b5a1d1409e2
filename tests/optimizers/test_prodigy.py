"""Prodigy: step for step against a NumPy transcription of `prodigyopt.Prodigy.step` (and
the package itself when torch and prodigyopt are installed), serialization, export, bad
arguments."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from tests.support import reference
from tests.support.linear_problem import N, data, grads, linear_model

import lrsearch
from lrsearch.core.errors import ConfigError
from lrsearch.optimizers import SCHEDULABLE, ProdigyAdam, momentum_can_follow_a_schedule, momentum_name


def weights(model):
    return [np.asarray(v, np.float64) for v in model.get_weights()]


class Reference:
    """A NumPy transcription of `prodigyopt.Prodigy.step` (version 1.1.2), one parameter
    group, `slice_p=1`; `decay` says which parameters weight decay reaches. It computes in
    float64 but stores the weights in float32, as the model does: the first steps are
    about `d0` in size, so `p0 - p` is a few float32 ulps and its rounding moves `d`."""

    def __init__(self, params, *, lr=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, weight_decay=0.0,
                 decouple=True, use_bias_correction=False, safeguard_warmup=False, d0=1e-6, d_coef=1.0,
                 growth_rate=math.inf, decay=(True, True)):
        self.p = [np.array(q, np.float32) for q in params]
        self.lr, self.betas, self.beta3, self.eps, self.wd = lr, betas, beta3, eps, weight_decay
        self.decouple, self.bc, self.safeguard = decouple, use_bias_correction, safeguard_warmup
        self.d = self.d_max = self.d0 = d0
        self.d_coef, self.growth, self.decay = d_coef, growth_rate, decay
        self.numerator, self.k = 0.0, 0
        self.p0 = [q.copy() for q in self.p]
        self.s = [np.zeros_like(q) for q in self.p]
        self.m = [np.zeros_like(q) for q in self.p]
        self.v = [np.zeros_like(q) for q in self.p]

    def step(self, g):
        beta1, beta2 = self.betas
        beta3 = math.sqrt(beta2) if self.beta3 is None else self.beta3
        k, d, lr = self.k, self.d, self.lr
        bias = ((1 - beta2 ** (k + 1)) ** 0.5) / (1 - beta1 ** (k + 1)) if self.bc else 1
        dlr = d * lr * bias
        self.numerator *= beta3
        delta, d_denom = 0.0, 0.0
        g = [np.array(gi, np.float64) for gi in g]
        for i, p in enumerate(self.p):
            p = p.astype(np.float64)
            if self.wd != 0 and not self.decouple and self.decay[i]:
                g[i] = g[i] + self.wd * p
            delta += (d / self.d0) * dlr * np.dot(g[i].ravel(), (self.p0[i].astype(np.float64) - p).ravel())
            if beta1 > 0:
                self.m[i] = self.m[i] * beta1 + d * (1 - beta1) * g[i]
            self.v[i] = self.v[i] * beta2 + d * d * (1 - beta2) * g[i] * g[i]
            self.s[i] = self.s[i] * beta3 + (d / self.d0) * (d if self.safeguard else dlr) * g[i]
            d_denom += np.abs(self.s[i]).sum()
        self.numerator += delta
        d_hat = self.d_coef * self.numerator / d_denom
        if d == self.d0:
            d = max(d, d_hat)
        self.d_max = max(self.d_max, d_hat)
        self.d = d = min(self.d_max, d * self.growth)
        for i, p in enumerate(self.p):
            p = p.astype(np.float64)
            denom = np.sqrt(self.v[i]) + d * self.eps
            if self.wd != 0 and self.decouple and self.decay[i]:
                p = p - self.wd * dlr * p
            self.p[i] = (p - dlr * (self.m[i] if beta1 > 0 else g[i] * d) / denom).astype(np.float32)
        self.k += 1


CASES = {
    "defaults": (dict(), dict()),
    "decoupled_decay_bias_correction": (
        dict(learning_rate=0.5, weight_decay=0.1, use_bias_correction=True, d0=1e-3),
        dict(lr=0.5, weight_decay=0.1, use_bias_correction=True, d0=1e-3, decay=(True, False))),
    "l2_no_first_moment_growth": (
        dict(beta_1=0.0, beta_2=0.99, beta_3=0.9, weight_decay=0.05, decouple=False, decay_all=True,
             growth_rate=1.5, d_coef=2.0, epsilon=1e-6),
        dict(betas=(0.0, 0.99), beta3=0.9, weight_decay=0.05, decouple=False, growth_rate=1.5, d_coef=2.0,
             eps=1e-6)),
    "safeguard_warmup": (dict(safeguard_warmup=True, d0=1e-4), dict(safeguard_warmup=True, d0=1e-4)),
}


@pytest.mark.backends
@pytest.mark.parametrize("name", CASES)
def test_steps_match_the_reference_update(name):
    kwargs, ref_kwargs = CASES[name]
    model = linear_model(ProdigyAdam(**kwargs))
    ref = Reference(weights(model), **ref_kwargs)
    x, t = data(8)
    for i in range(8):
        xb, tb = x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]
        ref.step(grads([q.astype(np.float64) for q in ref.p], xb, tb))
        model.train_on_batch(xb, tb)
        for got, want in zip(weights(model), ref.p):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=f"step {i}")
        assert model.optimizer.d == pytest.approx(ref.d, rel=1e-4), f"d, step {i}"
    assert ref.d > 1.1 * ref.d0  # the estimate grew: later steps are not d0-sized


@pytest.mark.backends
def test_first_step_by_hand():
    """Defaults, first step: d = d0 and dlr = d0; m = d0 (1 - b1) g, v = d0^2 (1 - b2) g^2,
    s = d0 g, p0 = p so the numerator is 0: d_hat = 0 and d stays d0. The step is
    d0 * m / (sqrt(v) + d0 eps) = d0 * 0.1 g / (d0 sqrt(0.001) |g| + d0 eps)."""
    model = linear_model(ProdigyAdam())
    before = weights(model)
    x, t = data(1)
    g = grads(before, x, t)
    model.train_on_batch(x, t)
    for got, p, gi in zip(weights(model), before, g):
        want = p - 1e-6 * 0.1 * gi / (math.sqrt(0.001) * np.abs(gi) + 1e-8)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    assert model.optimizer.d == pytest.approx(1e-6)


def test_config_round_trip_and_export(tmp_path):
    opt = ProdigyAdam(0.5, beta_1=0.95, beta_3=0.9, weight_decay=0.01, growth_rate=1.02, d_coef=0.5,
                      use_bias_correction=True, decay_all=True)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(opt)))
    clone = keras.saving.deserialize_keras_object(serialized)
    assert type(clone) is ProdigyAdam
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(opt.get_config(), sort_keys=True)
    assert ProdigyAdam(growth_rate=math.inf).growth_rate is None  # the reference's "unrestricted"
    assert SCHEDULABLE["ProdigyAdam"] is ProdigyAdam and momentum_name(opt) == "beta_1"
    # a study leaves its beta_1 alone (one-cycle would cycle it), as a Schedule-Free one's
    assert not momentum_can_follow_a_schedule(opt)
    assert not momentum_can_follow_a_schedule(lrsearch.optimizers.ScheduleFreeAdamW())
    assert momentum_can_follow_a_schedule(keras.optimizers.Adam()) and momentum_can_follow_a_schedule(
        lrsearch.optimizers.SGD(momentum=0.9))
    assert not momentum_can_follow_a_schedule(keras.optimizers.Lion())
    # exported as a schedule.json and built back with the same settings
    sched = lrsearch.schedules.WarmupCosine(1.0, 100, warmup_steps=10)
    spec = lrsearch.ScheduleSpec(sched, optimizer=opt, steps_per_epoch=10, epochs=10)
    spec.save(tmp_path / "schedule.json")
    built = lrsearch.load_schedule(tmp_path / "schedule.json").build_optimizer()
    assert type(built) is ProdigyAdam
    assert (built.beta_1, built.beta_3, built.growth_rate, built.d_coef, built.use_bias_correction) == (
        0.95, 0.9, 1.02, 0.5, True)
    assert float(built.learning_rate) == pytest.approx(float(sched(0)))


def test_a_saved_model_loads_back_with_its_estimate(tmp_path):
    model = linear_model(ProdigyAdam())
    x, t = data(8)
    model.fit(x, t, batch_size=N, verbose=0, shuffle=False)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is ProdigyAdam
    assert loaded.optimizer.d == pytest.approx(model.optimizer.d, rel=1e-6) and model.optimizer.d > 1e-5


BAD = [
    (lambda: ProdigyAdam(beta_1=1.0), "Argument `beta_1` must be in [0, 1). Received: beta_1=1.0"),
    (lambda: ProdigyAdam(beta_1=lrsearch.schedules.OneCycle(1.0, 10).momentum_schedule()),
     "Argument `beta_1` must be a float (Prodigy needs it constant)"),
    (lambda: ProdigyAdam(d0=0), "Argument `d0` must be in (0, inf). Received: d0=0"),
    (lambda: ProdigyAdam(growth_rate=1.0), "Argument `growth_rate` must be in (1, inf). Received: growth_rate=1.0"),
    (lambda: ProdigyAdam(weight_decay=-1), "Argument `weight_decay` must be >= 0. Received: weight_decay=-1"),
]


@pytest.mark.parametrize("make, message", BAD)
def test_bad_arguments_are_refused_with_the_name_and_value(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value).startswith(message)


@pytest.mark.references
def test_matches_the_prodigyopt_package():
    torch = reference("torch")
    prodigyopt = reference("prodigyopt")
    model = linear_model(ProdigyAdam(weight_decay=0.1, use_bias_correction=True, decay_all=True))
    params = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float32)) for w in weights(model)]
    ref = prodigyopt.Prodigy(params, weight_decay=0.1, use_bias_correction=True)
    x, t = data(8)
    for i in range(8):
        xb, tb = x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]
        ref.zero_grad()
        w, b = params
        out = torch.tensor(xb) @ w + b
        torch.mean((out - torch.tensor(tb)) ** 2).backward()
        ref.step()
        model.train_on_batch(xb, tb)
        for got, want in zip(weights(model), params):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=f"step {i}")
    assert model.optimizer.d == pytest.approx(ref.param_groups[0]["d"], rel=1e-4)
