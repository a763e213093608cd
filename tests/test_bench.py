import json
import time

import pytest

from ptb_lstm.bench import bench, full_training_seconds
from ptb_lstm.config import PRESETS
from ptb_lstm.engines import installed_engines

from conftest import assert_user_error, run_cli


def test_bench_reports_positive_times_and_a_full_training_estimate():
    """The medians are real times of the steps: with 3 timed steps of each kind, two of each
    took at least the median, so the whole call took at least twice their sum."""
    started = time.perf_counter()
    result = bench("numpy", PRESETS["tiny"], steps=3, warmup=1, vocab_size=50)
    elapsed = time.perf_counter() - started
    assert result.train_ms_per_step > 0 and result.eval_ms_per_step > 0
    assert 2 * (result.train_ms_per_step + result.eval_ms_per_step) / 1000 <= elapsed
    batch_words = PRESETS["tiny"].batch_size * PRESETS["tiny"].num_steps
    assert result.words_per_second * result.train_ms_per_step / 1000 == pytest.approx(
        batch_words, rel=1e-9
    )
    assert result.full_training_hours == pytest.approx(
        full_training_seconds(
            PRESETS["tiny"], result.train_ms_per_step / 1000, result.eval_ms_per_step / 1000
        )
        / 3600,
        rel=1e-9,
    )


def test_full_training_estimate_counts_every_step_of_ptb():
    """The small config on PTB: 13 epochs of 2,323 training and 184 valid steps, then 206 test
    steps (docs/model.md §5)."""
    estimate = full_training_seconds(PRESETS["small"], train_seconds=0.05, eval_seconds=0.01)
    assert estimate == pytest.approx(13 * (2323 * 0.05 + 184 * 0.01) + 206 * 0.01, rel=1e-12)


def test_bench_json_has_the_documented_keys():
    result = run_cli("bench", "--config", "tiny", "--steps", "2", "--warmup", "0", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert {"train_ms_per_step", "eval_ms_per_step", "words_per_second"} <= record.keys()


def test_bench_rejects_zero_steps():
    assert_user_error(run_cli("bench", "--steps", "0"), "--steps must be > 0")


@pytest.fixture(scope="module")
def bench_script():
    """benchmarks/bench.py end to end, shortened, without touching docs/ (run once for the
    tests below)."""
    import subprocess
    import sys

    from conftest import REPO

    return subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench.py"),
            "--quick",
            "--no-write",
            "--steps",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_make_bench_script_prints_the_engine_table(bench_script):
    result = bench_script
    assert result.returncode == 0, result.stderr
    assert "| numpy |" in result.stdout and "floor" in result.stdout
    for name in installed_engines():
        assert f"| {name} |" in result.stdout, name


def test_the_floor_is_the_small_steps_matrix_products_at_the_measured_sgemm_rate(bench_script):
    """The floor row: 6.34 GFLOP (2 x (3 products of 400 x 200 x 10,000 for the softmax + 2
    layers x 6 products of 400 x 200 x 800), REFERENCE §6) at the SGEMM rate the run printed,
    and each engine's "x floor" is its step time over that."""
    assert bench_script.returncode == 0, bench_script.stderr
    gflop = 2 * (3 * 400 * 200 * 10_000 + 2 * 6 * 400 * 200 * 800) / 1e9
    rows = {
        cells[0]: cells[1:]
        for line in bench_script.stdout.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) > 2
    }
    [floor_name] = [name for name in rows if name.startswith("floor (")]
    printed_gflop, rate = (
        floor_name.removeprefix("floor (").removesuffix(" GFLOP/s)").split(" GFLOP at ")
    )
    assert float(printed_gflop) == pytest.approx(gflop, abs=0.005)
    floor_ms = float(rows[floor_name][0])
    # the rate is printed to whole GFLOP/s (off by up to 0.5) and the floor to 0.1 ms
    expected = 1000 * gflop / float(rate)
    assert abs(floor_ms - expected) <= expected * 0.5 / (float(rate) - 0.5) + 0.05
    assert rows[floor_name][1] == "1.00"
    train_ms, x_floor = float(rows["numpy"][0]), float(rows["numpy"][1])
    assert x_floor == pytest.approx(train_ms / floor_ms, rel=0.01, abs=0.01)
