"""Learning curves of one or several run folders on one figure (needs matplotlib)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ptb_lstm import runfiles
from ptb_lstm.atomic import write_atomic
from ptb_lstm.errors import UserError

FORMATS = (".png", ".pdf", ".svg")


@dataclass
class RunRecords:
    """What a plot needs of a run folder: its label, its step and epoch records."""

    path: Path
    engine: str
    dtype: str
    config: dict
    info: dict = field(default_factory=dict)  # the whole config.json (command, start, ...)
    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    test_record: dict | None = None  # the last test record (a resumed run may have several)

    @property
    def test(self) -> float | None:
        return float(self.test_record["test_perplexity"]) if self.test_record else None


def load_run(run_dir: str | Path) -> RunRecords:
    """A run folder's records, read through ``runfiles`` (a damaged file is a UserError)."""
    path = Path(run_dir)
    metrics_path = path / "metrics.jsonl"
    if path.is_file():
        raise UserError(
            f"{path} is a file; give the run folder that holds it "
            f"({path.parent}), as 'ptb-lstm train --out' wrote it"
        )
    if not path.is_dir():
        raise UserError(
            f"run folder {path} does not exist; give the --out folder of a 'ptb-lstm train' run"
        )
    if not metrics_path.is_file():
        raise UserError(
            f"{metrics_path} is missing; a run folder written by 'ptb-lstm train' "
            "holds metrics.jsonl"
        )
    records = runfiles.read_metrics(metrics_path)
    info = runfiles.read_run_info(path)
    run = RunRecords(
        path=path,
        engine=str(info.get("engine") or path.resolve().name),
        dtype=info.get("dtype", ""),
        config=info.get("config") or {},
        info=info,
    )
    for record in records:
        event = record.get("event")
        if event == "step" and _finite(record.get("perplexity")):
            run.steps.append(record)
        elif event == "epoch" and _finite(record.get("valid_perplexity")):
            run.epochs.append(record)
        elif event == "test" and _finite(record.get("test_perplexity")):
            run.test_record = record
    if not run.steps and not run.epochs:
        raise UserError(
            f"{metrics_path} holds no step or epoch records yet; plot a run that "
            "has trained at least --log-every steps"
        )
    return run


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")


def labels(runs: list[RunRecords]) -> list[str]:
    """Each run's engine (and dtype when not float32); the folder name is added where two runs
    would otherwise share a label."""
    base = [r.engine + (f" {r.dtype}" if r.dtype and r.dtype != "float32" else "") for r in runs]
    return [
        f"{b} ({r.path.name})" if base.count(b) > 1 else b for b, r in zip(base, runs, strict=True)
    ]


def plot_runs(runs: list[RunRecords], out: str | Path, log: bool = False) -> Path:
    """Training perplexity against step and valid perplexity against epoch, side by side;
    written atomically to ``out`` (.png, .pdf or .svg)."""
    out = _figure_path(out)
    plt = _pyplot()
    fig = _draw(plt, runs, log)
    try:
        write_atomic(out, lambda f: fig.savefig(f, dpi=110, format=out.suffix[1:].lower()))
    except OSError as error:
        raise UserError(f"cannot write --out {out}: {error.strerror or error}") from None
    finally:
        plt.close(fig)
    return out


def _figure_path(out: str | Path) -> Path:
    """``out`` as a path a figure can be written to, or a UserError saying why not."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out}/curves.png")
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out {out}: the figure's name must end in {', '.join(FORMATS)}")
    if not out.parent.is_dir():
        blocking = next((parent for parent in out.parents if parent.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise UserError(
                f"--out {out}: {blocking} is a file, not a folder; choose a file name in a folder"
            )
        raise UserError(f"--out {out}: folder {out.parent} does not exist; create it first")
    return out


def _pyplot():
    """matplotlib.pyplot drawing to files only (Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(
            "plotting needs matplotlib, which ptb-lstm installs: pip install 'matplotlib>=3.7'"
        ) from None
    return plt


def _draw(plt, runs: list[RunRecords], log: bool):
    """The figure: training perplexity by step on the left, valid perplexity by epoch on the
    right, one colour per run; the shared config as its title."""
    fig, (ax_train, ax_valid) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, label in zip(runs, labels(runs), strict=True):
        (line,) = ax_train.plot(
            [r["step"] for r in run.steps],
            [r["perplexity"] for r in run.steps],
            lw=1.2,
            label=label,
        )
        test = f", test {run.test:.2f}" if run.test is not None else ""
        last = f"valid {run.epochs[-1]['valid_perplexity']:.2f}{test}" if run.epochs else ""
        ax_valid.plot(
            [r["epoch"] for r in run.epochs],
            [r["valid_perplexity"] for r in run.epochs],
            marker="o",
            ms=3.5,
            color=line.get_color(),
            label=f"{label}: {last}" if last else label,
        )
    ax_train.set(
        xlabel="training step",
        ylabel="training perplexity",
        title="training perplexity (mean so far in the epoch)",
    )
    ax_valid.set(xlabel="epoch", ylabel="valid perplexity", title="valid perplexity per epoch")
    if log:
        from matplotlib.ticker import FormatStrFormatter

        for ax in (ax_train, ax_valid):
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
            ax.tick_params(axis="y", which="minor", labelsize=7)
    for ax in (ax_train, ax_valid):
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
    configs = {json.dumps(r.config, sort_keys=True) for r in runs}
    if len(configs) == 1 and runs[0].config:
        c = runs[0].config
        fig.suptitle(
            f"{c.get('num_layers')} layers x {c.get('hidden_size')} units, batch "
            f"{c.get('batch_size')} x {c.get('num_steps')} steps, dropout "
            f"{c.get('dropout')}, seed {c.get('seed')}",
            fontsize=10,
        )
    fig.tight_layout()
    return fig
