"""The README's engine table: what each engine is, its speed and its result.

Speed comes from the latest ``make bench`` table in docs/performance.md, the result from the runs
``make reproduce`` published in docs/results/ENGINE/. ``benchmarks/bench.py`` and
``benchmarks/reproduce.py`` call this after writing their own docs, so the table changes only
with the measurements it quotes; run it alone to rebuild it from what the docs hold now.

    python benchmarks/engine_table.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PERFORMANCE = REPO / "docs" / "performance.md"
RESULTS = REPO / "docs" / "results"
START, END = "<!-- engines:start -->", "<!-- engines:end -->"
BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"
# Each engine as the README describes it, in the table's order.
ENGINES = {
    "numpy": ("`numpy` (default)", "written from scratch in pure NumPy: forward pass, "
              "back-propagation through time, clipped SGD"),
    "numpy-reference": ("`numpy-reference`", "the same model in plain NumPy written to be read "
                        "top to bottom, equations beside the lines: Part I's engine"),
    "tf-eager": ("`tf-eager`", "TensorFlow eager execution with `tf.GradientTape`"),
    "tf-graph": ("`tf-graph`", "a TensorFlow `tf.compat.v1` graph built once and run in a "
                 "`Session`"),
    "torch": ("`torch`", "PyTorch `nn.LSTM` (cuDNN when on a GPU) on the same parameters: "
              "[`docs/torch-engine.md`](docs/torch-engine.md)"),
}


def bench_figures(text: str) -> tuple[dict, str, str]:
    """From docs/performance.md: {engine: (train ms/step, 13-epoch estimate)}, the machine and
    the date of the ``make bench`` that wrote its table."""
    if BENCH_START not in text or BENCH_END not in text:
        return {}, "", ""
    section = text.split(BENCH_START, 1)[1].split(BENCH_END, 1)[0]
    figures = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in ENGINES and cells[0] not in figures:
            figures[cells[0]] = (cells[1], cells[5])
    machine = re.search(r"^Machine: ([^;]*)", section, re.M)
    date = re.search(r"\(`make bench`, (\d{4}-\d{2}-\d{2})", section)
    return figures, machine.group(1) if machine else "", date.group(1) if date else ""


def result_figures(results: Path) -> tuple[dict, list[str]]:
    """From docs/results/ENGINE/: {engine: (valid, test)} of each finished run and the dates the
    runs started."""
    from ptb_lstm.plot import load_run

    figures, dates = {}, set()
    for engine in ENGINES:
        folder = results / engine
        if not (folder / "metrics.jsonl").is_file():
            continue
        run = load_run(folder)
        if run.epochs and run.test is not None:
            figures[engine] = (run.epochs[-1]["valid_perplexity"], run.test)
            if run.info.get("started"):
                dates.add(str(run.info["started"])[:10])
    return figures, sorted(dates)


def table(performance: Path = PERFORMANCE, results: Path = RESULTS) -> str:
    speed, machine, bench_date = bench_figures(
        performance.read_text(encoding="utf-8") if performance.is_file() else "")
    quality, run_dates = result_figures(results)
    lines = ["| engine | what it is | ms per training step | 13 epochs (est.) | valid / test "
             "perplexity |", "|---|---|---:|---:|---:|"]
    for engine, (name, what) in ENGINES.items():
        ms, epochs = speed.get(engine, ("–", "–"))
        valid_test = (f"{quality[engine][0]:.2f} / {quality[engine][1]:.2f}"
                      if engine in quality else "–")
        lines.append(f"| {name} | {what} | {ms} | {epochs} | {valid_test} |")
    notes = []
    if speed:
        notes.append(f"Speed: the small config in float32 on {machine or 'the measuring machine'}"
                     f" (`make bench`, {bench_date}, [docs/performance.md](docs/performance.md)).")
    if quality:
        notes.append("Perplexity: the small config trained for 13 epochs from seed 1 in "
                     f"float32, valid and test at the training batch shape (`make reproduce`, "
                     f"runs started {', '.join(run_dates)}, each with the code of the commit "
                     "[docs/results.md](docs/results.md) names, not always today's); the paper: "
                     "120.7 / 114.5.")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def update(readme: Path = README, performance: Path = PERFORMANCE,
           results: Path = RESULTS) -> bool:
    """Rewrite the table between the markers of ``readme``; False when it has no markers."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(f"{head}{START}\n{table(performance, results)}\n{END}{tail}",
                   encoding="utf-8")
    os.replace(tmp, readme)
    return True


if __name__ == "__main__":
    print(table())
    if update():
        print(f"wrote {README.relative_to(REPO)}")
