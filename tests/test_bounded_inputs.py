"""Bounded inputs: no nesting depth, declared size, path length or encoding reaches a
traceback. Each class of input is met by the real command with a result or one short line
(exit status 2); a property test grows depth, size and length for the config, checkpoint and
text readers."""

import contextlib
import io
import json
import os
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import assert_user_error, run_cli, train_tiny, write_corpus

SHORT = 400  # characters: the longest error line any of these inputs may give


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("bounded") / "data")


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory) -> Path:
    return (
        train_tiny(corpus, tmp_path_factory.mktemp("bounded-run") / "run", "--max-steps", "0")
        / "model.npz"
    )


@pytest.fixture(scope="module")
def model_without_unk(tmp_path_factory) -> Path:
    """A model of a corpus without <unk> (every valid and test word is in train)."""
    data = tmp_path_factory.mktemp("bounded-no-unk") / "data"
    data.mkdir()
    lines = [" ".join(f"w{(start + k) % 9}" for k in range(6)) for start in range(9)]
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_text("\n".join(lines * 3) + "\n")
    return train_tiny(data, data.parent / "run", "--max-steps", "0") / "model.npz"


def nested(depth: int, opening: str = "[", closing: str = "]", inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


def rewritten(model: Path, path: Path, edit) -> Path:
    """A copy of ``model`` at ``path`` whose meta JSON text is ``edit(text)``."""
    with np.load(model, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    text = edit(arrays["meta"].tobytes().decode("utf-8"))
    arrays["meta"] = np.frombuffer(text.encode("utf-8"), np.uint8)
    np.savez(path, **arrays)
    return path


def short_user_error(result, *fragments: str) -> None:
    assert_user_error(result, *fragments)
    assert len(result.stderr.strip()) <= SHORT, result.stderr[: SHORT * 2]


# -- 1. no recursion without a bound -----------------------------------------------------------


def test_a_config_value_nested_thousands_deep_is_one_line_naming_the_field(corpus, tmp_path):
    for name, line in (
        ("arrays", "hidden_size = " + nested(5000)),
        ("tables", "hidden_size = " + nested(5000, "{a=", "}")),
        ("dotted", "hidden_size" + ".a" * 5000 + " = 1"),
    ):
        config = tmp_path / f"{name}.toml"
        config.write_text(f'preset = "tiny"\n{line}\n')
        short_user_error(
            run_cli(
                "train",
                "--config",
                str(config),
                "--data-dir",
                str(corpus),
                "--out",
                str(tmp_path / name),
            ),
            f"{name}.toml",
            "hidden_size",
            "nest more than 32 levels",
        )
        assert not (tmp_path / name).exists()


def test_checkpoint_meta_nested_thousands_deep_is_one_line_naming_the_field(model, tmp_path):
    deep = rewritten(
        model,
        tmp_path / "deep.npz",
        lambda text: text[:-1] + ', "notes": ' + nested(5000, inner="") + "}",
    )
    short_user_error(
        run_cli("inspect", str(deep)), "deep.npz", "meta", "notes", "nest more than 32 levels"
    )


def test_a_word_of_thousands_of_clitics_is_read_without_recursion(model):
    result = run_cli("score", "--checkpoint", str(model), "--text", "w1" + "'s" * 5000, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["tokens"] == 1 + 5000 + 1  # w1, the clitics, <eos>


# -- 2. declared sizes are checked against the arrays present ----------------------------------


def test_a_checkpoint_declaring_a_billion_layers_is_one_short_line(model, tmp_path):
    absurd = rewritten(
        model,
        tmp_path / "layers.npz",
        lambda text: text.replace('"num_layers": 2', '"num_layers": 1000000000'),
    )
    result = run_cli("inspect", str(absurd), timeout=60)
    short_user_error(result, "layers.npz", "num_layers is 1000000000", "2 layer(s)")


def test_init_from_with_a_billion_layers_is_one_short_line(model, corpus, tmp_path):
    result = run_cli(
        "train",
        "--init-from",
        str(model),
        "--set",
        "num_layers=1000000000",
        "--data-dir",
        str(corpus),
        "--out",
        str(tmp_path / "o"),
        timeout=60,
    )
    short_user_error(result, "--init-from", "num_layers 1000000000", "2 layer(s)")


def test_a_size_beyond_64_bits_is_refused_before_anything_is_sized_by_it(corpus, tmp_path):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(tmp_path / "o"),
        "--set",
        "num_layers=" + "9" * 30,
        timeout=60,
    )
    short_user_error(result, "num_layers", "below 2**63")


def test_a_billion_layers_are_refused_by_the_memory_estimate_at_once(corpus, tmp_path):
    result = run_cli(
        "train",
        "--config",
        "tiny",
        "--data-dir",
        str(corpus),
        "--out",
        str(tmp_path / "o"),
        "--set",
        "num_layers=1000000000",
        timeout=60,
    )
    short_user_error(result, "GiB of memory")


# -- 3. the operating system's limits on paths -------------------------------------------------


def test_a_data_folder_name_longer_than_the_file_system_allows(tmp_path):
    long_name = str(tmp_path / ("d" * 300))
    short_user_error(run_cli("data", "--data-dir", long_name), "--data-dir", "300 bytes", "255")
    short_user_error(run_cli("data", env={"PTB_DATA_DIR": long_name}), "PTB_DATA_DIR")


def test_every_path_flag_longer_than_the_system_allows_names_the_flag(model, corpus, tmp_path):
    too_long = str(tmp_path / "/".join(["p" * 200] * 25))  # over PATH_MAX (4,096 bytes)
    for args, flag in (
        (["train", "--config", "tiny", "--data-dir", str(corpus), "--out", too_long], "--out"),
        (["train", "--config", too_long + ".toml", "--data-dir", str(corpus)], "--config"),
        (["train", "--resume", too_long], "--resume"),
        (["evaluate", "--checkpoint", too_long, "--data-dir", str(corpus)], "--checkpoint"),
        (["score", "--checkpoint", str(model), "--text-file", too_long], "--text-file"),
        (["inspect", too_long], "CKPT"),
        (["plot", too_long], "RUN_DIR"),
    ):
        short_user_error(run_cli(*args), flag, "bytes", "choose a shorter")


def test_a_path_through_a_file_names_the_flag(model, tmp_path):
    (tmp_path / "file").write_text("x")
    short_user_error(
        run_cli(
            "score", "--checkpoint", str(model), "--text-file", str(tmp_path / "file" / "text.txt")
        ),
        "--text-file",
        "a part of the path is a file",
    )


# -- 4. encodings ----------------------------------------------------------------------------


def data_statistics(folder: Path) -> dict:
    result = run_cli("data", "--data-dir", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    return {key: record[key] for key in ("tokens", "vocab_size")}


def test_a_byte_order_mark_leaves_the_corpus_statistics_unchanged(corpus, tmp_path):
    marked = tmp_path / "marked"
    marked.mkdir()
    for split in ("train", "valid", "test"):
        raw = (corpus / f"ptb.{split}.txt").read_bytes()
        (marked / f"ptb.{split}.txt").write_bytes(b"\xef\xbb\xbf" + raw)
    assert data_statistics(marked) == data_statistics(corpus)


def test_a_data_file_in_another_encoding_is_refused_naming_it(corpus, tmp_path):
    for encoding, name in (("utf-16", "UTF-16"), ("utf-32", "UTF-32")):
        other = tmp_path / encoding
        other.mkdir()
        for split in ("train", "valid", "test"):
            (other / f"ptb.{split}.txt").write_bytes((corpus / f"ptb.{split}.txt").read_bytes())
        text = (corpus / "ptb.train.txt").read_text(encoding="utf-8")
        (other / "ptb.train.txt").write_bytes(text.encode(encoding))  # with its BOM
        short_user_error(run_cli("data", "--data-dir", str(other)), "ptb.train.txt", name)


def test_a_byte_order_mark_on_a_config_or_a_prompt_is_nothing(model, tmp_path):
    config = tmp_path / "marked.toml"
    config.write_bytes(b'\xef\xbb\xbfpreset = "tiny"\n')
    assert run_cli("bench", "--config", str(config), "--steps", "1").returncode == 0
    plain, marked = (
        run_cli(
            "generate",
            "--checkpoint",
            str(model),
            "--prompt",
            prompt,
            "--words",
            "5",
            "--seed",
            "3",
        )
        for prompt in ("w1 w2", "\ufeffw1 w2")
    )
    assert marked.returncode == 0, marked.stderr
    assert marked.stdout == plain.stdout


def test_a_text_file_in_utf16_without_a_mark_is_refused_naming_it(model, tmp_path):
    text = tmp_path / "utf16.txt"
    text.write_bytes("w1 w2 w3".encode("utf-16-le"))
    short_user_error(
        run_cli("score", "--checkpoint", str(model), "--text-file", str(text)),
        "--text-file",
        "utf16.txt",
        "NUL",
    )


# -- 5. generate: prompt words a model without <unk> lacks -------------------------------------


def test_generate_names_prompt_words_a_model_without_unk_lacks(model_without_unk):
    result = run_cli(
        "generate",
        "--checkpoint",
        str(model_without_unk),
        "--prompt",
        "w1 zebra w2",
        "--words",
        "5",
    )
    short_user_error(result, "--prompt", "'zebra'", "no <unk>")
    assert result.stdout == ""


# -- property: growing depth, declared sizes and path lengths ----------------------------------

PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def in_process(*args: str) -> tuple[int, str]:
    """The real command run in this process: its exit status and what it wrote to stderr."""
    from ptb_lstm.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(list(args))
    return status, err.getvalue()


def valid_or_one_short_line(status: int, stderr: str, allowed: int = 0) -> None:
    """Exit status 0, or 2 with one error line at most SHORT (+ ``allowed``) characters."""
    if status == 0:
        return
    assert status == 2, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("ptb-lstm: error:"), stderr[-2000:]
    assert sum(line.startswith("ptb-lstm: error:") for line in lines) == 1
    assert len(lines[-1]) <= SHORT + allowed and "Traceback" not in stderr, lines[-1][: SHORT * 2]


depths = st.integers(0, 100_000)
sizes = st.integers(0, 2**70)


@PROPERTY
@example(depth=100_000, shape="[")
@example(depth=100_000, shape="dotted")
@given(depth=depths, shape=st.sampled_from(["[", "{a = ", "dotted"]))
def test_the_config_reader_at_any_nesting_depth(corpus, depth, shape):
    if shape == "dotted":  # hidden_size.a.a... = 32: a table per part
        line = "hidden_size" + ".a" * depth + " = 32"
    else:
        line = "hidden_size = " + nested(depth, shape, "]" if shape == "[" else "}", "32")
    with TemporaryDirectory() as folder:
        config = Path(folder) / "c.toml"
        config.write_text(f'preset = "tiny"\n{line}\n')
        status, stderr = in_process(
            "train",
            "--config",
            str(config),
            "--data-dir",
            str(corpus),
            "--out",
            str(Path(folder) / "o"),
            "--max-steps",
            "0",
        )
    valid_or_one_short_line(status, stderr)
    assert (status == 0) == (depth == 0)


@PROPERTY
@example(depth=100_000, num_layers=2, hidden_size=16, batch_size=4)
@example(depth=0, num_layers=2**70, hidden_size=2**70, batch_size=2**70)
@given(
    depth=depths,
    num_layers=sizes | st.just(2),
    hidden_size=sizes | st.just(16),
    batch_size=sizes | st.just(4),
)
def test_the_checkpoint_reader_at_any_depth_and_declared_size(
    model, depth, num_layers, hidden_size, batch_size
):
    def edit(text: str) -> str:
        meta = json.loads(text)
        meta["config"].update(num_layers=num_layers, hidden_size=hidden_size, batch_size=batch_size)
        return json.dumps(meta)[:-1] + ', "notes": ' + nested(depth, inner="0") + "}"

    with TemporaryDirectory() as folder:
        path = rewritten(model, Path(folder) / "model.npz", edit)
        status, stderr = in_process("inspect", str(path))
    valid_or_one_short_line(status, stderr)
    sizes_as_saved = (num_layers, hidden_size) == (2, 16)
    assert (status == 0) == (depth <= 31 and sizes_as_saved and 0 < batch_size < 2**63)


@settings(PROPERTY, max_examples=6)  # each example scores every token with the model
@example(clitics=20_000, mark=True)
@given(clitics=st.integers(0, 20_000), mark=st.booleans())
def test_the_text_reader_at_any_number_of_clitics(model, clitics, mark):
    with TemporaryDirectory() as folder:
        text = Path(folder) / "text.txt"
        text.write_text(("\ufeff" if mark else "") + "w1" + "'s" * clitics, encoding="utf-8")
        status, stderr = in_process("score", "--checkpoint", str(model), "--text-file", str(text))
    valid_or_one_short_line(status, stderr)
    assert status == 0


@PROPERTY
@example(length=20_000, name=400, flag="--data-dir")
@given(
    length=st.integers(1, 20_000),
    name=st.integers(1, 400),
    flag=st.sampled_from(
        ["--data-dir", "--config", "--checkpoint", "--text-file", "--out", "RUN_DIR"]
    ),
)
def test_path_arguments_of_any_length(model, corpus, tmp_path, length, name, flag):
    parts, total = [], 0
    while total < length:
        part = "q" * min(name, length - total)
        parts.append(part)
        total += len(part) + 1
    path = os.path.join(str(tmp_path), *parts)
    args = {
        "--data-dir": ["data", "--data-dir", path],
        "--config": ["bench", "--config", path + ".toml", "--steps", "1"],
        "--checkpoint": ["evaluate", "--checkpoint", path, "--data-dir", str(corpus)],
        "--text-file": ["score", "--checkpoint", str(model), "--text-file", path],
        "--out": [
            "train",
            "--config",
            "tiny",
            "--data-dir",
            str(corpus),
            "--out",
            path,
            "--max-steps",
            "0",
        ],
        "RUN_DIR": ["plot", path],
    }[flag]
    status, stderr = in_process(*args)
    valid_or_one_short_line(status, stderr, allowed=len(path))  # a message may name the path
    if len(os.fsencode(path)) >= 4096 or max(map(len, parts)) > 255:
        assert status == 2 and flag in stderr.strip().splitlines()[-1]
