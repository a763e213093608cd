"""benchmarks/engine_ab.py: the NumPy engine of this tree against the one of a git commit."""

import subprocess
import sys

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
    current, baseline = float(cells[1]), float(cells[2])
    assert current > 0 and baseline > 0
    # the gain, from the unrounded medians: within what rounding to 0.1 ms allows
    ratio = baseline / current
    slack = ratio * (0.05 / current + 0.05 / baseline) + 0.001
    assert abs(float(cells[3].rstrip("%")) / 100 - (ratio - 1)) <= slack


def test_engine_ab_names_a_revision_git_does_not_have():
    result = run("--baseline", "no-such-revision", "--sizes", "tiny")
    assert result.returncode == 2
    assert "--baseline: git has no" in result.stderr and "Traceback" not in result.stderr
