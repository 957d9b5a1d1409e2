"""Schedules cost one evaluation per step: the rate, momentum (beta_1) and weight-decay
schedules are each called once per applied step, however many variables the model has,
and the values they give inside the step are those of their step."""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest

from lrsearch import optimizers as lo
from lrsearch.schedules import CyclicLR, OneCycle, WarmupCosine

RNG = np.random.RandomState(0)
X = RNG.randn(16, 4).astype("float32")
Y = RNG.randn(16, 3).astype("float32")


class Counted(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule`, counting its calls under `key` in `counts`."""

    def __init__(self, schedule, counts, key):
        self.schedule, self.counts, self.key = schedule, counts, key

    def __call__(self, step):
        self.counts[self.key] += 1
        return self.schedule(step)

    def get_config(self):
        return {}


def deep(layers=3):
    """`layers` Dense layers: 2 * layers trainable variables, kernels and biases."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), *[keras.layers.Dense(4) for _ in range(layers - 1)],
                             keras.layers.Dense(3)])


RATE = OneCycle(0.05, 40)
MAKERS = {
    "sgd": lambda c: lo.SGD(Counted(RATE, c, "rate"), momentum=Counted(RATE.momentum_schedule(), c, "momentum"),
                            weight_decay=Counted(WarmupCosine(0.01, 40), c, "weight_decay")),
    "sgd_nesterov": lambda c: lo.SGD(Counted(RATE, c, "rate"), nesterov=True,
                                     momentum=Counted(RATE.momentum_schedule(), c, "momentum"),
                                     weight_decay=Counted(WarmupCosine(0.01, 40), c, "weight_decay")),
    "adamw": lambda c: lo.AdamW(Counted(RATE, c, "rate"), beta_1=Counted(RATE.momentum_schedule(), c, "momentum"),
                                weight_decay=Counted(WarmupCosine(0.01, 40), c, "weight_decay")),
    "rmsprop": lambda c: lo.RMSprop(Counted(RATE, c, "rate"), momentum=Counted(RATE.momentum_schedule(), c, "momentum"),
                                    weight_decay=Counted(WarmupCosine(0.01, 40), c, "weight_decay")),
    "schedule_free": lambda c: lo.ScheduleFreeSGD(Counted(RATE, c, "rate"),
                                                  weight_decay=Counted(WarmupCosine(0.01, 40), c, "weight_decay")),
}


@pytest.mark.backends
@pytest.mark.parametrize("name", MAKERS)
def test_each_schedule_is_called_once_per_eager_step_whatever_the_variables(name):
    for layers in (1, 4):  # 2 and 8 variables
        counts = collections.Counter()
        optimizer = MAKERS[name](counts)
        model = deep(layers)
        variables = model.trainable_variables
        optimizer.build(variables)
        for _ in range(3):
            optimizer.apply([keras.ops.ones(v.shape) * 0.01 for v in variables], variables)
        expected = {"rate": 3, "weight_decay": 3} if name == "schedule_free" else {
            "rate": 3, "momentum": 3, "weight_decay": 3}
        assert dict(counts) == expected, (layers, dict(counts))
        # outside a step nothing is kept: the rate read now is the schedule's at step 3
        np.testing.assert_allclose(float(optimizer.learning_rate), float(RATE(3)), rtol=1e-6)


@pytest.mark.backends
def test_each_schedule_is_called_as_often_as_the_loss_in_fit():
    """Inside `fit` (a traced step on TensorFlow and JAX, eager steps on PyTorch) every
    schedule is called once per traced or run step, so at most as often as the loss
    (PyTorch's `fit` also calls the loss once to build its metrics), not once per
    variable (8 here: the old per-variable momentum was called 8 times a step, the rate
    once plus once per decayed kernel)."""
    counts = collections.Counter()

    def loss(y_true, y_pred):
        counts["loss"] += 1
        return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    model = deep(4)
    model.compile(optimizer=MAKERS["sgd"](counts), loss=loss)
    model.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # another trace, nothing stale
    assert counts["rate"] == counts["momentum"] == counts["weight_decay"], dict(counts)
    assert 1 <= counts["rate"] <= counts["loss"], dict(counts)
    if keras.backend.backend() == "torch":
        assert counts["rate"] == 10  # eager: one call per step
    assert int(model.optimizer.iterations) == 10


@pytest.mark.backends
def test_every_variable_gets_its_steps_values_inside_the_compiled_step():
    """Eight variables, five steps of plain SGD (gradient 1 everywhere is not what `fit`
    gives, so compare with the update written out from the schedules' values per step):
    each variable moves by -lr(t) * g + its velocity, with momentum(t) and decay wd(t)."""
    lr = CyclicLR(0.01, 0.05, step_size_up=2)  # 0.01, 0.03, 0.05, 0.03, 0.01
    lr_values = [0.01, 0.03, 0.05, 0.03, 0.01]
    momentum_values = [0.9, 0.85, 0.8, 0.85, 0.9]
    wd = WarmupCosine(0.2, 4, warmup_lr=0.1, warmup_steps=2)  # 0.1, 0.15, 0.2, 0.1, 0
    wd_values = [0.1, 0.15, 0.2, 0.1, 0.0]
    model = deep(4)
    start = [np.asarray(v, np.float64) for v in model.get_weights()]
    model.compile(optimizer=lo.SGD(lr, momentum=lr.momentum_schedule(), weight_decay=wd), loss="mse")
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)  # 4 steps
    model.fit(X[:4], Y[:4], batch_size=4, epochs=1, shuffle=False, verbose=0)  # the 5th
    assert int(model.optimizer.iterations) == 5

    batches = [(X[i:i + 4], Y[i:i + 4]) for i in (0, 4, 8, 12, 0)]
    weights = [w.copy() for w in start]
    velocity = [np.zeros_like(w) for w in weights]
    for (xb, yb), rate, mom, decay in zip(batches, lr_values, momentum_values, wd_values):
        grads = mse_grads(weights, xb.astype(np.float64), yb.astype(np.float64))
        for i, w in enumerate(weights):
            if w.ndim == 2:  # kernels decay, biases do not
                weights[i] = w = w - w * decay * rate
            velocity[i] = mom * velocity[i] - rate * grads[i]
            weights[i] = w + velocity[i]
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def mse_grads(weights, xb, yb):
    """Gradients of the mean squared error of a stack of linear Dense layers (float64)."""
    activations = [xb]
    for kernel, bias in zip(weights[::2], weights[1::2]):
        activations.append(activations[-1] @ kernel + bias)
    delta = 2.0 * (activations[-1] - yb) / activations[-1].size
    grads = [None] * len(weights)
    for layer in reversed(range(len(weights) // 2)):
        grads[2 * layer] = activations[layer].T @ delta
        grads[2 * layer + 1] = delta.sum(axis=0)
        delta = delta @ weights[2 * layer].T
    return grads
