"""A hostile or careless user: damaged files, odd models and huge requests, each met by the
real command with a result or one clear line (exit status 2, no traceback)."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from conftest import write_corpus

    return write_corpus(tmp_path_factory.mktemp("hostile") / "data")


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory):
    """A tiny run stopped mid-epoch: its model.npz holds progress and the carried state."""
    out = tmp_path_factory.mktemp("hostile-run") / "run"
    result = run_cli("train", "--config", "tiny", "--data-dir", str(corpus), "--out", str(out),
                     "--max-steps", "3", "--log-every", "1")
    assert result.returncode == 0, result.stderr
    return out / "model.npz"


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def meta_of(arrays: dict) -> dict:
    return json.loads(arrays["meta"].tobytes().decode("utf-8"))


def with_meta(arrays: dict, meta: dict) -> dict:
    return {**arrays, "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)}


def copy_run(model: Path, folder: Path) -> Path:
    """A copy of the whole run folder (model.npz, config.json, metrics.jsonl) in ``folder``."""
    folder.mkdir(parents=True)
    for name in ("model.npz", "config.json", "metrics.jsonl"):
        (folder / name).write_bytes((model.parent / name).read_bytes())
    return folder


# -- non-finite weights are refused when a checkpoint is loaded, naming the arrays -----------

def test_non_finite_weights_are_refused_by_every_command(model, corpus, tmp_path):
    arrays = arrays_of(model)
    arrays["embedding"] = arrays["embedding"].copy()
    arrays["embedding"][3, 1] = np.nan
    arrays["softmax_bias"] = np.full_like(arrays["softmax_bias"], np.inf)
    bad = tmp_path / "nan.npz"
    np.savez(bad, **arrays)
    for command in (["inspect", str(bad)],
                    ["evaluate", "--checkpoint", str(bad), "--data-dir", str(corpus)],
                    ["score", "--checkpoint", str(bad), "--text", "w1 w2"],
                    ["generate", "--checkpoint", str(bad), "--words", "3"],
                    ["train", "--init-from", str(bad), "--config", "tiny", "--data-dir",
                     str(corpus), "--out", str(tmp_path / "from-nan")]):
        assert_user_error(run_cli(*command), str(bad), "embedding, softmax_bias",
                          "NaN or infinite")
    assert not (tmp_path / "from-nan").exists()


def test_non_finite_carried_state_is_refused_on_resume(model, tmp_path):
    run = copy_run(model, tmp_path / "run")
    arrays = arrays_of(run / "model.npz")
    arrays["carried_1_c"] = np.full_like(arrays["carried_1_c"], -np.inf)
    np.savez(run / "model.npz", **arrays)
    assert_user_error(run_cli("train", "--resume", str(run)), "carried_1_c", "NaN or infinite")


# -- a carried state of another batch size is refused -----------------------------------------

def test_carried_state_of_another_batch_size_is_refused(model, tmp_path):
    run = copy_run(model, tmp_path / "run")
    arrays = arrays_of(run / "model.npz")
    assert arrays["carried_0_h"].shape == (4, 16)  # tiny: batch_size 4, hidden_size 16
    for name in ("carried_0_h", "carried_0_c", "carried_1_h", "carried_1_c"):
        arrays[name] = arrays[name][:1]  # one stream: NumPy would broadcast it to four
    np.savez(run / "model.npz", **arrays)
    before = (run / "metrics.jsonl").read_text()
    assert_user_error(run_cli("train", "--resume", str(run)), "carried_0_h", "(1, 16)",
                      "(4, 16)")
    assert_user_error(run_cli("inspect", str(run / "model.npz")), "carried_0_h")
    assert (run / "metrics.jsonl").read_text() == before  # nothing trained, nothing dropped


# -- model.npz follows the umask like the other run files ------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_model_npz_follows_the_umask_like_config_and_metrics(corpus, tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)  # inherited by the command's process
    try:
        result = run_cli("train", "--config", "tiny", "--data-dir", str(corpus), "--out",
                         str(tmp_path / "run"), "--max-steps", "2", "--checkpoint-every", "1")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    expected = 0o666 & ~umask
    for name in ("model.npz", "config.json", "metrics.jsonl"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == expected, name
