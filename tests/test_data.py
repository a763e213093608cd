from pathlib import Path

import numpy as np
import pytest

from ptb_lstm.data import (
    batches,
    build_vocab,
    is_official_ptb,
    load_corpus,
    locate_data_dir,
    num_batches,
    read_words,
    to_ids,
)
from ptb_lstm.errors import UserError


def test_each_line_ends_with_eos(tmp_path: Path):
    path = tmp_path / "ptb.train.txt"
    path.write_text(" the cat \n sat down\n")
    assert read_words(path) == ["the", "cat", "<eos>", "sat", "down", "<eos>"]


def test_vocabulary_is_sorted_and_ids_index_it():
    vocab = build_vocab(["b", "a", "<eos>", "b"])
    assert vocab == ["<eos>", "a", "b"]
    ids = to_ids(["a", "b", "<eos>"], {w: i for i, w in enumerate(vocab)}, "x")
    assert ids.tolist() == [1, 2, 0]


def test_unknown_word_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="'zebra'"):
        to_ids(["a", "zebra"], {"a": 0}, "valid")


def test_stream_folding_matches_the_reference_layout():
    ids = np.arange(23)
    assert num_batches(len(ids), 2, 3) == 3  # (23 - 1) // 6
    steps = list(batches(ids, batch_size=2, num_steps=3))
    inputs = np.concatenate([x for x, _ in steps], axis=1)
    targets = np.concatenate([y for _, y in steps], axis=1)
    assert inputs.tolist() == [list(range(0, 9)), list(range(9, 18))]
    assert targets.tolist() == [list(range(1, 10)), list(range(10, 19))]
    assert steps[1][0].tolist() == [[3, 4, 5], [12, 13, 14]]


def test_real_ptb_statistics(ptb_corpus):
    assert ptb_corpus.vocab_size == 10_000
    assert (len(ptb_corpus.train), len(ptb_corpus.valid), len(ptb_corpus.test)) == (
        929_589,
        73_760,
        82_430,
    )
    assert num_batches(len(ptb_corpus.train), 20, 20) == 2323
    assert num_batches(len(ptb_corpus.valid), 20, 20) == 184
    assert num_batches(len(ptb_corpus.test), 20, 20) == 206
    assert ptb_corpus.vocab == sorted(ptb_corpus.vocab)
    assert "<unk>" in ptb_corpus.vocab and "<eos>" in ptb_corpus.vocab


def test_real_ptb_passes_its_checksums(ptb_dir):
    assert is_official_ptb(ptb_dir)


def test_binary_file_is_rejected(tmp_path: Path):
    path = tmp_path / "ptb.train.txt"
    path.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(UserError, match="binary"):
        read_words(path)


def test_empty_file_is_rejected(tmp_path: Path):
    path = tmp_path / "ptb.train.txt"
    path.write_text("\n\n")
    with pytest.raises(UserError, match="holds no words"):
        read_words(path)


def test_folder_missing_a_split_names_it(tiny_dir: Path):
    (tiny_dir / "ptb.valid.txt").unlink()
    with pytest.raises(UserError, match="ptb.valid.txt"):
        load_corpus(tiny_dir)


def test_data_dir_beats_environment_which_beats_cache(tmp_path: Path, tiny_dir: Path):
    env = {"PTB_DATA_DIR": str(tiny_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert locate_data_dir(None, env, download=False) == tiny_dir
    other = tmp_path / "other"
    other.mkdir()
    for f in tiny_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    assert locate_data_dir(other, env, download=False) == other
    cache = tmp_path / "cache" / "ptb-lstm" / "ptb"
    cache.mkdir(parents=True)
    for f in tiny_dir.iterdir():
        (cache / f.name).write_bytes(f.read_bytes())
    assert (
        locate_data_dir(None, {"XDG_CACHE_HOME": str(tmp_path / "cache")}, download=False) == cache
    )


def test_missing_data_dir_says_what_to_do(tmp_path: Path):
    with pytest.raises(UserError, match="PTB_DATA_DIR"):
        locate_data_dir(tmp_path / "nowhere", {}, download=False)


def test_the_tests_look_for_ptb_where_the_command_line_finds_it(tiny_dir, tmp_path, monkeypatch):
    """After `make train` PTB is only in the user cache; the real-PTB tests must find it there."""
    from conftest import ptb_candidates, write_corpus

    cache = write_corpus(tmp_path / "cache" / "ptb-lstm" / "ptb")
    monkeypatch.delenv("PTB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert locate_data_dir(download=False) == cache == ptb_candidates()[0]
    monkeypatch.setenv("PTB_DATA_DIR", str(tiny_dir))
    assert locate_data_dir(download=False) == tiny_dir == ptb_candidates()[0]
