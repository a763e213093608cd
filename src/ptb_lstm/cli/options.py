"""What several commands share: their flags (each declared here once), checks of flag values,
and finding PTB with a download bar."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

from ptb_lstm.errors import UserError

DATA_DIR_HELP = (
    "folder holding ptb.train.txt, ptb.valid.txt and ptb.test.txt "
    "(default: $PTB_DATA_DIR, then ~/.cache/ptb-lstm/ptb, downloading if absent)"
)


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_json(p: argparse.ArgumentParser, keys: str = "") -> None:
    """``--json``: one JSON object on stdout instead of text; ``keys`` names its main keys."""
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of text" + (f" ({keys})" if keys else ""),
    )


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)


def config_metavar() -> str:
    from ptb_lstm.config import PRESETS

    return f"{'|'.join(PRESETS)}|FILE.toml"


def add_config(p: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    p.add_argument("--config", default=default, metavar=config_metavar(), help=help)


def add_set(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def engine_names() -> tuple[str, ...]:
    """Every registered engine (``ptb_lstm.engines.REGISTRY``), without importing any."""
    from ptb_lstm.engines import REGISTRY

    return tuple(REGISTRY)


def _engine_help(default: str | None) -> str:
    from ptb_lstm.engines import engines_help

    return engines_help(default)


def add_engine(
    p: argparse.ArgumentParser,
    default: str | None = "numpy",
    dtype_default: str | None = "float32",
    dtype_shown: str | None = None,
) -> None:
    """``--engine`` (choices from the engine registry) and ``--dtype``; a None default means
    the checkpoint's or the run's."""
    from ptb_lstm.engines import DEVICES

    p.add_argument(
        "--engine", default=default, choices=engine_names(), help=_engine_help(default or "numpy")
    )
    shown = dtype_shown or dtype_default or "the checkpoint's"
    p.add_argument(
        "--dtype",
        default=dtype_default,
        choices=("float32", "float64"),
        help=f"floating-point type of the maths (default: {shown})",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="where the maths runs: auto (default: a GPU when the engine can use "
        "one and its framework sees one), cpu or cuda",
    )


def add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a model.npz")


def positive(value: int | None, flag: str, allow_zero: bool = False) -> None:
    """Raise a UserError naming ``flag`` unless ``value`` is None or > 0 (>= 0)."""
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise UserError(f"{flag} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def writable_folder(value: str, flag: str) -> None:
    """Raise a UserError naming ``flag`` when ``value`` is a file or lies under one (it may
    not exist yet: it is created when written)."""
    path = Path(value).expanduser()
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            if not candidate.is_dir():
                where = "is a file" if candidate == path else f"is under the file {candidate}"
                raise UserError(f"{flag} {value} {where}, not a folder; choose a folder")
            return


# The flags (and positional arguments) that name a path, by their argparse dest.
PATH_ARGUMENTS = {
    "data_dir": "--data-dir",
    "out": "--out",
    "init_from": "--init-from",
    "resume": "--resume",
    "tensorboard": "--tensorboard",
    "checkpoint": "--checkpoint",
    "text_file": "--text-file",
    "runs": "RUN_DIR",
    "config": "--config",
}

# Folders a command writes files into, and the longest name it gives one, with its separator
# (".metrics.jsonl.XXXXXXXX.tmp", "events.out.tfevents.<time>.<host>.<pid>.<n>.v2"): room
# they need.
WRITTEN_INTO = ("out", "resume", "tensorboard")
FOLDER_ROOM = 128


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, naming the flag, every path argument the operating system cannot use (too
    long, a NUL, a folder that cannot be entered: ``bounds.check_path``) before a command
    touches any of them."""
    from ptb_lstm.bounds import check_path
    from ptb_lstm.config import PRESETS

    for dest, flag in PATH_ARGUMENTS.items():
        value = getattr(args, dest, None)
        if dest == "checkpoint" and args.command == "inspect":
            flag = "CKPT"
        if dest == "config" and value in PRESETS:
            continue
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str):
                check_path(path, flag, room=FOLDER_ROOM if dest in WRITTEN_INTO else 0)


def rate(value: float, flag: str = "--dropout") -> None:
    if not 0 <= value < 1:
        raise UserError(f"{flag} must be in [0, 1), got {value}")


def config_line(config) -> str:
    """Every field of a config as ``key=value, ...``."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.to_dict().items()
    )


class _DownloadBar:
    """Says where PTB is being downloaded from and draws a bar on a terminal, once a download
    starts (a located PTB shows nothing)."""

    def __init__(self) -> None:
        self.bar = None

    def announce(self, url: str, target: Path, failed: str | None) -> None:
        from tqdm import tqdm

        self.close()
        if failed is None:
            print(f"PTB not found; downloading {url} into {target}", file=sys.stderr)
        else:
            print(f"{failed}; trying {url}", file=sys.stderr)
        self.bar = tqdm(unit="B", unit_scale=True, file=sys.stderr, disable=not sys.stderr.isatty())

    def progress(self, done: int, total: int | None) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def locate(data_dir: str | None) -> Path:
    """PTB's folder, as ``data.locate_data_dir`` finds it, drawing a bar while downloading."""
    from ptb_lstm.data import locate_data_dir

    bar = _DownloadBar()
    try:
        return locate_data_dir(data_dir, announce=bar.announce, progress=bar.progress)
    finally:
        bar.close()


def load_model(args):
    """The checkpoint ``--checkpoint`` names and an engine (``--engine``, ``--dtype`` or the
    checkpoint's) holding its weights."""
    from ptb_lstm import checkpoint
    from ptb_lstm.engines import create_engine

    ckpt = checkpoint.load(args.checkpoint)
    engine = create_engine(
        args.engine, ckpt.config, ckpt.params, dtype=args.dtype or ckpt.dtype, device=args.device
    )
    return ckpt, engine


def typed_path(path) -> str:
    """``path`` as a person at this prompt would type it: relative when it lies below the
    current folder, absolute otherwise."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith("..") else relative


def program() -> str:
    """How to spell this command so that it runs as printed: ``ptb-lstm`` when that is the one
    on the PATH, else the script's path, or ``python -m ptb_lstm`` when run that way."""
    script = sys.argv[0]
    if os.path.basename(script) == "__main__.py":
        return f"{shlex.quote(typed_path(sys.executable))} -m ptb_lstm"
    found = shutil.which("ptb-lstm")
    if found and os.path.abspath(found) == os.path.abspath(script):
        return "ptb-lstm"
    shown = typed_path(script)
    return shlex.quote(shown if os.sep in shown else os.path.join(".", shown))
