"""Schedule-Free AdamW and SGD: step for step against the reference's update, the
train/eval switch around `fit`, BatchNorm statistics, serialization, bad arguments."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from tests.support import reference
from tests.support.linear_problem import D, N, O, data, grads, linear_model

import lrsearch
from lrsearch.core.errors import ConfigError
from lrsearch.rangetest.finder import lr_sweep
from lrsearch.optimizers import (
    ScheduleFreeAdamW,
    ScheduleFreeEval,
    ScheduleFreeSGD,
    as_schedule_free,
    momentum_name,
    rebuild,
    recompute_batchnorm,
)


# --------------------------------------------------------------------------- reference
class Reference:
    """A NumPy transcription of `schedulefree`'s `AdamWScheduleFree.step` and
    `SGDScheduleFree.step` (version 1.3 on; float64): `p` holds y, `z` the base
    iterates; `eval()` / `train()` move `p` to x and back."""

    def __init__(self, params, *, adam, lr, beta, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, decay=(True, True)):
        self.p = [np.array(q, np.float64) for q in params]
        self.adam, self.lr, self.beta, self.beta2, self.eps = adam, lr, beta, beta2, eps
        self.wd, self.warmup, self.r, self.power, self.decay = weight_decay, warmup_steps, r, weight_lr_power, decay
        self.k, self.lr_max, self.weight_sum = 0, -1.0, 0.0
        self.z = None
        self.v = [np.zeros_like(q) for q in self.p]
        self.train_mode = True

    def step(self, g):
        assert self.train_mode
        k = self.k
        sched = (k + 1) / self.warmup if k < self.warmup else 1.0
        lr = self.lr * sched
        bias_correction2 = 1 - self.beta2 ** (k + 1)
        self.lr_max = max(lr, self.lr_max)
        weight = ((k + 1) ** self.r) * (self.lr_max ** self.power)
        self.weight_sum += weight
        ckp1 = weight / self.weight_sum if self.weight_sum else 0.0
        if self.z is None:
            self.z = [q.copy() for q in self.p]
        for i, (y, z, gi) in enumerate(zip(self.p, self.z, g)):
            gi = np.array(gi, np.float64)
            if self.adam:
                self.v[i] = self.v[i] * self.beta2 + (1 - self.beta2) * gi * gi
                gi = gi / (np.sqrt(self.v[i] / bias_correction2) + self.eps)
            if self.wd != 0 and self.decay[i]:
                gi = gi + self.wd * y
            y = y + ckp1 * (z - y)                                   # lerp_(z, ckp1)
            self.p[i] = y + gi * (lr * (self.beta * (1 - ckp1) - 1))
            self.z[i] = z - lr * gi
        self.k += 1

    def eval(self):
        if self.train_mode and self.z is not None:
            self.p = [y + (1 - 1 / self.beta) * (z - y) for y, z in zip(self.p, self.z)]
        self.train_mode = False

    def train(self):
        if not self.train_mode and self.z is not None:
            self.p = [x + (1 - self.beta) * (z - x) for x, z in zip(self.p, self.z)]
        self.train_mode = True


def weights(model):
    return [np.asarray(v, np.float64) for v in model.get_weights()]


CASES = {
    "adamw": (dict(learning_rate=0.05, beta_1=0.9, weight_decay=0.1, warmup_steps=3),
              dict(adam=True, lr=0.05, beta=0.9, weight_decay=0.1, warmup_steps=3, decay=(True, False))),
    "adamw_all": (dict(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.05,
                       r=1.0, weight_lr_power=1.0, decay_all=True),
                  dict(adam=True, lr=0.02, beta=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05, r=1.0,
                       weight_lr_power=1.0, decay=(True, True))),
    "sgd": (dict(learning_rate=0.1, momentum=0.9, warmup_steps=2),
            dict(adam=False, lr=0.1, beta=0.9, warmup_steps=2)),
    "sgd_decay": (dict(learning_rate=0.05, momentum=0.7, weight_decay=0.2, r=0.5, weight_lr_power=0.0,
                       decay_all=True),
                  dict(adam=False, lr=0.05, beta=0.7, weight_decay=0.2, r=0.5, weight_lr_power=0.0)),
}


def make(name):
    kwargs, ref_kwargs = CASES[name]
    cls = ScheduleFreeAdamW if ref_kwargs["adam"] else ScheduleFreeSGD
    model = linear_model(cls(**kwargs))
    return model, Reference(weights(model), **ref_kwargs)


@pytest.mark.backends
@pytest.mark.parametrize("name", CASES)
def test_steps_match_the_reference_update(name):
    model, ref = make(name)
    x, t = data(6)
    for i in range(6):
        xb, tb = x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]
        ref.step(grads(ref.p, xb, tb))
        model.train_on_batch(xb, tb)
        for got, want in zip(weights(model), ref.p):       # y, after every step
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=f"step {i}")
        for got, want in zip(model.optimizer._z, ref.z):   # z
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=1e-6, err_msg=f"z, step {i}")
    # the first step of Schedule-Free moves y to z - lr * g: y and z agree after it
    assert model.optimizer.iterations.numpy() == 6


@pytest.mark.backends
@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_after_fit_evaluate_predict_and_save_see_x(name, tmp_path):
    model, ref = make(name)
    x, t = data(6)
    for i in range(6):
        ref.step(grads(ref.p, x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]))
    model.fit(x, t, batch_size=N, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.averaged
    ref.eval()
    for got, want in zip(weights(model), ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    w, b = ref.p
    expected = float(np.mean((x @ w + b - t) ** 2))
    assert model.evaluate(x, t, batch_size=N, verbose=0) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ w + b, rtol=1e-5, atol=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for got, want in zip(weights(loaded), ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    assert type(loaded.optimizer) is type(model.optimizer) and loaded.optimizer.averaged
    # a second finalize does not move them again
    model.optimizer.finalize_variable_values(model.trainable_variables)
    for got, want in zip(weights(model), ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.backends
def test_a_resumed_fit_switches_back_to_y_inside_the_step():
    """Documented behaviour: the first update of a resumed `fit` moves the weights from x
    back to y inside the compiled step, with the gradient Keras took at x; the callback
    makes it exact (gradient at y)."""
    x, t = data(5)
    first, second = slice(0, 3 * N), slice(3 * N, 5 * N)
    for callbacks in ([], [ScheduleFreeEval()]):
        model, ref = make("adamw")
        model.fit(x[first], t[first], batch_size=N, shuffle=False, verbose=0, callbacks=callbacks)
        model.fit(x[second], t[second], batch_size=N, shuffle=False, verbose=0, callbacks=callbacks)
        for i in range(3):
            ref.step(grads(ref.p, x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]))
        ref.eval()
        for i in (3, 4):
            xb, tb = x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]
            g = grads(ref.p, xb, tb)  # at x the first time (no callback), at y otherwise
            if callbacks or i == 4:
                ref.train()
                g = grads(ref.p, xb, tb)
            ref.train()
            ref.step(g)
        ref.eval()
        for got, want in zip(weights(model), ref.p):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=f"callbacks={callbacks}")


@pytest.mark.backends
def test_the_callback_validates_at_x_and_trains_at_y():
    x, t = data(4)
    model, ref = make("sgd")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["val_loss"])

    model.fit(x, t, batch_size=N, epochs=2, shuffle=False, verbose=0, validation_data=(x, t),
              callbacks=[ScheduleFreeEval(), Record()])
    for epoch in range(2):
        for i in range(4):
            ref.step(grads(ref.p, x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]))
        ref.eval()
        w, b = ref.p
        assert seen[epoch] == pytest.approx(float(np.mean((x @ w + b - t) ** 2)), rel=1e-5)
        ref.train()


def test_epoch_end_callbacks_see_x_and_early_stopping_restores_the_best_x():
    """EarlyStopping(restore_best_weights=True) keeps the weights it finds at epoch end:
    with the callback those are x (the weights validation scored), so the restored model
    evaluates to the best epoch's val_loss exactly."""
    x, t = data(4)
    model, ref = make("adamw")
    # validation targets part-way between the initial model and the training targets:
    # val_loss falls while the weights approach them, then rises (best: epoch 4 of 12)
    xv = x
    tv = (0.7 * model.predict(x, verbose=0) + 0.3 * t).astype("float32")
    at_end = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            at_end.append(([w.copy() for w in self.model.get_weights()], logs["val_loss"]))

    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model.fit(x, t, batch_size=N, epochs=12, shuffle=False, verbose=0, validation_data=(xv, tv),
              callbacks=[ScheduleFreeEval(), Record(), stop])
    for weights_at_end, val_loss in at_end:  # each epoch ends at the x validation scored
        w, b = weights_at_end
        assert val_loss == pytest.approx(float(np.mean((xv @ w + b - tv) ** 2)), rel=1e-5)
    losses = [v for _, v in at_end]
    best = int(np.argmin(losses))
    assert (best, len(losses)) == (3, 7)  # stopped 3 epochs after the best, not at it
    for got, want in zip(model.get_weights(), at_end[best][0]):
        np.testing.assert_array_equal(got, want)
    assert model.evaluate(xv, tv, batch_size=N, verbose=0) == pytest.approx(losses[best], rel=1e-5)
    # and the weights at the end of the first epoch are the reference's x after 4 steps
    for i in range(4):
        ref.step(grads(ref.p, x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]))
    ref.eval()
    for got, want in zip(at_end[0][0], ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.backends
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_a_variable_without_gradient_stays_put():
    class WithSpare(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(D, O), initializer="ones")
            self.spare = self.add_weight(shape=(O,), initializer="ones")  # never in the loss

        def call(self, x):
            return x @ self.w

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((D,)), WithSpare()])
    model.compile(ScheduleFreeAdamW(0.05), "mse")
    x, t = data(3)
    model.fit(x, t, batch_size=N, shuffle=False, verbose=0)
    assert model.optimizer.averaged
    np.testing.assert_array_equal(np.asarray(model.layers[0].spare), np.ones(O))
    model.optimizer.train()
    np.testing.assert_array_equal(np.asarray(model.layers[0].spare), np.ones(O))
    assert not np.allclose(np.asarray(model.layers[0].w), 1.0)


@pytest.mark.backends
def test_eval_and_train_by_hand():
    model, ref = make("sgd_decay")
    x, t = data(2)
    assert model.optimizer.eval() is False  # not built yet: nothing to move
    model.fit(x, t, batch_size=N, shuffle=False, verbose=0)
    assert model.optimizer.train() is True and not model.optimizer.averaged
    for i in range(2):
        ref.step(grads(ref.p, x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]))
    for got, want in zip(weights(model), ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    assert model.optimizer.train() is False
    assert model.optimizer.eval() is True and model.optimizer.averaged


@pytest.mark.backends
def test_recompute_batchnorm_gives_the_mean_of_the_batch_statistics():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    model.compile(ScheduleFreeSGD(0.1), "mse")
    x = np.random.default_rng(2).normal(size=(30, 3)).astype("float32") * 3 + 1
    batches = [(x[i:i + 10], x[i:i + 10, :1]) for i in (0, 10, 20)]
    assert recompute_batchnorm(model, batches, batches=2) == 2
    h = [keras.ops.convert_to_numpy(model.layers[0](b[0])) for b in batches[:2]]
    bn = model.layers[1]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean([a.mean(0) for a in h], 0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean([a.var(0) for a in h], 0), rtol=1e-4)
    assert bn.momentum == 0.99
    assert recompute_batchnorm(linear_model(ScheduleFreeSGD()), batches) == 0
    with pytest.raises(ConfigError, match="Argument `batches` must be a whole number > 0"):
        recompute_batchnorm(model, batches, batches=0)


@pytest.mark.backends
def test_runs_with_a_schedule_and_gradient_accumulation():
    sched = lrsearch.schedules.WarmupStableDecay(0.05, 6, decay_steps=2, decay_shape="linear")
    x, t = data(6)
    model = linear_model(ScheduleFreeSGD(sched, momentum=0.9, gradient_accumulation_steps=2))
    ref = Reference(weights(model), adam=False, lr=1.0, beta=0.9)
    model.fit(x, t, batch_size=N, shuffle=False, verbose=0)
    for k in range(3):  # three updates of two batches each, at rates sched(0..2)
        ref.lr = float(sched(k))
        g = [(a + b) / 2 for a, b in zip(grads(ref.p, x[2 * k * N:(2 * k + 1) * N], t[2 * k * N:(2 * k + 1) * N]),
                                          grads(ref.p, x[(2 * k + 1) * N:(2 * k + 2) * N],
                                                t[(2 * k + 1) * N:(2 * k + 2) * N]))]
        ref.step(g)
    ref.eval()
    for got, want in zip(weights(model), ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_the_range_test_reads_the_ramp_with_the_warmup_paused():
    x, t = data(6)
    model = linear_model(ScheduleFreeSGD(1.0, momentum=0.9, warmup_steps=100))
    lrs = lr_sweep(1e-3, 0.3, 6)
    weights_before = weights(model)
    result = lrsearch.range_test(model, (x, t), min_lr=1e-3, max_lr=0.3, steps=6, batch_size=N, verbose=0)
    # each batch's loss at y before its update, the update at the ramp's rate: no warmup factor

    def losses(warmup_steps):
        ref = Reference(weights_before, adam=False, lr=None, beta=0.9, warmup_steps=warmup_steps)
        out = []
        for i, lr in enumerate(lrs):
            xb, tb = x[i * N:(i + 1) * N], t[i * N:(i + 1) * N]
            out.append(np.mean((xb @ ref.p[0] + ref.p[1] - tb) ** 2))
            ref.lr = lr
            ref.step(grads(ref.p, xb, tb))
        return np.array(out)

    np.testing.assert_allclose(result.frame["loss"], losses(0), rtol=1e-5)
    assert np.max(np.abs(losses(100) / losses(0) - 1)) > 0.1  # with the warmup the curve is another
    # afterwards training warms up again: the first update at 1.0 * 1 / 100
    assert model.optimizer.warmup_steps == 100
    ref = Reference(weights(model), adam=False, lr=1.0, beta=0.9, warmup_steps=100)
    ref.step(grads(ref.p, x[:N], t[:N]))
    model.train_on_batch(x[:N], t[:N])
    for got, want in zip(weights(model), ref.p):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.backends
def test_config_round_trip_and_rebuild():
    for opt in (ScheduleFreeAdamW(1e-3, beta_1=0.95, warmup_steps=10, weight_decay=0.01, r=0.5, decay_all=True),
                ScheduleFreeSGD(lrsearch.schedules.WarmupStableDecay(0.5, 100), momentum=0.8,
                                weight_decay=lrsearch.schedules.WarmupCosine(1e-3, 100))):
        config = opt.get_config()
        clone = type(opt).from_config(json.loads(json.dumps(keras.saving.serialize_keras_object(opt)))["config"])
        assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
        restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(opt))))
        assert type(restored) is type(opt)
    fresh = rebuild(ScheduleFreeAdamW(1e-3, warmup_steps=7), learning_rate=0.01, weight_decay=0.1)
    assert isinstance(fresh, ScheduleFreeAdamW)
    assert (float(fresh.learning_rate), fresh.weight_decay, fresh.warmup_steps) == (pytest.approx(0.01), 0.1, 7)
    assert momentum_name(ScheduleFreeAdamW()) == "beta_1" and momentum_name(ScheduleFreeSGD()) == "momentum"
    assert rebuild(ScheduleFreeSGD(), momentum=0.95).momentum == 0.95


@pytest.mark.backends
def test_as_schedule_free_keeps_what_carries_over():
    adam = as_schedule_free(keras.optimizers.Adam(1e-3, beta_2=0.98, epsilon=1e-6, clipnorm=1.0),
                            learning_rate=5e-3, momentum=0.95, weight_decay=0.01, warmup_steps=20)
    assert isinstance(adam, ScheduleFreeAdamW)
    assert (adam.beta_1, adam.beta_2, adam.epsilon, adam.clipnorm, adam.weight_decay, adam.warmup_steps) == (
        0.95, 0.98, 1e-6, 1.0, 0.01, 20)
    assert float(adam.learning_rate) == pytest.approx(5e-3)
    # RMSprop's rates are on Adam's scale: Schedule-Free AdamW, with its own beta_2 and epsilon
    rms = as_schedule_free(lrsearch.optimizers.RMSprop(1e-3, rho=0.8, epsilon=1e-5), learning_rate=2e-3)
    assert isinstance(rms, ScheduleFreeAdamW) and (rms.beta_2, rms.epsilon) == (0.999, 1e-8)
    sgd = as_schedule_free(lrsearch.optimizers.SGD(0.1, momentum=0.9, gradient_accumulation_steps=2))
    assert isinstance(sgd, ScheduleFreeSGD)
    assert (float(sgd.learning_rate), sgd.momentum, sgd.gradient_accumulation_steps, sgd.warmup_steps) == (1.0, 0.9, 2, 0)
    sched = lrsearch.schedules.WarmupStableDecay(0.5, 100)
    again = as_schedule_free(ScheduleFreeSGD(sched, momentum=0.8, r=1.0, warmup_steps=5), warmup_steps=9)
    assert again._learning_rate == sched
    assert (again.momentum, again.r, again.warmup_steps) == (0.8, 1.0, 9)
    with pytest.raises(ConfigError, match="Argument `beta_1` must be in"):
        as_schedule_free(keras.optimizers.AdamW(), momentum=1.5)


BAD = [
    (lambda: ScheduleFreeAdamW(beta_1=1.0), "Argument `beta_1` must be in (0, 1). Received: beta_1=1.0"),
    (lambda: ScheduleFreeSGD(momentum=0), "Argument `momentum` must be in (0, 1). Received: momentum=0"),
    (lambda: ScheduleFreeSGD(momentum=lrsearch.schedules.OneCycle(1.0, 10).momentum_schedule()),
     "Argument `momentum` must be a float (a Schedule-Free optimizer needs it constant)"),
    (lambda: ScheduleFreeAdamW(warmup_steps=-1), "Argument `warmup_steps` must be >= 0. Received: warmup_steps=-1"),
    (lambda: ScheduleFreeAdamW(beta_2=1.0), "Argument `beta_2` must be in [0, 1). Received: beta_2=1.0"),
    (lambda: ScheduleFreeAdamW(epsilon=0), "Argument `epsilon` must be in (0, inf). Received: epsilon=0"),
    (lambda: ScheduleFreeSGD(r=-1), "Argument `r` must be in [0, inf). Received: r=-1"),
    (lambda: ScheduleFreeSGD(weight_decay=-0.1), "Argument `weight_decay` must be >= 0. Received: weight_decay=-0.1"),
    (lambda: ScheduleFreeAdamW(use_ema=True), "Argument `use_ema` must be False"),
]


@pytest.mark.backends
def test_bad_arguments_are_refused_with_the_name_and_value():
    for make_it, message in BAD:
        with pytest.raises(ConfigError) as info:
            make_it()
        assert message in str(info.value)
        assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- the package
@pytest.mark.references
def test_matches_the_schedulefree_package():
    torch = reference("torch")
    schedulefree = reference("schedulefree")
    x, t = data(5)
    for cls, ref_cls, kwargs, ref_kwargs in (
        (ScheduleFreeAdamW, schedulefree.AdamWScheduleFree,
         dict(learning_rate=0.05, warmup_steps=2, weight_decay=0.1, decay_all=True),
         dict(lr=0.05, warmup_steps=2, weight_decay=0.1)),
        (ScheduleFreeAdamW, schedulefree.AdamWScheduleFree,
         dict(learning_rate=0.02, beta_1=0.95, beta_2=0.99, epsilon=1e-6, r=1.0, weight_lr_power=1.0),
         dict(lr=0.02, betas=(0.95, 0.99), eps=1e-6, r=1.0, weight_lr_power=1.0)),
        (ScheduleFreeSGD, schedulefree.SGDScheduleFree,
         dict(learning_rate=0.1, momentum=0.9, warmup_steps=2), dict(lr=0.1, momentum=0.9, warmup_steps=2)),
        (ScheduleFreeSGD, schedulefree.SGDScheduleFree,
         dict(learning_rate=0.05, momentum=0.7, weight_decay=0.2, r=0.5, decay_all=True),
         dict(lr=0.05, momentum=0.7, weight_decay=0.2, r=0.5)),
    ):
        model = linear_model(cls(**kwargs))
        w, b = (torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True) for v in model.get_weights())
        opt = ref_cls([w, b], **ref_kwargs)
        opt.train()
        for i in range(5):
            xb, tb = (torch.tensor(a[i * N:(i + 1) * N], dtype=torch.float64) for a in (x, t))
            opt.zero_grad()
            torch.mean((xb @ w + b - tb) ** 2).backward()
            opt.step()
        opt.eval()
        model.fit(x, t, batch_size=N, shuffle=False, verbose=0)
        for got, want in zip(weights(model), (w.detach().numpy(), b.detach().numpy())):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=cls.__name__)


@pytest.mark.backends
def test_reference_transcription_first_step_by_hand():
    """The transcription itself, on one step done by hand: at k = 0 the average weight
    is 1, so y and z both become y0 - lr * g."""
    ref = Reference([np.array([1.0, -2.0])], adam=False, lr=0.5, beta=0.9, warmup_steps=2)
    ref.step([np.array([0.2, 0.4])])   # lr at step 0: 0.5 * 1/2
    np.testing.assert_allclose(ref.p[0], [0.95, -2.1])
    np.testing.assert_allclose(ref.z[0], [0.95, -2.1])
    ref.step([np.array([1.0, 0.0])])   # lr 0.5, lr_max 0.5: weights 0.0625, 0.25 -> c = 0.8
    c = 0.25 / 0.3125
    z = np.array([0.95 - 0.5, -2.1])
    y = np.array([0.95, -2.1]) + 0.5 * (0.9 * (1 - c) - 1) * np.array([1.0, 0.0])
    np.testing.assert_allclose(ref.z[0], z)
    np.testing.assert_allclose(ref.p[0], y)
    ref.eval()
    np.testing.assert_allclose(ref.p[0], y + (1 - 1 / 0.9) * (z - y))
    assert math.isclose(c, 0.8)
