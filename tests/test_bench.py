import json

import pytest

from ptb_lstm.bench import bench
from ptb_lstm.config import PRESETS
from ptb_lstm.engines import installed_engines

from conftest import assert_user_error, run_cli


def test_bench_reports_positive_times_and_a_full_training_estimate():
    result = bench("numpy", PRESETS["tiny"], steps=3, warmup=1, vocab_size=50)
    assert result.train_ms_per_step > 0 and result.eval_ms_per_step > 0
    assert result.words_per_second == pytest.approx(
        4 * 5 / (result.train_ms_per_step / 1000), rel=1e-9)
    assert result.full_training_hours > 0


def test_bench_json_has_the_documented_keys():
    result = run_cli("bench", "--config", "tiny", "--steps", "2", "--warmup", "0", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert {"train_ms_per_step", "eval_ms_per_step", "words_per_second"} <= record.keys()


def test_bench_rejects_zero_steps():
    assert_user_error(run_cli("bench", "--steps", "0"), "--steps must be > 0")


def test_make_bench_script_prints_the_engine_table():
    """benchmarks/bench.py end to end, shortened, without touching docs/."""
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--quick",
                             "--no-write", "--steps", "5"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| numpy |" in result.stdout and "floor" in result.stdout
    for name in installed_engines():
        assert f"| {name} |" in result.stdout, name
