"""Property tests (Hypothesis): whatever bytes or JSON a run file holds, its reader returns a
valid result or raises a one-line UserError, never another exception.

The readers: checkpoint.load (and the inspect command on what it accepts), the metrics.jsonl
and config.json readers of ptb_lstm.runfiles, plot.load_run, the --resume progress check, and
the config readers (TOML files, a checkpoint's config object)."""

import contextlib
import io
import json
import math
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptb_lstm import checkpoint, runfiles
from ptb_lstm.config import FIELD_TYPES, PRESETS, Config, from_dict, load_config
from ptb_lstm.errors import UserError
from ptb_lstm.params import init_params

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400)])
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)

VOCAB = ["<eos>", "<unk>", "a", "b", "c"]


def one_line(error: UserError) -> None:
    message = str(error)
    assert message and "\n" not in message, message


def template_meta() -> tuple[dict, dict]:
    """The arrays and meta of a real checkpoint written mid-epoch (tiny config)."""
    config = PRESETS["tiny"]
    carried = [
        (np.zeros((config.batch_size, config.hidden_size), np.float32),) * 2
    ] * config.num_layers
    saved = checkpoint.Checkpoint(
        init_params(config, len(VOCAB)),
        VOCAB,
        config,
        {
            "epoch": 1,
            "step": 3,
            "step_in_epoch": 3,
            "learning_rate": 1.0,
            "epoch_finished": False,
            "loss_sum": 6.5,
            "epoch_time": 0.2,
        },
        carried=carried,
    )
    with TemporaryDirectory() as folder:
        path = checkpoint.save(Path(folder) / "model.npz", saved)
        with np.load(path) as npz:
            arrays = {name: npz[name] for name in npz.files}
    return arrays, json.loads(arrays.pop("meta").tobytes())


ARRAYS, META = template_meta()


def inspect_in_process(path: Path) -> str:
    """The real inspect command, run in this process; its exit status must be 0."""
    from ptb_lstm.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["inspect", str(path)]) == 0
    return out.getvalue()


def check_checkpoint_file(data: bytes) -> None:
    with TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        path.write_bytes(data)
        try:
            loaded = checkpoint.load(path)
        except UserError as error:
            one_line(error)
            return
        # Valid: a progress inspect can print and arrays of the config's shapes, all finite.
        runfiles.check_progress(loaded.progress, "checkpoint")
        assert all(np.isfinite(v).all() for v in loaded.params.values())
        inspect_in_process(path)


def npz_bytes(meta: object, arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8), **arrays)
    return buffer.getvalue()


@SETTINGS
@given(
    data=st.binary(max_size=400)
    | st.binary(max_size=400).map(lambda b: b"PK\x03\x04" + b)
    | st.binary(max_size=400).map(lambda b: b"\x93NUMPY" + b)
)
def test_checkpoint_reader_on_random_bytes(data):
    check_checkpoint_file(data)


@SETTINGS
@given(data=st.data())
def test_checkpoint_reader_on_random_bytes_inside_a_real_checkpoint(data):
    real = npz_bytes(META, ARRAYS)
    start = data.draw(st.integers(0, len(real) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=16))
    check_checkpoint_file(real[:start] + junk + real[start + len(junk) :])


@SETTINGS
@given(meta=json_values)
def test_checkpoint_reader_on_a_random_json_meta(meta):
    check_checkpoint_file(npz_bytes(meta, ARRAYS))


meta_paths = st.sampled_from(
    [
        ("format",),
        ("version",),
        ("vocab",),
        ("config",),
        ("progress",),
        ("engine",),
        ("dtype",),
        ("ptb_lstm_version",),
    ]
    + [("config", name) for name in FIELD_TYPES]
    + [("progress", name) for name in runfiles.PROGRESS]
    + [("vocab", 2)]
)


@SETTINGS
@given(path=meta_paths, value=json_values | st.just(KeyError), carried=st.booleans())
def test_checkpoint_reader_and_resume_on_one_meta_field_changed(path, value, carried):
    """One field of a real meta replaced by random JSON (or deleted): load, inspect and the
    --resume progress check give a result or one line."""
    meta = json.loads(json.dumps(META))
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if value is KeyError:
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    arrays = (
        ARRAYS if carried else {k: v for k, v in ARRAYS.items() if not k.startswith("carried_")}
    )
    check_checkpoint_file(npz_bytes(meta, arrays))
    with TemporaryDirectory() as folder:
        file = Path(folder) / "model.npz"
        file.write_bytes(npz_bytes(meta, arrays))
        try:
            loaded = checkpoint.load(file)
            progress = runfiles.resume_progress(
                loaded.progress, loaded.carried is not None, str(file)
            )
        except UserError as error:
            one_line(error)
            return
        assert isinstance(progress["step"], int) and isinstance(progress["epoch"], int)


# -- metrics.jsonl and config.json ----------------------------------------------------------

STEP = {
    "event": "step",
    "step": 5,
    "epoch": 1,
    "lr": 1.0,
    "loss": 40.1,
    "perplexity": 9.5,
    "grad_norm": 2.0,
    "words_per_second": 900.0,
    "wall_time": 1.5,
}
EPOCH = {
    "event": "epoch",
    "step": 20,
    "epoch": 1,
    "lr": 1.0,
    "steps": 20,
    "train_perplexity": 9.1,
    "words_per_second": 900.0,
    "ms_per_step": 22.0,
    "epoch_time": 0.4,
    "valid_perplexity": 8.7,
    "wall_time": 0.5,
}
TEST = {
    "event": "test",
    "step": 40,
    "test_perplexity": 8.2,
    "valid_perplexity": 8.7,
    "wall_time": 1.0,
}


@st.composite
def edited_records(draw):
    """A real record with one field replaced by random JSON or deleted, or any JSON value."""
    if draw(st.booleans()):
        return draw(json_values)
    record = dict(draw(st.sampled_from([STEP, EPOCH, TEST])))
    key = draw(st.sampled_from(sorted(record)))
    if draw(st.booleans()):
        del record[key]
    else:
        record[key] = draw(json_values)
    return record


def check_metrics_file(data: bytes) -> None:
    with TemporaryDirectory() as folder:
        path = Path(folder) / "metrics.jsonl"
        path.write_bytes(data)
        try:
            records = runfiles.read_metrics(path)
        except UserError as error:
            one_line(error)
        else:
            assert all(isinstance(r, dict) for r in records)
        check_run_folder(Path(folder))


def check_run_folder(folder: Path) -> None:
    """plot.load_run, and what the plot command prints of a run."""
    from ptb_lstm.plot import labels, load_run

    try:
        run = load_run(folder)
    except UserError as error:
        one_line(error)
        return
    labels([run])
    for record in run.steps:
        assert isinstance(record["step"], int) and math.isfinite(record["perplexity"])
    for record in run.epochs:
        f"{record['valid_perplexity']:.2f} after epoch {record['epoch']}"  # noqa: B018
    assert run.test is None or math.isfinite(run.test)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_metrics_reader_on_random_bytes(data):
    check_metrics_file(data)


@SETTINGS
@given(records=st.lists(edited_records(), min_size=1, max_size=4), partial=st.binary(max_size=20))
def test_metrics_reader_on_random_json_records(records, partial):
    lines = [json.dumps(STEP), *map(json.dumps, records), json.dumps(EPOCH)]
    check_metrics_file(("\n".join(lines) + "\n").encode("utf-8") + partial)


def check_run_info(data: bytes) -> None:
    with TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_bytes(data)
        (Path(folder) / "metrics.jsonl").write_text(json.dumps(STEP) + "\n")
        try:
            info = runfiles.read_run_info(folder)
        except UserError as error:
            one_line(error)
        else:
            assert isinstance(info, dict)
            assert info.get("log_every", 1) >= 1 and info.get("checkpoint_every", 0) >= 0
        check_run_folder(Path(folder))


@SETTINGS
@given(data=st.binary(max_size=300))
def test_config_json_reader_on_random_bytes(data):
    check_run_info(data)


@SETTINGS
@given(
    info=json_values
    | st.dictionaries(st.sampled_from(sorted(runfiles.RUN_INFO)), json_values, max_size=5)
)
def test_config_json_reader_on_random_json(info):
    check_run_info(json.dumps(info).encode("utf-8"))


@SETTINGS
@given(
    values=st.dictionaries(
        st.sampled_from(sorted(FIELD_TYPES)) | st.text(max_size=6), json_values, max_size=12
    ),
    complete=st.booleans(),
)
def test_config_object_reader_on_random_json(values, complete):
    if complete:
        values = {**PRESETS["tiny"].to_dict(), **values}
    try:
        config = from_dict(values, source="checkpoint model.npz")
    except UserError as error:
        one_line(error)
        return
    assert isinstance(config, Config)


toml_values = (
    st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.booleans()
    | st.lists(st.integers(0, 9), max_size=3)
)


@SETTINGS
@given(
    data=st.binary(max_size=200)
    | st.dictionaries(
        st.sampled_from([*FIELD_TYPES, "preset"]) | st.text("abc", max_size=3),
        toml_values,
        max_size=6,
    ).map(lambda d: "\n".join(f"{k or 'x'} = {json.dumps(v)}" for k, v in d.items()).encode())
)
def test_toml_config_reader_on_random_bytes_and_values(data):
    with TemporaryDirectory() as folder:
        path = Path(folder) / "mine.toml"
        path.write_bytes(data)
        try:
            config = load_config(str(path))
        except UserError as error:
            one_line(error)
            return
        assert isinstance(config, Config)
