"""The files of a run folder: the ``meta`` of ``model.npz`` (its training progress included),
``config.json`` and ``metrics.jsonl``, as they are read back and written; where an interrupted
run stands (``Resume``); what a write that found no room tells the user.

What each field must be is written here once, and every reader (``checkpoint.load``,
``--resume``, ``inspect``, ``plot``) goes through it: a damaged or hand-edited file is a
UserError of one line naming the file and the field, never a traceback further on. The weights
themselves are checked by ``checkpoint.load`` against the config (``params.check_params``).
The trainer (``train``) and the run set-up (``runs``) both take their run-file helpers from
here.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from ptb_lstm import bounds
from ptb_lstm.atomic import write_text_atomic
from ptb_lstm.errors import UserError


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# kind -> (test, what the field must be, said in the message)
KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    # Counts are steps, epochs and sizes, used as 64-bit integers.
    "count": (lambda v: _whole(v) and 0 <= v < 2**63, "a whole number >= 0"),
    "positive": (lambda v: _whole(v) and 0 < v < 2**63, "a whole number > 0"),
    "number": (_number, "a number"),
    "number or null": (lambda v: v is None or _number(v), "a number or null"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "text or null": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
    "dtype": (lambda v: v in ("float32", "float64"), "float32 or float64"),
}

# meta.progress of a checkpoint, as train.train writes it.
PROGRESS = {
    "epoch": "count",
    "step": "count",
    "step_in_epoch": "count",
    "learning_rate": "number",
    "epoch_finished": "flag",
    "finished": "flag",
    "loss_sum": "number",
    "epoch_time": "number",
    "run_time": "number",
}

# The meta fields besides format, version, vocab and config (which checkpoint.load checks).
META = {"ptb_lstm_version": "text", "engine": "text", "dtype": "text", "progress": "object"}

# config.json of a run folder: the fields a reader uses. Every one may be absent (a run
# written by an older ptb-lstm lacks log_every and checkpoint_every).
RUN_INFO = {
    "config": "object",
    "engine": "text",
    "dtype": "dtype",
    "device": "text",
    "vocab_size": "count",
    "data_dir": "text or null",
    "init_from": "text or null",
    "log_every": "positive",
    "checkpoint_every": "count",
    "command": "text",
    "started": "text",
}

_EPOCH = {
    "step": "count",
    "epoch": "count",
    "lr": "number",
    "steps": "count",
    "train_perplexity": "number",
    "valid_perplexity": "number",
    "words_per_second": "number",
    "ms_per_step": "number",
    "epoch_time": "number",
    "wall_time": "number",
    "run_time": "number",
}

# metrics.jsonl, by event: (field kinds, the fields every record of it must have: what plot
# and the results tables read).
RECORDS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "step": (
        {
            "step": "count",
            "epoch": "count",
            "lr": "number",
            "loss": "number",
            "perplexity": "number",
            "grad_norm": "number",
            "words_per_second": "number",
            "wall_time": "number",
            "run_time": "number",
        },
        ("step", "epoch", "perplexity"),
    ),
    "epoch": (_EPOCH, ("step", "epoch", "valid_perplexity")),
    "partial_epoch": (_EPOCH, ("step", "epoch", "valid_perplexity")),
    "test": (
        {
            "step": "count",
            "test_perplexity": "number",
            "valid_perplexity": "number or null",
            "wall_time": "number",
            "run_time": "number",
        },
        ("step", "test_perplexity"),
    ),
}

# What --resume also needs of an epoch record: the finished run's summary table prints it.
RESUME_EPOCH = tuple(name for name in _EPOCH if name not in ("wall_time", "run_time"))


def _shown(value: object) -> str:
    return bounds.shown(value)


def check_fields(
    values: dict, kinds: dict[str, str], where: str, required: tuple[str, ...] = ()
) -> dict:
    """``values`` with every field of ``kinds`` it holds of its kind and every ``required``
    one present; otherwise a UserError ``where: NAME must be ...``. Other fields pass as they
    are."""
    for name in required:
        if name not in values:
            raise UserError(f"{where}: {name} is missing")
    for name, kind in kinds.items():
        if name in values:
            test, description = KINDS[kind]
            if not test(values[name]):
                if _whole(values[name]) and values[name] >= 2**63:
                    description += " below 2**63"
                raise UserError(
                    f"{where}: {name} must be {description}, got {_shown(values[name])}"
                )
    return values


# -- model.npz -----------------------------------------------------------------------------


def check_meta(meta: dict, source: str) -> dict:
    """The meta fields of a checkpoint besides format, version, vocab and config, progress
    included; ``source`` names the file ("checkpoint runs/x/model.npz")."""
    if meta.get("progress") is None:
        meta = {**meta, "progress": {}}
    check_fields(meta, META, f"{source}: meta")
    check_progress(meta["progress"], source)
    return meta


def check_progress(progress: dict, source: str) -> dict:
    """meta.progress: each field train.train writes, when present, of its kind."""
    return check_fields(progress, PROGRESS, f"{source}: meta.progress")


def resume_progress(progress: dict, has_carried_state: bool, source: str) -> dict:
    """meta.progress holding all that --resume needs: the step and epoch, and, written in the
    middle of an epoch, how far into it and the loss so far (and a carried state)."""
    where = f"{source}: meta.progress"
    if "step" not in progress or "epoch" not in progress:
        raise UserError(
            f"{source} holds no training progress to resume from (meta.progress "
            "lacks step or epoch)"
        )
    mid_epoch = not progress.get("epoch_finished", False) and progress["epoch"] != 0
    if mid_epoch:
        check_fields(progress, PROGRESS, where, required=("step_in_epoch", "loss_sum"))
        if progress["step_in_epoch"] > 0 and not has_carried_state:
            raise UserError(
                f"{where}: written {progress['step_in_epoch']} steps into epoch "
                f"{progress['epoch']}, but the checkpoint holds no carried state "
                "to continue from"
            )
    return progress


# -- config.json -----------------------------------------------------------------------------


def write_json(path: Path, value: dict) -> None:
    """Replace ``path`` by ``value`` as indented JSON, atomically (``config.json``)."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def read_run_info(run_dir: str | Path) -> dict:
    """A run folder's config.json, checked; {} when the folder has none."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return {}
    info = _read_json(path)
    if not isinstance(info, dict):
        raise UserError(
            f"{path}: must hold a JSON object, got {type(info).__name__}; "
            "restore the config.json that ptb-lstm train wrote"
        )
    return check_fields(info, RUN_INFO, str(path))


def _read_text(path: Path) -> str:
    """A file's UTF-8 text (a leading byte-order mark read as nothing), or a UserError saying
    why it cannot be had."""
    # NUL bytes are not refused as binary: a crash can leave a run file's tail zero-filled,
    # and read_metrics drops a damaged last line.
    return bounds.read_text(path, binary_hint=False)


def _read_json(path: Path) -> object:
    text = _read_text(path)
    bounds.check_json_depth(text, str(path))
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise UserError(f"{path}: not valid JSON ({_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


# -- metrics.jsonl ---------------------------------------------------------------------------


def read_metrics(path: str | Path, resuming: bool = False) -> list[dict]:
    """The records of a metrics.jsonl, each checked against its event's fields (RECORDS, and
    RESUME_EPOCH when ``resuming``); a partial last line (a crash in mid-write) is left out,
    any other line that is not a JSON object is a UserError naming its number."""
    path = Path(path)
    lines = _read_text(path).split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        bounds.check_json_depth(line, f"{path} line {number}")
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            if number == len(lines):  # no newline after it: cut short by a crash
                continue
            raise UserError(f"{path} line {number}: not JSON ({_first_line(error)})") from None
        record = check_record(record, f"{path} line {number}")
        if resuming and record.get("event") == "epoch":
            check_fields(record, _EPOCH, f"{path} line {number} (epoch record)", RESUME_EPOCH)
        records.append(record)
    return records


def check_record(record: object, where: str) -> dict:
    """One metrics.jsonl record: a JSON object whose event, when it is one ptb-lstm writes,
    has its fields of their kinds."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    check_fields(record, {"step": "count"}, where)  # every record is ordered by its step
    event = record.get("event")
    if event is not None and not isinstance(event, str):
        raise UserError(f"{where}: event must be a string, got {_shown(event)}")
    if event in RECORDS:
        kinds, required = RECORDS[event]
        check_fields(record, kinds, f"{where} ({event} record)", required)
    return record


def trim_metrics(path: Path, last_step: int) -> list[dict]:
    """Rewrite a metrics.jsonl (atomically) without the records after ``last_step`` (steps a
    resumed run trains again) and without a partial last line; returns the records kept."""
    records = (
        [r for r in read_metrics(path, resuming=True) if r.get("step", 0) <= last_step]
        if path.exists()
        else []
    )
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
    return records


# -- resuming --------------------------------------------------------------------------------


@dataclass
class Resume:
    """Where an interrupted run stands, from its last checkpoint."""

    epoch: int  # the epoch to continue, 1-based
    step: int  # training steps done in all
    step_in_epoch: int  # batches of ``epoch`` already done
    loss_sum: float  # their summed losses, for the epoch's training perplexity
    epoch_time: float  # seconds already spent in ``epoch``
    carried: list | None  # the carried state after those batches
    epochs: list[dict] = field(default_factory=list)  # records of the finished epochs
    run_time: float = 0.0  # seconds the run had trained by the checkpoint (0: not recorded)
    optimizer: dict | None = None  # the optimizer's state at the checkpoint (None for SGD)


# -- a write that found no room ----------------------------------------------------------------

# Write errors that mean "no room to write this": a full disk, a quota, the file-size limit
# (RLIMIT_FSIZE), and the I/O error some file systems give when they run out.
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def no_room_message(error: OSError, out_dir: Path, saved_step: int | None) -> str:
    """What a write that failed for want of room tells the user: where, and what is safe."""
    written = Path(error.filename).name if error.filename else "the run's files"
    where = (
        f"no space left on the device holding {out_dir} ({_mount_point(out_dir)}) while "
        f"writing {written} ({error.strerror or os.strerror(error.errno or errno.ENOSPC)})"
    )
    if saved_step is None:
        return (
            f"{where}; no checkpoint was written yet; free some space and start again "
            "with the same --out"
        )
    return (
        f"{where}; the last good checkpoint, {out_dir / 'model.npz'} (step {saved_step}), "
        f"is intact; free some space and continue with: ptb-lstm train --resume {out_dir}"
    )


def _mount_point(path: Path) -> str:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return f"mounted at {path}"
