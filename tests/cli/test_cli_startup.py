"""The command line answers --help, --version and usage errors without loading TensorFlow,
keeps TensorFlow's C++ start-up lines quiet unless asked, and `import lrsearch` still
registers the schedules and optimizers for `keras.saving`.

Real processes: what is imported is a property of a fresh interpreter. How long the
answers take is measured by `scripts/bench_cli_startup.py`, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lrsearch.cli.main import main
from tests.support import ROOT

HEAVY = ("tensorflow", "keras", "optuna", "pandas", "matplotlib")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), *extra.pop("PYTHONPATH", "").split(os.pathsep)]).rstrip(os.pathsep))
    env.update(extra)
    return env


def _console_script(*argv: str) -> dict:
    """What the `lrsearch` console script does (`lrsearch_main:run` calls `main`), then which heavy
    modules the process holds."""
    script = textwrap.dedent(
        f"""
        import json, sys
        import lrsearch_main
        code = lrsearch_main.main({list(argv)!r})
        print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=_env(),
                          timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "out": proc.stdout, "err": proc.stderr}


@pytest.mark.parametrize(
    "argv,code,says",
    [
        (("--help",), 0, "usage: lrsearch [-h]"),
        (("--version",), 0, "lrsearch 0.1.0"),
        (("auto", "--help"), 0, "--trials N"),
        (("bogus",), 2, "lrsearch: error: argument COMMAND: invalid choice: 'bogus'"),
        (("auto",), 2, "lrsearch: error: the following arguments are required: MODEL_FILE"),
        (("tune", "model.py", "--epochs", "0"), 2, "lrsearch: error: argument --epochs: must be at least 1, got 0"),
    ],
)
def test_console_script_answers_without_tensorflow(argv, code, says):
    result = _console_script(*argv)
    assert result["code"] == code
    assert says in result["out"] + result["err"]
    assert result["heavy"] == []


def test_python_m_lrsearch_help_imports_no_tensorflow():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lrsearch", "--help"], capture_output=True,
                          text=True, cwd=ROOT, env=_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: lrsearch")
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "lrsearch.cli.main" in imported
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


def test_deferred_command_line_still_registers_schedules(tmp_path):
    """A command run by the console script loads a saved schedule (registered classes) and
    TensorFlow's start-up lines stay off stderr."""
    import lrsearch

    sched = lrsearch.schedules.OneCycle(max_lr=0.1, total_steps=40)
    lrsearch.ScheduleSpec(sched, optimizer="SGD", momentum=sched.momentum_schedule(), steps_per_epoch=4,
                          epochs=10).save(tmp_path / "schedule.json")
    result = _console_script("plot", str(tmp_path / "schedule.json"), "-o", str(tmp_path / "s.png"))
    assert result["code"] == 0, result["err"]
    assert result["out"].splitlines()[0] == str(tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")
    assert result["err"] == ""


def test_other_python_m_targets_import_lrsearch_eagerly(tmp_path):
    """`python -m userpkg` whose package imports lrsearch: the schedules are registered as
    soon as `import lrsearch` returns (only lrsearch's own -m defers them)."""
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import lrsearch, keras\n"
        "REGISTERED = keras.saving.get_registered_object('lrsearch>OneCycle') is not None\n"
    )
    (pkg / "__main__.py").write_text("import userpkg\nprint(userpkg.REGISTERED)\n")
    proc = subprocess.run([sys.executable, "-m", "userpkg"], capture_output=True, text=True, cwd=tmp_path,
                          env=_env(PYTHONPATH=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize(
    "argv,given,expected",
    [
        (["--version"], None, "3"),  # silenced by default
        (["--debug", "--version"], None, None),  # --debug: TensorFlow's own default
        (["--version"], "1", "1"),  # the user's level is kept
    ],
)
def test_tensorflow_log_level(monkeypatch, argv, given, expected):
    if given is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", given)
    assert main(argv) == 0
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == expected


@pytest.mark.parametrize("code,torn_down", [(0, True), (1, True), (130, False), (143, False)])
def test_the_console_script_ends_at_once_after_an_interrupt_and_keeps_its_output(code, torn_down):
    """After Ctrl-C / SIGTERM (130, 143) the process ends without the interpreter's teardown
    (where TensorFlow's threads can crash it), with what it printed flushed; other statuses
    end as `sys.exit` ends them, atexit handlers and all."""
    script = textwrap.dedent(
        f"""
        import atexit, sys
        import lrsearch_main
        lrsearch_main.main = lambda argv=None: {code}
        atexit.register(lambda: print("torn down", flush=True))
        print("said before", end="")
        print("line on stderr", file=sys.stderr, end="")
        lrsearch_main.run()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env=_env(TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
    assert proc.returncode == code
    assert proc.stdout == "said before" + ("torn down\n" if torn_down else "")
    assert "line on stderr" in proc.stderr
