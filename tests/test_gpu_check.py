"""benchmarks/gpu_check.sh end to end in its quick mode (on the CPU where there is no GPU): every
step runs and the results land under one folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("torch", reason="gpu_check.sh needs PyTorch: pip install 'ptb-lstm[torch]'")
pytest.importorskip(
    "tensorflow", reason="gpu_check.sh needs TensorFlow: pip install 'ptb-lstm[tf]'"
)


def test_quick_mode_writes_timings_agreement_and_a_run_under_one_folder(tiny_dir, tmp_path):
    out = tmp_path / "check"
    env = {
        **os.environ,
        "GPU_CHECK_QUICK": "1",
        "PYTHON": sys.executable,
        "PTB_DATA_DIR": str(tiny_dir),
    }
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    device = (out / "device.txt").read_text().strip()
    assert device in ("cpu", "cuda")
    bench = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert sorted(r["engine"] for r in bench) == ["tf-graph", "torch"]
    assert all(r["train_ms_per_step"] > 0 and r["words_per_second"] > 0 for r in bench)
    agree = json.loads((out / "agree-tiny.json").read_text())
    assert agree["passed"]
    assert {(r["engine"], r["dtype"], r["dropout"]) for r in agree["rows"]} == {
        (e, d, p) for e in ("torch", "tf-graph") for d in ("float32", "float64") for p in (0.0, 0.5)
    }
    assert (out / "train-torch" / "model.npz").is_file()
    summary = (out / "summary.md").read_text()
    assert "Agreement (1e-9 in float64, 1e-4 in float32): PASSED" in summary
    assert "| torch | tiny |" in summary and "Training with the torch engine" in summary
    if device == "cpu":
        assert "CPU fallback: no GPU figures" in summary
    assert "== done" in (out / "gpu_check.log").read_text()


def test_without_a_gpu_the_full_mode_refuses_and_says_how_to_dry_run(tmp_path):
    from ptb_lstm.engines.torch_engine import cuda_available

    if cuda_available():
        pytest.skip("this machine has a CUDA GPU; the full check would run")
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path / "check")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    output = result.stdout + result.stderr  # the script copies both into its log
    assert "PyTorch sees no CUDA GPU" in output and "GPU_CHECK_QUICK=1" in output
