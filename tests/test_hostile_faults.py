"""Hostile use of run folders, memory, the disk and the network: two trainings at once, a start
that fails, flags pointing under files, a model too large to train, a full disk, downloads that
stall. Each runs the real command and ends in a result or one clear line (exit status 2, no
traceback)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, run_cli, train_tiny, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("faults") / "data")


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory):
    """Long enough that a tiny run of a few hundred steps outlasts another process's start."""
    return write_corpus(tmp_path_factory.mktemp("faults-long") / "data", lines=(2000, 15, 15))


def start_cli(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ptb_lstm", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        **kwargs,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def meta_of(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(npz["meta"].tobytes().decode("utf-8"))


# -- class 1: one run folder, one training -----------------------------------------------------


def test_two_trainings_into_one_out_folder_one_is_refused(long_corpus, tmp_path):
    out = tmp_path / "run"
    common = (
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(long_corpus),
        "--out",
        str(out),
        "--max-steps",
        "300",
        "--log-every",
        "1",
    )
    processes = [start_cli(*common, "--seed", str(seed)) for seed in (11, 22)]
    results = [finish(p) for p in processes]
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [(r.returncode, r.stderr) for r in results]
    winner, loser = (
        (results[0], results[1]) if results[0].returncode == 0 else (results[1], results[0])
    )
    assert_user_error(loser, f"--out {out}", "another ptb-lstm train is writing into")
    seed = 11 if winner is results[0] else 22
    # The folder holds the winner's run alone: its config, its weights, its metrics once.
    info = json.loads((out / "config.json").read_text())
    assert info["config"]["seed"] == seed and f"--seed {seed}" in info["command"]
    assert meta_of(out / "model.npz")["config"]["seed"] == seed
    steps = [
        json.loads(line)["step"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["event"] == "step"
    ]
    assert steps == list(range(1, 301))


def test_two_trainings_with_a_default_name_in_the_same_second_get_two_folders(corpus, tmp_path):
    common = ("train", "--config", "tiny", "--data-dir", str(corpus), "--max-steps", "2")
    processes = [start_cli(*common, "--seed", str(seed), cwd=tmp_path) for seed in (1, 2)]
    results = [finish(p) for p in processes]
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2
    seeds = sorted(json.loads((f / "config.json").read_text())["config"]["seed"] for f in folders)
    assert seeds == [1, 2]
    for folder in folders:
        assert (
            meta_of(folder / "model.npz")["config"]["seed"]
            == json.loads((folder / "config.json").read_text())["config"]["seed"]
        )


def test_a_second_resume_of_a_folder_in_training_is_refused(long_corpus, tmp_path):
    out = tmp_path / "run"
    first = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(long_corpus),
        "--out",
        str(out),
        "--max-steps",
        "2",
    )
    assert first.returncode == 0, first.stderr
    resuming = start_cli("train", "--resume", str(out), "--data-dir", str(long_corpus))
    try:
        assert (
            "resuming"
            in resuming.stdout.readline()
            + resuming.stdout.readline()
            + resuming.stdout.readline()
            + resuming.stdout.readline()
        )
        second = run_cli("train", "--resume", str(out), "--data-dir", str(long_corpus))
        assert_user_error(second, f"--resume {out}", "another ptb-lstm train is writing into")
        also_new = run_cli(
            "train", "--config", "tiny", "--data-dir", str(long_corpus), "--out", str(out)
        )
        assert_user_error(also_new, f"--out {out}", "another ptb-lstm train is writing into")
    finally:
        resuming.send_signal(signal.SIGINT)  # saves a checkpoint and exits 130
        stopped = finish(resuming)
    assert stopped.returncode == 130, stopped.stderr
    assert meta_of(out / "model.npz")["progress"]["step"] > 2


# -- class 6: a start that wrote no checkpoint can be retried -------------------------------


def test_a_start_killed_before_its_first_checkpoint_can_be_retried_with_the_same_out(
    long_corpus, tmp_path
):
    out = tmp_path / "run"
    args = (
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(long_corpus),
        "--out",
        str(out),
        "--log-every",
        "1",
        "--checkpoint-every",
        "0",
    )
    process = start_cli(*args, "--max-steps", "5000")
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.kill()
    finish(process)
    assert not (out / "model.npz").exists()
    assert {p.name for p in out.iterdir()} <= {"config.json", "metrics.jsonl"}
    resumed = run_cli("train", "--resume", str(out), "--data-dir", str(long_corpus))
    assert_user_error(
        resumed,
        f"--resume {out}",
        "before its first checkpoint",
        "start it again with the same --out",
        "ptb-lstm train --config tiny",
    )
    retry = run_cli(*args, "--max-steps", "3")
    assert retry.returncode == 0, retry.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "step"] == [1, 2, 3]
    assert "--max-steps 3" in json.loads((out / "config.json").read_text())["command"]


def test_a_failed_start_leaves_no_folder_and_others_files_are_never_taken(corpus, tmp_path):
    out = tmp_path / "run"
    too_large = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(out),
        "--set",
        "batch_size=5000",
    )
    assert_user_error(too_large, "train split", "too short for one batch")
    assert not out.exists()
    # A folder with a config.json that ptb-lstm did not write is not a failed start.
    out.mkdir()
    (out / "config.json").write_text('{"mine": 1}\n')
    refused = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(out),
        "--max-steps",
        "1",
    )
    assert_user_error(refused, f"--out {out} already exists and holds other files")
    assert (out / "config.json").read_text() == '{"mine": 1}\n'


# -- class 7: paths under files, a model too large, a malformed data_dir ----------------------


@pytest.mark.parametrize(
    "flag, where",
    [("--out", "f/run"), ("--out", "f"), ("--tensorboard", "f/tb"), ("--tensorboard", "f")],
)
def test_a_folder_flag_pointing_at_or_under_a_file(corpus, tmp_path, flag, where):
    (tmp_path / "f").write_text("a file\n")
    args = [
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--max-steps",
        "1",
        flag,
        str(tmp_path / where),
    ]
    if flag != "--out":
        args += ["--out", str(tmp_path / "run")]
    assert_user_error(run_cli(*args), flag, "file")
    assert (tmp_path / "f").read_text() == "a file\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "bench"])
def test_a_model_too_large_for_memory_is_refused_with_what_it_needs(corpus, tmp_path, command):
    args = (
        ["--data-dir", str(corpus), "--out", str(tmp_path / "run")]
        if command == "train"
        else ["--steps", "1"]
    )
    result = run_cli(command, "--config", "tiny", *args, "--set", "hidden_size=1000000")
    # 2 layers x 2 kernels x (10^6 x 4 * 10^6) float32 = 1.6e13 x 4 bytes, three times over
    # (weights, gradients, the engine's copy): at least 1.6e13 * 4 * 3 / 2**30 GiB.
    assert_user_error(result, "needs about", "GiB", "hidden_size")
    gib = float(result.stderr.split("needs about ")[1].split(" GiB")[0].replace(",", ""))
    assert gib >= 1.6e13 * 4 * 3 / 2**30
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("data_dir", [5, ["x"], {"a": 1}])
def test_resume_with_a_data_dir_that_is_not_text(corpus, tmp_path, data_dir):
    out = tmp_path / "run"
    first = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(out),
        "--max-steps",
        "2",
    )
    assert first.returncode == 0, first.stderr
    info = json.loads((out / "config.json").read_text())
    info["data_dir"] = data_dir
    (out / "config.json").write_text(json.dumps(info))
    result = run_cli("train", "--resume", str(out), "--data-dir", str(corpus))
    assert_user_error(result, str(out / "config.json"), "data_dir")


# -- class 10: a full disk ----------------------------------------------------------------------


def limit_file_size(limit: int):
    def set_limit():
        # Writes past the limit fail with EFBIG, as a full disk fails them with ENOSPC
        # (Python ignores SIGXFSZ, which would otherwise kill the process).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_limit


def test_a_full_disk_while_saving_a_checkpoint_names_the_last_good_one(long_corpus, tmp_path):
    out = tmp_path / "run"
    first = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(long_corpus),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--log-every",
        "1",
    )
    assert first.returncode == 0, first.stderr
    good = (out / "model.npz").read_bytes()
    # The next checkpoint (a whole new file) cannot be written; config.json and the few
    # metrics records stay under the limit.
    limit = len(good) // 2
    assert (out / "metrics.jsonl").stat().st_size < limit // 4
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "ptb_lstm",
            "train",
            "--resume",
            str(out),
            "--data-dir",
            str(long_corpus),
            "--checkpoint-every",
            "4",
            "--log-every",
            "1",
        ],
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size(limit),
        timeout=300,
    )
    assert_user_error(process, "no space left", str(out / "model.npz"), "step 2", f"--resume {out}")
    assert (out / "model.npz").read_bytes() == good
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # Once there is room, the run continues from the intact checkpoint.
    resumed = run_cli(
        "train", "--resume", str(out), "--data-dir", str(long_corpus), "--max-steps", "6"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert meta_of(out / "model.npz")["progress"]["step"] == 6


def round_up(size: int, page: int = 4096) -> int:
    return -(-size // page) * page


def test_a_full_file_system_while_saving_a_checkpoint(corpus, tmp_path):
    """A real ENOSPC: the run is copied onto a tmpfs with room for it and less than a second
    model.npz. Mounting needs root; elsewhere the file-size limit stands in for the full disk,
    so the test never skips."""
    source = tmp_path / "source"
    first = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(source),
        "--max-steps",
        "2",
    )
    assert first.returncode == 0, first.stderr
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    size = sum(round_up(len(data)) for data in files.values()) + 2 * 4096
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
        ).returncode
        == 0
    )
    try:
        out = mount / "run"
        out.mkdir()
        for name, data in files.items():
            (out / name).write_bytes(data)
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "ptb_lstm",
                "train",
                "--resume",
                str(out),
                "--data-dir",
                str(corpus),
                "--checkpoint-every",
                "4",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=None if mounted else limit_file_size(len(files["model.npz"]) // 2),
        )
        assert_user_error(
            process,
            "no space left",
            str(out / "model.npz"),
            "(step 2)",
            "No space left on device" if mounted else "File too large",
        )
        assert (out / "model.npz").read_bytes() == files["model.npz"]
        assert sorted(p.name for p in out.iterdir()) == sorted(files)
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_before_the_first_checkpoint_says_so(corpus, tmp_path):
    out = tmp_path / "run"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "ptb_lstm",
            "train",
            "--config",
            "tiny",
            "--data-dir",
            str(corpus),
            "--out",
            str(out),
            "--max-steps",
            "3",
        ],
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size(200),
        timeout=300,
    )
    assert_user_error(process, "no space left", "config.json", "no checkpoint was written")
    assert not (out / "model.npz").exists()
    retry = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(out),
        "--max-steps",
        "3",
    )
    assert retry.returncode == 0, retry.stderr


# -- class 13: messages that name what a path is ------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(corpus, tmp_path_factory):
    return train_tiny(
        corpus,
        tmp_path_factory.mktemp("faults-run") / "run",
        "--max-steps",
        "4",
        "--log-every",
        "1",
    )


def test_resume_given_the_checkpoint_file_names_its_folder(run_folder, corpus):
    result = run_cli("train", "--resume", str(run_folder / "model.npz"), "--data-dir", str(corpus))
    assert_user_error(
        result, f"--resume {run_folder / 'model.npz'} is a file", f"--resume {run_folder}"
    )


def test_resume_of_a_folder_that_does_not_exist(tmp_path, corpus):
    result = run_cli("train", "--resume", str(tmp_path / "nope"), "--data-dir", str(corpus))
    assert_user_error(result, f"--resume {tmp_path / 'nope'} does not exist")


@pytest.mark.parametrize("command", [["score", "--text-file"], ["train", "--config"]])
def test_a_folder_given_for_a_file_is_called_a_folder(run_folder, corpus, command):
    checkpoint = (
        ["--checkpoint", str(run_folder / "model.npz")]
        if command[0] == "score"
        else ["--data-dir", str(corpus)]
    )
    result = run_cli(command[0], *checkpoint, command[1], str(run_folder))
    assert_user_error(result, f"{command[1]}", f"{run_folder} is a folder")


def test_plot_out_under_a_file_names_the_file(run_folder, tmp_path):
    (tmp_path / "f").write_text("a file\n")
    result = run_cli("plot", str(run_folder), "--out", str(tmp_path / "f" / "curves.png"))
    assert_user_error(result, "--out", f"{tmp_path / 'f'} is a file")
