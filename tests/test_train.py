import json
from pathlib import Path

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.config import PRESETS
from ptb_lstm.data import load_corpus
from ptb_lstm.engines import create_engine
from ptb_lstm.errors import UserError
from ptb_lstm.metrics import Reporter, read_metrics
from ptb_lstm.params import init_params
from ptb_lstm.train import train

from conftest import write_corpus


def run(tiny_dir, out, **kwargs):
    config = kwargs.pop("config", PRESETS["tiny"])
    corpus = load_corpus(tiny_dir)
    engine = create_engine("numpy", config, init_params(config, corpus.vocab_size))
    return train(config, corpus, engine, out, **kwargs), corpus


def test_training_writes_model_config_and_metrics(tiny_dir, tmp_path):
    result, corpus = run(tiny_dir, tmp_path / "run", log_every=5)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files == {"model.npz", "config.json", "metrics.jsonl"}
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert [r["lr"] for r in epochs] == [1.0, 0.5]
    steps = [r for r in records if r["event"] == "step"]
    assert steps and all(
        {"step", "epoch", "lr", "loss", "perplexity", "words_per_second", "wall_time"} <= r.keys()
        for r in steps
    )
    assert records[-1]["event"] == "test" and np.isfinite(records[-1]["test_perplexity"])
    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    assert saved.vocab == corpus.vocab and saved.progress["epoch"] == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["engine"] == "numpy"


def test_reporters_see_every_record_that_metrics_jsonl_keeps_and_the_progress(tiny_dir, tmp_path):
    """One route: the reporters receive the records of metrics.jsonl, equal and in order,
    with the progress records between them; the progress never reaches the file."""
    seen = []

    class Collect(Reporter):
        def record(self, record):
            seen.append(json.loads(json.dumps(record)))  # as the file holds it

    result, corpus = run(tiny_dir, tmp_path / "run", log_every=5, reporters=[Collect()])
    written = read_metrics(tmp_path / "run" / "metrics.jsonl")
    logged = {"step", "epoch", "partial_epoch", "test"}
    assert [r for r in seen if r["event"] in logged] == written
    assert not [r for r in written if r["event"] not in logged]
    progress = [r for r in seen if r["event"] == "progress"]
    assert len(progress) == result.steps  # one per training step
    starts = [r for r in seen if r["event"] == "epoch_start"]
    assert [(r["epoch"], r["start"]) for r in starts] == [(1, 0), (2, 0)]
    splits = [r["split"] for r in seen if r["event"] == "eval_end"]
    assert splits == ["valid", "valid", "test"]


def test_training_learns_the_tiny_corpus(tmp_path):
    corpus_dir = write_corpus(tmp_path / "corpus", lines=(300, 30, 30))
    config = PRESETS["tiny"].replace(epochs=4)
    result, corpus = run(corpus_dir, tmp_path / "run", config=config)
    assert result.epochs[-1]["train_perplexity"] < 0.5 * result.epochs[0]["train_perplexity"]
    # Each sentence counts up through the words, so the next word is nearly certain.
    assert result.test.perplexity < 4


def test_max_steps_zero_writes_the_initial_checkpoint(tiny_dir, tmp_path):
    result, corpus = run(tiny_dir, tmp_path / "run", max_steps=0)
    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    initial = init_params(PRESETS["tiny"], corpus.vocab_size)
    for name, value in initial.items():
        np.testing.assert_array_equal(saved.params[name], value)
    assert result.steps == 0


def test_max_steps_stops_mid_epoch(tiny_dir, tmp_path):
    result, _ = run(tiny_dir, tmp_path / "run", max_steps=3)
    assert result.steps == 3
    assert checkpoint.load(tmp_path / "run" / "model.npz").progress["step"] == 3
    assert result.epochs[0]["event"] == "partial_epoch"


def test_metrics_reader_ignores_a_partial_last_line(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    record = {
        "event": "step",
        "step": 1,
        "epoch": 1,
        "lr": 1.0,
        "loss": 5.0,
        "perplexity": 150.0,
        "wall_time": 0.5,
    }
    path.write_text(json.dumps(record) + '\n{"event": "st')
    assert read_metrics(path) == [record]
    # a line cut short is only the last one: garbage before a good line is refused
    path.write_text('{"event": "st\n' + json.dumps(record) + "\n")
    with pytest.raises(UserError, match="line 1: not JSON"):
        read_metrics(path)


def test_small_config_learns_real_ptb(ptb_corpus, tmp_path):
    """Sixty real steps of the small model: the training perplexity falls well below the
    vocabulary size it starts at."""
    config = PRESETS["small"]
    engine = create_engine("numpy", config, init_params(config, ptb_corpus.vocab_size))
    shown = []

    class Collect(Reporter):
        def record(self, record):
            if record["event"] == "progress":
                shown.append(record["perplexity"])

    result = train(
        config, ptb_corpus, engine, tmp_path / "run", max_steps=60, reporters=[Collect()]
    )
    first_ppl, last_ppl = shown[0], shown[-1]
    assert first_ppl == pytest.approx(10_000, rel=0.05)
    assert last_ppl < 0.5 * first_ppl
    assert result.valid.perplexity < 2000
