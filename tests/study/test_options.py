"""Study options: built once, checked once, the same through `tune`, `auto` and the CLI."""

from __future__ import annotations

import json

import pytest
from tests.support.study_workload import SUGGESTION, build_model, digits

from lrsearch.core.errors import ConfigError
from lrsearch.core.defaults import DEFAULT_BATCH_SIZE
from lrsearch.study.options import StudyOptions, infer_direction
from lrsearch.study.tune import tune


def test_defaults_and_what_they_resolve_to():
    options = StudyOptions()
    assert (options.epochs, options.trials, options.pruner, options.backend) == (10, 20, "median", "optuna")
    assert options.direction == "minimize"  # inferred from val_loss once, here
    assert options.array_batch_size == DEFAULT_BATCH_SIZE == 32
    assert StudyOptions(batch_size=8).array_batch_size == 8
    assert dict(StudyOptions(min_lr=1e-5, max_lr=1.0, range_steps=50, mode="linear").range_test_kwargs()) == {
        "min_lr": 1e-5, "max_lr": 1.0, "steps": 50, "mode": "linear", "batch_size": 32}


def test_every_family_of_the_space_is_accepted():
    assert StudyOptions(families=("wsd", "schedule_free")).families == ("wsd", "schedule_free")
    assert StudyOptions(families="cyclic").families == ("cyclic",)


def test_pruner_none_is_the_name_none():
    assert StudyOptions(pruner=None).pruner == "none"
    assert StudyOptions(pruner="none").pruner == "none"


def test_direction_follows_the_metric_unless_given():
    assert StudyOptions(metric="val_accuracy").direction == "maximize" == infer_direction("val_accuracy")
    assert StudyOptions(metric="val_accuracy", direction="minimize").direction == "minimize"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "Argument `epochs` must be an integer >= 1. Received: epochs=0"),
        ({"trials": 2.5}, "Argument `trials` must be an integer >= 1. Received: trials=2.5"),
        ({"trials": True}, "Argument `trials` must be an integer >= 1. Received: trials=True"),
        ({"max_trials": 0}, "Argument `max_trials` must be an integer >= 1 or None. Received: max_trials=0"),
        ({"batch_size": -1}, "Argument `batch_size` must be an integer >= 1 or None. Received: batch_size=-1"),
        ({"min_lr": 0.1, "max_lr": 0.1}, "Argument `min_lr` must be below max_lr=0.1. Received: min_lr=0.1"),
        ({"min_lr": -1.0}, "Argument `min_lr` must be a number > 0. Received: min_lr=-1.0"),
        ({"mode": "log"}, "Argument `mode` must be one of ('exp', 'linear'). Received: mode='log'"),
        ({"direction": "up"}, "Argument `direction` must be 'minimize', 'maximize' or None. Received: direction='up'"),
        ({"families": ()}, "Argument `families` must be at least one of"),
        ({"families": ("one_cycle", "step")}, "unknown family 'step'"),
        ({"pruner": "asha"}, "unknown pruner 'asha'"),
        ({"backend": "ray"}, "unknown backend 'ray'"),
        ({"range_steps": 10**9}, "Argument `range_steps` must be at most 1000000 (--steps): a few hundred steps "
                                 "find the bounds. Received: range_steps=1000000000"),
        ({"study_name": "  "}, "Argument `study_name` must be a non-empty name (--study). Received: study_name='  '"),
        ({"study_name": "a/b"}, "Argument `study_name` must be a plain name without '/' or '\\' (--study; it "
                                "names the run folder under runs/); use --out to choose the folder. "
                                "Received: study_name='a/b'"),
        ({"study_name": "x" * 130}, "Argument `study_name` must be at most 128 characters (--study; it names the run "
                                    "folder and the study's row in the storage). Received: study_name='"
                                    + "x" * 40 + "...' (130 characters)"),
    ],
)
def test_each_bad_option_is_one_line_in_keras_shape(kwargs, message):
    with pytest.raises(ConfigError) as info:
        StudyOptions(**kwargs)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_keywords_replace_fields_of_a_given_options_object():
    base = StudyOptions(epochs=3, trials=4, seed=7)
    options = StudyOptions.from_kwargs(base, trials=9)
    assert (options.epochs, options.trials, options.seed) == (3, 9, 7)
    assert StudyOptions.from_kwargs(base) is base
    with pytest.raises(ConfigError, match="unknown study option 'epoch'"):
        StudyOptions.from_kwargs(base, epoch=3)
    with pytest.raises(ConfigError, match="Argument `epochs` must be an integer >= 1"):
        StudyOptions.from_kwargs(base, epochs=0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"bounds": (0.5, 0.1)}, "Argument `bounds` must be (low, high) with 0 < low < high. Received: bounds=(0.5, 0.1)"),
        ({"bounds": (0.1,)}, "Argument `bounds` must be a pair (low, high) of rates"),
        ({"bounds": (0.01, 0.1), "suggestion": SUGGESTION}, "give either suggestion= or bounds=, not both"),
    ],
)
def test_tune_refuses_bad_bounds_before_any_trial(tmp_path, kwargs, message):
    train, val = digits(32, 16)
    with pytest.raises(ConfigError) as info:
        tune(build_model, train, validation_data=val, out_dir=tmp_path, study_name="s", **kwargs)
    assert str(info.value).startswith(message)
    assert not (tmp_path / "study.db").exists()


@pytest.mark.slow
def test_tune_inside_bounds_records_them_as_given(tmp_path):
    train, val = digits(128, 64)
    result = tune(build_model, train, validation_data=val, bounds=(0.01, 0.2), epochs=1, trials=2,
                  pruner="none", seed=0, study_name="b", out_dir=tmp_path)
    provenance = json.loads((tmp_path / "schedule.json").read_text())["provenance"]
    assert provenance["bounds"] == {"base_lr": 0.01, "max_lr": 0.2}
    assert "suggestion" not in provenance  # nothing measured, nothing invented
    for col in ("params_oc_max_lr", "params_clr_base_lr", "params_clr_max_lr"):
        if col in result.trials:
            values = result.trials[col].dropna()
            assert ((values >= 0.01 * (1 - 1e-9)) & (values <= 0.2 * (1 + 1e-9))).all()
