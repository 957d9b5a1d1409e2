"""How a study draws one point of its search space: the parameters, and a sampler per backend.

A `Param` describes one parameter (float, int or categorical, with the conditions under
which it exists); a `Sampler` draws a value for it. `OptunaSampler` asks an Optuna trial
(define-by-run: an inactive parameter is never suggested) and `KerasTunerSampler` a
KerasTuner `HyperParameters` (every parameter registered inside its conditional scopes),
so `lrsearch.study.space.SearchSpace` is written down once for both backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["KerasTunerSampler", "OptunaSampler", "Param", "Sampler"]


@dataclass(frozen=True)
class Param:
    """One parameter of the space.

    Args:
        name: the name in trial tables (`params_<name>` columns).
        kind: `"float"`, `"int"` or `"categorical"`.
        low, high: bounds of a float or int parameter (both included).
        log: sample a float on a log scale.
        choices: the values of a categorical parameter.
        when: conditions `{other_param: allowed values}`; the parameter exists only in
            trials where every condition holds (e.g. `clr_gamma` only for `exp_range`).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether the conditions hold for the values sampled so far."""
        return all(values.get(k) in allowed for k, allowed in self.when.items())


class Sampler(Protocol):
    """What a backend provides to draw one value of a `Param` (or `None` if inactive)."""

    def draw(self, param: Param, active: bool) -> Any: ...


class OptunaSampler:
    """Draws parameters from an `optuna.trial.Trial` (define-by-run: inactive ones are
    not suggested at all, so they do not appear in the trial's params)."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def draw(self, param: Param, active: bool) -> Any:
        if not active:
            return None
        if param.kind == "categorical":
            return self.trial.suggest_categorical(param.name, list(param.choices))
        if param.kind == "int":
            return self.trial.suggest_int(param.name, int(param.low), int(param.high))
        return self.trial.suggest_float(param.name, param.low, param.high, log=param.log)


class KerasTunerSampler:
    """Draws parameters from a KerasTuner `HyperParameters` object.

    Every parameter is registered (inside `hp.conditional_scope` for its conditions) so
    the oracle sees the whole space; KerasTuner returns `None` for inactive ones.
    """

    def __init__(self, hp: Any) -> None:
        self.hp = hp

    def draw(self, param: Param, active: bool) -> Any:
        return self._in_scopes(param, list(param.when.items()))

    def _in_scopes(self, param: Param, conditions: list[tuple[str, tuple[Any, ...]]]) -> Any:
        if conditions:
            (parent, values), rest = conditions[0], conditions[1:]
            with self.hp.conditional_scope(parent, list(values)):
                return self._in_scopes(param, rest)
        hp = self.hp
        if param.kind == "categorical":
            return hp.Choice(param.name, list(param.choices), ordered=False)
        if param.kind == "int":
            return hp.Int(param.name, int(param.low), int(param.high))
        return hp.Float(
            param.name, param.low, param.high, sampling="log" if param.log else "linear"
        )
