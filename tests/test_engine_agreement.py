"""Every engine computes what the NumPy engine computes: same losses, same updates, same
perplexity, and each reads what each other writes. Tiny model, tiny data. The comparisons run
with every engine that is installed here and are skipped, not passed, when only NumPy is."""

from __future__ import annotations

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.agreement import LIMITS, compare, relative
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus
from ptb_lstm.engines import ENGINES, create_engine, engine_class
from ptb_lstm.errors import UserError
from ptb_lstm.evaluate import evaluate
from ptb_lstm.params import init_params
from ptb_lstm.train import train


def _installed(name: str) -> bool:
    try:
        engine_class(name)
    except UserError:  # its framework is not installed
        return False
    return True


INSTALLED = [name for name in ENGINES if _installed(name)]
OTHERS = [name for name in INSTALLED if name != "numpy"]
needs_another_engine = pytest.mark.skipif(
    not OTHERS, reason="no engine besides numpy is installed (pip install 'ptb-lstm[tf]')"
)


def each_engine(names=ENGINES):
    """``names`` as parameters, each skipped where its framework is not installed."""
    return [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                name not in INSTALLED, reason=f"engine {name} is not installed"
            ),
        )
        for name in names
    ]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from conftest import write_corpus

    return load_corpus(write_corpus(tmp_path_factory.mktemp("agree") / "tiny"))


@needs_another_engine
@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_steps_and_parameters_match_the_numpy_engine(dtype, dropout, tiny_corpus):
    rows = compare(OTHERS, PRESETS["tiny"].replace(dropout=dropout), tiny_corpus, dtype, steps=5)
    assert [r.engine for r in rows] == OTHERS
    for row in rows:
        assert row.loss <= LIMITS[dtype], row
        assert row.params <= LIMITS[dtype], row


def test_relative_difference_is_scaled_by_the_reference():
    assert relative(np.array([2.0, -4.0]), np.array([2.0, -4.004])) == pytest.approx(1e-3)


@needs_another_engine
def test_evaluation_perplexity_matches_across_engines(tiny_corpus):
    config = PRESETS["tiny"]
    params = init_params(config, tiny_corpus.vocab_size, np.float64)
    results = {}
    for name in INSTALLED:
        engine = create_engine(name, config, params, dtype="float64")
        results[name] = [
            evaluate(engine, tiny_corpus.valid, b, t).perplexity for b, t in ((4, 5), (1, 1))
        ]
    reference = np.array(results["numpy"])
    for name in OTHERS:
        assert relative(reference, np.array(results[name])) <= 1e-9, results


@needs_another_engine
def test_state_carries_across_train_and_eval_within_one_batch_size(tiny_corpus):
    """Evaluation right after training continues the carried state in every engine."""
    config = PRESETS["tiny"]
    params = init_params(config, tiny_corpus.vocab_size, np.float64)
    x, y = next(batches(tiny_corpus.train, config.batch_size, config.num_steps))
    values = {}
    for name in INSTALLED:
        engine = create_engine(name, config, params, dtype="float64")
        engine.train_step(x, y, 1.0)
        values[name] = engine.eval_step(x, y)
    for name in OTHERS:
        assert values[name] == pytest.approx(values["numpy"], rel=1e-9)


@pytest.mark.parametrize("writer", each_engine())
def test_checkpoint_written_by_each_engine_is_read_by_every_engine(writer, tiny_corpus, tmp_path):
    """What one engine trained and saved, every engine loads and computes with: the test
    perplexity each reader gets from the file is the one the writer got from its own memory."""
    config = PRESETS["tiny"]
    initial = init_params(config, tiny_corpus.vocab_size, np.float64)
    trained = create_engine(writer, config, initial, dtype="float64")
    result = train(config, tiny_corpus, trained, tmp_path / "run", max_steps=3)
    saved = checkpoint.load(tmp_path / "run" / "model.npz")
    assert saved.engine == writer and saved.progress["step"] == 3
    assert relative(initial["softmax_kernel"], saved.params["softmax_kernel"]) > 1e-3
    for reader in INSTALLED:
        engine = create_engine(reader, saved.config, saved.params, dtype=saved.dtype)
        ppl = evaluate(engine, tiny_corpus.test, config.batch_size, config.num_steps).perplexity
        assert ppl == pytest.approx(result.test.perplexity, rel=LIMITS["float64"]), reader


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", each_engine())
def test_engines_hold_parameters_in_the_requested_dtype(name, dtype, tiny_corpus):
    config = PRESETS["tiny"]
    engine = create_engine(name, config, init_params(config, tiny_corpus.vocab_size), dtype)
    assert {v.dtype for v in engine.get_params().values()} == {np.dtype(dtype)}


@pytest.mark.skipif(
    INSTALLED != list(ENGINES), reason="agree compares every engine; not all are installed"
)
def test_agree_command_on_real_ptb(ptb_dir):
    from conftest import run_cli

    result = run_cli("agree", "--data-dir", str(ptb_dir), "--json")
    assert result.returncode == 0, result.stderr
    import json

    rows = json.loads(result.stdout)["rows"]
    assert {(r["engine"], r["dtype"]) for r in rows} == {
        (e, d) for e in INSTALLED if e != "numpy" for d in ("float32", "float64")
    }
    for row in rows:
        limit = LIMITS[row["dtype"]]
        assert row["loss"] <= limit and row["params"] <= limit and row["perplexity"] <= limit


def test_agree_table_lines_up_under_its_header(tmp_path):
    """The text table keeps its columns under the header for the longest engine name."""
    from conftest import run_cli, write_corpus

    result = run_cli(
        "agree",
        "--data-dir",
        str(write_corpus(tmp_path / "ptb")),
        "--engine",
        "numpy-reference",
        "--dtype",
        "float64",
        "--dropout",
        "0.5",
        "--steps",
        "2",
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[1:3]
    assert row.split()[:3] == ["numpy-reference", "float64", "0.5"]
    for column in ("dtype", "params", "valid ppl"):
        # the row's field ends where the header's name does (dtype starts there)
        at = header.index(column)
        end = at + len(column)
        if column == "dtype":
            assert row[at:].startswith("float64"), (header, row)
        else:
            assert row[end - 1] != " " and row[end] == " ", (header, row)


@pytest.mark.parametrize("name", each_engine([e for e in ENGINES if e != "numpy"]))
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
        np.testing.assert_allclose(
            [e[key] for e in other.epochs], [e[key] for e in ref.epochs], rtol=1e-9
        )
    assert other.test.perplexity == pytest.approx(ref.test.perplexity, rel=1e-9)
    for key, value in ref_params.items():
        assert relative(other_params[key], value) < 1e-9, key


@pytest.mark.parametrize("optimizer", ["adam", "amsgrad"])
@pytest.mark.parametrize("name", each_engine([e for e in ENGINES if e != "numpy-reference"]))
def test_adam_and_amsgrad_updates_match_the_reference_engine(name, optimizer, tiny_corpus):
    """Six float64 steps of Adam or AMSGrad with betas and epsilon away from their defaults
    (and dropout): every parameter within 1e-9 of the reference engine's, relative to how far
    it moved, and the same optimizer state."""
    from ptb_lstm.agreement import compare_updates

    config = PRESETS["tiny"].replace(
        optimizer=optimizer, beta1=0.8, beta2=0.95, epsilon=1e-6, learning_rate=0.01, dropout=0.3
    )
    (row,) = compare_updates([name], config, tiny_corpus, "float64", steps=6)
    assert row.params <= 1e-9, row
    assert row.state <= 1e-9, row


def test_update_agreement_is_relative_to_the_step_taken():
    from ptb_lstm.agreement import relative_to_update

    assert relative_to_update(
        np.array([10.0, 5.0]), np.array([10.5, 5.0]), np.array([10.5, 5.001])
    ) == pytest.approx(2e-3)
