"""Reproduce the paper's tables (``make reproduce``).

For each engine: train the config (small by default) into ``runs/reproduce/ENGINE`` (medium and
large: ``runs/reproduce/CONFIG/ENGINE``) -- a finished run there is kept, an interrupted one is
resumed -- then evaluate the final model with the same engine on valid and test at the config's
batch shape and at batch 1 x 1, and copy ``config.json``, ``metrics.jsonl`` and
``evaluations.json`` (never the checkpoint) to ``docs/results/ENGINE/`` (small) or
``docs/results/CONFIG/ENGINE/``. Last, write from everything published there:

- ``docs/results/CONFIG.md``, a generated page (the table against the paper, the checks, and for
  medium and large the runs epoch by epoch), and ``docs/results/CONFIG.json``, the same rows;
- the config's learning-curve figure (``docs/figures/results-curves.png``,
  ``results-medium-curves.png``, ``results-large-curves.png``);
- ``docs/figures/valid-by-config.png``: valid perplexity by epoch of every config published,
  against the paper's final figures (the README's figure).

No hand-written page is touched: docs/results.md and the README link to these files.

The published ``config.json`` shows the data folder as ``$PTB_DATA_DIR`` (or
``~/.cache/ptb-lstm/ptb`` when the run read the default cache), never a path of the machine that
trained.

    python benchmarks/reproduce.py                         # small: numpy, tf-eager, tf-graph
    python benchmarks/reproduce.py --engine numpy          # one engine
    python benchmarks/reproduce.py --run numpy=runs/x      # use an existing finished run
    python benchmarks/reproduce.py --collect-only          # only rewrite the page and figures
    python benchmarks/reproduce.py --config medium         # the medium model (NumPy engine)
    python benchmarks/reproduce.py --config large          # the large model (torch engine)
    python benchmarks/reproduce.py --config large --progress --run torch=DIR  # a run under way
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("numpy", "numpy-reference", "tf-eager", "tf-graph", "torch")
SMALL_ENGINES = ("numpy", "tf-eager", "tf-graph")
# Split and batch shape (None: the config's own, 20 x 20 for small).
EVALUATIONS = (("valid", None), ("test", None), ("valid", 1), ("test", 1))
MAX_SPREAD = 0.02
# The published rows (docs/model.md section 7): name, hardware, wall time, train, valid,
# test, valid 1x1, test 1x1.
PUBLISHED = [
    ("Zaremba et al. 2015, Table 1", "", "", "", "120.7", "114.5", "", ""),
    ("TensorFlow PTB tutorial (ptb_word_lm)", "", "", "37.99", "121.39", "", "", "115.91"),
    (
        "the series: NumPy, float64",
        "one CPU",
        "about 10 h",
        "34.69",
        "122.08",
        "116.42",
        "121.71",
        "116.30",
    ),
    (
        "the series: TF 1.12 eager, cuDNN LSTM",
        "Colab GPU",
        "8 min 58 s",
        "43.98",
        "119.41",
        "113.64",
        "",
        "",
    ),
    (
        "the series: TF 1.12 graph, cuDNN LSTM",
        "Colab GPU",
        "6 min 48 s",
        "43.80",
        "120.42",
        "114.29",
        "",
        "",
    ),
]


# The medium model: the paper's and the TensorFlow tutorial's published results.
PUBLISHED_MEDIUM = [
    ("Zaremba et al. 2015, Table 1", "", "", "", "86.2", "82.7", "", ""),
    ("TensorFlow PTB tutorial (ptb_word_lm)", "", "", "48.45", "86.16", "", "", "82.07"),
]

# The large model: the paper's and the TensorFlow tutorial's published results.
PUBLISHED_LARGE = [
    ("Zaremba et al. 2015, Table 1", "", "", "", "82.2", "78.4", "", ""),
    ("TensorFlow PTB tutorial (ptb_word_lm)", "", "", "37.87", "82.62", "", "", "78.29"),
]


@dataclass(frozen=True)
class Setup:
    """What one config's reproduction trains, where it publishes, and what it must reach."""

    engines: tuple[str, ...]  # trained by default
    results: str  # under the repository
    figure: str  # under docs/figures/
    max_valid: float
    max_test: float
    published: list
    target_note: str
    paper: tuple[float, float]  # the paper's valid and test perplexity
    per_epoch: bool = False  # the page shows each run's epochs, finished or not


SETUPS = {
    # Targets: the original series' worst small runs.
    "small": Setup(
        SMALL_ENGINES,
        "docs/results",
        "results-curves.png",
        122.5,
        116.5,
        PUBLISHED,
        "the original series' worst runs",
        (120.7, 114.5),
    ),
    # Targets: the paper's result plus 2%, at both batch shapes.
    "medium": Setup(
        ("numpy",),
        "docs/results/medium",
        "results-medium-curves.png",
        88.0,
        84.4,
        PUBLISHED_MEDIUM,
        "the paper's 86.2 / 82.7 plus 2%, at both batch shapes",
        (86.2, 82.7),
        per_epoch=True,
    ),
    "large": Setup(
        ("torch",),
        "docs/results/large",
        "results-large-curves.png",
        83.8,
        80.0,
        PUBLISHED_LARGE,
        "the paper's 82.2 / 78.4 plus 2%, at both batch shapes",
        (82.2, 78.4),
        per_epoch=True,
    ),
}
OVERVIEW = REPO / "docs" / "figures" / "valid-by-config.png"


def cli(*args: str, log: Path | None = None) -> str:
    """Run ``python -m ptb_lstm ARGS``; stream its output (and into ``log``); fail loudly."""
    command = [sys.executable, "-m", "ptb_lstm", *args]
    print("$ ptb-lstm " + " ".join(args), flush=True)
    lines = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, bufsize=1
    ) as process:
        sink = log.open("a", encoding="utf-8") if log else None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
            if sink:
                sink.write(line)
                sink.flush()
        if sink:
            sink.close()
    if process.returncode != 0:
        sys.exit(f"reproduce: 'ptb-lstm {' '.join(args)}' failed (exit {process.returncode})")
    return "".join(lines)


def finished(run: Path) -> bool:
    """Whether the run's checkpoint says it trained all its epochs (a run stopped early by
    --max-steps or Ctrl-C also has a test record, but is resumable)."""
    if not (run / "model.npz").is_file():
        return False
    from ptb_lstm import checkpoint

    return bool(checkpoint.load(run / "model.npz").progress.get("finished"))


def train(engine: str, run: Path, data: list[str], config: str) -> None:
    log = run.with_suffix(".log")
    if finished(run):
        print(f"{run} has finished; keeping it", flush=True)
    elif (run / "model.npz").is_file():
        cli("train", "--resume", str(run), *data, log=log)
    else:
        if run.exists():  # a run that stopped before its first checkpoint: start it again
            stray = {p.name for p in run.iterdir()} - {"config.json", "metrics.jsonl"}
            if stray:
                sys.exit(
                    f"reproduce: {run} holds {', '.join(sorted(stray))} but no model.npz; "
                    "it does not look like a run folder, so nothing in it is touched: "
                    "give another folder"
                )
            for name in ("config.json", "metrics.jsonl"):
                (run / name).unlink(missing_ok=True)
        run.parent.mkdir(parents=True, exist_ok=True)
        cli("train", "--config", config, "--engine", engine, "--out", str(run), *data, log=log)


def evaluate(engine: str, run: Path, data: list[str]) -> list[dict]:
    results = []
    for split, size in EVALUATIONS:
        shape = ["--batch-size", str(size), "--num-steps", str(size)] if size else []
        out = cli(
            "evaluate",
            "--checkpoint",
            str(run / "model.npz"),
            "--engine",
            engine,
            "--split",
            split,
            *shape,
            "--json",
            *data,
        )
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def shown_data_dir(data_dir: str) -> str:
    """The data folder as a reader should see it: ``~/.cache/ptb-lstm/ptb`` for the default
    cache, ``$PTB_DATA_DIR`` for any other folder (a path of the training machine means nothing
    to a reader)."""
    from ptb_lstm.data import default_cache_dir

    try:
        if Path(data_dir).expanduser().resolve() == default_cache_dir().resolve():
            return "~/.cache/ptb-lstm/ptb"
    except OSError:
        pass
    return "$PTB_DATA_DIR"


def public_config(info: dict) -> dict:
    """A run's config.json with the data folder shown as ``shown_data_dir`` gives it, in the
    ``data_dir`` field and in the recorded command's ``--data-dir``."""
    info = dict(info)
    if info.get("data_dir"):
        folder = info["data_dir"]
        shown = shown_data_dir(folder)
        info["data_dir"] = shown
        command = info.get("command")
        if isinstance(command, str):
            words = command.split(" ")
            for i, word in enumerate(words):
                if word == "--data-dir" and i + 1 < len(words):
                    words[i + 1] = shown
                elif word.startswith("--data-dir="):
                    words[i] = f"--data-dir={shown}"
            info["command"] = " ".join(words)
    return info


def publish(engine: str, run: Path, evaluations: list[dict] | None, results: Path) -> None:
    """Copy a run's config.json (data folder shown as a reader's) and metrics.jsonl, and its
    evaluations when there are any, to ``results/ENGINE``."""
    target = results / engine
    target.mkdir(parents=True, exist_ok=True)
    info = json.loads((run / "config.json").read_text(encoding="utf-8"))
    info.setdefault("machine", machine())
    (target / "config.json").write_text(
        json.dumps(public_config(info), indent=2) + "\n", encoding="utf-8"
    )
    shutil.copyfile(run / "metrics.jsonl", target / "metrics.jsonl")
    if evaluations is None:
        return
    for e in evaluations:
        e["checkpoint"] = f"{run.name}/model.npz"
    (target / "evaluations.json").write_text(
        json.dumps(evaluations, indent=2) + "\n", encoding="utf-8"
    )


def machine() -> dict:
    """The machine this script runs on: cpu, cores and the Python, NumPy and TensorFlow
    versions (recorded in each published config.json, since runs train where they publish)."""
    from bench import machine as describe  # benchmarks/bench.py, beside this script

    host = describe()
    return {
        key: host[key] for key in ("cpu", "cores", "python", "numpy", "tensorflow") if key in host
    }


def hardware(host: dict) -> str:
    return f"{host.get('cpu', '?')}, {host.get('cores', '?')} cores"


def software(host: dict) -> str:
    return f"Python {host.get('python', '?')}, NumPy {host.get('numpy', '?')}" + (
        f", TensorFlow {host['tensorflow']}" if "tensorflow" in host else ""
    )


def finished_run(run) -> bool:
    """Whether a published run trained every epoch of its config and was tested (a run
    stopped early by --max-steps has a test record too)."""
    return run.test_record is not None and len(run.epochs) == run.config.get("epochs")


def wall_seconds(folder: Path) -> float:
    """A run's training time in seconds, across its resumes. A run whose records carry
    ``run_time`` (the run's own clock, carried across resumes) ends at its last one. In a run
    written before ``run_time`` existed, each ``wall_time`` counts from its own process's start,
    so the time is summed over the processes, each up to its last record, a new process being
    seen where the clock goes back (``--resume`` drops the records a killed process wrote after
    its last checkpoint, so steps trained twice count once)."""
    from ptb_lstm import runfiles

    records = [
        r
        for r in runfiles.read_metrics(folder / "metrics.jsonl")
        if isinstance(r.get("wall_time"), (int, float))
    ]
    if records and all(isinstance(r.get("run_time"), (int, float)) for r in records):
        return float(records[-1]["run_time"])
    total, last = 0.0, None
    for record in records:
        if last is not None and record["wall_time"] < last:  # a new process
            total += last
        last = record["wall_time"]
    return total + (last or 0.0)


def shown_wall_time(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def summarize(results: Path) -> list[dict]:
    """One row per engine whose run under ``results`` has finished."""
    from ptb_lstm.plot import load_run

    rows = []
    for engine in ENGINES:
        folder = results / engine
        if not (folder / "metrics.jsonl").is_file():
            continue
        run = load_run(folder)
        if not finished_run(run):
            continue
        evals = {}  # (split, "1x1" or "config") -> perplexity
        eval_seconds = None
        if (folder / "evaluations.json").is_file():
            published = json.loads((folder / "evaluations.json").read_text())
            for e in published:
                one = e["batch_size"] == 1 and e["num_steps"] == 1
                evals[(e["split"], "1x1" if one else "config")] = e["perplexity"]
            if all(isinstance(e.get("seconds"), (int, float)) for e in published):
                eval_seconds = sum(e["seconds"] for e in published)
        ms = sorted(r["ms_per_step"] for r in run.epochs)

        rows.append(
            {
                "engine": engine,
                "dtype": run.dtype,
                "command": run.info.get("command"),
                "config": run.config,
                "epochs": len(run.epochs),
                "train": run.epochs[-1]["train_perplexity"],
                "valid": run.epochs[-1]["valid_perplexity"],
                "test": run.test,
                "valid_1x1": evals.get(("valid", "1x1")),
                "test_1x1": evals.get(("test", "1x1")),
                "valid_again": evals.get(("valid", "config")),
                "test_again": evals.get(("test", "config")),
                "wall": shown_wall_time(wall_seconds(folder)),
                "median_ms": ms[len(ms) // 2],
                "fastest_ms": ms[0],
                "started": run.info.get("started", ""),
                "eval_seconds": eval_seconds,
                "machine": run.info.get("machine") or {},
            }
        )
    return rows


def table(rows: list[dict], setup: Setup) -> str:
    def f(value, digits=2):
        return "" if value is None else f"{value:.{digits}f}"

    c = rows[0]["config"]
    hosts = sorted(
        {f"{hardware(r['machine'])}; {software(r['machine'])}" for r in rows if r["machine"]}
    )
    lines = [
        f"Machine{'s' if len(hosts) > 1 else ''}: {' and '.join(hosts) or 'not recorded'}. "
        f"Config: {c.get('num_layers')} layers of {c.get('hidden_size')} "
        f"units, batch {c.get('batch_size')} x {c.get('num_steps')} steps, dropout "
        f"{c.get('dropout')}, {c.get('epochs')} epochs, seed {c.get('seed')}, "
        f"{rows[0]['dtype']}. Train is the last epoch's mean training perplexity; valid and "
        "test are at the training batch shape with the state carried through the split, as "
        "the training log reports them; the 1 x 1 columns are the same model evaluated one "
        "word at a time.",
        "",
        "| run | hardware | wall time | train | valid | test | valid 1x1 | test 1x1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| **ptb-lstm {r['engine']}** | "
            f"{hardware(r['machine']) if r['machine'] else ''} | "
            f"{r['wall']} | {f(r['train'])} | **{f(r['valid'])}** | "
            f"**{f(r['test'])}** | {f(r['valid_1x1'])} | {f(r['test_1x1'])} |"
        )
    for name, where, wall, *numbers in setup.published:
        lines.append(f"| {name} | {where} | {wall} | " + " | ".join(numbers) + " |")
    lines += [
        "",
        f"Checks (targets: test <= {setup.max_test}, valid <= {setup.max_valid}, "
        f"{setup.target_note}; engines within 2% of each other):",
        "",
    ]
    for r in rows:
        valids = [v for v in (r["valid"], r["valid_1x1"]) if v is not None]
        tests = [v for v in (r["test"], r["test_1x1"]) if v is not None]
        ok = max(tests) <= setup.max_test and max(valids) <= setup.max_valid
        again = [
            abs(r[f"{s}_again"] / r[s] - 1)
            for s in ("valid", "test")
            if r[f"{s}_again"] is not None
        ]
        check = (
            (
                f"; evaluated again from model.npz at the training batch shape: largest "
                f"relative difference {max(again):.1e}"
            )
            if again
            else ""
        )
        lines.append(
            f"- {r['engine']}: test {r['test']:.2f}, valid {r['valid']:.2f}: "
            f"{'within the targets' if ok else 'MISSES the targets'}{check}; "
            f"median epoch {r['median_ms']:.1f} ms/step (fastest {r['fastest_ms']:.1f})"
            + (
                f"; the {len(EVALUATIONS)} evaluations took {r['eval_seconds']:.0f} s"
                if r["eval_seconds"] is not None
                else ""
            )
        )
    if len(rows) > 1:
        for key in ("valid", "test", "valid_1x1", "test_1x1"):
            values = [r[key] for r in rows if r[key] is not None]
            if len(values) > 1:
                spread = max(values) / min(values) - 1
                lines.append(
                    f"- spread of {key.replace('_', ' ')} across the engines: "
                    f"{100 * spread:.2f}% ({'within' if spread <= MAX_SPREAD else 'over'}"
                    f" 2%)"
                )
        top = max(rows, key=lambda r: r["valid"])
        lines.append(
            f"- highest valid: {top['engine']}, "
            + ", ".join(
                f"{100 * (top['valid'] / r['valid'] - 1):.2f}% above {r['engine']}"
                for r in rows
                if r is not top
            )
        )
    lines += ["", "Commands that made these runs (from each run's config.json):", ""]
    lines += [f"- {r['engine']}: `{r['command']}` (started {r['started']})" for r in rows]
    return "\n".join(lines)


def epoch_table(results: Path, max_valid: float) -> str:
    """Every run's per-epoch record under ``results``, finished or still under way, with the
    best valid perplexity so far against the target ``max_valid``."""
    from ptb_lstm.plot import load_run

    lines = []
    for engine in ENGINES:
        folder = results / engine
        if not (folder / "metrics.jsonl").is_file():
            continue
        run = load_run(folder)
        total = run.config.get("epochs")
        state = (
            f"finished, test {run.test:.2f}"
            if finished_run(run)
            else f"under way: {len(run.epochs)} of {total} epochs"
        )
        records = run.steps + run.epochs
        # The step count, not the wall time: a resumed run's clock starts again at 0.
        last = max(records, key=lambda r: r.get("step", 0)) if records else {}
        lines += [
            f"{engine} ({state}; last logged step {last.get('step', 0):,}; "
            f"`{run.info.get('command')}`, started {run.info.get('started', '')}):",
            "",
            "| epoch | learning rate | train ppl | valid ppl | ms/step | epoch time |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in run.epochs:
            minutes, seconds = divmod(round(r["epoch_time"]), 60)
            hours, minutes = divmod(minutes, 60)
            took = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
            lines.append(
                f"| {r['epoch']} | {r['lr']:.4g} | {r['train_perplexity']:.2f} | "
                f"{r['valid_perplexity']:.2f} | {r['ms_per_step']:.1f} | {took} |"
            )
        if run.epochs and not finished_run(run):
            best = min(run.epochs, key=lambda r: r["valid_perplexity"])
            reached = "reached" if best["valid_perplexity"] <= max_valid else "not reached yet"
            lines += [
                "",
                f"Best valid perplexity so far: {best['valid_perplexity']:.2f} "
                f"(epoch {best['epoch']}), against the target of <= {max_valid:g} "
                f"at the training batch shape: {reached}. Test, and valid and "
                f"test at 1 x 1, are evaluated when the run has finished.",
            ]
        lines.append("")
    return "\n".join(lines)


def epoch_curves(results: Path, config: str, contrast: Path, figure: Path) -> None:
    """Train and valid perplexity per epoch of the runs under ``results``, with the small
    model's (``contrast``) for comparison: the regularized model keeps improving on valid
    where the small one overfits."""
    plt = _pyplot()
    from ptb_lstm.plot import load_run

    runs = [
        (f"{config} {e}", load_run(results / e))
        for e in ENGINES
        if (results / e / "metrics.jsonl").is_file()
    ]
    if (contrast / "metrics.jsonl").is_file():
        runs.append(("small numpy (no dropout)", load_run(contrast)))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for (label, run), color in zip(runs, ("C0", "C1", "C2", "C3", "C4"), strict=False):
        epochs = [r["epoch"] for r in run.epochs]
        ax.plot(
            epochs,
            [r["train_perplexity"] for r in run.epochs],
            "--",
            color=color,
            label=f"{label}: train",
        )
        ax.plot(
            epochs,
            [r["valid_perplexity"] for r in run.epochs],
            "-o",
            ms=3,
            color=color,
            label=f"{label}: valid",
        )
    ax.set(
        xlabel="epoch",
        ylabel="perplexity (log scale)",
        yscale="log",
        title="train and valid perplexity per epoch",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, figure)


def overview(folders: dict[str, Path], figure: Path) -> bool:
    """Valid perplexity by epoch of one run per config (``{config: run folder}``, those with
    metrics), each against the paper's final valid perplexity, dashed. False when none has
    a finished epoch."""
    from ptb_lstm.plot import load_run

    runs = {
        name: load_run(folder)
        for name, folder in folders.items()
        if (folder / "metrics.jsonl").is_file()
    }
    runs = {name: run for name, run in runs.items() if run.epochs}
    if not runs:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for (name, run), color in zip(runs.items(), ("C0", "C1", "C2"), strict=False):
        valid = [r["valid_perplexity"] for r in run.epochs]
        ax.plot(
            [r["epoch"] for r in run.epochs],
            valid,
            "-o",
            ms=2.5,
            color=color,
            label=f"{name} ({run.engine}): {min(valid):.1f}",
        )
        paper = SETUPS[name].paper[0] if name in SETUPS else None
        if paper:
            ax.axhline(paper, color=color, ls="--", lw=1, label=f"{name}, paper: {paper}")
    ax.set(
        xlabel="epoch",
        ylabel="valid perplexity (log scale)",
        yscale="log",
        title="valid perplexity by epoch, against the paper's final figures",
    )
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    _save(fig, figure)
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, figure: Path) -> None:
    import matplotlib.pyplot as plt

    figure.parent.mkdir(parents=True, exist_ok=True)
    tmp = figure.with_name(f".{figure.stem}.tmp{figure.suffix}")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, figure)


def write_generated(path: Path, text: str) -> None:
    """Write a generated file whole and atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def shown(path: Path) -> str:
    """A path as the docs show it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


def collect(results: Path, doc: Path, figure: Path, setup: Setup, config: str) -> None:
    """Write the config's generated page and JSON and its figure from ``results``."""
    rows = summarize(results)
    made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "make reproduce" + (f' ARGS="--config {config}"' if config != "small" else "")
    parts = [
        f"<!-- Generated by `{command}` from {shown(results)}/: do not edit by hand, "
        "rerun the command. -->",
        f"# The {config} model: results",
        "",
        f"Written by `{command}` on {made} from the runs published under `{shown(results)}/`.",
        "",
    ]
    if rows:
        parts += [table(rows, setup), ""]
    elif not setup.per_epoch:
        sys.exit(f"reproduce: no finished runs under {results}")
    if setup.per_epoch:
        epochs = epoch_table(results, setup.max_valid)
        if not epochs:
            sys.exit(f"reproduce: no runs under {results}")
        parts += ["## Epoch by epoch", "", epochs]
    write_generated(doc, "\n".join(parts).rstrip() + "\n")
    summary = {
        "config": config,
        "written": made,
        "command": command,
        "targets": {"valid": setup.max_valid, "test": setup.max_test},
        "paper": {"valid": setup.paper[0], "test": setup.paper[1]},
        "runs": rows,
    }
    write_generated(doc.with_suffix(".json"), json.dumps(summary, indent=1) + "\n")
    if setup.per_epoch:
        epoch_curves(results, config, REPO / "docs" / "results" / "numpy", figure)
    else:
        figure.parent.mkdir(parents=True, exist_ok=True)
        cli("plot", *(str(results / r["engine"]) for r in rows), "--log", "--out", str(figure))
    print("\n".join(parts[4:]))
    print(f"wrote {shown(doc)}, {shown(doc.with_suffix('.json'))} and {shown(figure)}")


def published_runs() -> dict[str, Path]:
    """One published run per config for the overview figure: its first default engine's."""
    return {name: REPO / setup.results / setup.engines[0] for name, setup in SETUPS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        action="append",
        choices=ENGINES,
        help="engine to run (repeatable; default: numpy, tf-eager and "
        "tf-graph for small, numpy for medium, torch for large)",
    )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="ENGINE=DIR",
        help="use this run folder for ENGINE instead of runs/reproduce/ENGINE",
    )
    parser.add_argument(
        "--config",
        default="small",
        help="config to train (default: small; medium and large are tabled "
        "epoch by epoch; any other config is tabled as small is)",
    )
    parser.add_argument("--data-dir", help="PTB folder (default: ptb-lstm's own search)")
    parser.add_argument(
        "--results",
        help="where runs are published (default: docs/results "
        "for small, docs/results/CONFIG otherwise)",
    )
    parser.add_argument(
        "--doc",
        help="the generated page to write, with its .json beside it "
        "(default: docs/results/CONFIG.md); with --results and "
        "--figure elsewhere, a rerun leaves the published files "
        "as they are",
    )
    parser.add_argument(
        "--figure",
        help="the learning-curve figure (default: "
        "docs/figures/results-curves.png, "
        "results-medium-curves.png, results-large-curves.png)",
    )
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="only rewrite the page, its JSON and the figures from --results",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="publish the runs as they stand (config and metrics, training "
        "neither started nor continued, no evaluations), then rebuild: "
        "for a long run under way",
    )
    args = parser.parse_args()
    setup = SETUPS.get(args.config, SETUPS["small"])
    results = Path(args.results) if args.results else REPO / setup.results
    figure = Path(args.figure) if args.figure else REPO / "docs" / "figures" / setup.figure
    if not args.collect_only:
        base = REPO / "runs" / "reproduce"
        runs = {e: (base / args.config if setup.per_epoch else base) / e for e in ENGINES}
        for item in args.run:
            engine, _, folder = item.partition("=")
            if engine not in ENGINES or not folder:
                sys.exit(
                    f"reproduce: --run {item}: expected ENGINE=DIR with ENGINE one of "
                    f"{', '.join(ENGINES)}"
                )
            runs[engine] = Path(folder).resolve()
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        for engine in args.engine or setup.engines:
            if args.progress:
                publish(engine, runs[engine], None, results)
                continue
            started = time.perf_counter()
            train(engine, runs[engine], data, args.config)
            publish(engine, runs[engine], evaluate(engine, runs[engine], data), results)
            print(f"{engine}: done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    doc = Path(args.doc) if args.doc else REPO / "docs" / "results" / f"{args.config}.md"
    collect(results, doc, figure, setup, args.config)
    if results.resolve() == (REPO / setup.results).resolve() and overview(
        published_runs(), OVERVIEW
    ):
        print(f"wrote {shown(OVERVIEW)}", flush=True)


if __name__ == "__main__":
    main()
