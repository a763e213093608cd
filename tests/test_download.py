"""The real HTTP download path, against a server on 127.0.0.1 serving archives built here.

No test touches the internet."""

from __future__ import annotations

import http.server
import io
import socket
import tarfile
import threading
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
    """Serves one body (or an error status) for every GET on 127.0.0.1."""

    def __init__(self, body: bytes = b"", status: int = 200, declared_length: int | None = None):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if outer.status != 200:
                    self.send_error(outer.status)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(outer.declared_length or len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.body, self.status, self.declared_length = body, status, declared_length
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple-examples.tgz"
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
    assert sorted(p.name for p in target.iterdir()) == \
        ["ptb.test.txt", "ptb.train.txt", "ptb.valid.txt"]
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
            download_ptb(tmp_path / "ptb", url=server.url)
    assert not (tmp_path / "ptb").exists()


def test_short_body_against_content_length_is_rejected(ptb_dir, tmp_path):
    archive = ptb_archive(ptb_dir)
    with Server(archive[:1000], declared_length=len(archive)) as server:
        with pytest.raises(UserError):
            download_ptb(tmp_path / "ptb", url=server.url, timeout=5)
    assert not (tmp_path / "ptb").exists()


def test_archive_escaping_its_folder_is_refused(ptb_dir, tmp_path):
    files = {f"./simple-examples/data/ptb.{s}.txt": (ptb_dir / f"ptb.{s}.txt").read_bytes()
             for s in ("train", "valid", "test")}
    files["../../escaped.txt"] = b"gotcha"
    with Server(build_archive(files)) as server:
        with pytest.raises(UserError, match="outside its folder"):
            download_ptb(tmp_path / "deep" / "ptb", url=server.url)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "deep" / "ptb").exists()


def test_no_network_explains_data_dir(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli("data", env=cache_env(tmp_path, f"http://127.0.0.1:{port}/x.tgz"))
    assert_user_error(result, "--data-dir", "PTB_DATA_DIR")
