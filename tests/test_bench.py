import json
import time

import numpy as np
import pytest

from ptb_lstm.bench import bench, full_training_seconds, step_flops, step_products
from ptb_lstm.config import PRESETS

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


def test_a_training_step_is_the_papers_matrix_products():
    """Small config: 3 softmax products of 400 x 200 x 10,000 and, per layer, 6 products of
    400 x 200 x 800 (REFERENCE §6: 6.3 GFLOP a step), the recurrent two of them as 20
    products of [20, 200] x [200, 800] (forward) and [20, 800] x [800, 200] (backward)."""
    products = step_products(PRESETS["small"], vocab_size=10_000)
    assert step_flops(PRESETS["small"]) == 2 * (3 * 400 * 200 * 10_000 + 2 * 6 * 400 * 200 * 800)
    per_step = sorted((p.m, p.k, p.n, p.times) for p in products if p.times > 1)
    assert per_step == [(20, 200, 800, 20)] * 2 + [(20, 800, 200, 20)] * 2
    assert sum(p.times == 1 for p in products) == 3 + 2 * 4


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """benchmarks/bench.py end to end on the tiny preset with two engines in three rounds,
    writing into a folder of its own (run once for the tests below)."""
    import subprocess
    import sys

    from conftest import REPO

    docs = tmp_path_factory.mktemp("docs")
    command = [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--sizes", "tiny"]
    command += ["--steps", "2", "--rounds", "3"]
    command += ["--engines", "numpy,numpy-reference", "--docs", str(docs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return result, docs


def test_bench_writes_each_engines_row_with_the_date_and_machine(bench_run):
    result, docs = bench_run
    assert result.returncode == 0, result.stderr
    page = (docs / "bench.md").read_text(encoding="utf-8")
    record = json.loads((docs / "results" / "bench.json").read_text(encoding="utf-8"))
    assert record["measured"][:10] == time.strftime("%Y-%m-%d", time.gmtime())
    assert record["measured"] in page and record["machine"]["cpu"] in page
    assert {"cpu", "cores", "blas"} <= record["machine"].keys()
    assert "## tiny" in page
    for engine in ("numpy", "numpy-reference"):
        assert f"| {engine} |" in page
        assert record["sizes"]["tiny"]["engines"][engine]["steps"] == 2


def test_bench_numbers_hang_together(bench_run):
    """Words per second are the batch's words over the step time; the shape floor is its
    batched part and its per-time-step part; the compute floor is the FLOPs at the SGEMM rate;
    each ratio column divides the step by that floor."""
    result, docs = bench_run
    assert result.returncode == 0, result.stderr
    record = json.loads((docs / "results" / "bench.json").read_text(encoding="utf-8"))
    tiny = record["sizes"]["tiny"]
    config = PRESETS["tiny"]
    assert tiny["gflop"] * 1e9 == pytest.approx(step_flops(config))
    assert tiny["compute_floor_ms"] == pytest.approx(tiny["gflop"] / record["sgemm_gflops"] * 1e3)
    assert tiny["shape_floor_ms"] == pytest.approx(tiny["batched_ms"] + tiny["per_time_step_ms"])
    assert tiny["shape_floor_ms"] == pytest.approx(sum(p["ms"] for p in tiny["products"]))
    numpy_row = tiny["engines"]["numpy"]
    words = config.batch_size * config.num_steps
    assert numpy_row["words_per_second"] * numpy_row["train_ms_per_step"] / 1000 == (
        pytest.approx(words)
    )
    page = (docs / "bench.md").read_text(encoding="utf-8")
    [row] = [line for line in page.splitlines() if line.startswith("| numpy |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    ms = numpy_row["train_ms_per_step"]  # the page shows it to 0.1 ms only
    assert float(cells[1]) == pytest.approx(ms, abs=0.051)
    assert float(cells[3]) == pytest.approx(ms / tiny["compute_floor_ms"], rel=0.01, abs=0.01)
    assert float(cells[4]) == pytest.approx(ms / tiny["shape_floor_ms"], rel=0.01, abs=0.01)


def test_each_engines_time_is_the_median_of_its_rounds(bench_run):
    result, docs = bench_run
    assert result.returncode == 0, result.stderr
    record = json.loads((docs / "results" / "bench.json").read_text(encoding="utf-8"))
    assert record["rounds"] == 3
    for row in record["sizes"]["tiny"]["engines"].values():
        rounds = row["rounds_train_ms"]
        assert len(rounds) == 3
        assert row["train_ms_per_step"] == sorted(rounds)[1]
    assert "median of 3 such rounds" in (docs / "bench.md").read_text(encoding="utf-8")


def test_each_engines_peak_memory_is_its_own_process(bench_run):
    """The parent allocates 512 MB to measure the memory bandwidth before any engine runs; a
    child's peak must not inherit it."""
    result, docs = bench_run
    assert result.returncode == 0, result.stderr
    record = json.loads((docs / "results" / "bench.json").read_text(encoding="utf-8"))
    for row in record["sizes"]["tiny"]["engines"].values():
        assert 10 < row["peak_rss_mb"] < 400


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "2/3"], "--steps: give one positive count"),
        (["--steps", "0"], "--steps: give one positive count"),
        (["--sizes", "huge"], "--sizes: unknown preset 'huge'"),
        (["--engines", "jax"], "--engines: unknown engine 'jax'"),
        (["--rounds", "0"], "--rounds: give a count of at least 1"),
    ],
)
def test_bench_rejects_bad_flags_in_one_line(args, message):
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), *args, "--no-write"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_floors_products_are_timed_in_float32():
    # A float32 array divided by a NumPy float64 scalar is float64 under NumPy 2's rules: a
    # floor timed on such operands would time a mixed-type product, about twice as slow.
    from ptb_lstm.bench import Product, product_operands

    for operand in product_operands(Product("x", 3, 5, 7)):
        assert operand.dtype == np.float32
        assert operand.flags["C_CONTIGUOUS"]
