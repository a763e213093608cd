import io
import json
from pathlib import Path

import numpy as np
import pytest

from ptb_lstm import checkpoint
from ptb_lstm.config import PRESETS
from ptb_lstm.errors import UserError
from ptb_lstm.params import init_params, param_shapes

VOCAB = ["<eos>", "<unk>", "a", "b", "c"]


def make(dtype=np.float32) -> checkpoint.Checkpoint:
    config = PRESETS["tiny"]
    return checkpoint.Checkpoint(
        init_params(config, len(VOCAB), dtype),
        VOCAB,
        config,
        {"epoch": 1, "step": 7, "learning_rate": 1.0},
    )


def test_round_trip_keeps_everything(tmp_path: Path):
    path = checkpoint.save(tmp_path / "model.npz", make(np.float64))
    loaded = checkpoint.load(path)
    original = make(np.float64)
    assert loaded.vocab == VOCAB and loaded.config == original.config
    assert loaded.progress == original.progress and loaded.dtype == "float64"
    for name, value in original.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)


def test_file_is_plain_npz_with_canonical_names_and_json_meta(tmp_path: Path):
    path = checkpoint.save(tmp_path / "model.npz", make())
    with np.load(path, allow_pickle=False) as npz:
        names = set(npz.files)
        meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
    assert names == set(param_shapes(PRESETS["tiny"], len(VOCAB))) | {"meta"}
    assert meta["format"] == "ptb-lstm-checkpoint" and meta["version"] == 1
    assert meta["vocab"] == VOCAB and meta["progress"]["step"] == 7
    assert meta["config"]["hidden_size"] == PRESETS["tiny"].hidden_size


def test_save_leaves_no_temporary_files(tmp_path: Path):
    checkpoint.save(tmp_path / "model.npz", make())
    checkpoint.save(tmp_path / "model.npz", make())
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_truncated_file_is_a_clear_error(tmp_path: Path):
    path = checkpoint.save(tmp_path / "model.npz", make())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or not an .npz"):
        checkpoint.load(path)


def test_pickled_object_is_refused(tmp_path: Path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="pickled object"):
        checkpoint.load(path)


def test_wrong_shape_names_the_array(tmp_path: Path):
    bad = make()
    path = checkpoint.save(tmp_path / "model.npz", bad)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["softmax_bias"] = np.zeros(3, np.float32)
    np.savez(path, **arrays)
    with pytest.raises(UserError, match="softmax_bias has shape"):
        checkpoint.load(path)


def test_other_format_version_is_refused(tmp_path: Path):
    path = checkpoint.save(tmp_path / "model.npz", make())
    buffer = io.BytesIO()
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes()) | {"version": 99}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match="version 99"):
        checkpoint.load(path)


def test_not_a_zip_at_all(tmp_path: Path):
    """Any bytes but a zip archive: said to be no .npz, not mistaken for a pickle."""
    path = tmp_path / "model.npz"
    path.write_text("hello")
    with pytest.raises(UserError, match="is not an .npz archive") as raised:
        checkpoint.load(path)
    assert str(path) in str(raised.value) and "pickle" not in str(raised.value)


def with_adam(optimizer="amsgrad", dtype=np.float64) -> checkpoint.Checkpoint:
    from ptb_lstm.optim import initial_state

    saved = make(dtype)
    saved.config = saved.config.replace(optimizer=optimizer, beta1=0.8)
    saved.optimizer = initial_state(saved.config, len(VOCAB), dtype)
    saved.optimizer["t"] = np.array(12, np.int64)
    saved.optimizer["v_embedding"] += 0.25
    return saved


def test_optimizer_state_round_trips_as_plain_arrays(tmp_path: Path):
    path = checkpoint.save(tmp_path / "model.npz", with_adam())
    with np.load(path, allow_pickle=False) as npz:
        assert npz["optimizer_t"].shape == () and int(npz["optimizer_t"]) == 12
        assert {"optimizer_m_embedding", "optimizer_vmax_softmax_bias"} <= set(npz.files)
    loaded = checkpoint.load(path)
    assert loaded.config.optimizer == "amsgrad" and loaded.config.beta1 == 0.8
    assert int(loaded.optimizer["t"]) == 12
    np.testing.assert_array_equal(loaded.optimizer["v_embedding"], 0.25)


def test_a_checkpoint_without_optimizer_fields_or_arrays_loads_as_sgd(tmp_path: Path):
    """What older versions wrote: no optimizer arrays, a config without the new fields."""
    saved = make()
    path = checkpoint.save(tmp_path / "model.npz", saved)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    for name in ("optimizer", "beta1", "beta2", "epsilon"):
        del meta["config"][name]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(path, **arrays)
    loaded = checkpoint.load(path)
    assert loaded.config.optimizer == "sgd" and loaded.optimizer is None


def corrupt(tmp_path: Path, saved: checkpoint.Checkpoint, change) -> Path:
    path = checkpoint.save(tmp_path / "model.npz", saved)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda a: a.pop("optimizer_vmax_embedding"), "missing optimizer_vmax_embedding"),
        (
            lambda a: a.update(optimizer_w_embedding=a["optimizer_m_embedding"]),
            "unexpected optimizer_w_embedding",
        ),
        (lambda a: a.update(optimizer_t=np.array([3])), "optimizer_t must be a whole number"),
        (lambda a: a.update(optimizer_t=np.array(2.5)), "optimizer_t must be a whole number"),
        (lambda a: a.update(optimizer_m_softmax_bias=np.zeros(3)), "optimizer_m_softmax_bias is"),
        (
            lambda a: a.update(
                optimizer_v_lstm_0_bias=-a["optimizer_v_embedding"][0, :1].repeat(64)
            ),
            "negative",
        ),
        (lambda a: a.update(optimizer_m_lstm_0_bias=np.full(64, np.nan)), "NaN"),
        (lambda a: a.update(optimizer_m_lstm_0_bias=np.zeros(64, np.float32)), "dtype"),
    ],
)
def test_damaged_optimizer_state_is_refused_naming_the_array(tmp_path, change, fragment):
    path = corrupt(tmp_path, with_adam(), change)
    with pytest.raises(UserError, match="model.npz") as error:
        checkpoint.load(path)
    assert fragment in str(error.value), error.value


def test_optimizer_arrays_in_an_sgd_checkpoint_are_refused(tmp_path):
    path = corrupt(tmp_path, make(), lambda a: a.update(optimizer_t=np.array(1)))
    with pytest.raises(UserError, match="trains with sgd, which keeps none"):
        checkpoint.load(path)
