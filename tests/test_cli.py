"""The command line as a user meets it: real subprocesses, real files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import assert_user_error, run_cli


def test_help_explains_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "train", "evaluate", "gradcheck"):
        assert command in result.stdout
        sub = run_cli(command, "--help")
        assert sub.returncode == 0 and "example" in sub.stdout


def test_data_json_reports_ptb_statistics(ptb_dir):
    result = run_cli("data", "--data-dir", str(ptb_dir), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["tokens"] == {"train": 929_589, "valid": 73_760, "test": 82_430}
    assert stats["vocab_size"] == 10_000 and stats["official_ptb"] is True
    assert stats["steps_per_epoch"]["train"] == 2323


def test_train_then_evaluate_round_trip(tiny_dir, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(out), "--epochs", "1"
    )
    assert result.returncode == 0, result.stderr
    assert "test perplexity" in result.stdout
    result = run_cli(
        "evaluate",
        "--checkpoint",
        str(out / "model.npz"),
        "--data-dir",
        str(tiny_dir),
        "--split",
        "valid",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["split"] == "valid" and record["tokens"] > 0
    epoch = [
        json.loads(line)
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"epoch"' in line and json.loads(line)["event"] == "epoch"
    ][0]
    assert record["perplexity"] == epoch["valid_perplexity"]


def test_evaluate_at_batch_one_step_one(tiny_dir, tmp_path):
    out = tmp_path / "run"
    assert (
        run_cli(
            "train",
            "--config",
            "tiny",
            "--data-dir",
            str(tiny_dir),
            "--out",
            str(out),
            "--max-steps",
            "0",
        ).returncode
        == 0
    )
    result = run_cli(
        "evaluate",
        "--checkpoint",
        str(out / "model.npz"),
        "--data-dir",
        str(tiny_dir),
        "--batch-size",
        "1",
        "--num-steps",
        "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["batch_size"], record["num_steps"]) == (1, 1)


def test_gradcheck_command_passes():
    result = run_cli("gradcheck", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["worst_error"] <= 1e-6


def test_gradcheck_command_checks_the_reference_engine_with_dropout():
    result = run_cli("gradcheck", "--engine", "numpy-reference", "--dropout", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == "numpy-reference" and report["worst_error"] <= 1e-6
    # every parameter and the incoming state of both layers were checked
    expected = {"embedding", "softmax_kernel", "softmax_bias"}
    for layer in (0, 1):
        expected |= {f"lstm_{layer}_{k}" for k in ("kernel", "recurrent_kernel", "bias")}
        expected |= {f"state_{layer}_{k}" for k in ("h", "c")}
    assert {row["name"] for row in report["rows"]} == expected


def test_missing_data_folder(tmp_path):
    result = run_cli("data", "--data-dir", str(tmp_path / "nope"))
    assert_user_error(result, "does not exist", "PTB_DATA_DIR")


def test_binary_data_file(tiny_dir):
    (tiny_dir / "ptb.train.txt").write_bytes(bytes(range(256)) * 10)
    result = run_cli("data", "--data-dir", str(tiny_dir))
    assert_user_error(result, "ptb.train.txt", "binary")


def test_unknown_set_key(tiny_dir, tmp_path):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--set",
        "hiden_size=3",
        "--out",
        str(tmp_path / "o"),
    )
    assert_user_error(result, "hiden_size", "valid keys")
    assert not (tmp_path / "o").exists()


def test_negative_size(tiny_dir, tmp_path):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--set",
        "hidden_size=-5",
        "--out",
        str(tmp_path / "o"),
    )
    assert_user_error(result, "hidden_size must be > 0")


def test_truncated_checkpoint(tiny_dir, tmp_path):
    out = tmp_path / "run"
    run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(out),
        "--max-steps",
        "0",
    )
    data = (out / "model.npz").read_bytes()
    (out / "model.npz").write_bytes(data[: len(data) // 3])
    result = run_cli(
        "evaluate", "--checkpoint", str(out / "model.npz"), "--data-dir", str(tiny_dir)
    )
    assert_user_error(result, "model.npz", "truncated")


def test_npz_holding_a_pickled_object(tiny_dir, tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"run": "os.system"}], dtype=object))
    result = run_cli("evaluate", "--checkpoint", str(path), "--data-dir", str(tiny_dir))
    assert_user_error(result, "pickled object")


def test_existing_out_folder_is_not_overwritten(tiny_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.npz").write_bytes(b"precious")
    result = run_cli("train", "--config", "tiny", "--data-dir", str(tiny_dir), "--out", str(out))
    assert_user_error(result, "already exists")
    assert (out / "model.npz").read_bytes() == b"precious"


def test_init_from_with_another_config_names_the_mismatch(tiny_dir, tmp_path):
    out = tmp_path / "run"
    run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(out),
        "--max-steps",
        "0",
    )
    result = run_cli(
        "train",
        "--init-from",
        str(out / "model.npz"),
        "--config",
        "small",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(tmp_path / "b"),
    )
    assert_user_error(result, "shape")


def test_init_from_continues_from_the_checkpoint(tiny_dir, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(first),
        "--max-steps",
        "2",
    )
    result = run_cli(
        "train",
        "--init-from",
        str(first / "model.npz"),
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(second),
        "--max-steps",
        "0",
    )
    assert result.returncode == 0, result.stderr
    with np.load(first / "model.npz") as a, np.load(second / "model.npz") as b:
        np.testing.assert_array_equal(a["embedding"], b["embedding"])
    assert Path(second / "config.json").exists()


def test_without_tensorflow_the_core_runs_and_tf_engines_say_how_to_install(tiny_dir, tmp_path):
    """Runs whether or not TensorFlow is installed: it hides TensorFlow itself."""
    blocker = "import sys; sys.modules['tensorflow'] = None; "
    run = "from ptb_lstm.cli import main; sys.exit(main(sys.argv[1:]))"
    common = ["--config", "tiny", "--data-dir", str(tiny_dir), "--max-steps", "2"]
    numpy_run = subprocess.run(
        [sys.executable, "-c", blocker + run, "train", *common, "--out", str(tmp_path / "np")],
        capture_output=True,
        text=True,
    )
    assert numpy_run.returncode == 0, numpy_run.stderr
    for name in ("tf-eager", "tf-graph"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                blocker + run,
                "train",
                *common,
                "--engine",
                name,
                "--out",
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
        )
        assert_user_error(result, f"--engine {name} needs TensorFlow", "[tf]'")
