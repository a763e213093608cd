"""A hostile or careless user: damaged files, odd models and huge requests, each met by the
real command with a result or one clear line (exit status 2, no traceback)."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, run_cli, train_tiny


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from conftest import write_corpus

    return write_corpus(tmp_path_factory.mktemp("hostile") / "data")


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory):
    """A tiny run stopped mid-epoch: its model.npz holds progress and the carried state."""
    out = tmp_path_factory.mktemp("hostile-run") / "run"
    return train_tiny(corpus, out, "--max-steps", "3", "--log-every", "1") / "model.npz"


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
    for command in (
        ["inspect", str(bad)],
        ["evaluate", "--checkpoint", str(bad), "--data-dir", str(corpus)],
        ["score", "--checkpoint", str(bad), "--text", "w1 w2"],
        ["generate", "--checkpoint", str(bad), "--words", "3"],
        [
            "train",
            "--init-from",
            str(bad),
            "--config",
            "tiny",
            "--data-dir",
            str(corpus),
            "--out",
            str(tmp_path / "from-nan"),
        ],
    ):
        assert_user_error(run_cli(*command), str(bad), "embedding, softmax_bias", "NaN or infinite")
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
    assert_user_error(run_cli("train", "--resume", str(run)), "carried_0_h", "(1, 16)", "(4, 16)")
    assert_user_error(run_cli("inspect", str(run / "model.npz")), "carried_0_h")
    assert (run / "metrics.jsonl").read_text() == before  # nothing trained, nothing dropped


# -- model.npz follows the umask like the other run files ------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_model_npz_follows_the_umask_like_config_and_metrics(corpus, tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)  # inherited by the command's process
    try:
        result = run_cli(
            "train",
            "--config",
            "tiny",
            "--data-dir",
            str(corpus),
            "--out",
            str(tmp_path / "run"),
            "--max-steps",
            "2",
            "--checkpoint-every",
            "1",
        )
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    expected = 0o666 & ~umask
    for name in ("model.npz", "config.json", "metrics.jsonl"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == expected, name


# -- what a checkpoint path is, said as it is -------------------------------------------------


def test_a_text_file_as_checkpoint_is_not_called_a_pickle(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes, not a model\n")
    result = run_cli("inspect", str(text))
    assert_user_error(result, "notes.txt", "not an .npz archive")
    assert "pickle" not in result.stderr


def test_a_folder_as_checkpoint_is_not_said_to_be_missing(model, corpus):
    result = run_cli("evaluate", "--checkpoint", str(model.parent), "--data-dir", str(corpus))
    assert_user_error(result, "is a folder", str(model))  # names the model.npz inside it
    assert "does not exist" not in result.stderr


def test_a_plain_npy_as_checkpoint(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((3, 4), np.float32))
    assert_user_error(run_cli("inspect", str(path)), "weights.npy", "single NumPy array")


def test_a_file_as_data_folder_is_not_said_to_be_missing(tmp_path):
    path = tmp_path / "ptb.train.txt"
    path.write_text("a b c\n")
    result = run_cli("data", "--data-dir", str(path))
    assert_user_error(result, "ptb.train.txt is a file, not a folder")
    assert "does not exist" not in result.stderr
    result = run_cli("data", env={"PTB_DATA_DIR": str(path)})
    assert_user_error(result, "PTB_DATA_DIR", "is a file, not a folder")


def test_evaluating_test_does_not_depend_on_the_valid_file(model, corpus, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_bytes((corpus / f"ptb.{split}.txt").read_bytes())
    with open(data / "ptb.valid.txt", "a") as f:
        f.write("w1 aardvark w2\n")
    result = run_cli(
        "evaluate", "--checkpoint", str(model), "--data-dir", str(data), "--split", "test", "--json"
    )
    assert result.returncode == 0, result.stderr
    reference = run_cli(
        "evaluate",
        "--checkpoint",
        str(model),
        "--data-dir",
        str(corpus),
        "--split",
        "test",
        "--json",
    )
    assert json.loads(result.stdout)["perplexity"] == json.loads(reference.stdout)["perplexity"]
    # The valid split itself is refused, with the way PTB writes rare words.
    result = run_cli(
        "evaluate", "--checkpoint", str(model), "--data-dir", str(data), "--split", "valid"
    )
    assert_user_error(result, "ptb.valid.txt", "'aardvark'", "write such words as <unk>")


def test_a_users_own_valid_word_missing_from_train_gets_the_unk_hint(corpus, tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_bytes((corpus / f"ptb.{split}.txt").read_bytes())
    with open(data / "ptb.valid.txt", "a") as f:
        f.write("w1 zanzibar w2\n")
    out = tmp_path / "run"
    result = run_cli("train", "--config", "tiny", "--data-dir", str(data), "--out", str(out))
    assert_user_error(
        result, "ptb.valid.txt", "'zanzibar'", "not in ptb.train.txt", "write rare words as <unk>"
    )
    assert not out.exists()


def test_resume_checks_valid_and_test_before_the_first_step(model, corpus, tmp_path):
    run = copy_run(model, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_bytes((corpus / f"ptb.{split}.txt").read_bytes())
    (data / "ptb.test.txt").write_text("w1 w2 quagga\n")
    (run / "config.json").write_text(json.dumps({**config, "data_dir": str(data)}))
    before = (run / "model.npz").read_bytes()
    assert_user_error(run_cli("train", "--resume", str(run)), "ptb.test.txt", "'quagga'")
    assert (run / "model.npz").read_bytes() == before  # not a step was taken


def test_a_valid_split_too_short_for_one_batch_is_refused_before_the_first_step(corpus, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        (data / f"ptb.{split}.txt").write_bytes((corpus / f"ptb.{split}.txt").read_bytes())
    (data / "ptb.valid.txt").write_text("w1 w2 w3\nw4 w5\n")  # 7 tokens; tiny needs 4 x 5 + 1
    out = tmp_path / "run"
    result = run_cli("train", "--config", "tiny", "--data-dir", str(data), "--out", str(out))
    assert_user_error(result, "valid split (7 tokens)", "too short for one batch of 4 x 5")
    assert not out.exists()  # no epoch trained, no folder left to block a retry


# -- damaged or edited run files: one validation layer (ptb_lstm.runfiles) ------------------


def test_a_meta_entry_that_is_not_an_array(model, tmp_path):
    import zipfile

    path = tmp_path / "model.npz"
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if name == "meta.npy":  # the JSON bytes themselves, not an array holding them
                target.writestr("meta", arrays_of(model)["meta"].tobytes())
            else:
                target.writestr(name, source.read(name))
    assert_user_error(run_cli("inspect", str(path)), "'meta'", "not a NumPy array")


@pytest.mark.parametrize(
    "progress, message",
    [
        ([1, 2, 3], "meta: progress must be a JSON object"),
        ("epoch 1", "meta: progress must be a JSON object"),
        ({"epoch": 1, "step": "three"}, "meta.progress: step must be a whole number >= 0"),
        ({"epoch": -1, "step": 3}, "meta.progress: epoch must be a whole number >= 0"),
        ({"epoch": 1, "step": 3, "epoch_finished": "no"}, "epoch_finished must be true or false"),
        ({"epoch": 1, "step": 3, "learning_rate": [1]}, "learning_rate must be a number"),
    ],
)
def test_meta_progress_of_the_wrong_type(model, tmp_path, progress, message):
    run = copy_run(model, tmp_path / "run")
    arrays = arrays_of(run / "model.npz")
    np.savez(run / "model.npz", **with_meta(arrays, {**meta_of(arrays), "progress": progress}))
    assert_user_error(run_cli("inspect", str(run / "model.npz")), "model.npz", message)
    assert_user_error(run_cli("train", "--resume", str(run)), "model.npz", message)


@pytest.mark.parametrize("missing", ["step_in_epoch", "loss_sum", "step"])
def test_meta_progress_missing_what_resume_needs(model, tmp_path, missing):
    run = copy_run(model, tmp_path / "run")
    arrays = arrays_of(run / "model.npz")
    meta = meta_of(arrays)
    assert meta["progress"]["epoch_finished"] is False  # written mid-epoch
    del meta["progress"][missing]
    np.savez(run / "model.npz", **with_meta(arrays, meta))
    assert_user_error(run_cli("train", "--resume", str(run)), "model.npz", missing)
    assert run_cli("inspect", str(run / "model.npz")).returncode == 0  # still readable


def test_mid_epoch_progress_without_a_carried_state(model, tmp_path):
    run = copy_run(model, tmp_path / "run")
    arrays = {k: v for k, v in arrays_of(run / "model.npz").items() if not k.startswith("carried_")}
    np.savez(run / "model.npz", **arrays)
    assert_user_error(run_cli("train", "--resume", str(run)), "no carried state")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("log_every", 0, "log_every must be a whole number > 0, got 0"),
        ("log_every", "100", "log_every must be a whole number > 0, got '100'"),
        ("checkpoint_every", -5, "checkpoint_every must be a whole number >= 0"),
        ("checkpoint_every", 2.5, "checkpoint_every must be a whole number >= 0"),
        ("engine", 5, "engine must be a string"),
        ("dtype", "float16", "dtype must be float32 or float64"),
        ("config", [1, 2], "config must be a JSON object"),
    ],
)
def test_config_json_edited_to_the_wrong_type_is_refused_on_resume(
    model, tmp_path, field, value, message
):
    run = copy_run(model, tmp_path / "run")
    info = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**info, field: value}))
    before = (run / "metrics.jsonl").read_text()
    assert_user_error(run_cli("train", "--resume", str(run)), "config.json", message)
    assert (run / "metrics.jsonl").read_text() == before


def test_config_json_that_is_not_a_json_object(model, tmp_path):
    run = copy_run(model, tmp_path / "run")
    (run / "config.json").write_text("[1, 2, 3]\n")
    assert_user_error(
        run_cli("train", "--resume", str(run)), "config.json", "must hold a JSON object"
    )
    assert_user_error(run_cli("plot", str(run)), "config.json", "must hold a JSON object")
    (run / "config.json").write_text('{"engine": "numpy",')
    assert_user_error(run_cli("plot", str(run)), "config.json", "not valid JSON")


def test_plot_given_a_config_json_names_the_run_folder(model):
    config = model.parent / "config.json"
    result = run_cli("plot", str(config))
    assert_user_error(result, "config.json is a file", str(model.parent))
    assert "does not exist" not in result.stderr


def test_resume_needs_the_epoch_records_it_prints(model, tmp_path):
    """plot reads an epoch record with its step, epoch and valid perplexity; --resume prints
    the finished run's summary from every field train writes, so it needs them all."""
    run = copy_run(model, tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines.insert(1, json.dumps({"event": "epoch", "step": 2, "epoch": 1, "valid_perplexity": 9.0}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("plot", str(run), "--out", str(tmp_path / "c.png"))
    assert result.returncode == 0, result.stderr
    assert_user_error(
        run_cli("train", "--resume", str(run)), "metrics.jsonl line 2", "lr is missing"
    )


@pytest.mark.parametrize(
    "record, message",
    [
        (
            {
                "event": "epoch",
                "step": 20,
                "epoch": 1,
                "lr": 1,
                "steps": 20,
                "train_perplexity": 9.0,
                "words_per_second": 5.0,
                "ms_per_step": 1.0,
                "epoch_time": 1.0,
            },
            "valid_perplexity is missing",
        ),
        (
            {
                "event": "epoch",
                "step": 20,
                "epoch": "one",
                "lr": 1,
                "steps": 20,
                "train_perplexity": 9.0,
                "valid_perplexity": 8.0,
                "words_per_second": 5.0,
                "ms_per_step": 1.0,
                "epoch_time": 1.0,
            },
            "epoch must be a whole number >= 0",
        ),
        (
            {"event": "step", "step": 4, "epoch": 1, "perplexity": "high"},
            "perplexity must be a number",
        ),
        ({"event": "test", "step": "last", "test_perplexity": 9.0}, "step must be a whole number"),
        ([1, 2], "a record must be a JSON object, got list"),
        ({"event": 7, "step": 1}, "event must be a string"),
    ],
)
def test_metrics_records_of_the_wrong_shape(model, tmp_path, record, message):
    run = copy_run(model, tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines.insert(1, json.dumps(record))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert_user_error(
        run_cli("plot", str(run), "--out", str(tmp_path / "c.png")), "metrics.jsonl line 2", message
    )
    assert_user_error(run_cli("train", "--resume", str(run)), "metrics.jsonl line 2", message)


def test_metrics_garbage_mid_file_is_refused_and_a_partial_last_line_is_not(model, tmp_path):
    run = copy_run(model, tmp_path / "run")
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + '{"event": "step", "st')  # a crash in mid-write
    result = run_cli("plot", str(run), "--out", str(tmp_path / "c.png"))
    assert result.returncode == 0, result.stderr
    lines = text.splitlines()
    (run / "metrics.jsonl").write_text("\n".join([lines[0], "oops", *lines[1:]]) + "\n")
    assert_user_error(
        run_cli("plot", str(run), "--out", str(tmp_path / "c.png")),
        "metrics.jsonl line 2: not JSON",
    )


# -- config values a reader cannot use (the library part of issue 16's class 7) ---------------


def test_a_toml_preset_of_the_wrong_type(corpus, tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text('preset = ["small"]\nhidden_size = 8\n')
    result = run_cli(
        "train", "--config", str(config), "--data-dir", str(corpus), "--out", str(tmp_path / "run")
    )
    assert_user_error(result, "mine.toml", "preset must be one of")


@pytest.mark.parametrize(
    "setting",
    [
        "init_scale=inf",
        "learning_rate=nan",
        "max_grad_norm=-inf",
        "hidden_size=1e400",
        "init_scale=1e308",
    ],
)
def test_non_finite_or_overflowing_config_values(corpus, tmp_path, setting):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(tmp_path / "run"),
        "--set",
        setting,
    )
    assert_user_error(result, "--set", setting.split("=")[0])
    assert not (tmp_path / "run").exists()


# -- score reads PTB's own tokens as they are written ---------------------------------------


@pytest.fixture(scope="module")
def ptb_model(ptb_dir, tmp_path_factory):
    """An untrained tiny model over the real PTB vocabulary (10,000 words, N and <unk>)."""
    out = tmp_path_factory.mktemp("ptb-model") / "run"
    return train_tiny(ptb_dir, out, "--max-steps", "0", "--dtype", "float64") / "model.npz"


def test_score_keeps_ptbs_own_tokens(ptb_model):
    result = run_cli("score", "--checkpoint", str(ptb_model), "--text", "sales rose N N", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unknown"] == 0
    capitals = run_cli(
        "score",
        "--checkpoint",
        str(ptb_model),
        "--text",
        "Sales ROSE N N <unk> to $ N Mr. Smith's U.S. unit",
        "--json",
    )
    lower = run_cli(
        "score",
        "--checkpoint",
        str(ptb_model),
        "--text",
        "sales rose N N <unk> to $ N mr. smith 's u.s. unit",
        "--json",
    )
    assert json.loads(capitals.stdout) == json.loads(lower.stdout)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_score_of_ptb_test_text_equals_evaluate(ptb_model, ptb_dir, tmp_path, bom):
    """score --text-file reads PTB text token for token as evaluate reads the split: the same
    log-likelihood. evaluate at batch 1 x 1 predicts every token after the first, so the test
    file starts with an empty line (an <eos>), as score starts after a sentence end."""
    lines = (ptb_dir / "ptb.test.txt").read_text(encoding="utf-8").splitlines()[:150]
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid"):
        (data / f"ptb.{split}.txt").symlink_to(ptb_dir / f"ptb.{split}.txt")
    (data / "ptb.test.txt").write_text("\n" + "\n".join(lines) + "\n", encoding="utf-8")
    text = tmp_path / "text.txt"
    text.write_bytes(bom + "\n".join(lines).encode("utf-8") + b"\n")
    scored = run_cli("score", "--checkpoint", str(ptb_model), "--text-file", str(text), "--json")
    assert scored.returncode == 0, scored.stderr
    evaluated = run_cli(
        "evaluate",
        "--checkpoint",
        str(ptb_model),
        "--data-dir",
        str(data),
        "--split",
        "test",
        "--batch-size",
        "1",
        "--num-steps",
        "1",
        "--json",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    score, evaluation = json.loads(scored.stdout), json.loads(evaluated.stdout)
    assert score["unknown"] == 0
    assert score["tokens"] == evaluation["tokens"] == sum(len(s.split()) + 1 for s in lines)
    assert -score["log_likelihood"] == pytest.approx(evaluation["nll"], rel=1e-9)


# -- a model without <unk> or without <eos> ---------------------------------------------------


@pytest.fixture(scope="module")
def model_without_unk(tmp_path_factory):
    """A model trained on a corpus that has no <unk>: every word of valid and test is in
    train."""
    root = tmp_path_factory.mktemp("no-unk")
    data = root / "data"
    data.mkdir()
    lines = [" ".join(f"w{(start + k) % 9}" for k in range(6)) for start in range(9)]
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_text("\n".join(lines * 3) + "\n")
    out = root / "run"
    result = run_cli(
        "train", "--config", "tiny", "--data-dir", str(data), "--out", str(out), "--max-steps", "0"
    )
    assert result.returncode == 0, result.stderr
    assert "<unk>" not in meta_of(arrays_of(out / "model.npz"))["vocab"]
    return out / "model.npz"


def test_score_without_unk_names_the_unknown_words(model_without_unk):
    result = run_cli(
        "score", "--checkpoint", str(model_without_unk), "--text", "w1 w2 zebra w3. w4 okapi"
    )
    assert_user_error(
        result, "2 word(s) not in the model's vocabulary", "'okapi', 'zebra'", "no <unk>"
    )
    known = run_cli(
        "score", "--checkpoint", str(model_without_unk), "--text", "w1 w2. w3", "--json"
    )
    assert known.returncode == 0, known.stderr
    assert json.loads(known.stdout)["unknown"] == 0


def test_a_model_without_eos(model_without_unk, tmp_path):
    arrays = arrays_of(model_without_unk)
    meta = meta_of(arrays)
    meta["vocab"] = ["<end>" if w == "<eos>" else w for w in meta["vocab"]]
    path = tmp_path / "model.npz"
    np.savez(path, **with_meta(arrays, meta))
    assert_user_error(run_cli("score", "--checkpoint", str(path), "--text", "w1 w2"), "no <eos>")
    assert_user_error(
        run_cli("generate", "--checkpoint", str(path), "--words", "3"), "no <eos>", "--prompt"
    )
    result = run_cli("generate", "--checkpoint", str(path), "--prompt", "w1 w2", "--words", "4")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 2 + 4


# -- generate: words as they come, bounded memory ---------------------------------------------


def test_generate_streams_words_as_they_come_and_stops_when_the_reader_does(model):
    import subprocess
    import sys
    import threading

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ptb_lstm",
            "generate",
            "--checkpoint",
            str(model),
            "--words",
            "10000000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    guard = threading.Timer(300, process.kill)  # a hang guard, not a speed limit
    guard.start()
    try:
        first = process.stdout.read(200)  # ten million words would take hours to finish
        process.stdout.close()  # the reader goes away, as `| head` does
        stderr = process.stderr.read().decode()
        process.wait()
    finally:
        guard.cancel()
    assert len(first) == 200 and first.split()[0].startswith(b"w")
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "Broken pipe" not in stderr


def test_a_long_prompt_is_read_in_chunks_of_bounded_memory(ptb_model, ptb_dir):
    import tracemalloc

    from ptb_lstm import checkpoint
    from ptb_lstm.engines import create_engine
    from ptb_lstm.generate import generate, read_prompt

    ckpt = checkpoint.load(ptb_model)
    engine = create_engine("numpy", ckpt.config, ckpt.params, "float64")
    text = (ptb_dir / "ptb.test.txt").read_text(encoding="utf-8").splitlines()
    prompt = read_prompt(" ".join(text[:1000]), ckpt.vocab)
    assert len(prompt.ids) > 20_000
    tracemalloc.start()
    try:
        words = list(generate(engine, ckpt.vocab, prompt.ids, 5, seed=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(words) == 5
    # Read in one call, the prompt's scores alone are 20,000 x 10,000 float64: 1.6 GB.
    assert peak < 50 * 2**20, peak


def test_chunked_prompt_reading_carries_the_state_exactly(ptb_model, ptb_dir):
    """Greedy words (a tiny temperature) after a 300-word prompt equal those of a plain loop
    that reads the whole prompt in one call and then one word at a time."""
    from ptb_lstm import checkpoint
    from ptb_lstm.engines import create_engine
    from ptb_lstm.generate import PROMPT_CHUNK, generate, read_prompt

    ckpt = checkpoint.load(ptb_model)
    engine = create_engine("numpy", ckpt.config, ckpt.params, "float64")
    text = (ptb_dir / "ptb.test.txt").read_text(encoding="utf-8").splitlines()
    prompt = read_prompt(" ".join(text[:20]), ckpt.vocab).ids[:300]
    assert len(prompt) > 4 * PROMPT_CHUNK
    engine.reset_state(1)
    logits = engine.logits(np.array([[ckpt.vocab.index("<eos>"), *prompt]]))[0, -1]
    expected = []
    for _ in range(8):
        expected.append(int(np.argmax(logits)))
        logits = engine.logits(np.array([[expected[-1]]]))[0, -1]
    got = list(generate(engine, ckpt.vocab, prompt, 8, temperature=1e-320))
    assert got == [ckpt.vocab[i] for i in expected]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--words", "0"], "--words"),
        (["--words", "-3"], "--words"),
        (["--seed", "-1"], "--seed"),
        (["--top-k", "-2"], "--top-k"),
    ],
)
def test_generate_refuses_counts_it_cannot_use(model, flags, message):
    assert_user_error(run_cli("generate", "--checkpoint", str(model), *flags), message)


def test_generate_at_a_subnormal_temperature_picks_the_likeliest_word(model):
    result = run_cli(
        "generate", "--checkpoint", str(model), "--words", "5", "--temperature", "1e-320"
    )
    assert result.returncode == 0, result.stderr
    again = run_cli(
        "generate",
        "--checkpoint",
        str(model),
        "--words",
        "5",
        "--temperature",
        "1e-320",
        "--seed",
        "9",
    )
    assert result.stdout == again.stdout  # no randomness left to differ by
