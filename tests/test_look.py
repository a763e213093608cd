"""``ptb-lstm look`` and ``ptb_lstm.look``: the activations it reports are the reference
engine's, its surprisals add up to the text's score, its counts and correlations are those of
the whole stream however it is chunked, and bad input is one line with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptb_lstm import checkpoint, look
from ptb_lstm.cli import main
from ptb_lstm.data import load_corpus
from ptb_lstm.engines import create_engine
from ptb_lstm.score import score_text

from conftest import run_cli, write_corpus

TEXT = "w1 w2 w3 w4 w5. w7 w8 nonsense w10 w11 w0 w1\nw3 w4 w5 w6"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for one epoch on a tiny corpus: (model.npz, the corpus folder)."""
    folder = tmp_path_factory.mktemp("look")
    data = write_corpus(folder / "tiny")
    out = folder / "run"
    result = run_cli(
        "train", "--config", "tiny", "--data-dir", str(data), "--out", str(out), "--epochs", "1"
    )
    assert result.returncode == 0, result.stderr
    return out / "model.npz", data


@pytest.fixture(scope="module")
def ckpt(trained):
    return checkpoint.load(trained[0])


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_by_hand(params, ids, num_layers, hidden):
    """The equations of docs/model.md one word at a time, float64, from a zero state: per
    layer, a dict of [N, H] arrays h, c, i, f, g, o after each word."""
    H = hidden
    x = params["embedding"].astype(np.float64)[ids]
    out = []
    for layer in range(num_layers):
        W, U, b = (
            params[f"lstm_{layer}_{name}"].astype(np.float64)
            for name in ("kernel", "recurrent_kernel", "bias")
        )
        h, c = np.zeros(H), np.zeros(H)
        rows = {k: [] for k in "hcifgo"}
        for t in range(len(ids)):
            z = x[t] @ W + h @ U + b
            i, f, o = sigmoid(z[:H]), sigmoid(z[H : 2 * H]), sigmoid(z[3 * H :])
            g = np.tanh(z[2 * H : 3 * H])
            c = f * c + i * g
            h = o * np.tanh(c)
            for k, v in zip("hcifgo", (h, c, i, f, g, o), strict=True):
                rows[k].append(v)
        out.append({k: np.array(v) for k, v in rows.items()})
        x = out[-1]["h"]
    return out


def test_activations_are_the_lstm_equations_on_the_same_words(ckpt):
    engine = look.reference_engine(ckpt, "float64")
    _, _, ids = look.text_ids(TEXT, ckpt.vocab, "--text")
    config = ckpt.config
    expected = lstm_by_hand(ckpt.params, ids, config.num_layers, config.hidden_size)
    chunks = list(look.read_stream(engine, np.array(ids), chunk=3))  # the state crosses chunks
    assert len(chunks) > 3
    zeros = np.zeros((1, config.hidden_size))
    whole = engine.forward(np.array([ids]), [(zeros, zeros)] * config.num_layers).layers
    for layer in range(config.num_layers):
        for name in "hcifgo":
            got = np.concatenate([part.layers[layer][name] for part in chunks])
            np.testing.assert_allclose(got, expected[layer][name], rtol=0, atol=1e-12)
            # and the reference engine's forward pass over the whole text at once
            engine_values = getattr(whole[layer], name)
            engine_values = engine_values[1:] if name in "hc" else engine_values  # h(-1), c(-1)
            np.testing.assert_array_equal(got, engine_values[:, 0])


def test_text_reading_keeps_the_chosen_layer_after_each_word(ckpt):
    engine = look.reference_engine(ckpt, "float64")
    _, _, ids = look.text_ids(TEXT, ckpt.vocab, "--text")
    expected = lstm_by_hand(ckpt.params, ids, ckpt.config.num_layers, ckpt.config.hidden_size)
    reading = look.read_text(engine, ckpt, TEXT, layer=1, keep=7, chunk=4)
    # ids[0] is the <eos> the text is read after: word k of the text is input k.
    np.testing.assert_allclose(reading.cells, expected[0]["c"][1:8], atol=1e-12)
    np.testing.assert_allclose(reading.hidden, expected[0]["h"][1:8], atol=1e-12)
    assert reading.words[:5] == ["w1", "w2", "w3", "w4", "w5"]
    assert reading.read_as[reading.words.index("nonsense")] == "<unk>"


def test_surprisals_add_up_to_the_score_of_the_text(ckpt):
    reading = look.read_text(look.reference_engine(ckpt, "float64"), ckpt, TEXT, 2, chunk=5)
    numpy_engine = create_engine("numpy", ckpt.config, ckpt.params, dtype="float64")
    score = score_text(numpy_engine, ckpt.vocab, TEXT, num_steps=ckpt.config.num_steps)
    assert len(reading.surprisal) == score.tokens
    assert reading.log_likelihood == pytest.approx(score.log_likelihood, rel=1e-10)
    assert reading.perplexity == pytest.approx(score.perplexity, rel=1e-10)
    assert np.all(reading.surprisal > 0)


def test_the_chunk_size_changes_no_number(ckpt):
    engine = look.reference_engine(ckpt, "float64")
    one = look.read_text(engine, ckpt, TEXT, 2, keep=100, chunk=1)
    many = look.read_text(engine, ckpt, TEXT, 2, keep=100, chunk=1000)
    np.testing.assert_allclose(one.surprisal, many.surprisal, rtol=1e-12)
    np.testing.assert_allclose(one.cells, many.cells, atol=1e-12)


def test_features_follow_sentences_numbers_quotes_and_parentheses():
    tokens = "a N `` b ( c '' d ) e <eos> f \" g \" h -lrb- i <eos>".split()
    whole = look.FeatureTracker()(tokens)
    tracker = look.FeatureTracker()  # fed in two chunks, it carries the open spans over
    np.testing.assert_array_equal(np.concatenate([tracker(tokens[:5]), tracker(tokens[5:])]), whole)
    assert whole[:, 0].tolist() == [*range(1, 12), *range(1, 9)]
    assert whole[:, 1].tolist() == [t == "N" for t in tokens]
    inside_quotes = [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    # The closing mark is outside; an unclosed parenthesis ends with its sentence's <eos>.
    inside_parentheses = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert whole[:, 2].tolist() == inside_quotes
    assert whole[:, 3].tolist() == inside_parentheses


def test_corpus_counts_and_correlations_are_those_of_the_whole_stream(ckpt, trained):
    corpus = load_corpus(trained[1], vocab=ckpt.vocab)
    engine = look.reference_engine(ckpt, "float64")
    reading = look.read_corpus(engine, ckpt.vocab, corpus.valid, "valid", limit=50, chunk=7)
    ids = corpus.valid[:50]
    expected = lstm_by_hand(ckpt.params, ids, ckpt.config.num_layers, ckpt.config.hidden_size)
    assert reading.tokens == 50
    position, positions = 0, []
    for token in (ckpt.vocab[k] for k in ids):
        position += 1
        positions.append(position)
        position = 0 if token == "<eos>" else position
    for layer, values in enumerate(expected):
        for g, gate in enumerate(look.GATES):
            np.testing.assert_allclose(reading.low[layer, g], (values[gate] < 0.1).mean(0))
            np.testing.assert_allclose(reading.high[layer, g], (values[gate] > 0.9).mean(0))
        np.testing.assert_allclose(reading.silent[layer], (np.abs(values["h"]) < 0.1).mean(0))
        for unit in range(ckpt.config.hidden_size):
            r = np.corrcoef(positions, values["c"][:, unit])[0, 1]
            assert reading.correlation[layer, 0, unit] == pytest.approx(r, abs=1e-9)
    assert np.isnan(reading.correlation[:, 1:]).all()  # no N, no quotes, no parentheses here
    top = look.top_cells(reading, 2)
    assert len(top["sentence_position"]["cells"]) == 2
    assert "none of its marks" in top["in_quotes"]["why_none"]
    assert "constant" in top["after_number"]["why_none"]


def test_neighbours_are_the_words_of_highest_cosine(ckpt):
    found = look.neighbours(ckpt, "W3", count=4)  # looked up lower-cased too
    assert found["word"] == "w3"
    for name, matrix in (
        ("embedding", ckpt.params["embedding"]),
        ("softmax", ckpt.params["softmax_kernel"].T),
    ):
        m = matrix.astype(np.float64)
        row = m[ckpt.vocab.index("w3")]
        cosines = {
            w: float(m[k] @ row / np.linalg.norm(m[k]) / np.linalg.norm(row))
            for k, w in enumerate(ckpt.vocab)
            if w != "w3"
        }
        best = sorted(cosines, key=cosines.get, reverse=True)[:4]
        assert [w for w, _ in found[name]] == best
        assert [c for _, c in found[name]] == pytest.approx([cosines[w] for w in best])
    shared = {w for w, _ in found["embedding"]} & {w for w, _ in found["softmax"]}
    assert found["overlap"] == len(shared) and found["shared"] == sorted(shared)


def test_look_writes_its_files_and_agrees_with_score(trained, tmp_path, capsys):
    model, data = trained
    out = tmp_path / "look"
    code = main(
        ["look", "--checkpoint", str(model), "--text", TEXT, "--data-dir", str(data)]
        + ["--out", str(out), "--limit", "60", "--neighbours", "w2", "--top", "3"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "activations-layer-2.png",
        "cells.json",
        "neighbours.json",
        "saturation.json",
        "saturation.png",
        "surprisal.html",
        "surprisal.json",
        "surprisal.png",
    ]
    record = json.loads((out / "surprisal.json").read_text())
    assert main(["score", "--checkpoint", str(model), "--text", TEXT, "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert record["tokens"] == score["tokens"] == len(record["words"])
    assert record["unknown"] == score["unknown"] == 1
    total = sum(w["surprisal_nats"] for w in record["words"])
    assert -total == pytest.approx(score["log_likelihood"], rel=1e-5)  # float32, two engines
    assert json.loads((out / "saturation.json").read_text())["tokens"] == 60
    assert "sentence_position" in printed and "in both lists" in printed
    assert "nonsense" in (out / "surprisal.html").read_text()


def test_look_reads_stdin_and_skips_the_split(trained, tmp_path, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"w1 w2 w3\n")))
    out = tmp_path / "look"
    args = ["look", "--checkpoint", str(trained[0]), "--text-file", "-", "--split", "none"]
    assert main([*args, "--out", str(out), "--layer", "1"]) == 0
    assert "over 4 tokens" in capsys.readouterr().out
    assert not (out / "saturation.json").exists() and (out / "activations-layer-1.png").exists()


def test_a_failed_write_leaves_the_old_figure_whole(trained, tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    out = tmp_path / "look"
    args = ["look", "--checkpoint", str(trained[0]), "--text", TEXT, "--split", "none"]
    assert main([*args, "--out", str(out)]) == 0
    before = (out / "surprisal.png").read_bytes()

    def half_then_fail(self, f, **kwargs):
        f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    assert main([*args, "--text", "w5 w6", "--out", str(out)]) == 2
    assert "No space left" in capsys.readouterr().err
    assert (out / "surprisal.png").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def model_without_unk(tmp_path):
    from ptb_lstm.config import PRESETS
    from ptb_lstm.params import init_params

    vocab = ["<eos>", "a", "b", "c"]
    params = init_params(PRESETS["tiny"], len(vocab))
    path = tmp_path / "no-unk.npz"
    checkpoint.save(path, checkpoint.Checkpoint(params, vocab, PRESETS["tiny"]))
    return path


def look_error(capsys, *args: str) -> str:
    """The one line ``ptb-lstm look ARGS`` prints on stderr; it must exit with status 2."""
    code = main(["look", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("ptb-lstm: error:")
    return err[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--text", "  ...  "], ("--text holds no words",)),
        (["--text", "a b", "--layer", "3"], ("--layer 3", "2 layer(s)")),
        (["--text", "a b", "--layer", "0"], ("--layer 0",)),
        (["--text", "a b", "--limit", "0"], ("--limit must be > 0",)),
        (["--neighbours", "zebra"], ("--neighbours zebra", "not in the model's vocabulary")),
        ([], ("--text", "--neighbours")),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(trained, tmp_path, capsys, args, fragments):
    line = look_error(capsys, "--checkpoint", str(trained[0]), "--out", str(tmp_path), *args)
    for fragment in fragments:
        assert fragment in line


def test_a_text_without_an_out_folder_is_refused(trained, capsys):
    assert "--out" in look_error(capsys, "--checkpoint", str(trained[0]), "--text", "w1")


def test_an_unknown_word_for_a_model_without_unk(tmp_path, capsys):
    line = look_error(
        capsys,
        *("--checkpoint", str(model_without_unk(tmp_path)), "--text", "a zebra b"),
        *("--out", str(tmp_path / "look")),
    )
    assert "'zebra'" in line and "no <unk>" in line


def test_a_missing_or_damaged_checkpoint(tmp_path, capsys):
    out = ("--text", "a", "--out", str(tmp_path / "look"))
    missing = look_error(capsys, "--checkpoint", str(tmp_path / "none.npz"), *out)
    assert "none.npz" in missing
    damaged = tmp_path / "model.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    assert "model.npz" in look_error(capsys, "--checkpoint", str(damaged), *out)


def test_an_empty_text_file(trained, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    line = look_error(
        capsys, "--checkpoint", str(trained[0]), "--text-file", str(empty), "--out", "x"
    )
    assert "--text-file" in line and "empty.txt" in line and "no words" in line
