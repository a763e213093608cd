"""Writing a file whole or not at all (``ptb_lstm.atomic``), the one way ptb-lstm replaces a
file: checkpoints, config.json, a trimmed metrics.jsonl, figures."""

from __future__ import annotations

import os

import pytest

from ptb_lstm.atomic import write_atomic, write_text_atomic


def test_the_new_content_replaces_the_old_whole(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old\n", encoding="utf-8")
    write_text_atomic(path, "new ü\n")
    assert path.read_bytes() == "new ü\n".encode()
    assert os.listdir(tmp_path) == ["config.json"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"the last good checkpoint")

    def half_then_fail(f):
        f.write(b"half of a new")
        raise KeyboardInterrupt  # Ctrl-C in mid-write

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"the last good checkpoint"
    assert os.listdir(tmp_path) == ["model.npz"]


def test_an_os_error_names_the_file_the_user_knows(tmp_path):
    path = tmp_path / "metrics.jsonl"

    def no_room(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as raised:
        write_atomic(path, no_room)
    assert raised.value.filename == str(path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_a_new_file_gets_the_permissions_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "config.json", "{}\n")
    finally:
        os.umask(old)
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o640
