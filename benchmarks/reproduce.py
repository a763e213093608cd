"""Reproduce the paper's small-config table with every engine (``make reproduce``).

For each engine: train the small config for its 13 epochs (default seed) into
``runs/reproduce/ENGINE`` -- a finished run there is kept, an interrupted one is resumed --
then evaluate the final model with the same engine on valid and test at the config's batch
shape (20 x 20 for small) and at batch 1 x 1, and copy ``config.json``, ``metrics.jsonl`` and
``evaluations.json`` (never the checkpoint) to ``docs/results/ENGINE/``. Last, rebuild the table
in ``docs/results.md`` and the figure ``docs/figures/results-curves.png`` from everything under
``docs/results/``.

    python benchmarks/reproduce.py                         # all three engines, ~2.5 h on 2 cores
    python benchmarks/reproduce.py --engine numpy          # one engine
    python benchmarks/reproduce.py --run numpy=runs/x      # use an existing finished run
    python benchmarks/reproduce.py --collect-only          # only rebuild the table and figure
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("numpy", "tf-eager", "tf-graph")
# Split and batch shape (None: the config's own, 20 x 20 for small).
EVALUATIONS = (("valid", None), ("test", None), ("valid", 1), ("test", 1))
START, END = "<!-- results:start -->", "<!-- results:end -->"
# Targets of the reproduction: the series' worst runs (docs/model.md section 7).
MAX_TEST, MAX_VALID, MAX_SPREAD = 116.5, 122.5, 0.02
# The published rows (docs/model.md section 7): name, hardware, wall time, train, valid,
# test, valid 1x1, test 1x1.
PUBLISHED = [
    ("Zaremba et al. 2015, Table 1", "", "", "", "120.7", "114.5", "", ""),
    ("TensorFlow PTB tutorial (ptb_word_lm)", "", "", "37.99", "121.39", "", "", "115.91"),
    ("the series: NumPy, float64", "one CPU", "about 10 h", "34.69", "122.08", "116.42",
     "121.71", "116.30"),
    ("the series: TF 1.12 eager, cuDNN LSTM", "Colab GPU", "8 min 58 s", "43.98", "119.41",
     "113.64", "", ""),
    ("the series: TF 1.12 graph, cuDNN LSTM", "Colab GPU", "6 min 48 s", "43.80", "120.42",
     "114.29", "", ""),
]


def cli(*args: str, log: Path | None = None) -> str:
    """Run ``python -m ptb_lstm ARGS``; stream its output (and into ``log``); fail loudly."""
    command = [sys.executable, "-m", "ptb_lstm", *args]
    print("$ ptb-lstm " + " ".join(args), flush=True)
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=REPO, bufsize=1) as process:
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
                sys.exit(f"reproduce: {run} holds {', '.join(sorted(stray))} but no model.npz; "
                         "it does not look like a run folder, so nothing in it is touched: "
                         "give another folder")
            for name in ("config.json", "metrics.jsonl"):
                (run / name).unlink(missing_ok=True)
        run.parent.mkdir(parents=True, exist_ok=True)
        cli("train", "--config", config, "--engine", engine, "--out", str(run), *data, log=log)


def evaluate(engine: str, run: Path, data: list[str]) -> list[dict]:
    results = []
    for split, size in EVALUATIONS:
        shape = ["--batch-size", str(size), "--num-steps", str(size)] if size else []
        out = cli("evaluate", "--checkpoint", str(run / "model.npz"), "--engine", engine,
                  "--split", split, *shape, "--json", *data)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def publish(engine: str, run: Path, evaluations: list[dict], results: Path) -> None:
    target = results / engine
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "metrics.jsonl"):
        shutil.copyfile(run / name, target / name)
    for e in evaluations:
        e["checkpoint"] = f"{run.name}/model.npz"
    (target / "evaluations.json").write_text(json.dumps(evaluations, indent=2) + "\n",
                                             encoding="utf-8")


def machine() -> str:
    from bench import machine as describe  # benchmarks/bench.py, beside this script

    host = describe()
    return (f"{host['cpu']}, {host['cores']} cores; Python {host['python']}, NumPy "
            f"{host['numpy']}" + (f", TensorFlow {host['tensorflow']}" if "tensorflow" in host
                                  else ""))


def summarize(results: Path) -> list[dict]:
    from ptb_lstm.plot import load_run

    rows = []
    for engine in ENGINES:
        folder = results / engine
        if not (folder / "metrics.jsonl").is_file():
            continue
        run = load_run(folder)
        if not run.epochs or run.test_record is None:
            continue
        evals = {}  # (split, "1x1" or "config") -> perplexity
        if (folder / "evaluations.json").is_file():
            for e in json.loads((folder / "evaluations.json").read_text()):
                one = e["batch_size"] == 1 and e["num_steps"] == 1
                evals[(e["split"], "1x1" if one else "config")] = e["perplexity"]
        ms = sorted(r["ms_per_step"] for r in run.epochs)
        rows.append({
            "engine": engine, "dtype": run.dtype, "command": run.info.get("command"),
            "config": run.config,
            "epochs": len(run.epochs), "train": run.epochs[-1]["train_perplexity"],
            "valid": run.epochs[-1]["valid_perplexity"], "test": run.test,
            "valid_1x1": evals.get(("valid", "1x1")), "test_1x1": evals.get(("test", "1x1")),
            "valid_again": evals.get(("valid", "config")),
            "test_again": evals.get(("test", "config")),
            "minutes": run.test_record["wall_time"] / 60, "median_ms": ms[len(ms) // 2],
            "fastest_ms": ms[0], "started": run.info.get("started", "")})
    return rows


def table(rows: list[dict], host: str) -> str:
    def f(value, digits=2):
        return "" if value is None else f"{value:.{digits}f}"

    c = rows[0]["config"]
    lines = [
        f"Machine: {host}. Config: {c.get('num_layers')} layers of {c.get('hidden_size')} "
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
        lines.append(f"| **ptb-lstm {r['engine']}** | this machine, 2 cores | "
                     f"{r['minutes']:.1f} min | {f(r['train'])} | **{f(r['valid'])}** | "
                     f"**{f(r['test'])}** | {f(r['valid_1x1'])} | {f(r['test_1x1'])} |")
    for name, hardware, wall, *numbers in PUBLISHED:
        lines.append(f"| {name} | {hardware} | {wall} | " + " | ".join(numbers) + " |")
    lines += ["", "Checks (targets: test <= 116.5, valid <= 122.5, engines within 2% of each "
              "other):", ""]
    for r in rows:
        ok = r["test"] <= MAX_TEST and r["valid"] <= MAX_VALID
        again = [abs(r[f"{s}_again"] / r[s] - 1) for s in ("valid", "test")
                 if r[f"{s}_again"] is not None]
        check = (f"; evaluated again from model.npz at the training batch shape: largest "
                 f"relative difference {max(again):.1e}") if again else ""
        lines.append(f"- {r['engine']}: test {r['test']:.2f}, valid {r['valid']:.2f}: "
                     f"{'within the targets' if ok else 'MISSES the targets'}{check}; "
                     f"median epoch {r['median_ms']:.1f} ms/step (fastest {r['fastest_ms']:.1f})")
    if len(rows) > 1:
        for key in ("valid", "test", "test_1x1"):
            values = [r[key] for r in rows if r[key] is not None]
            if len(values) > 1:
                spread = max(values) / min(values) - 1
                lines.append(f"- spread of {key.replace('_', ' ')} across the engines: "
                             f"{100 * spread:.2f}% ({'within' if spread <= MAX_SPREAD else 'over'}"
                             f" 2%)")
    lines += ["", "Commands that made these runs (from each run's config.json):", ""]
    lines += [f"- {r['engine']}: `{r['command']}` (started {r['started']})" for r in rows]
    return "\n".join(lines)


def collect(results: Path, doc: Path, figure: Path) -> None:
    rows = summarize(results)
    if not rows:
        sys.exit(f"reproduce: no finished runs under {results}")
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"reproduce: {doc} lacks the {START} ... {END} markers")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    made = time.strftime("%Y-%m-%d")
    body = (f"{START}\n{table(rows, machine())}\n\n(`make reproduce`, table rebuilt {made})\n"
            f"{END}")
    tmp = doc.with_name(f".{doc.name}.tmp")
    tmp.write_text(head + body + tail, encoding="utf-8")
    os.replace(tmp, doc)
    figure.parent.mkdir(parents=True, exist_ok=True)
    cli("plot", *(str(results / r["engine"]) for r in rows), "--log", "--out", str(figure))
    print(table(rows, machine()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", choices=ENGINES,
                        help="engine to run (repeatable; default: all three)")
    parser.add_argument("--run", action="append", default=[], metavar="ENGINE=DIR",
                        help="use this run folder for ENGINE instead of runs/reproduce/ENGINE")
    parser.add_argument("--config", default="small", help="config to train (default: small)")
    parser.add_argument("--data-dir", help="PTB folder (default: ptb-lstm's own search)")
    parser.add_argument("--results", default=str(REPO / "docs" / "results"))
    parser.add_argument("--doc", default=str(REPO / "docs" / "results.md"))
    parser.add_argument("--figure", default=str(REPO / "docs" / "figures" / "results-curves.png"))
    parser.add_argument("--collect-only", action="store_true",
                        help="only rebuild the table and figure from --results")
    args = parser.parse_args()
    results = Path(args.results)
    if not args.collect_only:
        runs = {e: REPO / "runs" / "reproduce" / e for e in ENGINES}
        for item in args.run:
            engine, _, folder = item.partition("=")
            if engine not in ENGINES or not folder:
                sys.exit(f"reproduce: --run {item}: expected ENGINE=DIR with ENGINE one of "
                         f"{', '.join(ENGINES)}")
            runs[engine] = Path(folder).resolve()
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        for engine in args.engine or ENGINES:
            started = time.perf_counter()
            train(engine, runs[engine], data, args.config)
            publish(engine, runs[engine], evaluate(engine, runs[engine], data), results)
            print(f"{engine}: done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    collect(results, Path(args.doc), Path(args.figure))


if __name__ == "__main__":
    main()
