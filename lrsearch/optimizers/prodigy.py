"""Prodigy (Mishchenko & Defazio 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free
Learner") for Keras 3: Adam whose step size `d` estimates itself.

Prodigy keeps Adam's moments but scales them by a running estimate `d` of the distance
from the initial weights `p0` to a solution; `learning_rate` only multiplies it (1.0:
no rate to set). Step `k` (0-based), over all variables together:

```python
dlr = d * learning_rate * bias_correction           # 1, or sqrt(1 - beta_2 ** (k+1)) / (1 - beta_1 ** (k+1))
numerator = beta_3 * numerator + (d / d0) * dlr * sum(g . (p0 - p))
m = beta_1 * m + d * (1 - beta_1) * g;   v = beta_2 * v + d**2 * (1 - beta_2) * g**2
s = beta_3 * s + (d / d0) * dlr * g                  # (d / d0) * d * g with safeguard_warmup
d_hat = d_coef * numerator / sum(|s|)
d_max = max(d_max, d_hat);  d = min(d_max, d * growth_rate)   # d = max(d, d_hat) first while d == d0
p = p - dlr * m / (sqrt(v) + d * epsilon)            # (p -= weight_decay * dlr * p first)
```

This is the update of the reference package `prodigyopt` (`Prodigy`, version 1.1), its
defaults under Keras names, for one parameter group and `slice_p=1`. The sums run over
every trainable variable, so the step runs as one function over all of them inside the
compiled train step.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from lrsearch.core.checks import constant_float
from lrsearch.optimizers.base import PACKAGE, Schedulable, hyper_arg

__all__ = ["ProdigyAdam"]

def _number(name: str, value: Any, low: float, high: float, *, open_low: bool, open_high: bool) -> float:
    return constant_float(name, value, low, high, open_low=open_low, open_high=open_high, why="Prodigy needs it constant")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ProdigyAdam(Schedulable, keras.optimizers.Optimizer):
    """Prodigy: Adam with a step size it estimates itself (`prodigyopt.Prodigy` for Keras 3).

    Leave `learning_rate` at 1.0 (the reference's advice); a schedule on it (cosine
    decay, say) multiplies the estimated step. `d_coef` is the knob to turn if needed.

    ```python
    optimizer = lrsearch.optimizers.ProdigyAdam(weight_decay=0.01)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    ```

    Args:
        learning_rate: a float or a `LearningRateSchedule`: the multiplier of `d`.
        beta_1, beta_2: decays of Adam's moments, in [0, 1) (`beta_1 = 0`: no first moment).
        beta_3: decay of the estimate's running sums, in [0, 1); None: `sqrt(beta_2)`.
        epsilon: added to the root of the second moment (times `d`), > 0.
        weight_decay: `None`, a float >= 0 or a schedule.
        decouple: AdamW-style decay (`p -= weight_decay * dlr * p`); False adds
            `weight_decay * p` to the gradient (L2).
        use_bias_correction: Adam's bias correction in `dlr`.
        safeguard_warmup: leave the rate out of `s` (steadier during a warmup).
        d0: the initial estimate, > 0.
        d_coef: multiplies the estimate, > 0.
        growth_rate: the most `d` may grow in one step, > 1; None: unrestricted (the
            reference's `inf`).
        decay_all: also decay biases and normalization parameters (the reference decays
            every parameter; lrsearch skips those by default, as its other optimizers do).
        **kwargs: Keras' optimizer arguments (`clipnorm`, `gradient_accumulation_steps`, `name`, ...).

    Raises:
        ConfigError: an argument out of range, naming it and the value received.
    """

    _beta_name = "beta_1"  # what `momentum_name` gives: a float, never a schedule

    def __init__(
        self,
        learning_rate: Any = 1.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        beta_3: float | None = None,
        epsilon: float = 1e-8,
        weight_decay: Any = 0.0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float | None = None,
        decay_all: bool = False,
        name: str = "prodigy_adam",
        **kwargs: Any,
    ) -> None:
        weight_decay = hyper_arg("weight_decay", weight_decay, allow_none=True)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = _number("beta_1", beta_1, 0.0, 1.0, open_low=False, open_high=True)
        self.beta_2 = _number("beta_2", beta_2, 0.0, 1.0, open_low=False, open_high=True)
        self.beta_3 = None if beta_3 is None else _number("beta_3", beta_3, 0.0, 1.0, open_low=False,
                                                          open_high=True)
        self.epsilon = _number("epsilon", epsilon, 0.0, math.inf, open_low=True, open_high=True)
        self.d0 = _number("d0", d0, 0.0, math.inf, open_low=True, open_high=True)
        self.d_coef = _number("d_coef", d_coef, 0.0, math.inf, open_low=True, open_high=True)
        if growth_rate is not None and math.isinf(growth_rate) and growth_rate > 0:
            growth_rate = None
        self.growth_rate = None if growth_rate is None else _number(
            "growth_rate", growth_rate, 1.0, math.inf, open_low=True, open_high=True)
        self.decouple = bool(decouple)
        self.use_bias_correction = bool(use_bias_correction)
        self.safeguard_warmup = bool(safeguard_warmup)
        self.decay_all = bool(decay_all)

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._p0 = self.add_optimizer_variables(var_list, "p0")
        self._s = self.add_optimizer_variables(var_list, "s")
        self._v = self.add_optimizer_variables(var_list, "exp_avg_sq")
        self._m = self.add_optimizer_variables(var_list, "exp_avg") if self.beta_1 > 0 else None
        scalar = {"shape": (), "dtype": "float32", "aggregation": "only_first_replica"}
        self._d = self.add_variable(initializer=keras.initializers.Constant(self.d0), name="d", **scalar)
        self._d_max = self.add_variable(initializer=keras.initializers.Constant(self.d0), name="d_max", **scalar)
        self._numerator = self.add_variable(initializer="zeros", name="d_numerator", **scalar)

    @property
    def d(self) -> float:
        """The current step-size estimate (`d0` before the first step)."""
        return float(ops.convert_to_numpy(self._d)) if self.built else self.d0

    def _apply_weight_decay(self, variables: Any) -> None:
        """Weight decay is part of the update (see `_backend_update_step`)."""

    def _backend_update_step(self, grads: Any, trainable_variables: Any, learning_rate: Any) -> None:
        k = ops.cast(self.iterations, "float32")
        first = ops.cast(ops.equal(self.iterations, 0), "float32")
        beta_3 = math.sqrt(self.beta_2) if self.beta_3 is None else self.beta_3
        d = ops.convert_to_tensor(self._d)
        dlr = d * ops.cast(learning_rate, "float32")
        if self.use_bias_correction:
            dlr = dlr * ops.sqrt(1.0 - ops.power(self.beta_2, k + 1.0)) / (1.0 - ops.power(self.beta_1, k + 1.0))
        scale = d / self.d0
        numerator = self._numerator * beta_3
        denominator = ops.zeros((), "float32")
        decay = None if self.weight_decay is None else self._value(self.weight_decay, "float32")
        steps = []
        # first pass: the moments and the running sums of every variable
        for gradient, variable in zip(grads, trainable_variables):
            i = self._get_variable_index(variable)
            dtype = variable.dtype
            g = ops.cast(ops.convert_to_tensor(gradient), dtype)
            decays = decay is not None and self._use_weight_decay(variable)
            if decays and not self.decouple:
                g = g + ops.cast(decay, dtype) * variable
            p0 = ops.add(self._p0[i], ops.multiply(ops.cast(first, dtype), ops.subtract(variable, self._p0[i])))
            self.assign(self._p0[i], p0)
            numerator = numerator + ops.cast(scale * dlr, dtype) * ops.sum(g * (p0 - variable))
            m = None
            if self._m is not None:
                m = self._m[i] * self.beta_1 + g * ops.cast(d * (1.0 - self.beta_1), dtype)
                self.assign(self._m[i], m)
            v = self._v[i] * self.beta_2 + ops.square(g) * ops.cast(d * d * (1.0 - self.beta_2), dtype)
            self.assign(self._v[i], v)
            s = self._s[i] * beta_3 + g * ops.cast(scale * (d if self.safeguard_warmup else dlr), dtype)
            self.assign(self._s[i], s)
            denominator = denominator + ops.cast(ops.sum(ops.abs(s)), "float32")
            steps.append((variable, g, m, v, decays))
        # the new estimate
        d_hat = self.d_coef * numerator / ops.where(denominator > 0, denominator, 1.0)
        d_hat = ops.where(denominator > 0, d_hat, d)
        d_max = ops.maximum(self._d_max, d_hat)
        if self.growth_rate is None:  # min(d_max, d * inf)
            new_d = d_max
        else:
            new_d = ops.where(ops.equal(d, self.d0), ops.maximum(d, d_hat), d)
            new_d = ops.minimum(d_max, new_d * self.growth_rate)
        self.assign(self._numerator, numerator)
        self.assign(self._d, new_d)
        self.assign(self._d_max, d_max)
        # second pass: the step, at the old d's rate over the new d's denominator
        for variable, g, m, v, decays in steps:
            dtype = variable.dtype
            denom = ops.sqrt(v) + ops.cast(new_d * self.epsilon, dtype)
            p = variable
            if decays and self.decouple:
                p = p - ops.cast(decay * dlr, dtype) * p
            direction = m if m is not None else g * ops.cast(new_d, dtype)
            self.assign(variable, p - ops.cast(dlr, dtype) * direction / denom)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "beta_3": self.beta_3,
                "epsilon": self.epsilon,
                "decouple": self.decouple,
                "use_bias_correction": self.use_bias_correction,
                "safeguard_warmup": self.safeguard_warmup,
                "d0": self.d0,
                "d_coef": self.d_coef,
                "growth_rate": self.growth_rate,
            }
        )
        return config
