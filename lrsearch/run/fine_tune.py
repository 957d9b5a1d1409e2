"""Fine-tune a pretrained model in two stages, each range-tested (fastai's `fine_tune` habit).

Stage 1 freezes the backbone and trains the head alone: a range test on the head, then a
one-cycle at the suggested peak (`fit_one_cycle`). Stage 2 unfreezes it and trains
everything with discriminative rates: the model is compiled with a `MultiOptimizer` whose
backbone group runs at `ratio` times the head's rate, range-tested again with the
groups at that ratio (the ramp drives the head, `lrsearch.optimizers.groups`), and
trained on a one-cycle at the new suggested peak, the backbone at
`Scaled(one_cycle, ratio)`. Where fastai halves its first rate for stage 2, the second
range test reads the rate of the unfrozen network from its own curve.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from lrsearch.core.errors import ConfigError, argument_error
from lrsearch.optimizers.base import unwrap
from lrsearch.optimizers.groups import (compiled_rate, group_ratios, groups, is_multi, map_patterns, reference_index,
                                       with_ratio)
from lrsearch.optimizers.registry import rebuild
from lrsearch.run.quick import OneCycleFit, fit_one_cycle
from lrsearch.study.trial import compile_kwargs

__all__ = ["DEFAULT_RATIO", "FineTuneFit", "fine_tune"]

DEFAULT_RATIO = 0.1
"""The backbone's rate over the head's in stage 2 when the model does not say (a
`MultiOptimizer` of two groups says: its compiled ratio)."""


@dataclass(frozen=True)
class FineTuneFit:
    """What `fine_tune` returns.

    Attributes:
        frozen: stage 1, the head alone (`OneCycleFit`: history, schedule, range test).
        unfrozen: stage 2, every layer at discriminative rates; its `schedule` records the
            groups (`schedule.groups`) and saves as a version 3 `schedule.json`.
        backbone: the pattern on variable paths that names the backbone.
        ratio: the backbone's rate over the head's in stage 2.
    """

    frozen: OneCycleFit
    unfrozen: OneCycleFit
    backbone: str
    ratio: float


def fine_tune(
    model: keras.Model,
    data: Any,
    epochs: int,
    *,
    backbone: str | None = None,
    freeze_epochs: int = 1,
    ratio: float | None = None,
    validation_data: Any = None,
    batch_size: int = 32,
    callbacks: Sequence[Any] | None = None,
    range_test_kwargs: Mapping[str, Any] | None = None,
    verbose: int | str = "auto",
) -> FineTuneFit:
    """Train the head with the backbone frozen, then everything with discriminative rates.

    ```python
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    run = lrsearch.fine_tune(model, (x, y), epochs=4, backbone=".*backbone.*",
                             validation_data=(xv, yv))
    run.unfrozen.schedule.save("schedule.json")   # the groups and their ratio recorded
    ```

    Args:
        model: a compiled `keras.Model`, trained in place: its optimizer gives the class
            and settings of both groups; a `MultiOptimizer` of two groups over an
            `OptimizerMap` gives the backbone's pattern, its optimizer and the ratio.
        data, validation_data, batch_size, callbacks, range_test_kwargs, verbose: as for
            `fit_one_cycle` (the callbacks ride along in both stages).
        epochs: epochs of stage 2.
        backbone: a regular expression on variable paths (as `OptimizerMap`'s keys) that
            matches every weight of the backbone's layers; None: the pattern of the
            model's `MultiOptimizer`.
        freeze_epochs: epochs of stage 1 (fastai's default, 1).
        ratio: the backbone's rate over the head's in stage 2; None: the model's compiled
            ratio, else `DEFAULT_RATIO` (0.1).

    Raises:
        ConfigError: no backbone pattern, one that matches no layer, every layer or part
            of a layer, a ratio that is not > 0, a callable selector, epochs < 1.
    """
    for name, value in (("epochs", epochs), ("freeze_epochs", freeze_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise argument_error(name, "an integer >= 1", value)
    optimizer = unwrap(model.optimizer)
    multi = is_multi(optimizer)
    if multi and len(groups(optimizer)) != 2:
        raise ConfigError(f"fine_tune takes one optimizer or a MultiOptimizer of two groups (backbone and head); "
                          f"the model's has {len(groups(optimizer))}")
    if backbone is None:
        backbone = _backbone_of(optimizer) if multi else None
        if backbone is None:
            raise ConfigError("fine_tune needs the backbone: pass backbone='<regex on variable paths>' "
                              "(e.g. '.*backbone.*'), or compile with a MultiOptimizer that maps it")
    if ratio is None:
        ratio = _compiled_ratio(optimizer) if multi else DEFAULT_RATIO
    if not float(ratio) > 0:
        raise argument_error("ratio", "> 0", ratio)
    frozen_layers = _backbone_layers(model, backbone)
    head = groups(optimizer)[reference_index(optimizer)] if multi else optimizer
    kwargs = compile_kwargs(model)
    options = dict(validation_data=validation_data, batch_size=batch_size, callbacks=callbacks,
                   range_test_kwargs=range_test_kwargs, verbose=verbose)

    was = [layer.trainable for layer in frozen_layers]
    for layer in frozen_layers:
        layer.trainable = False
    try:
        model.compile(**{**kwargs, "optimizer": rebuild(head)})
        first = fit_one_cycle(model, data, freeze_epochs, **options)
    finally:
        for layer, trainable in zip(frozen_layers, was):
            layer.trainable = trainable

    if multi:
        grouped = rebuild(optimizer, ratios=with_ratio(optimizer, float(ratio)))
    else:
        rate = compiled_rate(head)
        grouped = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
            rebuild(head), {backbone: rebuild(head, learning_rate=rate * float(ratio))}))
    model.compile(**{**kwargs, "optimizer": grouped})
    second = fit_one_cycle(model, data, epochs, **options)
    return FineTuneFit(first, second, backbone, float(ratio))


def _backbone_of(optimizer: Any) -> str | None:
    """The pattern(s) of a two-group `MultiOptimizer`'s other group, as one regex."""
    ref = reference_index(optimizer)
    patterns = [p for p, i in map_patterns(optimizer) if i != ref]
    if not patterns:
        return None
    return patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)


def _compiled_ratio(optimizer: Any) -> float:
    """A two-group `MultiOptimizer`'s other group's compiled rate over the reference's."""
    return float(group_ratios(optimizer)[1 - reference_index(optimizer)])


def _backbone_layers(model: keras.Model, pattern: str) -> list[Any]:
    """The model's top-level layers whose weights `pattern` matches: all of them, never part.

    Raises:
        ConfigError: a layer matched in part, no layer matched, or nothing left to train.
    """
    matched, rest = [], 0
    for layer in model.layers:
        paths = [v.path for v in layer.trainable_weights]
        if not paths:
            continue
        hits = [bool(re.fullmatch(pattern, p)) for p in paths]
        if all(hits):
            matched.append(layer)
        elif any(hits):
            raise ConfigError(f"the backbone pattern {pattern!r} matches only part of layer {layer.name!r}; "
                              "match all of a layer's weights (a layer freezes as a whole)")
        else:
            rest += 1
    if not matched:
        shown = ", ".join(v.path for v in model.trainable_weights[:3])
        raise ConfigError(f"the backbone pattern {pattern!r} matches no layer's weights (paths look like {shown}); "
                          "note that a pattern must match the whole path (e.g. '.*backbone.*')")
    if not rest:
        raise ConfigError(f"the backbone pattern {pattern!r} matches every layer, leaving no head to train first")
    return matched
