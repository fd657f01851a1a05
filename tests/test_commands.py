"""The commands: one spelling of every option (hyphens; the underscore spelling accepted but not shown), the
console scripts of pyproject.toml, and no ``sys.path`` edits anywhere."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rhmnet.cli_args import ArgumentParser
from tests.conftest import REPO, load_script

# every command of the package: module -> arguments of its build_parser
PACKAGE_PARSERS: dict[str, tuple[str, ...]] = {
    "rhmnet.engine.cli": ("video", "video_training"),
    "rhmnet.evaluation.davis": (),
    "rhmnet.evaluation.youtube": (),
    "rhmnet.segment": (),
    "rhmnet.demo.cli": (),
    "rhmnet.studio.server": (),
    "rhmnet.dataprep.splits": (),
    "rhmnet.dataprep.scribble_synthesis": (),
    "rhmnet.tools.reference_check": (),
}
SCRIPTS = sorted(p.stem for p in (REPO / "scripts").glob("*.py") if not p.name.startswith("_"))
CONSOLE_SCRIPTS = {"rhmnet-segment", "rhmnet-studio", "rhmnet-pretrain", "rhmnet-train", "rhmnet-eval-davis",
                   "rhmnet-eval-ytb", "rhmnet-synthesize-scribbles", "rhmnet-demo"}
AUTHORS_SCRIPTS = ["train_script_pretrain.py", "train_script_video_training.py", "eval_davis.py", "eval_ytb.py"]


def script_parser(name: str) -> Callable[[], argparse.ArgumentParser]:
    """``scripts/<name>.py``'s parser: its own ``build_parser``, or that of the package command it runs."""
    module = load_script(name)
    if hasattr(module, "build_parser"):
        return module.build_parser
    command = importlib.import_module(module.cli.__module__)  # a thin script: the package's command
    return command.build_parser


def all_parsers() -> Iterator[object]:
    """``pytest.param(name, make_parser)`` for each command of the package and each script."""
    for module, args in PACKAGE_PARSERS.items():
        make = lambda module=module, args=args: importlib.import_module(module).build_parser(*args)  # noqa: E731
        yield pytest.param(module, make, id=module)
    for name in SCRIPTS:
        yield pytest.param(f"scripts/{name}.py", lambda name=name: script_parser(name)(), id=f"scripts/{name}.py")


def with_subcommands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from with_subcommands(sub)


@pytest.mark.parametrize(("name", "make"), list(all_parsers()))
def test_every_option_is_spelt_with_hyphens_and_takes_the_underscore_spelling(
    name: str, make: Callable[[], argparse.ArgumentParser]
) -> None:
    for parser in with_subcommands(make()):
        assert isinstance(parser, ArgumentParser), f"{name}: not built with rhmnet.cli_args.ArgumentParser"
        text = parser.format_help()
        for flag in (s for s in parser._option_string_actions if s.startswith("--")):
            assert "_" not in flag, f"{name}: {flag} (spell options with hyphens)"
            if "-" not in flag[2:]:
                continue
            underscore = "--" + flag[2:].replace("-", "_")
            assert parser.hyphenated([underscore, "x", f"{underscore}=1"]) == [flag, "x", f"{flag}=1"]
            assert underscore not in text, f"{name}: --help lists {underscore}"


def test_only_own_options_are_respelt_and_nothing_after_a_bare_double_dash() -> None:
    parser = ArgumentParser()
    parser.add_argument("--max-iters", type=int)
    parser.add_argument("overrides", nargs="*")
    argv = ["--max_iters=3", "TRAIN.MAX_ITERS=5", "--other_flag", "--", "--max_iters"]
    assert parser.hyphenated(argv) == ["--max-iters=3", "TRAIN.MAX_ITERS=5", "--other_flag", "--", "--max_iters"]
    args = parser.parse_args(["--max_iters", "3", "TRAIN.MAX_ITERS=5", "--", "--max_iters"])
    assert (args.max_iters, args.overrides) == (3, ["TRAIN.MAX_ITERS=5", "--max_iters"])


def test_training_takes_the_launchers_and_the_old_spellings(monkeypatch) -> None:
    from rhmnet.engine.cli import parse_args

    args = parse_args("video", "video_training", ["--local_rank=1", "TRAIN.MAX_ITERS=5", "--max_iters", "3",
                                                  "--save_every", "2", "--no_progress"])
    assert (args.local_rank, args.max_iters, args.save_every, args.progress) == (1, 3, 2, False)
    assert args.overrides == ["TRAIN.MAX_ITERS=5"]
    monkeypatch.setattr(sys, "argv", ["train_script_video_training.py", "--local-rank=2"])  # no argv: sys.argv
    assert parse_args("video", "video_training").local_rank == 2


def test_the_authors_evaluation_command_lines_parse() -> None:
    from rhmnet.evaluation import davis, youtube

    args = davis.build_parser().parse_intermixed_args(
        ["--gpu", "0", "--set", "val", "--year", "17", "--config", "video_training", "--ckpt_num", "78",
         "--video_name", "bear", "--save_path", "out", "--with_bg", "--mask_init", "--davis_root", "D"])
    assert (args.ckpt_num, args.video_name, args.save_path, args.with_bg, args.mask_init, args.davis_root) == (
        78, "bear", "out", True, True, "D")
    args = youtube.build_parser().parse_intermixed_args(
        ["--set", "val", "--config", "video_training", "--ckpt_num", "71", "--size", "1000", "--no_zip"])
    assert (args.ckpt_num, args.size, args.no_zip) == (71, 1000, True)


def test_overrides_are_positional_and_opts_says_so(capsys) -> None:
    from rhmnet.evaluation import davis
    from rhmnet.evaluation.common import check_model_arguments

    parser = davis.build_parser()
    assert "--opts" not in parser.format_help()
    args = parser.parse_intermixed_args(["TEST.MAX_MEMORY_LENGTH=3", "--ckpt-num", "1"])
    assert args.overrides == ["TEST.MAX_MEMORY_LENGTH=3"] and args.opts == []
    check_model_arguments(parser, args)
    assert capsys.readouterr().err == ""
    args = parser.parse_intermixed_args(["--ckpt-num", "1", "--opts", "TEST.MAX_MEMORY_LENGTH=3"])
    assert args.opts == ["TEST.MAX_MEMORY_LENGTH=3"]
    check_model_arguments(parser, args)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "positionally" in err[0]


def console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> ``module:function``."""
    text = (REPO / "pyproject.toml").read_text()
    section = re.search(r"^\[project\.scripts\]\n(.*?)(?=^\[)", text, re.M | re.S)
    assert section is not None
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]+)"', section.group(1), re.M))


def test_every_console_script_names_a_function_of_the_package(capsys) -> None:
    scripts = console_scripts()
    assert CONSOLE_SCRIPTS <= scripts.keys()
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert module.startswith("rhmnet."), f"{name} -> {target}: not in the package"
        entry = getattr(importlib.import_module(module), function)
        assert callable(entry), name
        with pytest.raises(SystemExit) as stop:
            entry(["--help"])
        assert stop.value.code == 0 and "usage:" in capsys.readouterr().out, name


@pytest.mark.parametrize("script", AUTHORS_SCRIPTS)
def test_the_authors_scripts_start_from_another_folder(script, tmp_path) -> None:
    done = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]


SYS_PATH_EDIT = re.compile(
    r"\bsys\.path\s*(\.\s*(insert|append|extend|remove|pop|clear)\s*\(|\[[^\]]*\]\s*=|\+=|=(?!=))"
)
SKIPPED_FOLDERS = {".git", ".venv", "venv", "build", "dist", "node_modules", "__pycache__"}


def python_files() -> list[Path]:
    """The repository's Python files, outside hidden folders, virtual environments and build output."""
    return [p for p in REPO.rglob("*.py") if not any(
        part in SKIPPED_FOLDERS or part.startswith(".") for part in p.relative_to(REPO).parts[:-1])]


def test_no_python_file_edits_sys_path() -> None:
    """Scripts and tests import the installed package (CI and the README install the checkout)."""
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in python_files()
                 for n, line in enumerate(p.read_text().splitlines(), 1) if SYS_PATH_EDIT.search(line)]
    assert offenders == []
    assert REPO / "scripts" / "benchmark_model.py" in python_files()
    path = "sys.path"  # (spelt apart so that this file passes its own check)
    for edit in (".insert(0, 'here')", ".append(x)", " += ['a']", "[:0] = ['a']", " = []"):
        assert SYS_PATH_EDIT.search(path + edit), edit
    assert not SYS_PATH_EDIT.search(f"if {path} == old: print({path}[0])")
