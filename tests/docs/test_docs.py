"""The README and the pages under docs/ against the code they describe.

What a page states as a command or a format is read back from the code, so a change that
breaks a page fails here: every `lrsearch COMMAND --flag` against the parser
(`lrsearch.cli.main.build_parser`), docs/cli.md's synopsis against every option of every
command, its defaults, sweep values and exit statuses against the parser, `run.auto` and
`cli.main`; the scripts and files a page names against the checkout; every `lrsearch.x.y`
name against the package; every fenced `python` block compiled and its calls into
lrsearch against their signatures, the listed constructors against the classes; every
relative link against the files and headings it points to; the schedule.json example and
field table against what `ScheduleSpec` writes; the search space, study options and
trials columns against `lrsearch.study`; the layout table against the package and
`tests/test_layers.py`; the README's two CI blocks as `.ci/run` extracts them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from tests.support import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
COMMAND_BLOCKS = {"", "bash", "sh", "console", "text"}


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --------------------------------------------------------------------------- reading pages
def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, body, first line number) of every fenced block."""
    blocks, lang, body, start = [], None, [], 0
    for number, line in enumerate(text.splitlines(), 1):
        if lang is None and line.startswith("```"):
            lang, body, start = line[3:].strip(), [], number + 1
        elif lang is not None and line.startswith("```"):
            blocks.append((lang, "\n".join(body) + "\n", start))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"a fenced block opened on line {start - 1} is never closed"
    return blocks


def prose(text: str) -> str:
    """The page without its fenced blocks."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)


def code_spans(text: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", prose(text), flags=re.S)]


def command_lines(text: str) -> list[str]:
    """Inline code spans and the lines of shell and text blocks (continuations joined,
    comments and `&&` chains split off)."""
    lines = list(code_spans(text))
    for lang, body, _ in fenced_blocks(text):
        if lang in COMMAND_BLOCKS:
            for line in body.replace("\\\n", " ").splitlines():
                lines += [part.split(" #")[0] for part in line.split("&&")]
    return lines


def python_blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for lang, body, line in fenced_blocks(page.read_text()):
            if lang == "python":
                found.append((f"{_name(page)}:{line}", body))
    return found


# --------------------------------------------------------------------------- the parser
@cache
def parser() -> argparse.ArgumentParser:
    from lrsearch.cli.main import build_parser

    return build_parser()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in p._actions for s in a.option_strings}


FLAG = re.compile(r"(?<![\w\-./=])(--?[A-Za-z][\w-]*)")
COMMAND = re.compile(r"(?:^|[\s(])lrsearch\s+([\w-]+|--?[\w-]+)(.*)")


def named_commands() -> list[tuple[str, str, list[str]]]:
    """(page, command, flags) of every `lrsearch COMMAND ...` the pages show."""
    found = []
    for page in PAGES:
        for line in command_lines(page.read_text()):
            m = COMMAND.search(line)
            if m is None:
                continue
            command, rest = m.groups()
            if command.startswith("-"):
                found.append((_name(page), "", FLAG.findall(command + rest)))
            else:
                found.append((_name(page), command, FLAG.findall(rest)))
    return found


def test_pages_name_commands():
    assert {c for _, c, _ in named_commands()} >= {"auto", "tune", "export", "range-test"}


def test_every_named_command_and_flag_exists():
    commands = _subparsers()
    wrong = []
    for page, command, flags in named_commands():
        if command and command not in commands:
            wrong.append(f"{page}: `lrsearch {command}` is no command (commands: {', '.join(commands)})")
            continue
        options = _options(commands[command] if command else parser())
        wrong += [f"{page}: `lrsearch {command}` has no option {flag}" for flag in flags if flag not in options]
    assert not wrong, "\n".join(wrong)


def test_bare_flags_are_options_of_some_command():
    """A flag a page names on its own (`--budget 48`, `-q`) belongs to the command line."""
    every = set(_options(parser()))
    for sub in _subparsers().values():
        every |= set(_options(sub))
    wrong = []
    for page in PAGES:
        for span in code_spans(page.read_text()):
            if span.startswith("-"):
                wrong += [f"{_name(page)}: `{span}`" for flag in FLAG.findall(span.split(" ")[0]) if flag not in every]
    assert not wrong, "flags no lrsearch command has:\n" + "\n".join(wrong)


def _synopsis() -> str:
    return next(body for lang, body, _ in fenced_blocks((DOCS / "cli.md").read_text()) if lang == "text")


def test_cli_synopsis_lists_every_option_of_every_command():
    """docs/cli.md's synopsis names each command's options exactly: a flag added to the
    parser, or taken away, fails here until the page follows."""
    lines, groups, name = {}, {}, None
    for line in _synopsis().splitlines():
        if m := re.match(r"lrsearch ([\w-]+)\s(.*)", line):
            lines[m.group(1)], name = m.group(2), None
        elif m := re.match(r"([A-Z]+): (.*)", line):
            name = m.group(1)
            groups[name] = m.group(2)
        elif line.startswith(" ") and name:
            groups[name] += " " + line.strip()
        elif line.startswith("every command:"):
            groups["*"], name = line.split(":", 1)[1].split("lrsearch")[0], None
    commands = _subparsers()
    assert sorted(lines) == sorted(commands), "the synopsis shows each command once"
    wrong = []
    for command, line in lines.items():
        text = line + " " + groups["*"]
        text += " ".join(groups[g] for g in re.findall(r"\[([A-Z]+)\]", line))
        named = set(FLAG.findall(text))
        options = _options(commands[command])
        wrong += [f"lrsearch {command}: {flag} is no option" for flag in sorted(named - set(options))]
        for action in {id(a): a for a in options.values()}.values():
            if action.option_strings and action.dest != "help" and not named & set(action.option_strings):
                wrong.append(f"lrsearch {command}: {'/'.join(action.option_strings)} is missing")
    assert not wrong, "docs/cli.md's synopsis against the parser:\n" + "\n".join(wrong)


def _stated_default(command: str, flag: str):
    """What `lrsearch COMMAND` takes when `flag` is not given: the parsed value, or where
    that is left None for the library to fill, the `(default X)` its help states."""
    sub = _subparsers()[command]
    action = _options(sub)[flag]
    needs = [command] + (["x.py"] if any(a.dest == "model_file" for a in sub._actions) else [])
    value = getattr(parser().parse_args(needs), action.dest)
    if value is None and (m := re.search(r"\(default:? ([^)]*)\)", action.help or "")):
        return m.group(1)
    return value


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _same(cell: str, value) -> bool:
    """The page's cell states `value`: the same number, the same word, or, for a default
    that help describes in words, words too."""
    if _number(value) is not None:
        return _number(cell) == _number(value)
    return cell == str(value) or (" " in str(value) and _number(cell.split(" ")[0]) is None)


def test_cli_defaults_table_matches_the_parser():
    """docs/cli.md's table of defaults, command by command, against the parser."""
    header, rows = None, []
    for line in (DOCS / "cli.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| flag |"):
            header = [re.findall(r"`([\w-]+)`", c) for c in cells[1:]]
        elif header and line.startswith("| `-"):
            rows.append(cells)
        elif header and rows and not line.startswith("|"):
            break
    assert header and rows, "docs/cli.md has a table of defaults"
    wrong = []
    for flag, *values in rows:
        flag = flag.strip("`")
        for commands, cell in zip(header, values):
            for command in commands:
                if flag not in _options(_subparsers()[command]):
                    if cell:
                        wrong.append(f"lrsearch {command} has no {flag}")
                    continue
                stated = _stated_default(command, flag)
                if stated is None:
                    if not cell or _same(cell.split(" ")[0], 0):
                        wrong.append(f"lrsearch {command} {flag}: no default, the page says {cell!r}")
                elif not _same(cell, stated):
                    wrong.append(f"lrsearch {command} {flag}: default {stated!r}, the page says {cell!r}")
    assert not wrong, "\n".join(wrong)


def test_cli_page_states_the_sweep_values():
    """The values `auto` sweeps, as docs/cli.md states them, are `lrsearch.run.auto`'s."""
    from lrsearch.run.auto import MOMENTUM_VALUES, WEIGHT_DECAY_VALUES

    text = " ".join((DOCS / "cli.md").read_text().split())
    m = re.search(r"sweeps of momentum ([\d./]+) and weight decay ([\de./-]+)", text)
    assert m, "docs/cli.md states the values auto sweeps"
    assert [float(v) for v in m.group(1).split("/")] == list(MOMENTUM_VALUES)
    assert [float(v) for v in m.group(2).split("/")] == list(WEIGHT_DECAY_VALUES)


def test_cli_page_exit_statuses_are_mains():
    """docs/cli.md's exit statuses are `lrsearch.cli.main`'s (SIGTERM: 128 + its number)."""
    import signal

    from lrsearch.cli import main

    statuses = {int(line.split("|")[1]) for line in (DOCS / "cli.md").read_text().splitlines()
                if re.match(r"\| \d+ \|", line)}
    codes = {main.EXIT_OK, main.EXIT_ERROR, main.EXIT_USAGE, main.EXIT_INTERNAL, main.EXIT_INTERRUPTED,
             128 + signal.SIGTERM}
    assert statuses == codes, f"exit statuses on the page {sorted(statuses)}, in lrsearch.cli.main {sorted(codes)}"


# --------------------------------------------------------------------------- files, scripts, names
PATH = re.compile(r"(?<![\w/.-])((?:tests|scripts|studies|lrsearch|docs|\.ci)/[\w/.-]*[\w/])")
SCRIPT = re.compile(r"(?:python\s+)?(?:scripts/([\w/]+)\.py|-m\s+scripts\.([\w.]+))(.*)")


def test_named_files_exist():
    missing = []
    for page in PAGES:
        for line in command_lines(page.read_text()):
            missing += [f"{_name(page)}: {p}" for p in PATH.findall(line) if not (ROOT / p).exists()]
    assert not missing, "files the pages name that are not in the checkout:\n" + "\n".join(missing)


def test_script_flags_exist():
    """`scripts/X.py --flag` (or `python -m scripts.X --flag`): the script takes that flag."""
    wrong = []
    for page in PAGES:
        for line in command_lines(page.read_text()):
            m = SCRIPT.search(line)
            if m is None:
                continue
            path = ROOT / "scripts" / ((m.group(1) or m.group(2).replace(".", "/")) + ".py")
            if not path.exists():
                wrong.append(f"{_name(page)}: {path.relative_to(ROOT)} does not exist")
                continue
            source = path.read_text()
            wrong += [f"{_name(page)}: {path.name} takes no {flag}" for flag in FLAG.findall(m.group(3))
                      if f'"{flag}"' not in source]
    assert not wrong, "\n".join(wrong)


def _resolve(dotted: str):
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attribute in parts[i:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


DOTTED = re.compile(r"(?<![\"'\w.>/])lrsearch(?:\.[A-Za-z_]\w*)+(?![\"'\w])")


def test_named_modules_and_names_exist():
    """`lrsearch.rangetest.finder`, `lrsearch.optimizers.rebuild`: where a page says a name
    lives, it lives."""
    wrong = []
    for page in PAGES:
        for span in code_spans(page.read_text()):
            for dotted in DOTTED.findall(span):
                try:
                    _resolve(dotted)
                except (ImportError, AttributeError):
                    wrong.append(f"{_name(page)}: {dotted}")
    assert not wrong, "names the pages place where they are not:\n" + "\n".join(wrong)


# --------------------------------------------------------------------------- python blocks
@pytest.mark.parametrize("where, body", python_blocks(), ids=[w for w, _ in python_blocks()])
def test_python_block_compiles(where, body):
    compile(body, where, "exec")


def _lrsearch_calls(tree: ast.AST):
    """(dotted name, keyword names, line) of each call of an lrsearch name in `tree`."""
    aliases = {"lrsearch": "lrsearch"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lrsearch":
            aliases |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name: a.name for a in node.names if a.name.split(".")[0] == "lrsearch"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain, func = [], node.func
        while isinstance(func, ast.Attribute):
            chain.insert(0, func.attr)
            func = func.value
        if isinstance(func, ast.Name) and func.id in aliases:
            yield ".".join([aliases[func.id], *chain]), [k.arg for k in node.keywords if k.arg], node.lineno


@pytest.mark.parametrize("where, body", python_blocks(), ids=[w for w, _ in python_blocks()])
def test_python_block_calls_match_signatures(where, body):
    """Each lrsearch function or class a block calls exists and takes the keywords shown."""
    wrong = []
    for dotted, keywords, line in _lrsearch_calls(ast.parse(body)):
        try:
            target = _resolve(dotted)
        except (ImportError, AttributeError):
            wrong.append(f"line {line}: {dotted} does not exist")
            continue
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            continue
        wrong += [f"line {line}: {dotted} takes no {k}=" for k in keywords if k not in parameters]
    assert not wrong, f"{where}:\n" + "\n".join(wrong)


# --------------------------------------------------------------------------- numbers the pages state
def test_range_test_page_states_the_finder_rounds():
    """What docs/range-test.md says `steps=None` does, against `lrsearch.rangetest.finder`."""
    from lrsearch.rangetest import finder

    text = " ".join((DOCS / "range-test.md").read_text().split())
    assert f"clipped to {finder.DEFAULT_MIN_STEPS}-{finder.DEFAULT_MAX_STEPS} steps" in text
    assert f"up to {finder.MAX_ROUNDS} rounds in all" in text
    assert f"{finder.GROWTH}x the steps" in text


def test_suggestions_page_names_every_problem_code():
    from lrsearch.rangetest.analysis import PROBLEMS, default_margin

    text = (DOCS / "suggestions.md").read_text()
    codes = re.search(r"names each with a code \(([^)]*)\)", " ".join(text.split()))
    assert codes and re.findall(r"`(\w+)`", codes.group(1)) == list(PROBLEMS)
    margins = re.search(r"(\S+) for SGD with momentum .*?, (\S+) for adaptive optimizers", " ".join(text.split()))
    assert margins and (float(margins.group(1)), float(margins.group(2))) == (default_margin("SGD"),
                                                                                default_margin("Adam"))


def _table_rows(page: Path, first_header: str) -> dict[str, list[str]]:
    """The rows of the table whose first column is headed `first_header`, by the
    backticked names of their first cell."""
    rows, inside = {}, False
    for line in page.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith(f"| {first_header} |"):
            inside = True
        elif inside and line.startswith("|"):
            for name in re.findall(r"`(\w+)`", cells[0]):
                rows[name] = cells[1:]
        elif inside:
            break
    return rows


def test_studies_page_search_space_is_the_space():
    """docs/studies.md's search-space table: every parameter `SearchSpace` samples, the
    fixed ranges and word lists as the space draws them; the families as the study knows them."""
    from lrsearch.study.space import ALL_FAMILIES, FAMILIES, SearchSpace

    def space(lo, hi, steps, decays):  # two spaces: what differs between them comes from the inputs
        return SearchSpace(base_lr=lo, max_lr=hi, steps_per_epoch=steps, epochs=8, families=ALL_FAMILIES,
                           weight_decay_candidates=decays, label_smoothing=True, groups=2, group_ratio=lo * 100)

    page = DOCS / "studies.md"
    rows = _table_rows(page, "parameter")
    params = space(1e-3, 1e-1, 10, (0.0, 1e-4)).params()
    other = {p.name: p for p in space(1e-4, 1.0, 37, (1e-5, 1e-3)).params()}
    assert set(rows) == {p.name for p in params}, "the table lists the parameters the space samples"
    wrong = []
    for p in params:
        cell = rows[p.name][-1]
        numbers = {float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?", cell)}
        if p.kind == "categorical" and p.choices == other[p.name].choices and p.name != "family":
            wrong += [f"{p.name}: {c}" for c in p.choices
                      if str(c) not in cell and (not isinstance(c, float) or c not in numbers)]
        elif p.kind != "categorical" and (p.low, p.high) == (other[p.name].low, other[p.name].high):
            wrong += [f"{p.name}: {b}" for b in (p.low, p.high) if float(b) not in numbers]
    assert not wrong, "values the space draws that the table does not state:\n" + "\n".join(wrong)
    families = re.search(r"names any\s+of ([^;]*); the default is `([\w,]+)`", page.read_text())
    assert families, "docs/studies.md names the families and their default"
    assert re.findall(r"`(\w+)`", families.group(1)) == list(ALL_FAMILIES)
    assert families.group(2) == ",".join(FAMILIES)


def test_studies_page_lists_every_study_option():
    import dataclasses

    from lrsearch.study.options import StudyOptions

    text = " ".join((DOCS / "studies.md").read_text().split())
    listed = re.search(r"The study's options \((.*?)\) form one frozen", text)
    assert listed, "docs/studies.md lists the study's options"
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == {f.name for f in dataclasses.fields(StudyOptions)}


def test_studies_page_names_the_trials_columns():
    """The columns docs/studies.md gives for `result.trials` are those of `trials_frame`."""
    import optuna

    from lrsearch.study.results import trials_frame

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("oc_max_lr", 0.01, 0.1), n_trials=1)
    columns = [c if not c.startswith("params_") else "params_<name>" for c in trials_frame(study.trials).columns]
    text = " ".join((DOCS / "studies.md").read_text().split())
    listed = re.search(r"`result\.trials`: `([^`]*)`", text)
    assert listed and [c.strip(" .") for c in listed.group(1).split(",")] == list(dict.fromkeys(columns))


def _signature_listings() -> list[tuple[str, str]]:
    """(page, call) of every constructor a page lists with its defaults: the first cells
    of docs/schedules.md's table, and the blocks of docs/optimizers.md ending in
    `**keras_kwargs`."""
    found = []
    for line in (DOCS / "schedules.md").read_text().splitlines():
        if m := re.match(r"\| `(\w+\(.*?\))` \|", line):
            found.append(("docs/schedules.md", m.group(1)))
    for lang, body, _ in fenced_blocks((DOCS / "optimizers.md").read_text()):
        if lang == "python" and "**keras_kwargs" in body:
            tree = ast.parse(body)
            found += [("docs/optimizers.md", ast.unparse(n.value)) for n in tree.body if isinstance(n, ast.Expr)]
    return found


@pytest.mark.parametrize("page, listing", _signature_listings(), ids=[c.split("(")[0] for _, c in _signature_listings()])
def test_listed_signatures_are_the_code(page, listing):
    """`OneCycle(max_lr, total_steps, pct_start=0.3, ...)`: the arguments in order, and
    each default, as the class takes them."""
    import lrsearch.optimizers
    import lrsearch.schedules

    call = ast.parse(listing, mode="eval").body
    name = call.func.id
    target = getattr(lrsearch.schedules, name, None) or getattr(lrsearch.optimizers, name)
    parameters = [p for p in inspect.signature(target).parameters.values() if p.kind is not p.VAR_KEYWORD]
    listed = [a.id for a in call.args] + [k.arg for k in call.keywords if k.arg]
    names = [p.name for p in parameters]
    if any(k.arg is None for k in call.keywords):  # `**keras_kwargs`: Keras' own optimizer arguments
        import keras

        rest = set(inspect.signature(keras.optimizers.SGD).parameters) - {"learning_rate", "momentum", "weight_decay"}
        names = names[:len(listed)] + [n for n in names[len(listed):] if n not in rest]
    assert listed == names, f"{page}: {name}'s arguments in order"
    for keyword in call.keywords:
        if keyword.arg:
            default = inspect.signature(target).parameters[keyword.arg].default
            assert ast.literal_eval(keyword.value) == default, f"{page}: {name}({keyword.arg}=) defaults to {default!r}"
    for arg in call.args:
        assert inspect.signature(target).parameters[arg.id].default is inspect.Parameter.empty


# --------------------------------------------------------------------------- links
def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    for line in prose(page.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.*)", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
    found = set()
    for base, n in seen.items():
        found |= {base} | {f"{base}-{i}" for i in range(1, n)}
    return found


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{_name(page)}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{_name(page)}: {target} (no heading #{anchor} in {path.name})")
    assert not broken, "\n".join(broken)


def test_readme_links_every_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in re.findall(r"\]\(([^)\s]+)\)", README.read_text())}
    orphans = [_name(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not orphans, f"pages the README's table of contents does not link: {orphans}"


# --------------------------------------------------------------------------- schedule.json
SCHEDULE_PAGE = DOCS / "schedule-json.md"


def _example() -> str:
    blocks = [body for lang, body, _ in fenced_blocks(SCHEDULE_PAGE.read_text()) if lang == "json"]
    assert blocks, "docs/schedule-json.md documents the format with an example file"
    return blocks[0]


@pytest.mark.backends
def test_schedule_json_example_loads(tmp_path):
    import json

    import lrsearch
    from lrsearch.export.spec import ScheduleSpec, load_schedule

    path = tmp_path / "schedule.json"
    path.write_text(_example())
    spec = load_schedule(path)
    assert spec.optimizer == "SGD" and spec.batch_size and spec.steps_per_epoch and spec.epochs
    assert spec.table().shape[0] == spec.steps_per_epoch * spec.epochs
    assert lrsearch.load_schedule is load_schedule and lrsearch.ScheduleSpec is ScheduleSpec
    written = spec.to_dict()
    example = json.loads(_example())
    assert {k: v for k, v in example.items() if k != "lrsearch_version"} == \
        {k: v for k, v in written.items() if k != "lrsearch_version"}, "the example is the file lrsearch writes"


def _field_table() -> dict[str, str]:
    rows = {}
    for line in SCHEDULE_PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and cells[0].startswith("`"):
            for field in re.findall(r"`(\w+)`", cells[0]):
                rows[field] = cells[1]
    return rows


def test_schedule_json_example_and_table_hold_every_field():
    """The example file and the field table name exactly the fields `ScheduleSpec` writes,
    and the version the table states is the one written."""
    import json

    from lrsearch.export.spec import ScheduleSpec

    written = ScheduleSpec(0.01, optimizer="SGD").to_dict()
    example = json.loads(_example())
    assert list(example) == list(written), "the example file has the fields, in order, that a spec writes"
    assert example["version"] == written["version"]
    table = _field_table()
    assert set(table) == set(written), f"the field table against the fields written: {sorted(table)} vs {sorted(written)}"
    assert f"`{written['version']}`" in table["version"], "the table states the format version written"


def test_schedule_json_table_names_every_optimizer_class():
    """The `optimizer` row names exactly the classes a schedule file may hold."""
    from lrsearch.optimizers.registry import SCHEDULABLE

    named = set(re.findall(r"`(\w+)`", _field_table()["optimizer"].split(" and `config`")[0]))
    assert named - {"class_name"} == set(SCHEDULABLE)


def test_readme_sample_ends_with_the_summary_fit_line():
    """The sample run's `next:` line is the one `lrsearch.run.summary` writes."""
    from types import SimpleNamespace

    from lrsearch.run.summary import fit_line

    sample = next(body for lang, body, _ in fenced_blocks(README.read_text()) if lang == "text")
    line = next(line for line in sample.splitlines() if "model.fit(" in line)
    sized = dict(re.findall(r"(batch_size|epochs)=(\d+)", line))
    spec = SimpleNamespace(batch_size=int(sized.get("batch_size", 0)) or None, epochs=int(sized["epochs"]))
    assert line.endswith(fit_line(spec)), f"the README's sample against summary.fit_line: {fit_line(spec)}"


# --------------------------------------------------------------------------- layout
def test_layout_table_follows_the_package():
    """docs/layout.md's table: the packages in the order tests/test_layers.py holds, each
    row naming every module of its package."""
    from tests.test_layers import PACKAGES

    rows = {}
    for line in (DOCS / "layout.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    assert tuple(rows) == PACKAGES, "the layout table lists the packages bottom first"
    missing = []
    for package in PACKAGES:
        folder = ROOT / "lrsearch" / package
        modules = {p.stem for p in folder.rglob("*.py") if p.stem not in {"__init__", "__main__"}}
        modules |= {p.parent.name for p in folder.rglob("*/__init__.py")}
        missing += [f"{package}.{m}" for m in sorted(modules - rows[package])]
    assert not missing, f"modules docs/layout.md does not name: {missing}"


# --------------------------------------------------------------------------- the CI blocks
def test_ci_extracts_the_readme_blocks():
    """`.ci/run` runs the fenced block after `<!-- ci:main -->` and `<!-- ci:test -->`; its
    own awk program pulls them out of the README whole."""
    script = (ROOT / ".ci" / "run").read_text()
    program = re.search(r"readme_block\(\) \{\n\s*awk -v m=\"<!-- ci:\$1 -->\" '(.*?)' README\.md", script, re.S)
    assert program, ".ci/run still defines readme_block with its awk program"
    text = README.read_text()
    for name, expected in (("main", "lrsearch auto "), ("test", "pytest ")):
        after = text.split(f"<!-- ci:{name} -->\n", 1)
        assert len(after) == 2, f"README has the marker ci:{name}"
        block = re.match(r"```bash\n(.*?)```", after[1], re.S)
        assert block, f"a fenced bash block follows ci:{name} at once"
        out = subprocess.run(["awk", "-v", f"m=<!-- ci:{name} -->", program.group(1), str(README)],
                             capture_output=True, text=True, check=True).stdout
        assert out == block.group(1) and expected in out
