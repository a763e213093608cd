"""Shared fixtures: the real PTB (required in CI), tiny generated corpora, the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptb_lstm.config import PRESETS

REPO = Path(__file__).resolve().parents[1]


def ptb_candidates() -> list[Path]:
    """Where the tests look for the real PTB, in order: where the command line finds it
    ($PTB_DATA_DIR, then the user cache ~/.cache/ptb-lstm/ptb that `make train` downloads
    into), then ../shared/data/ptb beside the repository."""
    from ptb_lstm.data import default_cache_dir

    candidates = (
        [Path(os.environ["PTB_DATA_DIR"]).expanduser()] if os.environ.get("PTB_DATA_DIR") else []
    )
    return candidates + [default_cache_dir(), REPO.parent / "shared" / "data" / "ptb"]


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    """The real PTB folder, the first of ``ptb_candidates()`` that holds the three splits.

    With PTB_REQUIRE_DATA=1 (as CI sets it) a missing folder fails the test instead of
    skipping it."""
    candidates = ptb_candidates()
    for candidate in candidates:
        if all((candidate / f"ptb.{s}.txt").is_file() for s in ("train", "valid", "test")):
            return candidate
    message = f"PTB not found in {', '.join(map(str, candidates))}; `ptb-lstm data` downloads it"
    if os.environ.get("PTB_REQUIRE_DATA") == "1":
        pytest.fail(message + " and PTB_REQUIRE_DATA=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ptb_corpus(ptb_dir):
    from ptb_lstm.data import load_corpus

    return load_corpus(ptb_dir)


def write_corpus(folder: Path, seed: int = 0, words: int = 12, lines: tuple = (60, 15, 15)) -> Path:
    """A tiny PTB-shaped corpus with something to learn (each sentence counts up through the
    words from a random start); every valid/test word also occurs in train."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(words)] + ["<unk>"]
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "valid", "test"), lines, strict=True):
        rows = []
        for n in range(count):
            length = int(rng.integers(3, 9))
            # Train starts with every word once so that valid/test never meet an unknown word.
            if split == "train" and n == 0:
                rows.append(" ".join(vocab))
                continue
            start = int(rng.integers(0, len(vocab)))
            rows.append(" ".join(vocab[(start + k) % len(vocab)] for k in range(length)))
        (folder / f"ptb.{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def tiny_dir(tmp_path) -> Path:
    return write_corpus(tmp_path / "tiny")


@pytest.fixture
def tiny_config():
    return PRESETS["tiny"]


def run_cli(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``python -m ptb_lstm ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ptb_lstm", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def other_engines() -> list:
    """Every registered engine but numpy, as test parameters; one whose framework is not
    installed is skipped with the reason."""
    from ptb_lstm.engines import REGISTRY, install_hint, is_installed

    return [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                not is_installed(name), reason=f"the {name} engine needs {install_hint(name)}"
            ),
        )
        for name in REGISTRY
        if name != "numpy"
    ]


def train_tiny(data_dir: Path, out: Path, *args: str) -> Path:
    """Train the tiny config on ``data_dir`` into ``out`` with ``args``; it must succeed."""
    result = run_cli(
        "train", "--config", "tiny", "--data-dir", str(data_dir), "--out", str(out), *args
    )
    assert result.returncode == 0, result.stderr
    return out


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, the error as one line starting 'ptb-lstm: error:' at the end of stderr
    (after any progress notes), and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("ptb-lstm: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
