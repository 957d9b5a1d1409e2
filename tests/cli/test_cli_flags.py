"""The command line's flags: a help line for each, defaults from one place stated one way,
the export's input and output, and which study flags the user typed."""

from __future__ import annotations

import argparse

import pytest

from lrsearch.cli.commands import explicit_study_flags
from lrsearch.cli.main import build_parser, main
from lrsearch.core.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_MAX_LR,
    DEFAULT_MIN_LR,
    DEFAULT_RANGE_STEPS,
    DEFAULT_TRIALS,
)

COMMANDS = ("auto", "range-test", "suggest", "tune", "export", "plot", "dashboard", "report")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _help(capsys, command: str) -> str:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    return " ".join(out.split())  # argparse wraps lines where it likes


def test_every_command_and_flag_has_a_help_line():
    parser = build_parser()
    commands = _subparsers()
    assert sorted(commands) == sorted(COMMANDS)
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in [("lrsearch", parser), *commands.items()]
               for a in p._actions if not isinstance(a, argparse._SubParsersAction) and not (a.help or "").strip()]
    assert missing == []
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert all((choice.help or "").strip() for choice in sub._choices_actions)


@pytest.mark.parametrize("command", ["auto", "tune"])
def test_study_commands_state_the_defaults_they_use(capsys, command):
    text = _help(capsys, command)
    assert f"--min-lr LR first rate of the range test (default {DEFAULT_MIN_LR:g})" in text
    assert f"--max-lr LR last rate of the range test (default {DEFAULT_MAX_LR:g})" in text
    assert f"of the range test, run exactly (default {DEFAULT_RANGE_STEPS})" in text
    assert f"epochs per trial (default {DEFAULT_EPOCHS})" in text
    assert f"trials this run adds to the study (default {DEFAULT_TRIALS})" in text
    assert f"recorded in schedule.json (default {DEFAULT_BATCH_SIZE})" in text
    assert "1e-7" not in text and "defaults:" not in text and "default: the finder's" not in text
    args = build_parser().parse_args([command, "model.py"])
    assert (args.min_lr, args.max_lr, args.steps) == (DEFAULT_MIN_LR, DEFAULT_MAX_LR, DEFAULT_RANGE_STEPS)
    assert (args.epochs, args.trials) == (None, None)  # not typed: StudyOptions' defaults apply


def test_the_range_test_command_states_its_own_steps(capsys):
    text = _help(capsys, "range-test")
    assert f"first rate of the range test (default {DEFAULT_MIN_LR:g})" in text
    assert "run exactly (default: one pass over the data, extended while the curve cannot be read)" in text
    args = build_parser().parse_args(["range-test", "model.py"])
    assert (args.min_lr, args.steps) == (DEFAULT_MIN_LR, None)


def test_the_study_flags_the_user_typed_are_told_apart_from_defaults():
    parse = build_parser().parse_args
    assert explicit_study_flags(parse(["auto", "m.py", "--budget", "20"])) == {}
    assert explicit_study_flags(parse(["auto", "m.py", "--budget", "20", "--trials", "5"])) == {"trials": 5}
    typed = parse(["auto", "m.py", "--epochs", str(DEFAULT_EPOCHS), "--trials", "3"])
    assert explicit_study_flags(typed) == {"epochs": DEFAULT_EPOCHS, "trials": 3}  # a default typed still counts


def test_export_names_its_input_and_output(capsys, tmp_path):
    parse = build_parser().parse_args
    assert parse(["export", "--from", "runs/digits"]).run_folder == "runs/digits"
    assert parse(["export", "--out", "runs/digits", "-o", "x.json"]).run_folder == "runs/digits"
    assert "--from RUN_FOLDER, --out RUN_FOLDER run folder of the study" in _help(capsys, "export")
    code, out, err = run(capsys, "export", "--out", tmp_path / "x.json")
    assert (code, out) == (1, "")
    assert err == (f"lrsearch: error: --from/--out names the run folder to export from, not the file to write; "
                   f"write {tmp_path / 'x.json'} with -o: lrsearch export --from runs/NAME -o {tmp_path / 'x.json'}\n")
    code, _, err = run(capsys, "export", "--from", tmp_path)
    assert code == 1 and err.count("\n") == 1 and f"{tmp_path} holds no study.db" in err
    code, _, err = run(capsys, "export")
    assert (code, err) == (1, "lrsearch: error: name the study to export with --from RUN_FOLDER (or --storage URL)\n")
