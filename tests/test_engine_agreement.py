"""The three engines compute the same function: same losses, same updates, same perplexity,
and each reads what each other writes. Tiny model, tiny data, dropout 0."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.agreement import compare, relative
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus
from ptb_lstm.engines import create_engine, installed_engines
from ptb_lstm.evaluate import evaluate
from ptb_lstm.params import init_params
from ptb_lstm.train import train

from conftest import assert_user_error

pytest.importorskip("tensorflow")

TOLERANCE = {"float64": 1e-9, "float32": 1e-4}
TF_ENGINES = ["tf-eager", "tf-graph"]
ENGINES = installed_engines()  # the registered engines whose framework is installed


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from conftest import write_corpus

    return load_corpus(write_corpus(tmp_path_factory.mktemp("agree") / "tiny"))


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_steps_and_parameters_match_the_numpy_engine(dtype, dropout, tiny_corpus):
    rows = compare(TF_ENGINES, PRESETS["tiny"].replace(dropout=dropout), tiny_corpus, dtype,
                   steps=5)
    assert [r.engine for r in rows] == TF_ENGINES
    for row in rows:
        assert row.loss <= TOLERANCE[dtype], row
        assert row.params <= TOLERANCE[dtype], row


def test_relative_difference_is_scaled_by_the_reference():
    assert relative(np.array([2.0, -4.0]), np.array([2.0, -4.004])) == pytest.approx(1e-3)


def test_evaluation_perplexity_matches_across_engines(tiny_corpus):
    config = PRESETS["tiny"]
    params = init_params(config, tiny_corpus.vocab_size, np.float64)
    results = {}
    for name in ENGINES:
        engine = create_engine(name, config, params, dtype="float64")
        results[name] = [evaluate(engine, tiny_corpus.valid, b, t).perplexity
                         for b, t in ((4, 5), (1, 1))]
    reference = np.array(results["numpy"])
    for name in TF_ENGINES:
        assert relative(reference, np.array(results[name])) <= 1e-9, results


def test_state_carries_across_train_and_eval_within_one_batch_size(tiny_corpus):
    """Evaluation right after training continues the carried state in every engine."""
    config = PRESETS["tiny"]
    params = init_params(config, tiny_corpus.vocab_size, np.float64)
    x, y = next(batches(tiny_corpus.train, config.batch_size, config.num_steps))
    values = {}
    for name in ENGINES:
        engine = create_engine(name, config, params, dtype="float64")
        engine.train_step(x, y, 1.0)
        values[name] = engine.eval_step(x, y)
    for name in TF_ENGINES:
        assert values[name] == pytest.approx(values["numpy"], rel=1e-9)


@pytest.mark.parametrize("writer", ENGINES)
def test_checkpoint_written_by_each_engine_is_read_by_every_engine(writer, tiny_corpus,
                                                                   tmp_path):
    config = PRESETS["tiny"]
    params = init_params(config, tiny_corpus.vocab_size, np.float64)
    trained = create_engine(writer, config, params, dtype="float64")
    train(config, tiny_corpus, trained, tmp_path / "run", max_steps=3)
    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    assert saved.engine == writer
    for reader in ENGINES:
        engine = create_engine(reader, saved.config, saved.params, dtype=saved.dtype)
        for key, value in engine.get_params().items():
            np.testing.assert_array_equal(value, saved.params[key], err_msg=f"{reader} {key}")


def test_without_tensorflow_the_core_runs_and_tf_engines_say_how_to_install(tiny_dir,
                                                                            tmp_path):
    blocker = "import sys; sys.modules['tensorflow'] = None; "
    run = "from ptb_lstm.cli import main; sys.exit(main(sys.argv[1:]))"
    common = ["--config", "tiny", "--data-dir", str(tiny_dir), "--max-steps", "2"]
    numpy_run = subprocess.run([sys.executable, "-c", blocker + run, "train", *common,
                                "--out", str(tmp_path / "np")], capture_output=True, text=True)
    assert numpy_run.returncode == 0, numpy_run.stderr
    for name in TF_ENGINES:
        result = subprocess.run([sys.executable, "-c", blocker + run, "train", *common,
                                 "--engine", name, "--out", str(tmp_path / name)],
                                capture_output=True, text=True)
        assert_user_error(result, f"--engine {name} needs TensorFlow", "ptb-lstm[tf]")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ENGINES)
def test_engines_hold_parameters_in_the_requested_dtype(name, dtype, tiny_corpus):
    config = PRESETS["tiny"]
    engine = create_engine(name, config, init_params(config, tiny_corpus.vocab_size), dtype)
    assert {v.dtype for v in engine.get_params().values()} == {np.dtype(dtype)}


def test_agree_command_on_real_ptb(ptb_dir):
    from conftest import run_cli

    result = run_cli("agree", "--data-dir", str(ptb_dir), "--json")
    assert result.returncode == 0, result.stderr
    import json

    rows = json.loads(result.stdout)["rows"]
    assert {(r["engine"], r["dtype"]) for r in rows} == \
        {(e, d) for e in installed_engines() if e != "numpy" for d in ("float32", "float64")}
    for row in rows:
        limit = TOLERANCE[row["dtype"]]
        assert row["loss"] <= limit and row["params"] <= limit and row["perplexity"] <= limit


@pytest.mark.parametrize("name", TF_ENGINES)
def test_whole_training_runs_agree_in_float64(name, tmp_path):
    """The training loop with each engine, over three epochs (learning-rate decay, the state
    reset at each epoch, valid after each, test at the end), in float64: the same perplexities
    and the same final parameters as the NumPy engine. Long float32 runs part ways by rounding
    (docs/agreement.md); this shows nothing else makes them differ."""
    from ptb_lstm.config import apply_overrides

    from conftest import write_corpus

    corpus = load_corpus(write_corpus(tmp_path / "data", seed=3, lines=(400, 40, 40)))
    config = apply_overrides(PRESETS["tiny"], {"epochs": 3, "epochs_at_full_lr": 1})
    params = init_params(config, corpus.vocab_size, seed=2)
    runs = {}
    for engine_name in ("numpy", name):
        engine = create_engine(engine_name, config, params, dtype="float64")
        result = train(config, corpus, engine, tmp_path / engine_name, log_every=10_000)
        runs[engine_name] = (result, engine.get_params())
    (ref, ref_params), (other, other_params) = runs["numpy"], runs[name]
    assert result.steps == runs["numpy"][0].steps > 200
    for key in ("train_perplexity", "valid_perplexity", "lr"):
        np.testing.assert_allclose([e[key] for e in other.epochs], [e[key] for e in ref.epochs],
                                   rtol=1e-9)
    assert other.test.perplexity == pytest.approx(ref.test.perplexity, rel=1e-9)
    for key, value in ref_params.items():
        assert relative(other_params[key], value) < 1e-9, key
