"""benchmarks/engine_ab.py: the NumPy engine of this tree against the one of a git commit."""

import subprocess
import sys

import numpy as np
import pytest

from ptb_lstm.config import PRESETS
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params

from conftest import REPO

TOOL = REPO / "benchmarks" / "engine_ab.py"


def run(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=600
    )


def test_engine_ab_times_both_engines_on_each_size():
    """Against the last commit (whatever its engine), one row per size with both medians."""
    result = run("--baseline", "HEAD", "--sizes", "tiny", "--rounds", "2", "--steps", "1")
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("| tiny |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "HEAD"
    current, baseline = float(cells[2]), float(cells[3])
    assert current > 0 and baseline > 0
    # the gain, from the unrounded medians: within what rounding to 0.1 ms allows
    ratio = baseline / current
    slack = ratio * (0.05 / current + 0.05 / baseline) + 0.001
    assert abs(float(cells[4].rstrip("%")) / 100 - (ratio - 1)) <= slack


def test_engine_ab_names_a_revision_git_does_not_have():
    result = run("--baseline", "no-such-revision", "--sizes", "tiny")
    assert result.returncode == 2
    assert "--baseline: git has no" in result.stderr and "Traceback" not in result.stderr


def test_engine_ab_names_an_ablation_it_does_not_have():
    result = run("--without", "no-such-thing", "--sizes", "tiny")
    assert result.returncode == 2
    assert "no benchmarks/ablations/no-such-thing.patch" in result.stderr
    assert "Traceback" not in result.stderr


def _tool_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("engine_ab", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", _tool_module().ablations())
def test_each_ablation_is_the_same_maths_without_its_optimisation(name):
    """The engine with benchmarks/ablations/NAME.patch applied trains as the reference engine
    does (float64, dropout, clipping active): an ablation removes speed, never correctness."""
    tool = _tool_module()
    source = tool.ablated_source(name)
    assert source != (REPO / "src/ptb_lstm/engines/numpy_engine.py").read_text()
    ablated = tool.ablated_engine_class(name)
    config = PRESETS["tiny"].replace(dropout=0.4, max_grad_norm=0.5)
    params = init_params(config, 13, np.float64)
    engines = [
        ablated(config, params, dtype="float64"),
        create_engine("numpy-reference", config, params, "float64"),
    ]
    rng = np.random.default_rng(3)
    for step in range(3):
        inputs, targets = (rng.integers(0, 13, (4, 5)) for _ in range(2))
        masks = step_masks(config, step, dtype=np.float64)
        losses = [e.train_step(inputs, targets, 0.7, masks) for e in engines]
        assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    evals = [e.eval_step(inputs, targets) for e in engines]
    assert evals[0] == pytest.approx(evals[1], rel=1e-12)
    mine, reference = (e.get_params() for e in engines)
    for key, value in reference.items():
        np.testing.assert_allclose(mine[key], value, rtol=0, atol=1e-12 * np.abs(value).max())
