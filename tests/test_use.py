"""Using a trained model: generate, score, inspect, TensorBoard."""

import json

import numpy as np
import pytest

from ptb_lstm.config import PRESETS
from ptb_lstm.data import load_corpus
from ptb_lstm.engines import create_engine
from ptb_lstm.evaluate import evaluate
from ptb_lstm.params import init_params
from ptb_lstm.score import score_text, token_log_probs
from ptb_lstm.text import normalize, to_ids

from conftest import assert_user_error, other_engines, run_cli, write_corpus


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model trained once for every test of this file (they only read it); its corpus is
    the one ``tiny_dir`` writes."""
    folder = tmp_path_factory.mktemp("trained")
    data = write_corpus(folder / "tiny")
    out = folder / "run"
    result = run_cli(
        "train", "--config", "tiny", "--data-dir", str(data), "--out", str(out), "--epochs", "1"
    )
    assert result.returncode == 0, result.stderr
    return out / "model.npz"


def test_normalize_follows_ptb_conventions():
    vocab = {"mr.", "u.s.", "$", "&"}
    assert normalize("Mr. Smith didn't pay $1,000 for 3.5% of A&P's U.S. unit.", vocab) == [
        [
            "mr.",
            "smith",
            "did",
            "n't",
            "pay",
            "$",
            "N",
            "for",
            "N",
            "of",
            "a",
            "&",
            "p",
            "'s",
            "u.s.",
            "unit",
        ]
    ]
    assert normalize("It rose. Then it fell!\nNew line", set()) == [
        ["it", "rose"],
        ["then", "it", "fell"],
        ["new", "line"],
    ]
    assert normalize("I can't", set()) == [["i", "ca", "n't"]]


def test_unknown_words_become_unk_and_are_counted():
    ids, used, unknown = to_ids([["a", "zebra"]], {"a": 0, "<unk>": 1, "<eos>": 2})
    assert ids == [0, 1, 2] and used == ["a", "<unk>", "<eos>"] and unknown == 1


def test_score_of_a_stream_equals_evaluation_of_the_same_ids(tiny_dir):
    corpus = load_corpus(tiny_dir)
    config = PRESETS["tiny"]
    engine = create_engine(
        "numpy", config, init_params(config, corpus.vocab_size, np.float64), "float64"
    )
    ids = corpus.valid[:101]
    by_score = token_log_probs(engine, list(ids), num_steps=7).sum()
    by_evaluate = evaluate(engine, ids, batch_size=1, num_steps=1).nll
    assert -by_score == pytest.approx(by_evaluate, rel=1e-12)


def test_score_text_per_sentence_adds_up(tiny_dir):
    corpus = load_corpus(tiny_dir)
    config = PRESETS["tiny"]
    engine = create_engine("numpy", config, init_params(config, corpus.vocab_size), "float64")
    result = score_text(engine, corpus.vocab, "w1 w2 w3.\nw4 zebra w5", num_steps=5)
    assert result.tokens == 4 + 4 and result.unknown == 1
    assert [s.tokens for s in result.sentences] == [4, 4]
    assert sum(s.log_likelihood for s in result.sentences) == pytest.approx(result.log_likelihood)


def test_score_command_json(trained):
    result = run_cli(
        "score",
        "--checkpoint",
        str(trained),
        "--text",
        "w1 w2 w3. w9 qqq",
        "--json",
        "--per-sentence",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert {"perplexity", "tokens", "unknown", "log_likelihood"} <= record.keys()
    assert record["tokens"] == 7 and record["unknown"] == 1
    assert len(record["sentences"]) == 2


def test_score_per_sentence_names_its_columns(trained):
    result = run_cli(
        "score", "--checkpoint", str(trained), "--text", "w1 w2 w3. w9 qqq", "--per-sentence"
    )
    assert result.returncode == 0, result.stderr
    heading, first, second = result.stdout.splitlines()[:3]
    assert heading.split() == ["perplexity", "log-lik.", "sentence"]
    assert first.split()[2:] == ["w1", "w2", "w3"]  # as normalised: PTB has no "."
    assert second.split()[2:] == ["w9", "<unk>"]  # an unknown word is scored as <unk>


def test_score_missing_text_file(trained, tmp_path):
    result = run_cli(
        "score", "--checkpoint", str(trained), "--text-file", str(tmp_path / "none.txt")
    )
    assert_user_error(result, "none.txt", "does not exist")


def test_generate_is_reproducible_with_a_seed(trained):
    args = ["generate", "--checkpoint", str(trained), "--prompt", "w1 w2", "--words", "25"]
    first = run_cli(*args, "--seed", "4")
    again = run_cli(*args, "--seed", "4")
    other = run_cli(*args, "--seed", "5")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout != other.stdout
    words = first.stdout.split()
    assert words[:2] == ["w1", "w2"] and len(words) == 2 + 25 - first.stdout.count("\n") + 1
    assert "<eos>" not in first.stdout


def test_generate_warns_about_unknown_prompt_words(trained):
    result = run_cli(
        "generate",
        "--checkpoint",
        str(trained),
        "--prompt",
        "w1 zebra",
        "--words",
        "3",
        "--top-k",
        "2",
        "--temperature",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    assert "zebra" in result.stderr and "<unk>" in result.stdout


def test_generate_rejects_zero_temperature(trained):
    assert_user_error(
        run_cli("generate", "--checkpoint", str(trained), "--temperature", "0"), "--temperature"
    )


def test_inspect_lists_parameters_progress_and_writer(trained):
    result = run_cli("inspect", str(trained), "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["engine"] == "numpy" and record["dtype"] == "float32"
    assert record["shapes"]["lstm_0_kernel"] == [16, 64]
    assert record["progress"]["epoch"] == 1 and record["progress"]["epoch_finished"] is True
    text = run_cli("inspect", str(trained)).stdout
    assert "softmax_kernel" in text and "parameters:" in text


def test_tensorboard_scalars_are_written(tiny_dir, tmp_path):
    tf = pytest.importorskip("tensorflow")
    board = tmp_path / "board"
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(tiny_dir),
        "--out",
        str(tmp_path / "run"),
        "--epochs",
        "1",
        "--log-every",
        "5",
        "--tensorboard",
        str(board),
    )
    assert result.returncode == 0, result.stderr
    tags = set()
    for path in board.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {
        "train/loss",
        "train/perplexity",
        "train/learning_rate",
        "train/gradient_norm",
        "train/words_per_second",
        "epoch/valid_perplexity",
        "test/perplexity",
    } <= tags


@pytest.mark.parametrize("engine", other_engines())
def test_logits_agree_across_engines_and_carry_the_state(tiny_dir, engine):
    """What generate and score read: the same next-word scores from every engine as from
    numpy, in float64, over two calls of different lengths that carry the state on."""
    corpus = load_corpus(tiny_dir)
    config = PRESETS["tiny"]
    params = init_params(config, corpus.vocab_size, np.float64)
    inputs = np.array([corpus.valid[:7]])
    outputs = {}
    for name in ("numpy", engine):
        model = create_engine(name, config, params, "float64")
        model.reset_state(1)
        outputs[name] = np.concatenate(
            [model.logits(inputs[:, :4]), model.logits(inputs[:, 4:])], axis=1
        )
    assert outputs["numpy"].shape == (1, 7, corpus.vocab_size)
    np.testing.assert_allclose(outputs[engine], outputs["numpy"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("engine", other_engines())
def test_generate_and_score_with_every_engine_match_numpy(trained, engine):
    args = ["--checkpoint", str(trained), "--dtype", "float64"]
    sample = ["generate", *args, "--prompt", "w1 w2", "--words", "8", "--seed", "3"]
    score = ["score", *args, "--text", "w1 w2 w3. w4 w5", "--json"]
    for command in (sample, score):
        reference = run_cli(*command)
        other = run_cli(*command, "--engine", engine)
        assert other.returncode == 0, other.stderr
        if command is sample:
            assert other.stdout == reference.stdout
        else:
            assert json.loads(other.stdout)["log_likelihood"] == pytest.approx(
                json.loads(reference.stdout)["log_likelihood"], rel=1e-9
            )
