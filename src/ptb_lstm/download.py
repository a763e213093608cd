"""Fetch simple-examples.tgz over HTTP, take out the three PTB files, verify, move into place.

Nothing is half-written: everything happens in a temporary folder beside the target, and the
target appears only once all three files have passed their SHA-256 check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ptb_lstm.errors import UserError

PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"

# SHA-256 of the three files inside simple-examples.tgz: whatever serves them, these decide.
SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
MEMBER_DIR = PurePosixPath("simple-examples/data")

_HOW_TO_POINT = ("download simple-examples.tgz yourself, extract it and point --data-dir "
                 "(or PTB_DATA_DIR) at its simple-examples/data folder")


def download_ptb(target: Path, url: str | None = None, timeout: float = 60.0,
                 progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download PTB into ``target`` (created atomically); returns ``target``.

    ``progress(bytes_done, bytes_total_or_None)`` is called as the archive arrives.
    """
    url = url or PTB_URL
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".ptb-download-", dir=target.parent))
    try:
        archive = work / "simple-examples.tgz"
        _fetch(url, archive, timeout, progress)
        staged = work / "ptb"
        staged.mkdir()
        _extract(archive, staged, url)
        _install(staged, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, timeout: float,
           progress: Callable[[int, int | None], None] | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as error:
        raise UserError(f"could not download PTB from {url}: HTTP {error.code} {error.reason}; "
                        f"try again later, or {_HOW_TO_POINT}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise UserError(f"could not download PTB from {url} ({reason}); without internet, "
                        f"{_HOW_TO_POINT}") from None
    if total is not None and done != total:
        raise UserError(f"download from {url} was cut short ({done} of {total} bytes); "
                        f"try again, or {_HOW_TO_POINT}")


def _extract(archive: Path, staged: Path, url: str) -> None:
    wanted = {MEMBER_DIR / name: name for name in SHA256}
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts:
                    raise UserError(f"the archive from {url} holds a path outside its folder "
                                    f"({member.name!r}); refusing it. {_HOW_TO_POINT}")
            found = {}
            for member in members:
                key = PurePosixPath(*[p for p in PurePosixPath(member.name).parts if p != "."])
                if key in wanted and member.isfile():
                    found[wanted[key]] = member
            missing = sorted(set(SHA256) - set(found))
            if missing:
                raise UserError(f"the archive from {url} lacks {', '.join(missing)} under "
                                f"{MEMBER_DIR}/; {_HOW_TO_POINT}")
            for name, member in found.items():
                source = tar.extractfile(member)
                with source, open(staged / name, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UserError(f"the archive from {url} is damaged or truncated ({error}); "
                        f"try again, or {_HOW_TO_POINT}") from None
    for name, expected in SHA256.items():
        digest = sha256_of(staged / name)
        if digest != expected:
            raise UserError(f"checksum mismatch for {name} from {url}: expected {expected[:12]}…, "
                            f"got {digest[:12]}…; try again, or {_HOW_TO_POINT}")


def _install(staged: Path, target: Path, work: Path) -> None:
    """Swap the verified folder into place with renames on one file system."""
    for path in staged.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if target.exists():
        os.replace(target, work / "previous")
    os.replace(staged, target)
