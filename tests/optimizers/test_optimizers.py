"""Optimizers: Keras' own numbers with constants, hand-computed trajectories with schedules,
gradient accumulation, loss scaling, rebuild, saving."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from lrsearch import optimizers as lo
from lrsearch.core.errors import ConfigError
from lrsearch.schedules import CyclicLR, OneCycle, RampSustainDecay

RNG = np.random.RandomState(0)
X = RNG.randn(20, 4).astype("float32")
Y = RNG.randn(20, 3).astype("float32")

# Per-step values, written out by hand from the definitions (5 updates of batch 4):
LR = CyclicLR(0.01, 0.05, step_size_up=2)  # 0.01 -> 0.05 in 2 steps and back
LR_VALUES = [0.01, 0.03, 0.05, 0.03, 0.01]
MOMENTUM = LR.momentum_schedule()  # 0.9 -> 0.8 in 2 steps and back
MOMENTUM_VALUES = [0.9, 0.85, 0.8, 0.85, 0.9]
WD = RampSustainDecay(0.1, 0.3, 0.0, rampup_epochs=2, exp_decay=0.5)  # ramp 0.1, 0.2, then 0.3 * 0.5**k
WD_VALUES = [0.1, 0.2, 0.3, 0.15, 0.075]


def dense(units_in=4, units_out=3, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((units_in,)), keras.layers.Dense(units_out)])
    bias = np.random.RandomState(seed + 1).randn(units_out).astype("float32") * 0.1
    model.layers[0].bias.assign(bias)  # not zero, so that decaying it would show
    return model


def fit(model, optimizer, batch_size=4, **compile_kwargs):
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    model.fit(X, Y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return [np.asarray(w, dtype=np.float64) for w in model.get_weights()]


def mse_grads(w, b, xb, yb):
    err = xb @ w + b - yb
    scale = 2.0 / err.size
    return scale * xb.T @ err, scale * err.sum(axis=0)


# --------------------------------------------------------------------------- constants
CONSTANT_PAIRS = {
    "sgd": (lambda: keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=0.01),
            lambda: lo.SGD(0.05, momentum=0.9, weight_decay=0.01, decay_all=True)),
    "sgd_nesterov": (lambda: keras.optimizers.SGD(0.05, momentum=0.8, nesterov=True, clipnorm=0.5),
                     lambda: lo.SGD(0.05, momentum=0.8, nesterov=True, clipnorm=0.5)),
    "adam": (lambda: keras.optimizers.Adam(0.01, beta_1=0.85, amsgrad=True),
             lambda: lo.Adam(0.01, beta_1=0.85, amsgrad=True)),
    "adamw": (lambda: keras.optimizers.AdamW(0.01, weight_decay=0.05),
              lambda: lo.AdamW(0.01, weight_decay=0.05, decay_all=True)),
    "rmsprop": (lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                lambda: lo.RMSprop(0.01, momentum=0.5, centered=True)),
}


@pytest.mark.backends
@pytest.mark.parametrize("name", CONSTANT_PAIRS)
def test_constants_train_exactly_like_keras(name):
    make_keras, make_ours = CONSTANT_PAIRS[name]
    expected = fit(dense(), make_keras())
    got = fit(dense(), make_ours())
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@pytest.mark.backends
def test_default_weight_decay_skips_biases_and_normalization():
    def model():
        keras.utils.set_random_seed(3)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), keras.layers.LayerNormalization(),
                                 keras.layers.Dense(3)])

    reference = keras.optimizers.AdamW(0.01, weight_decay=0.5)
    reference.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    expected = fit(model(), reference)
    got = fit(model(), lo.AdamW(0.01, weight_decay=0.5))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    everything = fit(model(), lo.AdamW(0.01, weight_decay=0.5, decay_all=True))
    assert not np.array_equal(everything[1], got[1])  # the bias did decay this time


# --------------------------------------------------------------------------- trajectories
def sgd_trajectory(w, b, batch_size=4):
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    for n in range(len(X) // batch_size):
        xb, yb = X[n * batch_size:(n + 1) * batch_size], Y[n * batch_size:(n + 1) * batch_size]
        gw, gb = mse_grads(w, b, xb.astype(np.float64), yb.astype(np.float64))
        lr, mom, wd = LR_VALUES[n], MOMENTUM_VALUES[n], WD_VALUES[n]
        w = w - w * wd * lr  # decoupled decay of the kernel only, before the update
        vw = mom * vw - lr * gw
        vb = mom * vb - lr * gb
        w, b = w + vw, b + vb
    return w, b


def initial(model):
    return [np.asarray(v, dtype=np.float64) for v in model.get_weights()]


@pytest.mark.backends
def test_sgd_trajectory_with_momentum_and_weight_decay_schedules():
    model = dense()
    w0, b0 = initial(model)
    w, b = fit(model, lo.SGD(LR, momentum=MOMENTUM, weight_decay=WD))
    ew, eb = sgd_trajectory(w0, b0)
    np.testing.assert_allclose(w, ew, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, eb, rtol=1e-5, atol=1e-7)


@pytest.mark.backends
def test_a_callback_setting_momentum_does_nothing_in_keras_3():
    """The trap these optimizers exist for: Keras' SGD ignores momentum set between batches."""
    if keras.backend.backend() == "torch":
        pytest.skip("PyTorch's fit runs the step eagerly: there a callback's momentum does act")

    class SetMomentum(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.momentum = MOMENTUM_VALUES[batch]

    model = dense()
    model.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9), loss="mse")
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[SetMomentum()])
    with_callback = model.get_weights()
    frozen = fit(dense(), keras.optimizers.SGD(LR, momentum=0.9))
    for a, b in zip(with_callback, frozen):
        np.testing.assert_array_equal(a, b)  # the callback changed nothing
    scheduled = fit(dense(), lo.SGD(LR, momentum=MOMENTUM))
    assert np.abs(scheduled[0] - frozen[0]).max() > 1e-4


@pytest.mark.backends
def test_adam_trajectory_with_beta_1_and_weight_decay_schedules():
    model = dense()
    w, b = initial(model)
    got_w, got_b = fit(model, lo.Adam(LR, beta_1=MOMENTUM, weight_decay=WD, epsilon=1e-7))
    state = {k: [np.zeros_like(w), np.zeros_like(b)] for k in ("m", "v")}
    beta_2, eps = 0.999, 1e-7
    for n in range(5):
        gw, gb = mse_grads(w, b, X[4 * n:4 * n + 4].astype(np.float64), Y[4 * n:4 * n + 4].astype(np.float64))
        lr, beta_1, wd, t = LR_VALUES[n], MOMENTUM_VALUES[n], WD_VALUES[n], n + 1
        w = w - w * wd * lr
        params = [w, b]
        for i, g in enumerate((gw, gb)):
            state["m"][i] = state["m"][i] + (g - state["m"][i]) * (1 - beta_1)
            state["v"][i] = state["v"][i] + (g * g - state["v"][i]) * (1 - beta_2)
            alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            params[i] = params[i] - state["m"][i] * alpha / (np.sqrt(state["v"][i]) + eps)
        w, b = params
    np.testing.assert_allclose(got_w, w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_b, b, rtol=1e-4, atol=1e-6)


@pytest.mark.backends
def test_gradient_accumulation_feeds_schedules_the_update_count():
    # Two micro-batches of 2 average to the gradient of the batch of 4 they make up, so
    # with schedules on the real update count the run equals the batch-4 trajectory.
    model = dense()
    w0, b0 = initial(model)
    optimizer = lo.SGD(LR, momentum=MOMENTUM, weight_decay=WD, gradient_accumulation_steps=2)
    w, b = fit(model, optimizer, batch_size=2)
    assert int(optimizer.iterations) == 5
    ew, eb = sgd_trajectory(w0, b0)
    np.testing.assert_allclose(w, ew, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, eb, rtol=1e-5, atol=1e-7)


@pytest.mark.backends
def test_schedules_act_inside_a_loss_scale_optimizer():
    model = dense()
    w0, b0 = initial(model)
    wrapped = keras.optimizers.LossScaleOptimizer(lo.SGD(LR, momentum=MOMENTUM, weight_decay=WD))
    w, b = fit(model, wrapped)
    ew, eb = sgd_trajectory(w0, b0)
    np.testing.assert_allclose(w, ew, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, eb, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- rebuild
@pytest.mark.backends
def test_rebuild_keeps_the_config_and_replaces_what_is_given():
    original = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=1.0)
    model = dense()
    fit(model, original)  # compiled and built
    sched = OneCycle(0.2, 50)
    fresh = lo.rebuild(model.optimizer, learning_rate=sched, momentum=sched.momentum_schedule(),
                       weight_decay=1e-4)
    assert type(fresh) is lo.SGD and not fresh.built and int(fresh.iterations) == 0
    config = fresh.get_config()
    assert config["nesterov"] is True and config["clipnorm"] == 1.0 and config["weight_decay"] == 1e-4
    assert config["learning_rate"]["registered_name"] == "lrsearch>OneCycle"
    assert config["momentum"]["registered_name"] == "lrsearch>OneCycleMomentum"
    same = lo.rebuild(original)
    assert same.get_config()["momentum"] == 0.9
    np.testing.assert_allclose(float(same.learning_rate), 0.1, rtol=1e-6)


@pytest.mark.backends
@pytest.mark.parametrize(
    "original,cls,name",
    [
        (keras.optimizers.Adam(0.01, beta_2=0.99), lo.Adam, "beta_1"),
        (keras.optimizers.AdamW(0.01), lo.AdamW, "beta_1"),
        (keras.optimizers.RMSprop(0.01), lo.RMSprop, "momentum"),
        (keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW(0.01, weight_decay=0.1)), lo.AdamW, "beta_1"),
        (lo.SGD(0.01, momentum=0.5, decay_all=True), lo.SGD, "momentum"),
    ],
    ids=["adam", "adamw", "rmsprop", "loss_scale", "lrsearch"],
)
def test_rebuild_matches_the_class_and_maps_momentum(original, cls, name):
    assert lo.momentum_name(original) == name
    fresh = lo.rebuild(original, momentum=0.8)
    assert type(fresh) is cls
    config = fresh.get_config()
    assert config[name] == 0.8
    inner = getattr(original, "inner_optimizer", original)
    for key, value in inner.get_config().items():
        if key not in {"name", name, "learning_rate", "decay_all"}:
            assert config[key] == value, key
    if isinstance(original, lo.SGD):
        assert fresh.decay_all is True


@pytest.mark.backends
def test_rebuild_keeps_weight_decay_exclusions():
    original = keras.optimizers.AdamW(0.01, weight_decay=0.1)
    original.exclude_from_weight_decay(var_names=["kernel"])
    fresh = lo.rebuild(original, weight_decay=0.2)
    model = dense()
    assert not fresh._use_weight_decay(model.layers[0].kernel)


@pytest.mark.backends
def test_rebuild_keeps_a_class_it_has_none_of_its_own_for_and_its_momentum():
    fresh = lo.rebuild(keras.optimizers.Nadam(beta_1=0.8), learning_rate=0.02)
    # the class Keras makes for Nadam on this backend (PyTorch's fused subclass there)
    assert type(fresh) is type(keras.optimizers.Nadam()) and fresh.beta_1 == 0.8
    with pytest.raises(ConfigError, match="Nadam's beta_1 stays the model's constant.*SGD, Adam, AdamW and RMSprop"):
        lo.rebuild(keras.optimizers.Nadam(), momentum=0.9)
    with pytest.raises(ConfigError, match="Lion"):
        lo.momentum_name(keras.optimizers.Lion())


BAD = [
    (lambda: lo.SGD(momentum=1.5), "Argument `momentum` must be in [0, 1]. Received: momentum=1.5"),
    (lambda: lo.SGD(weight_decay=-0.1), "Argument `weight_decay` must be >= 0. Received: weight_decay=-0.1"),
    (lambda: lo.Adam(beta_1="high"), "Argument `beta_1` must be a float or a LearningRateSchedule"),
    (lambda: lo.AdamW(weight_decay=None), "Argument `weight_decay` must be a float"),
]


@pytest.mark.backends
def test_bad_values_are_refused():
    for make, message in BAD:
        with pytest.raises(ConfigError) as info:
            make()
        assert message in str(info.value)


# --------------------------------------------------------------------------- saving
@pytest.mark.backends
def test_optimizer_config_round_trip():
    for cls, name in [(lo.SGD, "momentum"), (lo.Adam, "beta_1"), (lo.AdamW, "beta_1"), (lo.RMSprop, "momentum")]:
        sched = OneCycle(0.1, 100, three_phase=True)
        optimizer = cls(sched, **{name: sched.momentum_schedule()}, weight_decay=WD, decay_all=True)
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(optimizer)))
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone) is cls
        assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(optimizer.get_config(), sort_keys=True)


@pytest.mark.backends
@pytest.mark.slow
def test_saved_model_loads_back_after_a_plain_import(tmp_path):
    model = dense()
    optimizer = lo.SGD(LR, momentum=MOMENTUM, weight_decay=WD)
    fit(model, optimizer)
    path = tmp_path / "model.keras"
    model.save(path)
    expected = json.dumps(optimizer.get_config(), sort_keys=True)
    script = textwrap.dedent(
        f"""
        import json, os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import lrsearch, keras
        model = keras.saving.load_model({str(path)!r})
        opt = model.optimizer
        print(json.dumps({{"cls": type(opt).__module__ + "." + type(opt).__name__,
                          "config": json.dumps(opt.get_config(), sort_keys=True),
                          "iterations": int(opt.iterations),
                          "momentum": float(opt._value(opt.momentum, "float32"))}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["cls"] == "lrsearch.optimizers.SGD"
    assert loaded["iterations"] == 5
    assert loaded["config"] == expected
    np.testing.assert_allclose(loaded["momentum"], 0.85, rtol=1e-6)  # CyclicMomentum at step 5


def test_mixed_precision_rebuild_and_schedules_act(tmp_path):
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = dense()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        fresh = lo.rebuild(model.optimizer, learning_rate=LR, momentum=MOMENTUM)
        assert type(fresh) is lo.SGD
        model.compile(optimizer=fresh, loss="mse")  # compile wraps it again
        assert model.optimizer.inner_optimizer is fresh
        model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        assert int(fresh.iterations) == 5
        np.testing.assert_allclose(float(fresh.learning_rate), 0.03, rtol=1e-6)  # CyclicLR at step 5
        np.testing.assert_allclose(float(fresh._value(fresh.momentum, "float32")), 0.85, rtol=1e-6)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
