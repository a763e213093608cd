"""Every installed engine at every size on this machine, side by side in one run (``make bench``).

For each size (small, medium, large by default) the floors of a training step come first,
measured in this process:

- the compute floor: the step's matrix products (``ptb_lstm.bench.step_products``) at the
  machine's square-SGEMM rate;
- the shape floor: the same products timed at the shapes an ideal schedule uses, batched over
  all time steps where the maths allows and one per time step where it does not (the
  recurrent [B, H] x [H, 4H] products forward and backward), each in whichever operand order
  BLAS runs faster, with the memory bandwidth measured beside it, since those thin products
  read their whole weight matrix each time.

Then every installed engine is timed on that size in a child process of its own,
so that its peak resident memory is its own; engines and sizes follow one another in a single
run. Prints the tables and writes them, with the machine (CPU, cores, BLAS) and the date, into
the generated page docs/bench.md and, as numbers, into docs/results/bench.json.

    python benchmarks/bench.py [--steps 20/6/3] [--sizes small,medium,large] [--engines ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ptb_lstm.bench import (
    PTB_VOCAB,
    full_training_seconds,
    memory_gbytes_per_second,
    product_seconds,
    sgemm_gflops,
    step_products,
)
from ptb_lstm.config import PRESETS
from ptb_lstm.engines import REGISTRY, install_hint, is_installed

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STEPS = {"small": 20, "medium": 6, "large": 3}


def floors(config, rate_gflops: float, bandwidth: float, repeats: int = 3) -> dict:
    """The compute and shape floors of one training step of ``config``, in ms."""
    products = step_products(config, PTB_VOCAB)
    timed = [(p, 1000 * product_seconds(p, repeats)) for p in products]
    recurrent = [p for p in products if p.times > 1]
    # Each per-step product reads its [H, 4H] weight matrix whole, in float32.
    streamed = sum(4 * p.k * p.n * p.times for p in recurrent)
    return {
        "gflop": sum(p.flops for p in products) / 1e9,
        "compute_floor_ms": sum(p.flops for p in products) / (rate_gflops * 1e6),
        "shape_floor_ms": sum(ms for _, ms in timed),
        "batched_ms": sum(ms for p, ms in timed if p.times == 1),
        "per_time_step_ms": sum(ms for p, ms in timed if p.times > 1),
        "per_time_step_at_compute_rate_ms": sum(p.flops for p in recurrent) / (rate_gflops * 1e6),
        "recurrent_weights_streamed_mb": streamed / 1e6,
        "recurrent_weights_at_bandwidth_ms": streamed / (bandwidth * 1e6),
        "products": [{**p._asdict(), "ms": ms} for p, ms in timed],
    }


# Run in a child process per engine and size: ``ptb_lstm.bench.bench``, then the process's peak
# resident memory, VmHWM, which a new program starts afresh (ru_maxrss would carry over the
# parent's peak through exec); ru_maxrss where there is no /proc.
_CHILD = """
import json, resource, sys
from ptb_lstm.bench import bench
from ptb_lstm.config import PRESETS
engine, size, steps, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
result = bench(engine, PRESETS[size], steps=steps, warmup=warmup, device="cpu").to_dict()
try:
    status = open("/proc/self/status").read().splitlines()
    kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib //= 1024 if sys.platform == "darwin" else 1
result["peak_rss_mb"] = kib / 1024
print(json.dumps(result))
"""


def run_engine(engine: str, size: str, steps: int) -> dict:
    """One engine on one size in a child process of its own: its median ms per training and
    evaluation step, words per second and peak resident memory (MiB)."""
    warmup = min(3, max(1, steps // 5))  # few at the large sizes, whose steps are long
    command = [sys.executable, "-c", _CHILD, engine, size, str(steps), str(warmup)]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or ["no message"]
        return {"error": f"exit status {child.returncode}: {lines[-1]}"}
    record = json.loads(child.stdout.strip().splitlines()[-1])
    keys = ("train_ms_per_step", "eval_ms_per_step", "words_per_second", "peak_rss_mb")
    keys += ("full_training_hours",)
    return {**{key: record[key] for key in keys}, "steps": steps, "warmup": warmup}


def run_rounds(engines: list[str], size: str, steps: int, rounds: int) -> dict[str, dict]:
    """Every engine on one size, ``rounds`` times over, taking turns in one order and then the
    reverse, so that a machine that slows down or speeds up for minutes slows them alike. Each
    engine's times are the medians of its rounds' medians; its peak memory the largest."""
    runs: dict[str, list[dict]] = {engine: [] for engine in engines}
    order = list(engines)
    for _ in range(rounds):
        for engine in order:
            runs[engine].append(run_engine(engine, size, steps))
        order.reverse()
    return {engine: combine(results, size) for engine, results in runs.items()}


def combine(results: list[dict], size: str) -> dict:
    """One engine's rounds on one size as one result, with each round's training ms kept."""
    failed = [r for r in results if "error" in r]
    if failed or len(results) == 1:
        return (failed or results)[0]
    config = PRESETS[size]
    train = statistics.median(r["train_ms_per_step"] for r in results)
    evaluation = statistics.median(r["eval_ms_per_step"] for r in results)
    return {
        "train_ms_per_step": train,
        "eval_ms_per_step": evaluation,
        "words_per_second": config.batch_size * config.num_steps / (train / 1000),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "full_training_hours": full_training_seconds(config, train / 1000, evaluation / 1000)
        / 3600,
        "steps": results[0]["steps"],
        "warmup": results[0]["warmup"],
        "rounds_train_ms": [r["train_ms_per_step"] for r in results],
    }


def machine() -> dict:
    """CPU, cores, BLAS and the versions that matter."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info.update(python=platform.python_version(), numpy=np.__version__)
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            info["blas"] = (
                f"{blas[0].get('internal_api')} {blas[0].get('version')} "
                f"({blas[0].get('architecture')}, {blas[0].get('num_threads')} threads)"
            )
    except ImportError:
        info["blas"] = "unknown (threadpoolctl is not installed)"
    from importlib.metadata import PackageNotFoundError, version

    for package in ("tensorflow", "torch"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    return info


def describe(host: dict) -> str:
    return (
        f"{host['cpu']}, {host['cores']} cores; Python {host['python']}, NumPy {host['numpy']}, "
        f"BLAS {host.get('blas', 'unknown')}"
        + (f", TensorFlow {host['tensorflow']}" if "tensorflow" in host else "")
        + (f", PyTorch {host['torch']}" if "torch" in host else "")
    )


def size_table(size: str, config, floor: dict, results: dict) -> list[str]:
    """The Markdown of one size: its floors, then one row per engine."""
    lines = [
        f"## {size}: {config.num_layers} x {config.hidden_size} units, batch "
        f"{config.batch_size} x {config.num_steps} steps, vocabulary {PTB_VOCAB:,}",
        "",
        f"{floor['gflop']:.2f} GFLOP of matrix products a training step. Compute floor "
        f"{floor['compute_floor_ms']:.1f} ms; shape floor {floor['shape_floor_ms']:.1f} ms "
        f"({floor['batched_ms']:.1f} ms batched over all time steps, "
        f"{floor['per_time_step_ms']:.1f} ms in the per-time-step recurrent products, which "
        f"would take {floor['per_time_step_at_compute_rate_ms']:.1f} ms at the SGEMM rate and "
        f"read {floor['recurrent_weights_streamed_mb']:,.0f} MB of weights, "
        f"{floor['recurrent_weights_at_bandwidth_ms']:.1f} ms at the copy bandwidth).",
        "",
        "| engine | train ms/step | words/s | x compute floor | x shape floor | x torch "
        "| eval ms/step | peak RSS | full run (est.) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    torch_ms = results.get("torch", {}).get("train_ms_per_step")
    for engine, r in results.items():
        if "error" in r:
            lines.append(f"| {engine} | failed: {r['error']} | | | | | | | |")
            continue
        ms = r["train_ms_per_step"]
        vs_torch = f"{ms / torch_ms:.2f}" if torch_ms else "–"
        lines.append(
            f"| {engine} | {ms:.1f} | {r['words_per_second']:,.0f} | "
            f"{ms / floor['compute_floor_ms']:.2f} | {ms / floor['shape_floor_ms']:.2f} | "
            f"{vs_torch} | {r['eval_ms_per_step']:.1f} | {r['peak_rss_mb']:,.0f} MB | "
            f"{_duration(r['full_training_hours'])} |"
        )
    return lines


def _duration(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h"


def parse_steps(text: str, sizes: list[str]) -> dict[str, int] | None:
    """``20/6/3`` (one per size, in order) or ``5`` (every size), each at least 1; else None."""
    parts = text.split("/")
    if len(parts) == 1:
        parts = parts * len(sizes)
    if len(parts) != len(sizes) or not all(p.isdigit() and int(p) > 0 for p in parts):
        return None
    return dict(zip(sizes, map(int, parts), strict=True))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="small,medium,large",
        help="presets, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        help="timed steps per engine, one per size, e.g. 60/20/10 for more (default: 20/6/3)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time every engine this many times per size, taking turns; each engine's time is "
        "the median of its rounds (default: 1)",
    )
    parser.add_argument("--engines", help="comma-separated (default: every installed engine)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    args.sizes = args.sizes.split(",")
    for size in args.sizes:
        if size not in PRESETS:
            parser.error(f"--sizes: unknown preset {size!r}; choose from {', '.join(PRESETS)}")
    default = "/".join(str(DEFAULT_STEPS.get(s, 5)) for s in args.sizes)
    steps = parse_steps(args.steps or default, args.sizes)
    if steps is None:
        parser.error(
            f"--steps: give one positive count, or one per size separated by '/' "
            f"({len(args.sizes)} for {','.join(args.sizes)}), not {args.steps!r}"
        )
    args.steps = steps
    if args.rounds < 1:
        parser.error(f"--rounds: give a count of at least 1, not {args.rounds}")
    args.engines = args.engines.split(",") if args.engines else list(REGISTRY)
    for engine in args.engines:
        if engine not in REGISTRY:
            parser.error(f"--engines: unknown engine {engine!r}; choose from {', '.join(REGISTRY)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    host = machine()
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rate, bandwidth = sgemm_gflops(), memory_gbytes_per_second()
    record: dict = {"measured": measured, "argv": sys.argv[1:], "machine": host}
    record["rounds"] = args.rounds
    record.update(sgemm_gflops=rate, memory_gb_per_s=bandwidth, sizes={})
    out(f"Measured {measured} on {describe(host)}.")
    out()
    out(
        f"Square SGEMM (2048^3, float32, best of 7): {rate:.0f} GFLOP/s. Memory bandwidth "
        f"(copy of 256 MB, bytes read and written, best of 5): {bandwidth:.1f} GB/s. Each engine "
        "runs in a process of its own, float32, on the CPU, on random PTB-shaped batches; "
        "times are medians of the steps given for each size, after up to 3 untimed ones"
        + (
            f", and the median of {args.rounds} such rounds, the engines taking turns in one "
            "order and then the reverse. "
            if args.rounds > 1
            else ". "
        )
        + "A full run is every epoch of the size's config on PTB with its evaluations, at those "
        "medians."
    )
    engines = []
    for engine in args.engines:
        if is_installed(engine):
            engines.append(engine)
        else:
            out(f"({engine} skipped: not installed; {install_hint(engine)} adds its rows)")
    failed = False
    for size in args.sizes:
        config = PRESETS[size]
        floor = floors(config, rate, bandwidth)
        results = run_rounds(engines, size, args.steps[size], args.rounds)
        failed |= any("error" in r for r in results.values())
        record["sizes"][size] = {"steps": args.steps[size], **floor, "engines": results}
        out()
        for line in size_table(size, config, floor, results):
            out(line)
    out()
    out(f"(`make bench`, {measured}, {time.time() - started:.0f} s)")
    if not args.no_write:
        write(args.docs, lines, record)
    return 1 if failed else 0


def write(docs: Path, lines: list[str], record: dict) -> None:
    header = (
        "<!-- Generated by `make bench`: do not edit by hand, rerun the command. -->\n"
        "# Benchmark: every installed engine at every size on one machine\n\n"
        "Written by `make bench` (benchmarks/bench.py); the numbers are also in "
        "[results/bench.json](results/bench.json). What they mean: "
        "[performance.md](performance.md).\n\n"
    )
    page, numbers = docs / "bench.md", docs / "results" / "bench.json"
    _write(page, header + "\n".join(lines) + "\n")
    _write(numbers, json.dumps(record, indent=1) + "\n")
    print(f"\nwrote {page} and {numbers}")


def _write(path: Path, text: str) -> None:
    """Write a generated file whole and atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
