"""Writing a file atomically: into a new temporary file beside it, flushed to the disk, then
renamed over it.

Every file ptb-lstm writes whole (checkpoints, ``config.json``, a trimmed ``metrics.jsonl``,
figures) goes through ``write_atomic``, so a crash, Ctrl-C or a full disk in mid-write leaves
the old file as it was (or none), never a half-written one. The temporary file,
``.NAME.XXXXXXXX.tmp``, is removed when the write fails; one left by a killed process is
removed by the next training in its folder.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` by what ``write(file)`` writes into a binary file, all or nothing;
    returns the path. An OSError names ``path``, the file the user knows, rather than the
    temporary one."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = _create_temporary(path)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename in (None, str(tmp)):
            error.filename = str(path)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` by ``text`` in UTF-8, all or nothing."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path`` (on its file system, so the rename is atomic), open for
    writing, with the permissions the umask gives any new file (mkstemp would force 0600)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            ), tmp
        except FileExistsError:
            continue
