"""Schedule files: round trips, tables with known values, clear errors, plots."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from lrsearch import optimizers as lo
from lrsearch.core.errors import ConfigError, ScheduleFormatError
from lrsearch.schedules import (
    CyclicLR,
    LinearWarmup,
    OneCycle,
    RampSustainDecay,
    WarmupCosine,
    WarmupStableDecay,
)
from lrsearch.export.spec import FORMAT, VERSION, ScheduleSpec, load_schedule
from tests.support import DATA


def one_cycle_spec(**kwargs):
    sched = OneCycle(0.05, 100, pct_start=0.25)
    args = dict(optimizer="SGD", optimizer_config={"nesterov": True}, momentum=sched.momentum_schedule(),
                weight_decay=5e-4, steps_per_epoch=10, epochs=10, batch_size=32,
                provenance={"study": "digits", "trial": 7, "metric": "val_loss", "value": 0.21,
                            "range_test": {"base_lr": 0.002, "max_lr": 0.05}})
    args.update(kwargs)
    return ScheduleSpec(sched, **args)


SPECS = {
    "one_cycle_sgd": one_cycle_spec,
    "cyclic_adam": lambda: ScheduleSpec(
        CyclicLR(1e-4, 1e-2, step_size_up=20, mode="triangular2"), optimizer="Adam",
        momentum=CyclicLR(1e-4, 1e-2, step_size_up=20, mode="triangular2").momentum_schedule(),
        weight_decay=RampSustainDecay(0.0, 0.01, 0.001, 2, steps_per_epoch=15), steps_per_epoch=15, epochs=6),
    "warmup_cosine_adamw": lambda: ScheduleSpec(
        WarmupCosine(1e-3, 90, warmup_steps=9), optimizer="AdamW", optimizer_config={"beta_2": 0.98}),
    "keras_inner_rmsprop": lambda: ScheduleSpec(
        LinearWarmup(keras.optimizers.schedules.CosineDecay(0.01, 50), 10), optimizer="rmsprop",
        momentum=0.5, steps_per_epoch=6, epochs=10),
    "constant": lambda: ScheduleSpec(0.01, optimizer="Adam", steps_per_epoch=5, epochs=3),
    "wsd_adamw": lambda: ScheduleSpec(
        WarmupStableDecay(3e-3, 120, warmup_steps=12, warmup_shape="cosine", decay_fraction=0.25, min_lr=3e-5),
        optimizer="AdamW", weight_decay=0.05, steps_per_epoch=12, epochs=10),
    "schedule_free_adamw": lambda: ScheduleSpec(
        2.5e-3, optimizer="ScheduleFreeAdamW", optimizer_config={"warmup_steps": 10, "beta_2": 0.99},
        momentum=0.95, weight_decay=0.05, steps_per_epoch=10, epochs=4, provenance={"family": "schedule_free"}),
    "schedule_free_sgd_wsd": lambda: ScheduleSpec(
        WarmupStableDecay(0.5, 60, decay_fraction=0.25), optimizer="ScheduleFreeSGD",
        optimizer_config={"warmup_steps": 5, "r": 0.5, "decay_all": True}, steps_per_epoch=6, epochs=10),
    "wsd_sgd_decay_steps": lambda: ScheduleSpec(
        WarmupStableDecay(0.1, 80, decay_steps=17, decay_shape="linear"), optimizer="SGD", momentum=0.9),
}


@pytest.mark.backends
@pytest.mark.parametrize("name", SPECS)
def test_save_load_build_gives_identical_values(name, tmp_path):
    spec = SPECS[name]()
    path = spec.save(tmp_path / "sub" / "schedule.json")
    loaded = load_schedule(path)
    assert loaded == spec
    assert loaded.to_dict() == spec.to_dict()
    original, again = spec.table(), loaded.table()
    assert list(original.columns)[-3:] == ["lr", "momentum", "weight_decay"]
    np.testing.assert_array_equal(again.to_numpy(), original.to_numpy())
    configs = [{**s.build_optimizer().get_config(), "name": None} for s in (loaded, spec)]
    assert json.dumps(configs[0], sort_keys=True) == json.dumps(configs[1], sort_keys=True)
    schedule = loaded.build_schedule()
    assert schedule is not spec.schedule
    if not isinstance(schedule, float):
        steps = np.arange(len(original))
        rates = np.asarray(schedule(steps), np.float64)
        optimizer = loaded.build_optimizer()
        if isinstance(optimizer, (lo.ScheduleFreeAdamW, lo.ScheduleFreeSGD)):
            rates = rates * np.minimum((steps + 1) / optimizer.warmup_steps, 1.0)
        np.testing.assert_array_equal(rates, original["lr"].to_numpy())


@pytest.mark.backends
def test_schedule_free_export_builds_its_optimizer(tmp_path):
    spec = SPECS["schedule_free_adamw"]()
    loaded = load_schedule(spec.save(tmp_path / "schedule.json"))
    document = json.loads((tmp_path / "schedule.json").read_text())
    assert document["optimizer"] == {"class_name": "ScheduleFreeAdamW", "config": {"warmup_steps": 10, "beta_2": 0.99}}
    assert (document["momentum"], document["weight_decay"]) == (0.95, 0.05)
    optimizer = loaded.build_optimizer()
    assert isinstance(optimizer, lo.ScheduleFreeAdamW)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.warmup_steps, optimizer.weight_decay) == (0.95, 0.99, 10, 0.05)
    assert float(optimizer.learning_rate) == pytest.approx(2.5e-3)
    table = loaded.table()  # the rate with the optimizer's warmup: 2.5e-3 * (k + 1) / 10, then 2.5e-3
    np.testing.assert_allclose(table["lr"].to_numpy(), 2.5e-3 * np.minimum((np.arange(40) + 1) / 10, 1.0))
    assert set(table["momentum"]) == {0.95} and set(table["weight_decay"]) == {0.05}
    sgd = SPECS["schedule_free_sgd_wsd"]()
    assert sgd.momentum_name == "momentum" and sgd.build_optimizer().momentum == 0.9
    from_instance = ScheduleSpec(WarmupStableDecay(0.5, 60), optimizer=lo.ScheduleFreeSGD(momentum=0.8, warmup_steps=3))
    assert (from_instance.optimizer, from_instance.momentum, from_instance.optimizer_config["warmup_steps"]) == (
        "ScheduleFreeSGD", 0.8, 3)
    with pytest.raises(ConfigError, match="Argument `momentum` must be a float"):
        ScheduleSpec(0.1, optimizer="ScheduleFreeSGD", momentum=OneCycle(1.0, 10).momentum_schedule())


@pytest.mark.backends
def test_the_document_is_readable_and_complete(tmp_path):
    spec = one_cycle_spec()
    doc = json.loads(spec.save(tmp_path / "s.json").read_text())
    assert doc["format"] == FORMAT == "lrsearch.schedule" and doc["version"] == VERSION == 2
    assert doc["schedule"]["class_name"] == "OneCycle"
    assert doc["schedule"]["config"] == spec.schedule.get_config()
    assert doc["momentum"]["class_name"] == "OneCycleMomentum"
    assert doc["weight_decay"] == 5e-4
    assert doc["optimizer"] == {"class_name": "SGD", "config": {"nesterov": True}}
    assert (doc["batch_size"], doc["steps_per_epoch"], doc["epochs"]) == (32, 10, 10)
    assert list(doc) == ["format", "version", "schedule", "momentum", "weight_decay", "optimizer", "batch_size",
                         "steps_per_epoch", "epochs", "provenance", "lrsearch_version"]
    assert doc["provenance"]["trial"] == 7 and doc["provenance"]["range_test"]["max_lr"] == 0.05


@pytest.mark.backends
def test_table_values_known_in_advance():
    table = one_cycle_spec().table()
    assert len(table) == 100 and list(table.columns) == ["step", "epoch", "lr", "momentum", "weight_decay"]
    row = table.set_index("step")
    # OneCycle(0.05, 100, pct_start=0.25): 0.002 at 0, peak 0.05 at step 24, 0.002 / 1e4 at 99
    np.testing.assert_allclose(row.loc[[0, 24, 99], "lr"], [0.002, 0.05, 2e-7], rtol=1e-5)
    np.testing.assert_allclose(row.loc[[0, 24, 99], "momentum"], [0.95, 0.85, 0.95], rtol=1e-6)
    assert (table["weight_decay"] == 5e-4).all()
    assert table["epoch"].tolist() == [s // 10 for s in range(100)]
    assert len(one_cycle_spec().table(steps=130)) == 130  # past the end the final value holds
    np.testing.assert_allclose(one_cycle_spec().table(steps=130)["lr"].iloc[-1], 2e-7, rtol=1e-5)


@pytest.mark.backends
def test_table_shows_the_optimizer_defaults():
    sgd = ScheduleSpec(0.1, optimizer="SGD").table(steps=3)
    assert sgd["momentum"].tolist() == [0.0] * 3 and sgd["weight_decay"].tolist() == [0.0] * 3
    adamw = ScheduleSpec(0.1, optimizer="AdamW").table(steps=3)
    assert adamw["momentum"].tolist() == [0.9] * 3 and adamw["weight_decay"].tolist() == [0.004] * 3
    with pytest.raises(ConfigError, match="steps"):
        ScheduleSpec(0.1).table()


@pytest.mark.backends
def test_table_falls_back_for_a_schedule_of_scalar_steps_only():
    @keras.saving.register_keras_serializable(package="lrsearch_tests")
    class Halving(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 / 2 ** int(step)  # Python arithmetic: not vectorizable

        def get_config(self):
            return {}

    table = ScheduleSpec(Halving()).table(steps=4)
    np.testing.assert_allclose(table["lr"], [0.1, 0.05, 0.025, 0.0125])


@pytest.mark.backends
def test_spec_from_a_users_optimizer():
    spec = ScheduleSpec(OneCycle(0.01, 50), optimizer=keras.optimizers.Adam(0.3, beta_1=0.8, beta_2=0.99))
    assert spec.optimizer == "Adam" and spec.momentum == 0.8
    assert spec.optimizer_config["beta_2"] == 0.99 and "learning_rate" not in spec.optimizer_config
    optimizer = spec.build_optimizer()
    assert type(optimizer) is lo.Adam and optimizer.beta_2 == 0.99 and optimizer.beta_1 == 0.8


@pytest.mark.backends
def test_build_optimizer_trains_with_the_tabled_rates():
    spec = ScheduleSpec(CyclicLR(0.01, 0.05, step_size_up=2), optimizer="SGD",
                        momentum=CyclicLR(0.01, 0.05, step_size_up=2).momentum_schedule(),
                        steps_per_epoch=3, epochs=1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = spec.build_optimizer()
    model.compile(optimizer=optimizer, loss="mse")
    seen = []
    x = np.ones((2, 2), "float32")
    # one step a `fit`, the values read before each (JAX's fit holds the optimizer's
    # variables outside the optimizer until it returns, so a batch callback cannot read them)
    for _ in range(3):
        seen.append((float(optimizer.learning_rate), float(optimizer._value(optimizer.momentum, "float32"))))
        model.fit(x, x[:, :1], batch_size=2, epochs=1, verbose=0)
    assert int(optimizer.iterations) == 3
    table = spec.table()
    np.testing.assert_allclose(seen, table[["lr", "momentum"]].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(table["lr"], [0.01, 0.03, 0.05], rtol=1e-6)


# --------------------------------------------------------------------------- errors
def write(tmp_path, content):
    path = tmp_path / "schedule.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def good_doc():
    return one_cycle_spec().to_dict()


BROKEN = [
    (lambda d: {**d, "format": "keras.config"}, "not an lrsearch schedule: format is 'keras.config'"),
    (lambda d: {**d, "version": 4}, "version 4 is not supported (this lrsearch reads versions 1, 2, 3); upgrade lrsearch"),
    (lambda d: {**d, "version": 0}, "version 0 is not supported (this lrsearch reads versions 1, 2, 3); re-export it"),
    (lambda d: {k: v for k, v in d.items() if k != "batch_size"}, "misses field `batch_size`"),
    (lambda d: {**d, "batch_size": 0}, "field `batch_size` must be a whole number from 1 to 2147483647 or null; got 0"),
    (lambda d: {k: v for k, v in d.items() if k != "version"}, "version None is not supported"),
    (lambda d: {k: v for k, v in d.items() if k != "epochs"}, "misses field `epochs`"),
    (lambda d: {k: v for k, v in d.items() if k not in ("epochs", "schedule")}, "misses fields `schedule`, `epochs`"),
    (lambda d: {**d, "schedule": {**d["schedule"], "class_name": "NoSuchSchedule", "registered_name": None,
                                  "module": None}}, "field `schedule` is not a schedule Keras can rebuild"),
    (lambda d: {**d, "schedule": None}, "field `schedule` is null"),
    (lambda d: {**d, "momentum": "high"}, "field `momentum` must be a number, a schedule or null"),
    (lambda d: {**d, "optimizer": {"class_name": "Nadam", "config": {}}}, "field `optimizer`: unknown class 'Nadam'"),
    (lambda d: {**d, "steps_per_epoch": -4}, "field `steps_per_epoch` must be a whole number from 1 to 2147483647 or null; got -4"),
    (lambda d: [d], "an lrsearch schedule is a JSON object, got list"),
]


@pytest.mark.backends
def test_broken_files_fail_with_one_clear_line(tmp_path):
    for mutate, message in BROKEN:
        path = write(tmp_path, mutate(good_doc()))
        with pytest.raises(ScheduleFormatError) as info:
            load_schedule(path)
        text = str(info.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, (message, text)


@pytest.mark.backends
def test_broken_json_and_missing_file(tmp_path):
    path = write(tmp_path, '{"format": "lrsearch.schedule",\n "version": 1,,}')
    with pytest.raises(ScheduleFormatError, match=r"not valid JSON \(line 2, column 15"):
        load_schedule(path)
    with pytest.raises(ScheduleFormatError, match="no such schedule file"):
        load_schedule(tmp_path / "absent.json")
    assert issubclass(ScheduleFormatError, ValueError)


BAD_SPECS = [
    (lambda: ScheduleSpec(OneCycle(0.1, 10), optimizer="Nadam"), "Argument `optimizer` must be one of SGD, Adam, AdamW, RMSprop"),
    (lambda: ScheduleSpec(OneCycle(0.1, 10), optimizer=keras.optimizers.Lion(),
                          momentum=OneCycle(0.1, 10).momentum_schedule()), "Lion's beta_1 must be a float, not a schedule"),
    (lambda: ScheduleSpec(0.1, optimizer=object()), "Argument `optimizer` must be a Keras optimizer"),
    (lambda: ScheduleSpec("fast"), "Argument `schedule` must be a LearningRateSchedule or a float"),
    (lambda: ScheduleSpec(-0.1), "Argument `schedule` must be > 0"),
    (lambda: ScheduleSpec(0.1, epochs=0), "Argument `epochs` must be a whole number > 0"),
    (lambda: ScheduleSpec(0.1, batch_size=2.5), "Argument `batch_size` must be a whole number > 0 or None. "
                                                "Received: batch_size=2.5"),
    (lambda: ScheduleSpec(0.1, provenance={"value": object()}), "Argument `provenance` must be JSON-serializable"),
    (lambda: ScheduleSpec(0.1, optimizer="Adam", optimizer_config={"momentum": 0.9}), "use `beta_1`"),
    (lambda: ScheduleSpec(0.1, optimizer_config={"nesterov": True, "colour": 1}), "cannot build SGD"),
    (lambda: ScheduleSpec(0.1, momentum=1.5), "Argument `momentum` must be in [0, 1]"),
]


@pytest.mark.backends
def test_bad_specs_are_refused():
    for make, message in BAD_SPECS:
        with pytest.raises(ConfigError) as info:
            make()
        assert message in str(info.value)


# --------------------------------------------------------------------------- plot, docs
def test_plot_draws_the_table():
    import matplotlib

    matplotlib.use("Agg")
    spec = one_cycle_spec()
    fig = spec.plot()
    ax = fig.axes[0]
    lr_line = ax.get_lines()[0]
    np.testing.assert_array_equal(lr_line.get_ydata(), spec.table()["lr"].to_numpy())
    epoch_lines = [line for line in ax.get_lines()[1:] if list(line.get_xdata()) == [line.get_xdata()[0]] * 2]
    assert [line.get_xdata()[0] for line in epoch_lines] == list(range(10, 100, 10))
    momentum_line = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(momentum_line.get_ydata()[[0, 24]], [0.95, 0.85], rtol=1e-6)

    from matplotlib.figure import Figure

    given = Figure().add_subplot()
    assert ScheduleSpec(CyclicLR(0.01, 0.1, step_size_up=5)).plot(ax=given, steps=40) is given.figure
    assert len(given.get_lines()[0].get_ydata()) == 40
