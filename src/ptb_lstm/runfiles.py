"""The files of a run folder as they are read back: the ``meta`` of ``model.npz`` (its training
progress included), ``config.json`` and ``metrics.jsonl``.

What each field must be is written here once, and every reader (``checkpoint.load``,
``--resume``, ``inspect``, ``plot``) goes through it: a damaged or hand-edited file is a
UserError of one line naming the file and the field, never a traceback further on. The weights
themselves are checked by ``checkpoint.load`` against the config (``params.check_params``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ptb_lstm import bounds
from ptb_lstm.errors import UserError


def _whole(value: object) -> bool:
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
PROGRESS = {"epoch": "count", "step": "count", "step_in_epoch": "count",
            "learning_rate": "number", "epoch_finished": "flag", "finished": "flag",
            "loss_sum": "number", "epoch_time": "number", "run_time": "number"}

# The meta fields besides format, version, vocab and config (which checkpoint.load checks).
META = {"ptb_lstm_version": "text", "engine": "text", "dtype": "text",
        "progress": "object"}

# config.json of a run folder: the fields a reader uses. Every one may be absent (a run
# written by an older ptb-lstm lacks log_every and checkpoint_every).
RUN_INFO = {"config": "object", "engine": "text", "dtype": "dtype", "device": "text",
            "vocab_size": "count", "data_dir": "text or null", "init_from": "text or null",
            "log_every": "positive", "checkpoint_every": "count", "command": "text",
            "started": "text"}

_EPOCH = {"step": "count", "epoch": "count", "lr": "number", "steps": "count",
          "train_perplexity": "number", "valid_perplexity": "number",
          "words_per_second": "number", "ms_per_step": "number", "epoch_time": "number",
          "wall_time": "number", "run_time": "number"}

# metrics.jsonl, by event: (field kinds, the fields every record of it must have: what plot
# and the results tables read).
RECORDS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "step": ({"step": "count", "epoch": "count", "lr": "number", "loss": "number",
              "perplexity": "number", "grad_norm": "number", "words_per_second": "number",
              "wall_time": "number", "run_time": "number"}, ("step", "epoch", "perplexity")),
    "epoch": (_EPOCH, ("step", "epoch", "valid_perplexity")),
    "partial_epoch": (_EPOCH, ("step", "epoch", "valid_perplexity")),
    "test": ({"step": "count", "test_perplexity": "number", "valid_perplexity": "number or null",
              "wall_time": "number", "run_time": "number"}, ("step", "test_perplexity")),
}

# What --resume also needs of an epoch record: the finished run's summary table prints it.
RESUME_EPOCH = tuple(name for name in _EPOCH if name not in ("wall_time", "run_time"))


def _shown(value: object) -> str:
    return bounds.shown(value)


def check_fields(values: dict, kinds: dict[str, str], where: str,
                 required: tuple[str, ...] = ()) -> dict:
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
                raise UserError(f"{where}: {name} must be {description}, got "
                                f"{_shown(values[name])}")
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
        raise UserError(f"{source} holds no training progress to resume from (meta.progress "
                        "lacks step or epoch)")
    mid_epoch = not progress.get("epoch_finished", False) and progress["epoch"] != 0
    if mid_epoch:
        check_fields(progress, PROGRESS, where, required=("step_in_epoch", "loss_sum"))
        if progress["step_in_epoch"] > 0 and not has_carried_state:
            raise UserError(f"{where}: written {progress['step_in_epoch']} steps into epoch "
                            f"{progress['epoch']}, but the checkpoint holds no carried state "
                            "to continue from")
    return progress


# -- config.json -----------------------------------------------------------------------------

def read_run_info(run_dir: str | Path) -> dict:
    """A run folder's config.json, checked; {} when the folder has none."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        return {}
    info = _read_json(path)
    if not isinstance(info, dict):
        raise UserError(f"{path}: must hold a JSON object, got {type(info).__name__}; "
                        "restore the config.json that ptb-lstm train wrote")
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
        raise UserError(f"{where}: a record must be a JSON object, got "
                        f"{type(record).__name__}")
    check_fields(record, {"step": "count"}, where)  # every record is ordered by its step
    event = record.get("event")
    if event is not None and not isinstance(event, str):
        raise UserError(f"{where}: event must be a string, got {_shown(event)}")
    if event in RECORDS:
        kinds, required = RECORDS[event]
        check_fields(record, kinds, f"{where} ({event} record)", required)
    return record
