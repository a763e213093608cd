"""The large config on a CPU: a short real training run per engine, its speed and peak memory.

For each engine, ``ptb-lstm train --config large --max-steps STEPS`` runs on the real PTB in a
child process of its own (float32, dropout 0.65 with the shared masks), then this script reads
the run's metrics and the child's peak resident memory (``os.wait4``) and projects a full
55-epoch run on PTB from the measured training step time and the evaluation time the run took
(valid after the partial epoch and test at the end, both at the training batch shape):

    python benchmarks/large_probe.py                       # every installed engine, 200 steps
    python benchmarks/large_probe.py --engine numpy --steps 50
    python benchmarks/large_probe.py --config tiny --steps 30 --data-dir DIR   # a quick try

``--config`` probes another preset the same way (its own epochs in the projection).

Prints one table; the docs quote it with its log (docs/logs/large-probe.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptb_lstm.config import PRESETS
from ptb_lstm.data import num_batches
from ptb_lstm.engines import ENGINES, engine_class
from ptb_lstm.errors import UserError

# Token counts of PTB's splits (the inputs of each split are these minus one).
PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}


def installed(name: str) -> bool:
    try:
        engine_class(name)
    except UserError:
        return False
    return True


def probe(
    engine: str, steps: int, folder: Path, data_dir: str | None, config_name: str = "large"
) -> dict:
    out = folder / engine
    command = [
        sys.executable,
        "-m",
        "ptb_lstm",
        "train",
        "--config",
        config_name,
        "--engine",
        engine,
        "--max-steps",
        str(steps),
        "--log-every",
        "10",
        "--out",
        str(out),
    ]
    if data_dir:
        command += ["--data-dir", data_dir]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"large_probe: the {engine} run failed:\n{output}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    step_records = [r for r in records if r["event"] == "step"]
    partial = next(r for r in records if r["event"] == "partial_epoch")
    test = next(r for r in records if r["event"] == "test")
    # Training time per step from the logged wall times, leaving out the first 10 steps (warm-up).
    first, last = step_records[0], step_records[-1]
    ms_per_step = 1000 * (last["wall_time"] - first["wall_time"]) / (last["step"] - first["step"])
    eval_seconds = test["wall_time"] - partial["epoch_time"]  # valid + test + checkpoint
    config = PRESETS[config_name]
    size = (config.batch_size, config.num_steps)
    train_steps = num_batches(PTB_TOKENS["train"], *size)
    eval_steps = num_batches(PTB_TOKENS["valid"], *size) + num_batches(PTB_TOKENS["test"], *size)
    eval_ms = 1000 * eval_seconds / eval_steps
    hours = (
        config.epochs
        * (train_steps * ms_per_step + num_batches(PTB_TOKENS["valid"], *size) * eval_ms)
        + num_batches(PTB_TOKENS["test"], *size) * eval_ms
    ) / 3.6e6
    return {
        "engine": engine,
        "steps": steps,
        "train_ms_per_step": ms_per_step,
        "eval_ms_per_step": eval_ms,
        "peak_rss_gib": usage.ru_maxrss / 2**20,
        "full_run_hours": hours,
        "wall_seconds": wall,
        "train_perplexity": partial["train_perplexity"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine",
        action="append",
        choices=ENGINES,
        help="engine to probe (repeatable; default: every installed engine)",
    )
    parser.add_argument("--steps", type=int, default=200, help="training steps (default: 200)")
    parser.add_argument("--data-dir", help="PTB folder (default: ptb-lstm's own search)")
    parser.add_argument(
        "--config",
        default="large",
        choices=sorted(PRESETS),
        help="the preset to probe (default: large)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    engines = args.engine or [e for e in ENGINES if installed(e)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="large-probe-") as folder:
        for engine in engines:
            rows.append(probe(engine, args.steps, Path(folder), args.data_dir, args.config))
            print(f"{engine}: done", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows))
        return
    config = PRESETS[args.config]
    print(
        f"{args.config} config ({config.num_layers} x {config.hidden_size} units, batch "
        f"{config.batch_size} x {config.num_steps}, dropout {config.dropout:g}, "
        f"{config.epochs} epochs), float32, {args.steps} training steps per engine on PTB, "
        f"measured {time.strftime('%Y-%m-%d')}"
    )
    print(
        f"{'engine':<16} {'train ms/step':>13} {'eval ms/step':>12} {'peak RSS GiB':>12} "
        f"{'full run (h)':>12} {'train ppl':>9}"
    )
    for r in rows:
        print(
            f"{r['engine']:<16} {r['train_ms_per_step']:>13.0f} {r['eval_ms_per_step']:>12.0f} "
            f"{r['peak_rss_gib']:>12.2f} {r['full_run_hours']:>12.1f} "
            f"{r['train_perplexity']:>9.1f}"
        )


if __name__ == "__main__":
    main()
