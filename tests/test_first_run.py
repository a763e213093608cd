"""What a new user meets: a light install, a training that ends with its figure and with the
commands to use the model, each of which runs exactly as printed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import run_cli, write_corpus

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("tensorflow", "tensorboard", "torch", "jax", "pytest", "jupyterlab")


def requirement_names(requirements: list[str]) -> set[str]:
    return {
        r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        for r in requirements
    }


def test_a_plain_install_brings_no_framework_and_every_framework_is_an_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = requirement_names(project["dependencies"])
    assert core.isdisjoint(FRAMEWORKS), core
    assert "matplotlib" in core  # make train ends with a figure
    extras = {
        name: requirement_names(reqs) for name, reqs in project["optional-dependencies"].items()
    }
    assert "tensorflow" in extras["tf"] and "torch" in extras["torch"]


def test_make_train_installs_the_core_only_and_make_test_every_extra():
    makefile = (REPO / "Makefile").read_text()
    core_rule = makefile.split("$(CORE): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    full_rule = makefile.split("$(FULL): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e .\n" in core_rule + "\n"
    assert "tf" in full_rule and "torch" in full_rule and "dev" in full_rule
    assert "\ntrain: $(CORE)\n" in makefile and "\ntest: $(FULL)\n" in makefile


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_runs_ruff_and_mypy_before_the_tests():
    """CI runs `make test`: its lint, format check and type check come first, so a finding
    fails it before any test runs."""
    planned = subprocess.run(
        ["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()

    def first(command: str) -> int:
        return next(i for i, line in enumerate(planned) if command in line)

    checks = ["ruff check src tests benchmarks notebooks"]
    checks += ["ruff format --check src tests benchmarks notebooks", "python -m mypy"]
    assert [first(c) for c in checks] == sorted(first(c) for c in checks)
    assert first(checks[-1]) < first("python -m pytest")
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["files"] == ["src"]


def next_commands(stdout: str) -> list[str]:
    lines = stdout.split("\nnext:\n", 1)[1].splitlines()
    return [line.split("   #")[0].strip() for line in lines if line.startswith("  ")]


def test_training_ends_with_its_figure_and_commands_that_run_as_printed(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--epochs",
        "2",
        "--out",
        "run",
        "--log-every",
        "5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    figure_line = next(line for line in result.stdout.splitlines() if line.startswith("figure: "))
    figure = tmp_path / figure_line.split()[1]
    assert figure == tmp_path / "run" / "curves.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    commands = next_commands(result.stdout)
    assert [c.split(" -m ptb_lstm ")[1].split()[0] for c in commands] == [
        "generate",
        "score",
        "evaluate",
        "plot",
    ]
    for command in commands:
        ran = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
        assert ran.returncode == 0, (command, ran.stderr)
        assert ran.stdout.strip(), command
    assert (tmp_path / "run" / "curves-log.png").is_file()  # the printed plot command wrote it


def test_a_run_stopped_by_max_steps_prints_its_resume_command_first(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--max-steps",
        "3",
        "--out",
        "run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    resume = next_commands(result.stdout)[0]
    assert resume.endswith(" train --resume run")
    ran = subprocess.run(resume, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert "resuming" in ran.stdout


def test_the_command_is_spelled_as_it_was_run():
    """Run through a script path that is not on the PATH, the advice names that path."""
    code = (
        "import sys; sys.argv[0] = 'venv-x/bin/ptb-lstm'; "
        "from ptb_lstm.cli import options; print(options.program())"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": "/nonexistent"},
    )
    assert shown.stdout.strip() == "venv-x/bin/ptb-lstm", shown.stderr
