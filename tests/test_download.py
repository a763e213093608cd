"""The real HTTP download path, against a server on 127.0.0.1 serving archives built here.

No test touches the internet."""

from __future__ import annotations

import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from ptb_lstm.download import download_ptb
from ptb_lstm.errors import UserError

from conftest import assert_user_error, run_cli


def build_archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ptb_archive(ptb_dir: Path, **replace: bytes) -> bytes:
    files = {"./simple-examples/README": b"simple examples\n"}
    for split in ("train", "valid", "test"):
        name = f"ptb.{split}.txt"
        data = replace.get(split) or (ptb_dir / name).read_bytes()
        files[f"./simple-examples/data/{name}"] = data
    return build_archive(files)


class Server:
    """Serves one body (or an error status) for every GET on 127.0.0.1, or with ``files`` the
    body of each path it names (404 for any other)."""

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        declared_length: int | None = None,
        files: dict[str, bytes] | None = None,
    ):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                body = outer.body if outer.files is None else outer.files.get(self.path)
                if outer.status != 200 or body is None:
                    self.send_error(outer.status if outer.status != 200 else 404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(outer.declared_length or len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.body, self.status, self.declared_length = body, status, declared_length
        self.files = files
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.url = self.root + "simple-examples.tgz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def cache_env(tmp_path: Path, url: str) -> dict:
    return {"PTB_DATA_DIR": "", "XDG_CACHE_HOME": str(tmp_path / "cache"), "PTB_DATA_URL": url}


def test_download_extracts_verifies_and_installs(ptb_dir, tmp_path):
    with Server(ptb_archive(ptb_dir)) as server:
        result = run_cli("data", "--json", env=cache_env(tmp_path, server.url))
    assert result.returncode == 0, result.stderr
    target = tmp_path / "cache" / "ptb-lstm" / "ptb"
    assert sorted(p.name for p in target.iterdir()) == [
        "ptb.test.txt",
        "ptb.train.txt",
        "ptb.valid.txt",
    ]
    assert '"official_ptb": true' in result.stdout
    # Nothing but the target is left beside it.
    assert [p.name for p in target.parent.iterdir()] == ["ptb"]


def test_checksum_mismatch_leaves_nothing(ptb_dir, tmp_path):
    with Server(ptb_archive(ptb_dir, valid=b"a tampered file\n")) as server:
        result = run_cli("data", env=cache_env(tmp_path, server.url))
    assert_user_error(result, "checksum mismatch for ptb.valid.txt", "--data-dir")
    assert list((tmp_path / "cache" / "ptb-lstm").iterdir()) == []


def test_server_error_is_reported(tmp_path):
    with Server(status=500) as server:
        result = run_cli("data", env=cache_env(tmp_path, server.url))
    assert_user_error(result, "HTTP 500")
    assert list((tmp_path / "cache" / "ptb-lstm").iterdir()) == []


def test_truncated_archive_is_rejected(ptb_dir, tmp_path):
    archive = ptb_archive(ptb_dir)
    with Server(archive[: len(archive) // 2]) as server:
        with pytest.raises(UserError, match="damaged or truncated|cut short"):
            download_ptb(tmp_path / "ptb", urls=server.url)
    assert not (tmp_path / "ptb").exists()


def test_short_body_against_content_length_is_rejected(ptb_dir, tmp_path):
    archive = ptb_archive(ptb_dir)
    with Server(archive[:1000], declared_length=len(archive)) as server:
        with pytest.raises(UserError):
            download_ptb(tmp_path / "ptb", urls=server.url, timeout=5)
    assert not (tmp_path / "ptb").exists()


def test_archive_escaping_its_folder_is_refused(ptb_dir, tmp_path):
    files = {
        f"./simple-examples/data/ptb.{s}.txt": (ptb_dir / f"ptb.{s}.txt").read_bytes()
        for s in ("train", "valid", "test")
    }
    files["../../escaped.txt"] = b"gotcha"
    with Server(build_archive(files)) as server:
        with pytest.raises(UserError, match="outside its folder"):
            download_ptb(tmp_path / "deep" / "ptb", urls=server.url)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "deep" / "ptb").exists()


def test_no_network_explains_data_dir(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli("data", env=cache_env(tmp_path, f"http://127.0.0.1:{port}/x.tgz"))
    assert_user_error(result, "--data-dir", "PTB_DATA_DIR")


def test_when_the_first_source_fails_the_next_one_serves(ptb_dir, tmp_path):
    with Server(status=503) as broken, Server(ptb_archive(ptb_dir)) as mirror:
        result = run_cli(
            "data", "--json", timeout=120, env=cache_env(tmp_path, f"{broken.url} {mirror.url}")
        )
    assert result.returncode == 0, result.stderr
    assert f"could not download PTB from {broken.url}: HTTP 503" in result.stderr
    assert f"trying {mirror.url}" in result.stderr
    assert '"official_ptb": true' in result.stdout
    target = tmp_path / "cache" / "ptb-lstm" / "ptb"
    assert [p.name for p in target.parent.iterdir()] == ["ptb"]


def test_a_mirror_that_serves_the_files_of_a_folder_is_verified_like_the_archive(ptb_dir, tmp_path):
    """A source ending in / serves ptb.train.txt, ptb.valid.txt and ptb.test.txt themselves;
    a tampered file is refused there too, and the next source is tried."""
    files = {
        f"/data/ptb.{s}.txt": (ptb_dir / f"ptb.{s}.txt").read_bytes()
        for s in ("train", "valid", "test")
    }
    tampered = dict(files, **{"/data/ptb.test.txt": b"not the test split\n"})
    with Server(files=tampered) as bad, Server(files=files) as good:
        target = download_ptb(
            tmp_path / "ptb", urls=[bad.root + "data/", good.root + "data/"], timeout=30
        )
    assert sorted(p.name for p in target.iterdir()) == [
        "ptb.test.txt",
        "ptb.train.txt",
        "ptb.valid.txt",
    ]
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        assert (target / name).read_bytes() == (ptb_dir / name).read_bytes()


def test_when_every_source_fails_the_error_names_each(tmp_path):
    with Server(status=404) as first, Server(status=500) as second:
        result = run_cli(
            "data", timeout=120, env=cache_env(tmp_path, f"{first.url} {second.root}data/")
        )
    assert_user_error(
        result, f"{first.url}: HTTP 404", f"{second.root}data/ptb.train.txt: HTTP 500", "--data-dir"
    )
    assert list((tmp_path / "cache" / "ptb-lstm").iterdir()) == []


def test_without_ptb_data_url_the_original_archive_comes_first_then_a_mirror():
    from ptb_lstm.download import PTB_URLS, urls_from

    assert urls_from(None) == urls_from("") == PTB_URLS
    assert PTB_URLS[0].endswith("/simple-examples.tgz") and len(PTB_URLS) >= 2
    assert urls_from(" http://a/x.tgz\nhttp://b/ ") == ("http://a/x.tgz", "http://b/")


# -- hostile use (issue 16, classes 7 and 11) ---------------------------------------------------


class SlowServer:
    """Answers every connection on 127.0.0.1 with a 200 header promising ``length`` bytes, then
    sends one byte every ``every`` seconds (never, when ``every`` is None) until the client
    goes away or ``limit`` seconds pass."""

    def __init__(self, every: float | None, length: int = 100_000, limit: float = 60):
        self.every, self.length, self.limit = every, length, limit
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/simple-examples.tgz"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {self.length}\r\n\r\n".encode())
            deadline = time.monotonic() + self.limit
            while time.monotonic() < deadline:
                time.sleep(self.every or 0.1)
                if self.every is not None:
                    try:
                        conn.sendall(b"x")
                    except OSError:
                        return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


@pytest.mark.parametrize(
    "every, message", [(0.05, "bytes in the last"), (None, "no data for 0.5 s")]
)
def test_a_stalled_download_is_given_up_with_a_message(tmp_path, every, message):
    """A server trickling a byte every 0.05 s (under 1 KiB per PTB_DOWNLOAD_TIMEOUT), or
    sending nothing after its header, is given up after about PTB_DOWNLOAD_TIMEOUT."""
    with SlowServer(every) as server:
        started = time.monotonic()
        result = run_cli(
            "data",
            timeout=60,
            env={**cache_env(tmp_path, server.url), "PTB_DOWNLOAD_TIMEOUT": "0.5"},
        )
        elapsed = time.monotonic() - started
    assert_user_error(result, f"download from {server.url} stalled", message, "--data-dir")
    assert elapsed < 30, elapsed  # not the trickle's 100,000 x 0.05 s
    assert list((tmp_path / "cache" / "ptb-lstm").iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_download_timeout_that_is_not_a_positive_number(tmp_path, value):
    result = run_cli(
        "data",
        env={**cache_env(tmp_path, "http://127.0.0.1:9/x.tgz"), "PTB_DOWNLOAD_TIMEOUT": value},
    )
    assert_user_error(result, "PTB_DOWNLOAD_TIMEOUT", "> 0")


def test_stale_temporary_folders_are_removed_and_live_ones_kept(ptb_dir, tmp_path):
    parent = tmp_path / "cache" / "ptb-lstm"
    parent.mkdir(parents=True)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = parent / f".ptb-download-{finished.stdout.strip()}-abcd"  # its process is gone
    old = parent / ".ptb-download-old"  # no owner to ask, two hours old
    live = parent / f".ptb-download-{os.getpid()}-efgh"  # a download still running
    for folder in (dead, old, live):
        (folder / "ptb").mkdir(parents=True)
        (folder / "simple-examples.tgz").write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    with Server(ptb_archive(ptb_dir)) as server:
        result = run_cli("data", "--json", env=cache_env(tmp_path, server.url))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in parent.iterdir()) == sorted(["ptb", live.name])


def test_a_download_into_a_folder_with_other_files_replaces_only_the_three(ptb_dir, tmp_path):
    target = tmp_path / "cache" / "ptb-lstm" / "ptb"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("my notes\n")
    (target / "mine").mkdir()
    (target / "mine" / "corpus.txt").write_text("my corpus\n")
    (target / "ptb.train.txt").write_text("an old, damaged train split\n")
    with Server(ptb_archive(ptb_dir)) as server:
        result = run_cli("data", "--json", env=cache_env(tmp_path, server.url))
    assert result.returncode == 0, result.stderr
    assert '"official_ptb": true' in result.stdout
    assert (target / "notes.txt").read_text() == "my notes\n"
    assert (target / "mine" / "corpus.txt").read_text() == "my corpus\n"
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        assert (target / name).read_bytes() == (ptb_dir / name).read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["ptb"]


@pytest.mark.parametrize(
    "url",
    [
        "not-a-url",
        "htp://example.org/x.tgz",
        "http://[::1/x.tgz",
        "http://127.0.0.1:99999/x.tgz",
        "http:///x.tgz",
    ],
)
def test_a_malformed_ptb_data_url(tmp_path, url):
    result = run_cli("data", env=cache_env(tmp_path, f"http://127.0.0.1:9/ok.tgz {url}"))
    assert_user_error(result, "PTB_DATA_URL", repr(url))


@pytest.mark.parametrize("blocking", ["", "ptb-lstm", "ptb-lstm/ptb"])
def test_a_file_where_the_cache_should_be(tmp_path, blocking):
    cache = tmp_path / "cache"
    (cache / blocking).parent.mkdir(parents=True, exist_ok=True)
    (cache / blocking).write_text("a file\n")
    result = run_cli("data", env=cache_env(tmp_path, "http://127.0.0.1:9/x.tgz"))
    assert_user_error(result, f"{cache / blocking} is a file", "PTB_DATA_DIR")
    assert (cache / blocking).read_text() == "a file\n"
