"""The range test, a momentum sweep and a study under `keras.distribution.DataParallel`
on 2 JAX host devices, against the same runs on one device.

Each test reads what `tests/support/jax_dp_worker.py` prints, run in a fresh process
with `KERAS_BACKEND=jax` and 2 host devices (the device count is fixed when JAX starts).
The model is Dense -> BatchNorm -> Dense on batches whose halves differ: on the mesh
BatchNorm still normalizes by the global batch's statistics (one program over all
devices), so every number must match the single-device run to float32 rounding.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.support import ROOT, SUPPORT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")

TWO_DEVICES = "the training batch of 15 samples does not split evenly over the 2 devices of the keras.distribution"


def _worker(case: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(SUPPORT / "jax_dp_worker.py"), case], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ranged() -> dict:
    return _worker("range")


@pytest.fixture(scope="module")
def studied() -> dict:
    return _worker("study")


@pytest.mark.slow
def test_the_curve_on_two_devices_is_the_one_device_curve(ranged):
    """Same rates, and each batch's loss (the global batch's mean) and the validation loss
    after each update as one device computes them on the same global batches."""
    one, two = ranged["one"], ranged["two"]
    assert ranged["shards"] == 2 and (one["replicas"], two["replicas"]) == (1, 2)
    assert len(two["loss"]) == 12
    np.testing.assert_array_equal(two["lr"], one["lr"])
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-5)
    # the step really got the batch split: 8 of the 16 rows on each device
    assert ranged["batch_spec"] == "P('batch', None)"
    assert ranged["shard_rows"] == [8, 8]


@pytest.mark.slow
def test_datasets_are_split_like_arrays(ranged):
    """A batched `tf.data.Dataset` and a `PyDataset` of the same batches give the arrays'
    6-step curve on the mesh."""
    kinds = ranged["kinds"]
    for name in ("dataset", "pydataset"):
        np.testing.assert_allclose(kinds[name], kinds["arrays"], rtol=1e-6, err_msg=name)
    assert len(kinds["arrays"]) == 6
    kind, message = ranged["odd_dataset"]  # its fourth batch, of 15, found when it comes
    assert kind == "ConfigError" and message.startswith(TWO_DEVICES)


@pytest.mark.slow
def test_restore_puts_the_weights_back_in_their_layouts(ranged):
    """Every model and optimizer variable is back bit for bit, each still laid out over
    both devices; without restore the trained weights keep those layouts too."""
    assert ranged["restored_equal"] is True
    assert ranged["restored_layouts"] is True
    assert ranged["devices_per_variable"] == [2]
    assert ranged["moved"] is True and ranged["kept_layouts"] is True


@pytest.mark.slow
def test_a_batch_the_devices_cannot_split_is_refused_in_one_line(ranged):
    kind, message = ranged["odd_batch"]
    assert kind == "ConfigError"
    assert message.startswith(TWO_DEVICES) and "multiple of 2" in message and "\n" not in message
    kind, message = ranged["odd_validation"]
    assert kind == "ConfigError"
    assert message.startswith("the validation batch of 15 samples does not split evenly over the 2 devices")


@pytest.mark.slow
def test_a_model_built_before_the_distribution_is_refused_in_one_line(ranged):
    """Its weights sit on one device while the step's state is laid out on two: jit's own
    error names shardings and device ids, lrsearch's the fix."""
    kind, message = ranged["built_before"]
    assert kind == "ConfigError"
    assert re.fullmatch(r"the model's variable '\w+/dense_\d+/kernel' was made before keras\.distribution"
                        r"\.set_distribution and sits on one device; set the distribution first, then build and "
                        r"compile the model", message), message


@pytest.mark.slow
def test_a_momentum_sweep_ranks_as_on_one_device(ranged):
    """The sweep rebuilds the optimizer for each value on the mesh; its ranking (values and
    each one's lowest smoothed loss) is the single-device ranking."""
    one, two = ranged["one"], ranged["two"]
    assert sorted(two["sweep_values"]) == [0.5, 0.9]
    assert two["sweep_values"] == one["sweep_values"]
    np.testing.assert_allclose(two["sweep_min_smooth_loss"], one["sweep_min_smooth_loss"], rtol=1e-5)


@pytest.mark.slow
def test_lrsearch_s_optimizers_train_on_the_mesh_as_on_one_device(studied):
    """8 steps of `fit` with each of lrsearch's optimizers (rate, and momentum where it
    takes one, on a one-cycle; Schedule-Free with warmup; Prodigy's estimate): the weights
    on the mesh are the single-device weights, and the optimizer's variables live on both
    devices."""
    one, two = studied["optimizers"]["one"], studied["optimizers"]["two"]
    assert sorted(two) == ["Adam", "AdamW", "ProdigyAdam", "RMSprop", "SGD", "ScheduleFreeAdamW", "ScheduleFreeSGD"]
    for name in two:
        assert (one[name]["devices"], two[name]["devices"]) == ([1], [2]), name
        for a, b in zip(two[name]["weights"], one[name]["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_a_copy_of_a_compiled_model_trains_on_the_mesh(studied):
    """`lrsearch.auto(model)` trains copies of the model: each is laid out on both devices
    and its first epoch's loss is the original's."""
    copy = studied["copy"]
    assert copy["devices"] == 2
    assert copy["loss"] == pytest.approx(copy["model_loss"], rel=1e-6)


@pytest.mark.slow
def test_a_study_trains_every_trial_on_the_mesh(studied):
    """2 trials of 2 epochs (4 global batches of 16 an epoch): both complete, each trains
    with its weights and optimizer state on both devices, the rate the compiled step reads
    at each of its 8 updates is the trial's one-cycle at that step (the schedule object
    evaluated apart, in the test), and the distribution
    is still set when the study returns."""
    out = studied
    assert out["state"] == ["COMPLETE", "COMPLETE"]
    assert out["distribution_after"] is True
    assert len(out["trials"]) == 2
    for trial in out["trials"]:
        assert trial["total_steps"] == 8 and len(trial["rates"]) == 8
        assert trial["kernel_devices"] == 2 and trial["optimizer_devices"] == [2]
        # float32's last places of the peak: the anneal's end is a difference of near terms
        np.testing.assert_allclose(trial["rates"], trial["expected"], rtol=1e-6, atol=1e-6 * max(trial["expected"]))
    assert out["trials"][0]["expected"] != out["trials"][1]["expected"]


@pytest.mark.slow
def test_a_study_refuses_batches_the_devices_cannot_split(studied):
    """A batch of 15, and 63 samples in batches of 16 (the last one 15), in one line
    each, before any trial trains."""
    kind, message = studied["odd_batch"]
    assert kind == "ConfigError"
    assert message.startswith("the batch of 15 samples does not split evenly over the 2 devices")
    kind, message = studied["odd_last"]
    assert kind == "ConfigError"
    assert message.startswith("the last batch of the training data of 15 samples does not split evenly over the 2")
