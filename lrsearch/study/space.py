"""The search space of a study, derived from the range test's evidence.

One typed description (`SearchSpace`) says which parameters a study searches and in
which ranges; both backends sample it through a small adapter (`OptunaSampler` for an
Optuna trial, `KerasTunerSampler` for a KerasTuner `hp`; `lrsearch.study.sampling`), so
the space is written down exactly once. The rates come from the range test: `[base_lr, max_lr]` bound CLR's rates,
and one-cycle's peak and Schedule-Free's constant rate are searched from `base_lr` up to
`peak_max_lr`, which `from_suggestion` sets past the suggested `max_lr` to the loss
minimum (three times further when the curve ended still falling): `max_lr` is where the
search starts (the first trial, `suggested_params`), not a wall, since the best peak of
a given run may lie anywhere in the descent (BENCHMARKS.md, suggestion quality), and a
Schedule-Free optimizer trained in place of SGD with momentum does best near or above
the SGD curve's minimum (BENCHMARKS.md, the range-tested rate of Schedule-Free).

| parameter | when | range |
|---|---|---|
| `family` | always | `families` (categorical) |
| `oc_max_lr` | one_cycle | peak rate, log-uniform in `[base_lr, peak_max_lr]` |
| `oc_pct_start` | one_cycle | `[0.1, 0.5]` |
| `oc_div_factor` | one_cycle | log-uniform `[5, 100]` (start rate = peak / div) |
| `oc_final_div_factor` | one_cycle | log-uniform `[10, 1e4]` (end rate = start / final div) |
| `oc_anneal_strategy` | one_cycle | `cos`, `linear` |
| `clr_base_lr` | cyclic | log-uniform in `[base_lr, sqrt(base_lr * max_lr)]` |
| `clr_max_lr` | cyclic | log-uniform in `[sqrt(base_lr * max_lr), max_lr]` |
| `clr_mode` | cyclic | `triangular`, `triangular2`, `exp_range` |
| `clr_step_epochs` | cyclic | integer `[2, 8]`; `step_size_up = clr_step_epochs * steps_per_epoch` |
| `clr_gamma` | cyclic, exp_range | `[0.01 ** (1/T), 0.5 ** (1/T)]`, `T` = total steps: amplitude at the end 1%-50% |
| `momentum_max` | optimizer has momentum | sweep candidates (categorical), else `[0.85, 0.99]` |
| `momentum_span` | optimizer has momentum | `[0, 0.1]`; momentum cycles between max - span and max |
| `weight_decay` | sweep candidates given | the candidates (categorical) |
| `label_smoothing` | opted in | `[0, 0.2]` |
| `group_ratio` | a `MultiOptimizer` of 2 groups | log-uniform `[r / 10, 10 r]`, `r` the compiled ratio |
| `wsd_max_lr` | wsd | stable rate, log-uniform in `[base_lr, max_lr]` |
| `wsd_warmup_fraction` | wsd | `[0, 0.1]` of the steps (linear warmup from 0) |
| `wsd_decay_fraction` | wsd | `[0.1, 0.5]` of the steps, decaying to 0 |
| `wsd_decay_shape` | wsd | `linear`, `cosine`, `1-sqrt` |
| `sf_lr` | schedule_free | Schedule-Free rate, log-uniform in `[base_lr, peak_max_lr]` |
| `sf_warmup_fraction` | schedule_free | `[0, 0.1]` of the steps (the optimizer's warmup) |
| `sf_beta` | schedule_free | interpolation weight `0.9`, `0.95`, `0.98` |

`wsd` keeps a sampled momentum constant at `momentum_max`; `schedule_free` trains a
Schedule-Free optimizer (`TrialSetup.optimizer == "schedule_free"`: AdamW for an
adaptive optimizer (Adam, RMSprop, ...), SGD otherwise, see `lrsearch.optimizers.as_schedule_free`) at a
constant rate with the sampled warmup and `sf_beta`, and ignores the momentum parameters.

Example:

    space = SearchSpace.from_suggestion(suggestion, steps_per_epoch=12, epochs=10)
    params = space.sample(OptunaSampler(trial))
    setup = space.build(params)          # setup.learning_rate is a OneCycle or CyclicLR
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lrsearch.core.errors import ConfigError, argument_error
from lrsearch.study.sampling import Param, Sampler
from lrsearch.study.setup import TrialSetup

__all__ = [
    "ALL_FAMILIES",
    "FAMILIES",
    "SearchSpace",
    "TrialSetup",
]

FAMILIES = ("one_cycle", "cyclic")
"""The schedule families a study searches unless others are named."""
ALL_FAMILIES = (*FAMILIES, "wsd", "schedule_free")
"""Every family a search space can hold."""
SF_BETAS = (0.9, 0.95, 0.98)
"""The interpolation weights a Schedule-Free trial searches."""
PEAK_KEYS = {"one_cycle": "oc_max_lr", "cyclic": "clr_max_lr", "wsd": "wsd_max_lr", "schedule_free": "sf_lr"}
"""Each family's peak rate parameter."""


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a study searches, inside the range-test bounds.

    Args:
        base_lr, max_lr: the range-test bounds (`LRSuggestion.base_lr` / `.max_lr`).
        steps_per_epoch: optimizer steps per epoch of a trial (sizes one-cycle's
            `total_steps`, CLR's `step_size_up` and `gamma`).
        epochs: epochs per trial.
        families: schedule families searched (a categorical `family` parameter).
        momentum: whether the optimizer has a momentum (SGD with momentum > 0,
            Adam-family `beta_1`) that the schedules cycle.
        momentum_candidates: values from a momentum sweep for `momentum_max`.
        weight_decay_candidates: values from a weight-decay sweep (searched when given).
        label_smoothing: search a label smoothing in `[0, 0.2]`.
        peak_max_lr: top of one-cycle's peak range and of the Schedule-Free rate
            (>= max_lr); None: `max_lr`.
        limit_lr, floor_lr: how far the range test's evidence lets a study widen its
            rate ranges when its best trials sit at an edge (`lrsearch.study.widening`): up to
            `limit_lr`, down to `floor_lr`; None: not on that side (bounds given by hand
            are a wall).

    Raises:
        ConfigError: bounds not `0 < base_lr < max_lr <= peak_max_lr`, an unknown
            family, non-positive epochs or steps, or candidates out of range.
    """

    base_lr: float
    max_lr: float
    steps_per_epoch: int
    epochs: int
    families: tuple[str, ...] = FAMILIES
    momentum: bool = True
    momentum_candidates: tuple[float, ...] | None = None
    weight_decay_candidates: tuple[float, ...] | None = None
    label_smoothing: bool = False
    peak_max_lr: float | None = None
    limit_lr: float | None = None
    floor_lr: float | None = None
    groups: int = 1
    group_ratio: float | None = None

    def __post_init__(self) -> None:
        families = (self.families,) if isinstance(self.families, str) else self.families
        object.__setattr__(self, "families", tuple(families))
        for name in ("momentum_candidates", "weight_decay_candidates"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(sorted({float(v) for v in value})) or None)
        if not (math.isfinite(self.base_lr) and math.isfinite(self.max_lr)):
            raise ConfigError(f"rate bounds must be finite; got {self.base_lr}, {self.max_lr}")
        if not 0 < self.base_lr < self.max_lr:
            raise ConfigError(
                f"rate bounds must satisfy 0 < base_lr < max_lr; got base_lr={self.base_lr}, "
                f"max_lr={self.max_lr}"
            )
        if self.peak_max_lr is not None and not (
            math.isfinite(self.peak_max_lr) and self.peak_max_lr >= self.max_lr
        ):
            raise argument_error("peak_max_lr", ">= max_lr", self.peak_max_lr,
                                 received=f"peak_max_lr={self.peak_max_lr}, max_lr={self.max_lr}")
        top = max(self.max_lr, self.peak_max_lr or self.max_lr)
        if self.limit_lr is not None and not (math.isfinite(self.limit_lr) and self.limit_lr >= top):
            raise argument_error("limit_lr", ">= the top of the rate ranges", self.limit_lr,
                                 received=f"limit_lr={self.limit_lr}, top={top}")
        if self.floor_lr is not None and not 0 < self.floor_lr <= self.base_lr:
            raise argument_error("floor_lr", "in (0, base_lr]", self.floor_lr,
                                 received=f"floor_lr={self.floor_lr}, base_lr={self.base_lr}")
        if self.group_ratio is not None and not (math.isfinite(self.group_ratio) and self.group_ratio > 0):
            raise argument_error("group_ratio", "a number > 0", self.group_ratio)
        if not self.families:
            raise ConfigError(f"families must name at least one of {', '.join(ALL_FAMILIES)}")
        for fam in self.families:
            if fam not in ALL_FAMILIES:
                raise ConfigError(f"unknown family {fam!r}: use one of {', '.join(ALL_FAMILIES)}")
        if int(self.steps_per_epoch) < 1:
            raise ConfigError(f"steps_per_epoch must be >= 1; got {self.steps_per_epoch}")
        if int(self.epochs) < 1:
            raise ConfigError(f"epochs must be >= 1; got {self.epochs}")
        for m in self.momentum_candidates or ():
            if not 0 <= m < 1:
                raise ConfigError(f"momentum candidates must be in [0, 1); got {m}")
        for wd in self.weight_decay_candidates or ():
            if wd < 0:
                raise ConfigError(f"weight decay candidates must be >= 0; got {wd}")

    @classmethod
    def from_suggestion(
        cls,
        suggestion: Any,
        *,
        steps_per_epoch: int,
        epochs: int,
        **kwargs: Any,
    ) -> SearchSpace:
        """The space of an `LRSuggestion`: CLR inside `base_lr` / `max_lr`, one-cycle's
        peak from `base_lr` up to `min_loss_lr` (3x further when the curve ended still
        falling), never below `max_lr`.

        A study may widen these ranges (`lrsearch.study.widening`) up to `limit_lr`, ten times
        the loss minimum (past the minimum the loss rises towards divergence; a
        suggestion does not carry the rate where its test stopped, so a decade stands
        for it), and down to `floor_lr`, a tenth of `base_lr` (below where the loss
        starts falling, training barely moves)."""
        top = float(suggestion.max_lr)
        low = float(suggestion.base_lr)
        minimum = max(top, float(getattr(suggestion, "min_loss_lr", top) or top))
        peak = minimum
        if "still_falling" in tuple(getattr(suggestion, "problems", ()) or ()):
            peak *= 3.0
        kwargs.setdefault("peak_max_lr", peak)
        kwargs.setdefault("limit_lr", max(kwargs["peak_max_lr"] or top, top, 10.0 * minimum))
        kwargs.setdefault("floor_lr", low / 10.0)
        return cls(
            base_lr=float(suggestion.base_lr),
            max_lr=top,
            steps_per_epoch=int(steps_per_epoch),
            epochs=int(epochs),
            **kwargs,
        )

    def suggested_params(self) -> dict[str, Any]:
        """The range test's own schedule as a point of the space, to enqueue as a study's
        first trial, in the first of one-cycle, CLR or the first family searched:
        one-cycle peaking at `max_lr` with `OneCycle`'s defaults (pct_start 0.3, div 25,
        final div 1e4, cos); CLR between `base_lr` and `max_lr`; WSD at `max_lr` with
        `WarmupStableDecay`'s defaults (no warmup, 1-sqrt decay over the last 20%);
        Schedule-Free at `max_lr` with a 5% warmup and beta 0.9 (the reference's advice).
        Momentum 0.95 -> 0.85 or the nearest candidate, the smallest weight-decay
        candidate, no label smoothing and the compiled group ratio."""
        out: dict[str, Any] = {}
        family = next((f for f in FAMILIES if f in self.families), self.families[0])
        top = float(self.max_lr)
        if family == "one_cycle":
            out.update(family="one_cycle", oc_max_lr=top, oc_pct_start=0.3,
                       oc_div_factor=25.0, oc_final_div_factor=1e4, oc_anneal_strategy="cos")
        elif family == "cyclic":
            out.update(family="cyclic", clr_base_lr=float(self.base_lr), clr_max_lr=top,
                       clr_mode="triangular", clr_step_epochs=int(min(8, max(2, self.epochs // 2))))
        elif family == "wsd":
            out.update(family="wsd", wsd_max_lr=top, wsd_warmup_fraction=0.0,
                       wsd_decay_fraction=0.2, wsd_decay_shape="1-sqrt")
        else:
            out.update(family="schedule_free", sf_lr=top, sf_warmup_fraction=0.05, sf_beta=0.9)
        if self.momentum or self.momentum_candidates:
            if self.momentum_candidates:
                out["momentum_max"] = min(self.momentum_candidates, key=lambda m: abs(m - 0.95))
                out["momentum_span"] = 0.1
            else:
                out.update(momentum_max=0.95, momentum_span=0.1)
        if self.weight_decay_candidates:
            out["weight_decay"] = self.weight_decay_candidates[0]
        if self.label_smoothing:
            out["label_smoothing"] = 0.0
        if self.searches_ratio:
            out["group_ratio"] = float(self.group_ratio)
        return out

    def opening_params(self, n: int = 1) -> list[dict[str, Any]]:
        """The first `n` trials of a new study: `suggested_params`, then the same schedule
        with its peak lower by a half decade each (`max_lr / 10**0.5`, `max_lr / 10`, ...,
        never below the peak's own lower bound; repeats dropped).

        A long run wants a lower peak than a short one; on the equal-budget setups the best
        short-trial peaks lay between `max_lr / 6` and `max_lr` (BENCHMARKS.md 3c), which a
        race of three such points spans without a random draw.
        """
        first = self.suggested_params()
        key = PEAK_KEYS[first["family"]]
        low = next(p.low for p in self.params() if p.name == key)
        out = [first]
        for i in range(1, int(n)):
            rate = max(float(low), float(first[key]) * 10.0 ** (-i / 2))
            if any(math.isclose(rate, o[key], rel_tol=1e-9) for o in out):
                break
            out.append({**first, key: rate})
        return out

    @property
    def total_steps(self) -> int:
        """Optimizer steps of a whole trial (`epochs * steps_per_epoch`)."""
        return int(self.epochs) * int(self.steps_per_epoch)

    def params(self) -> list[Param]:
        """Every parameter of the space, in sampling order (parents before children).

        The word lists (anneal strategies, CLR modes, WSD decay shapes) are the ones the
        schedules accept (`lrsearch.schedules.formulas`)."""
        from lrsearch.schedules.formulas import ANNEAL_STRATEGIES, CYCLIC_MODES, WSD_DECAY_SHAPES

        lo, hi = float(self.base_lr), float(self.max_lr)
        peak_hi = float(self.peak_max_lr or hi)
        mid = math.sqrt(lo * hi)
        fam = {"family": ("one_cycle",)}
        clr = {"family": ("cyclic",)}
        out = [Param("family", "categorical", choices=self.families)]
        if "one_cycle" in self.families:
            out += [
                Param("oc_max_lr", "float", lo, peak_hi, log=True, when=fam),
                Param("oc_pct_start", "float", 0.1, 0.5, when=fam),
                Param("oc_div_factor", "float", 5.0, 100.0, log=True, when=fam),
                Param("oc_final_div_factor", "float", 10.0, 1e4, log=True, when=fam),
                Param("oc_anneal_strategy", "categorical", choices=ANNEAL_STRATEGIES, when=fam),
            ]
        if "cyclic" in self.families:
            total = self.total_steps
            out += [
                Param("clr_base_lr", "float", lo, mid, log=True, when=clr),
                Param("clr_max_lr", "float", mid, hi, log=True, when=clr),
                Param("clr_mode", "categorical", choices=CYCLIC_MODES, when=clr),
                Param("clr_step_epochs", "int", 2, 8, when=clr),
                Param(
                    "clr_gamma",
                    "float",
                    0.01 ** (1.0 / total),
                    0.5 ** (1.0 / total),
                    when={**clr, "clr_mode": ("exp_range",)},
                ),
            ]
        if "wsd" in self.families:
            wsd = {"family": ("wsd",)}
            out += [
                Param("wsd_max_lr", "float", lo, hi, log=True, when=wsd),
                Param("wsd_warmup_fraction", "float", 0.0, 0.1, when=wsd),
                Param("wsd_decay_fraction", "float", 0.1, 0.5, when=wsd),
                Param("wsd_decay_shape", "categorical", choices=WSD_DECAY_SHAPES, when=wsd),
            ]
        if "schedule_free" in self.families:
            sf = {"family": ("schedule_free",)}
            out += [
                Param("sf_lr", "float", lo, peak_hi, log=True, when=sf),
                Param("sf_warmup_fraction", "float", 0.0, 0.1, when=sf),
                Param("sf_beta", "categorical", choices=SF_BETAS, when=sf),
            ]
        if self.momentum or self.momentum_candidates:
            if self.momentum_candidates:
                out.append(Param("momentum_max", "categorical", choices=self.momentum_candidates))
            else:
                out.append(Param("momentum_max", "float", 0.85, 0.99))
            out.append(Param("momentum_span", "float", 0.0, 0.1))
        if self.weight_decay_candidates:
            out.append(Param("weight_decay", "categorical", choices=self.weight_decay_candidates))
        if self.label_smoothing:
            out.append(Param("label_smoothing", "float", 0.0, 0.2))
        if self.searches_ratio:
            r = float(self.group_ratio)
            out.append(Param("group_ratio", "float", r / 10.0, r * 10.0, log=True))
        return out

    @property
    def searches_ratio(self) -> bool:
        """Whether the space searches `group_ratio` (two groups, the compiled ratio known)."""
        return int(self.groups) == 2 and self.group_ratio is not None

    def sample(self, sampler: Sampler) -> dict[str, Any]:
        """Draw one point: `{name: value}` for the parameters active in it."""
        values: dict[str, Any] = {}
        for param in self.params():
            value = sampler.draw(param, param.active(values))
            if value is not None and param.active(values):
                values[param.name] = value
        return values

    def build(self, params: Mapping[str, Any]) -> TrialSetup:
        """Turn sampled parameters into the trial's schedules.

        Raises:
            ConfigError: a parameter the space needs is missing.
        """
        from lrsearch import schedules

        family = params.get("family", self.families[0])
        cycle = "momentum_max" in params
        mom: dict[str, Any] = {"cycle_momentum": cycle}
        if cycle:
            top = float(params["momentum_max"])
            mom.update(max_momentum=top, base_momentum=max(0.0, top - float(params["momentum_span"])))
        try:
            if family == "one_cycle":
                sched = schedules.OneCycle(
                    max_lr=float(params["oc_max_lr"]),
                    total_steps=self.total_steps,
                    pct_start=float(params["oc_pct_start"]),
                    anneal_strategy=str(params["oc_anneal_strategy"]),
                    div_factor=float(params["oc_div_factor"]),
                    final_div_factor=float(params["oc_final_div_factor"]),
                    **mom,
                )
            elif family == "cyclic":
                mode = str(params["clr_mode"])
                sched = schedules.CyclicLR(
                    base_lr=float(params["clr_base_lr"]),
                    max_lr=float(params["clr_max_lr"]),
                    step_size_up=int(params["clr_step_epochs"]) * int(self.steps_per_epoch),
                    mode=mode,
                    gamma=float(params["clr_gamma"]) if mode == "exp_range" else 1.0,
                    **mom,
                )
            elif family == "wsd":
                sched = schedules.WarmupStableDecay(
                    max_lr=float(params["wsd_max_lr"]),
                    total_steps=self.total_steps,
                    warmup_steps=self._steps(params["wsd_warmup_fraction"]),
                    decay_fraction=float(params["wsd_decay_fraction"]),
                    decay_shape=str(params["wsd_decay_shape"]),
                )
            elif family == "schedule_free":
                sched = float(params["sf_lr"])
                extra = {
                    "momentum": float(params["sf_beta"]),
                    "optimizer": "schedule_free",
                    "optimizer_config": {"warmup_steps": self._steps(params["sf_warmup_fraction"])},
                }
            else:
                raise ConfigError(f"unknown family {family!r}: use one of {', '.join(ALL_FAMILIES)}")
        except KeyError as exc:
            raise ConfigError(f"trial parameters miss {exc.args[0]!r} for family {family}") from exc
        if family != "schedule_free":
            momentum = mom.get("max_momentum") if family == "wsd" else sched.momentum_schedule() if cycle else None
            extra = {"momentum": momentum}
        wd = params.get("weight_decay")
        ls = params.get("label_smoothing")
        ratio = params.get("group_ratio")
        return TrialSetup(
            group_ratio=None if ratio is None else float(ratio),
            family=family,
            learning_rate=sched,
            weight_decay=None if wd is None else float(wd),
            label_smoothing=None if ls is None else float(ls),
            params=dict(params),
            **extra,
        )

    def _steps(self, fraction: Any) -> int:
        """A fraction of the trial's steps, as a whole number of steps."""
        return round(float(fraction) * self.total_steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (kept in the study's user attributes)."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSpace:
        """Inverse of `to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        for k in ("families", "momentum_candidates", "weight_decay_candidates"):
            if isinstance(kwargs.get(k), Sequence) and not isinstance(kwargs[k], str):
                kwargs[k] = tuple(kwargs[k])
        return cls(**kwargs)
