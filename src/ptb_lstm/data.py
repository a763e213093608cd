"""Penn Treebank: tokens, the sorted vocabulary, word ids and stream-folded batches.

Small pure functions with no model in them (docs/model.md §5).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from ptb_lstm import bounds
from ptb_lstm.download import SHA256, download_ptb, sha256_of, timeout_from, urls_from
from ptb_lstm.errors import UserError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"


def split_file(split: str) -> str:
    return f"ptb.{split}.txt"


def read_words(path: Path) -> list[str]:
    """Whitespace-separated words of every line, each line followed by ``<eos>``."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read: {error.strerror}") from None
    if b"\0" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(
            f"{path}: looks like a binary file, not PTB text "
            "(expected one sentence of space-separated words per line)"
        )
    # A leading UTF-8 byte-order mark is no part of the first word; other encodings are
    # refused by name.
    text = bounds.decode_text(raw, str(path))
    words: list[str] = []
    lines = text.splitlines()
    for line in lines:
        words.extend(line.split())
        words.append(EOS)
    if len(words) == len(lines):
        raise UserError(f"{path}: holds no words; expected one sentence per line")
    return words


def build_vocab(words: list[str]) -> list[str]:
    """The sorted list of distinct words: a word's id is its index."""
    return sorted(set(words))


def to_ids(
    words: list[str],
    word_to_id: dict[str, int],
    source: str,
    vocab_source: str = "the vocabulary",
    hint: str | None = None,
) -> np.ndarray:
    """Word ids [N] (int32); every word must be in the vocabulary, else a UserError naming
    ``source`` says how PTB writes rare words (as <unk>), or gives ``hint``."""
    try:
        return np.fromiter((word_to_id[w] for w in words), dtype=np.int32, count=len(words))
    except KeyError:
        missing = sorted({w for w in words if w not in word_to_id})
        shown = ", ".join(repr(w) for w in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        if hint is None and UNK in word_to_id:
            hint = "write such words as <unk> in the file, as PTB does"
        elif hint is None:
            hint = "the vocabulary has no <unk> to stand for them, so this text cannot be read"
        raise UserError(
            f"{source}: {len(missing)} word(s) not in {vocab_source} ({shown}{more}); {hint}"
        ) from None


def num_batches(num_ids: int, batch_size: int, num_steps: int) -> int:
    """Steps of one epoch over ``num_ids`` ids: (N - 1) // (batch_size * num_steps)."""
    return max(0, (num_ids - 1) // (batch_size * num_steps))


def batches(
    ids: np.ndarray, batch_size: int, num_steps: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream-folded (inputs, targets), each [batch_size, num_steps]; row b is one stream."""
    steps = num_batches(len(ids), batch_size, num_steps)
    used = steps * batch_size * num_steps
    inputs = np.asarray(ids[:used]).reshape(batch_size, steps * num_steps)
    targets = np.asarray(ids[1 : used + 1]).reshape(batch_size, steps * num_steps)
    for s in range(steps):
        cols = slice(s * num_steps, (s + 1) * num_steps)
        yield inputs[:, cols], targets[:, cols]


class Corpus:
    """The three splits as word ids [N] (``train``, ``valid``, ``test``) and the vocabulary
    they index.

    A split that could not be read with the vocabulary (words a checkpoint's vocabulary lacks)
    holds its UserError instead, raised only when that split is used: evaluating the test split
    does not depend on the valid file."""

    def __init__(
        self,
        vocab: list[str],
        train: np.ndarray | UserError,
        valid: np.ndarray | UserError,
        test: np.ndarray | UserError,
        data_dir: Path | None = None,
    ) -> None:
        self.vocab = vocab
        self.data_dir = data_dir
        self._splits = {"train": train, "valid": valid, "test": test}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def train(self) -> np.ndarray:
        return self.split("train")

    @property
    def valid(self) -> np.ndarray:
        return self.split("valid")

    @property
    def test(self) -> np.ndarray:
        return self.split("test")

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise UserError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        ids = self._splits[name]
        if isinstance(ids, UserError):
            raise UserError(str(ids))
        return ids


def check_data_dir(data_dir: Path) -> None:
    """Raise a UserError naming what is missing unless ``data_dir`` holds the three splits."""
    if data_dir.exists() and not data_dir.is_dir():
        raise UserError(
            f"data folder {data_dir} is a file, not a folder; point --data-dir or "
            "PTB_DATA_DIR at the folder holding ptb.train.txt, ptb.valid.txt and "
            "ptb.test.txt"
        )
    if not data_dir.is_dir():
        raise UserError(
            f"data folder {data_dir} does not exist; point --data-dir or "
            "PTB_DATA_DIR at a folder holding ptb.train.txt, ptb.valid.txt "
            "and ptb.test.txt, or leave both unset to download PTB"
        )
    missing = [split_file(s) for s in SPLITS if not (data_dir / split_file(s)).is_file()]
    if missing:
        raise UserError(
            f"data folder {data_dir} lacks {', '.join(missing)}; it needs "
            "ptb.train.txt, ptb.valid.txt and ptb.test.txt"
        )


def load_corpus(data_dir: Path, vocab: list[str] | None = None) -> Corpus:
    """Read the three splits of ``data_dir``; the vocabulary comes from train unless given."""
    data_dir = Path(data_dir)
    check_data_dir(data_dir)
    words = {s: read_words(data_dir / split_file(s)) for s in SPLITS}
    given = vocab is not None
    if vocab is None:
        vocab = build_vocab(words["train"])
    word_to_id = {w: i for i, w in enumerate(vocab)}
    ids: dict[str, np.ndarray | UserError] = {}
    for s in SPLITS:
        path = data_dir / split_file(s)
        try:
            if given:
                split_ids = to_ids(words[s], word_to_id, str(path), "the model's vocabulary")
            else:
                split_ids = to_ids(
                    words[s],
                    word_to_id,
                    str(path),
                    split_file("train"),
                    hint="every valid and test word must occur in the training "
                    "text: write rare words as <unk> in all three files, "
                    "as PTB does",
                )
        except UserError as error:
            if not given:  # a vocabulary of this very data must cover all of it
                raise
            ids[s] = error
            continue
        if len(split_ids) < 2:
            raise UserError(f"{path}: too short to hold one target word")
        ids[s] = split_ids
    return Corpus(vocab=vocab, data_dir=data_dir, **ids)


def is_official_ptb(data_dir: Path) -> bool:
    """True when the three files are byte-identical to those of simple-examples.tgz."""
    return all(sha256_of(Path(data_dir) / name) == digest for name, digest in SHA256.items())


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/ptb-lstm/ptb``, or ``~/.cache/ptb-lstm/ptb``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ptb-lstm" / "ptb"


def locate_data_dir(
    data_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    download: bool = True,
    announce: Callable[[str, Path, str | None], None] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Where PTB is: ``--data-dir``, then ``PTB_DATA_DIR``, then the user cache (downloading
    into it when it is not there yet).

    ``announce(url, target, why_the_previous_source_failed_or_None)`` is called before each
    source is tried and ``progress(done, total)`` as bytes arrive (the command line draws a bar
    with them)."""
    environ = os.environ if environ is None else environ
    if data_dir is not None:
        bounds.check_path(data_dir, "--data-dir")
        path = Path(data_dir).expanduser()
        check_data_dir(path)
        return path
    if environ.get("PTB_DATA_DIR"):
        bounds.check_path(environ["PTB_DATA_DIR"], "PTB_DATA_DIR")
        path = Path(environ["PTB_DATA_DIR"]).expanduser()
        try:
            check_data_dir(path)
        except UserError as error:
            raise UserError(f"PTB_DATA_DIR: {error}") from None
        return path
    cache = default_cache_dir(environ)
    bounds.check_path(cache, "the PTB cache folder ($XDG_CACHE_HOME/ptb-lstm/ptb)")
    if all((cache / split_file(s)).is_file() for s in SPLITS):
        return cache
    if not download:
        raise UserError(
            f"PTB is not in {cache}; run `ptb-lstm data` to download it, or "
            "set --data-dir / PTB_DATA_DIR to a folder holding it"
        )
    return download_ptb(
        cache,
        urls=urls_from(environ.get("PTB_DATA_URL")),
        timeout=timeout_from(environ.get("PTB_DOWNLOAD_TIMEOUT")),
        progress=progress,
        announce=None if announce is None else lambda url, failed: announce(url, cache, failed),
    )
