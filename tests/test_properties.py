"""Property-based tests (Hypothesis) of batching and of checkpoint round trips."""

from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ptb_lstm import checkpoint
from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, num_batches
from ptb_lstm.params import init_params


@given(n=st.integers(2, 400), batch_size=st.integers(1, 9), num_steps=st.integers(1, 9))
def test_batching_uses_each_token_once_in_order_as_contiguous_streams(n, batch_size, num_steps):
    ids = np.arange(n)  # every id is its own position in the stream
    steps = list(batches(ids, batch_size, num_steps))
    assert len(steps) == num_batches(n, batch_size, num_steps)
    if not steps:
        assert n - 1 < batch_size * num_steps
        return
    inputs = np.concatenate([x for x, _ in steps], axis=1)  # [B, steps * T]
    targets = np.concatenate([y for _, y in steps], axis=1)
    used = len(steps) * batch_size * num_steps
    # Every used token appears exactly once as an input and once as a target, in order.
    assert inputs.ravel().tolist() == list(range(used))
    assert targets.ravel().tolist() == list(range(1, used + 1))
    # The state carried from step s to s + 1 sees one contiguous stream in every row.
    for (x0, _), (x1, _) in zip(steps, steps[1:], strict=False):
        assert (x1[:, 0] == x0[:, -1] + 1).all()
    assert ((targets - inputs) == 1).all()


words = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(
    vocab=st.lists(words, min_size=2, max_size=12, unique=True),
    hidden=st.integers(1, 5),
    layers=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    step=st.integers(0, 10**9),
    learning_rate=st.floats(1e-6, 10),
)
def test_checkpoint_round_trip(vocab, hidden, layers, dtype, step, learning_rate):
    config = PRESETS["tiny"].replace(hidden_size=hidden, num_layers=layers)
    params = init_params(config, len(vocab), dtype)
    batch = config.batch_size
    carried = [
        (np.full((batch, hidden), 0.5, dtype), np.full((batch, hidden), -0.5, dtype))
    ] * layers
    saved = checkpoint.Checkpoint(
        params,
        vocab,
        config,
        {"epoch": 3, "step": step, "learning_rate": learning_rate},
        "numpy",
        np.dtype(dtype).name,
        carried=carried,
    )
    with TemporaryDirectory() as folder:
        path = checkpoint.save(Path(folder) / "model.npz", saved)
        loaded = checkpoint.load(path)
    assert loaded.vocab == vocab and loaded.config == config and loaded.progress == saved.progress
    assert loaded.dtype == np.dtype(dtype).name
    for name, value in params.items():
        np.testing.assert_array_equal(loaded.params[name], value)
        assert loaded.params[name].dtype == dtype
    for (h, c), (h2, c2) in zip(carried, loaded.carried, strict=True):
        np.testing.assert_array_equal(h, h2)
        np.testing.assert_array_equal(c, c2)
