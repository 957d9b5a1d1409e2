"""`fine_tune`: stage 1 trains the head with the backbone frozen (bit for bit), stage 2
everything, the backbone at the ratio times the head's rate inside the compiled step."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from tests.support.groups import digits, network, two_groups

import lrsearch
from lrsearch.core.errors import ConfigError

RANGE = {"steps": 60, "min_lr": 1e-6, "max_lr": 1.0}


def _pretrained():
    """`network(0)` trained two epochs on digits 0-4; the task: digits 5-9."""
    x, y = digits()
    model = network(0)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    old = y < 5
    model.fit(x[old], y[old], epochs=2, batch_size=32, verbose=0)
    new = ~old
    return model, (x[new][:480], y[new][:480]), (x[new][480:], y[new][480:])


class Watch(keras.callbacks.Callback):
    """Each stage's backbone weights as it begins and ends, and, under groups, every
    batch's rates of the next update (backbone, head)."""

    def __init__(self):
        super().__init__()
        self.stages = []

    def _backbone(self):
        return [v.numpy().copy() for v in self.model.weights if "backbone" in v.path]

    def on_train_begin(self, logs=None):
        self.stages.append({"begin": self._backbone(), "head": [v.numpy().copy() for v in self.model.layers[-1].weights],
                            "rates": []})

    def on_train_batch_end(self, batch, logs=None):
        opt = self.model.optimizer
        if isinstance(opt, keras.optimizers.MultiOptimizer):
            self.stages[-1]["rates"].append((int(opt.iterations), [float(s.learning_rate) for s in opt.optimizers]))

    def on_train_end(self, logs=None):
        self.stages[-1]["end"] = self._backbone()


def test_stage_one_keeps_the_backbone_stage_two_trains_it_at_the_ratio():
    model, train, val = _pretrained()
    pretrained = [v.numpy().copy() for v in model.weights if "backbone" in v.path]
    watch = Watch()
    run = lrsearch.fine_tune(model, train, epochs=2, backbone=".*backbone.*", validation_data=val, ratio=0.1,
                             callbacks=[watch], range_test_kwargs=RANGE, verbose=0)
    first, second = watch.stages
    for a, b, c in zip(pretrained, first["begin"], first["end"]):
        np.testing.assert_array_equal(a, b)  # the range test put everything back
        np.testing.assert_array_equal(a, c)  # frozen: bit for bit
    assert not np.array_equal(first["head"][0], model.layers[-1].weights[0].numpy())
    assert any(not np.allclose(a, b) for a, b in zip(second["begin"], second["end"]))
    assert all(layer.trainable for layer in model.layers)
    spec = run.unfrozen.schedule
    assert run.frozen.schedule.groups is None and spec.groups[0]["ratio"] == 0.1
    steps = [s for s, _ in second["rates"]]
    rates = np.array([r for _, r in second["rates"]])  # columns: backbone, head
    head = np.array([float(spec.schedule(s)) for s in steps])
    np.testing.assert_allclose(rates[:, 1], head, rtol=1e-6, atol=1e-6 * head.max())
    np.testing.assert_allclose(rates[:, 0], 0.1 * rates[:, 1], rtol=1e-6)
    assert spec.schedule.max_lr == pytest.approx(run.unfrozen.range_test.suggestion.max_lr)
    assert run.unfrozen.history.history["val_loss"][-1] < run.frozen.history.history["val_loss"][0]


def test_a_two_group_model_gives_the_backbone_and_the_ratio():
    model, train, val = _pretrained()
    model.compile(two_groups(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(2.5e-4)),
                  "sparse_categorical_crossentropy")
    run = lrsearch.fine_tune(model, train, epochs=1, range_test_kwargs=RANGE, verbose=0)
    assert (run.backbone, run.ratio) == (".*backbone.*", 0.25)
    assert run.unfrozen.schedule.groups[0]["ratio"] == 0.25


def test_a_backbone_pattern_that_matches_nothing_is_one_line():
    model, train, _ = _pretrained()
    with pytest.raises(ConfigError, match="matches no layer's weights") as info:
        lrsearch.fine_tune(model, train, epochs=1, backbone="backbone.*", verbose=0)
    assert "\n" not in str(info.value)
