"""Where every engine stands on this machine, measured in one run (``make bench``).

Times, on identical PTB-shaped batches and on the CPU: every registered engine that is installed
(through the engine interface, as the trainer drives it), the TensorFlow maths compiled whole
with ``tf.function`` as a reference, and the machine's own SGEMM rate, from which the floor of a
training step follows (its matrix products at that rate). Also
how the NumPy engine's cost grows with hidden size and batch size, and the peak memory of 20
training steps of small, medium and large. Prints the tables and writes them whole, with the
machine's description, into the generated page docs/bench.md and, as numbers, into
docs/results/bench.json; no hand-written page is touched (docs/performance.md links to them).

    python benchmarks/bench.py [--steps 30] [--no-write] [--quick]
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ptb_lstm.bench import StepTimer, bench, full_training_seconds
from ptb_lstm.config import PRESETS, Config
from ptb_lstm.engines import REGISTRY, install_hint, is_installed

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "bench.md"
NUMBERS = ROOT / "docs" / "results" / "bench.json"


def step_flops(config: Config, vocab_size: int = 10_000) -> float:
    """Multiply-adds x 2 of the matrix products of one training step.

    Softmax: logits, d logits -> d top, d softmax_kernel: 3 products of N x H x V.
    Each layer: input projection, recurrent products, d kernel, d recurrent kernel, d input,
    d h(t-1): 6 products of N x H x 4H. N = batch_size * num_steps."""
    n, h = config.batch_size * config.num_steps, config.hidden_size
    return 2.0 * (3 * n * h * vocab_size + config.num_layers * 6 * n * h * 4 * h)


def sgemm_gflops(size: int = 2048, repeats: int = 7) -> float:
    """Best float32 matrix-product rate of NumPy's BLAS with its default threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class TFFunctionTimer:
    """The TensorFlow engines' maths (ptb_lstm.engines._tf_model) compiled whole with
    tf.function: the reference that the graph engine is held against."""

    def __init__(self, config: Config, vocab_size: int = 10_000) -> None:
        import tensorflow as tf

        from ptb_lstm.engines._tf_model import clipped_sgd, forward, summed_nll
        from ptb_lstm.params import init_params

        params = init_params(config, vocab_size)
        self.variables = {n: tf.Variable(v) for n, v in params.items()}
        ordered = [self.variables[n] for n in params]
        zeros = tf.zeros([config.batch_size, config.hidden_size])
        self.state = [(zeros, zeros) for _ in range(config.num_layers)]
        batch = float(config.batch_size)

        @tf.function
        def train_step(x, y, state):
            with tf.GradientTape() as tape:
                logits, final = forward(self.variables, x, state, config)
                loss = summed_nll(logits, y) / batch
            gradients = tape.gradient(loss, ordered)
            clipped_sgd(ordered, gradients, 0.1, config.max_grad_norm)
            return loss, final

        @tf.function
        def eval_step(x, y, state):
            logits, final = forward(self.variables, x, state, config)
            return summed_nll(logits, y), final

        self._train, self._eval = train_step, eval_step
        rng = np.random.default_rng(0)
        shape = (config.batch_size, config.num_steps)
        self.batches = [
            (
                tf.constant(rng.integers(0, vocab_size, shape), tf.int32),
                tf.constant(rng.integers(0, vocab_size, shape), tf.int32),
            )
            for _ in range(8)
        ]
        self.done = 0

    def _run(self, step, count):
        times = []
        for _ in range(count):
            x, y = self.batches[self.done % len(self.batches)]
            self.done += 1
            started = time.perf_counter()
            value, self.state = step(x, y, self.state)
            float(value)
            times.append(time.perf_counter() - started)
        return times

    def train(self, count: int) -> list[float]:
        return self._run(self._train, count)

    def eval(self, count: int) -> list[float]:
        return self._run(self._eval, count)


def interleaved(timers: dict, steps: int, rounds: int = 5, warmup: int = 5) -> dict:
    """Median ms of training and of evaluation steps per timer, taken in ``rounds`` rounds
    that visit every timer in turn, so that the machine's noise falls on all of them."""
    per_round = max(1, steps // rounds)
    times = {name: {"train": [], "eval": []} for name in timers}
    for timer in timers.values():
        timer.train(warmup)
        timer.eval(warmup)
    for _ in range(rounds):
        for name, timer in timers.items():
            times[name]["train"] += timer.train(per_round)
            times[name]["eval"] += timer.eval(per_round)
    return {
        name: {kind: 1000 * statistics.median(values) for kind, values in t.items()}
        for name, t in times.items()
    }


def peak_memory_mb(config_name: str, engine: str = "numpy", steps: int = 20) -> dict:
    """Peak resident memory (VmHWM, which a new program starts afresh, unlike ru_maxrss) of a
    fresh process before the model exists and after ``steps`` training steps."""
    code = (
        "import json\n"
        "from ptb_lstm.bench import bench\n"
        "from ptb_lstm.config import PRESETS\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "base = hwm()\n"
        f"bench({engine!r}, PRESETS[{config_name!r}], steps={steps}, warmup=0)\n"
        "print(json.dumps({'base_mb': base, 'peak_mb': hwm()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            info["blas"] = (
                f"{blas[0].get('internal_api')} {blas[0].get('version')} "
                f"({blas[0].get('architecture')}, {blas[0].get('num_threads')} "
                "threads)"
            )
    except ImportError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    for package in ("tensorflow", "torch"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per entry")
    parser.add_argument("--quick", action="store_true", help="skip scaling and memory")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    small = PRESETS["small"]
    started = time.time()
    lines = []
    record: dict = {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "steps": args.steps,
    }

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    host = machine()
    rate = sgemm_gflops()
    flops = step_flops(small)
    floor = 1000 * flops / (rate * 1e9)
    record.update(
        machine=host, sgemm_gflops=rate, small_step_gflop=flops / 1e9, small_floor_ms=floor
    )
    out(
        f"Machine: {host['cpu']}, {host['cores']} cores; Python {host['python']}, "
        f"NumPy {host['numpy']}"
        + (f", {host['blas']}" if "blas" in host else "")
        + (f", TensorFlow {host['tensorflow']}" if "tensorflow" in host else "")
        + (f", PyTorch {host['torch']}" if "torch" in host else "")
    )
    out(
        f"SGEMM rate (2048^3, float32, best of 7): {rate:.0f} GFLOP/s. One small-config training "
        f"step is {flops / 1e9:.2f} GFLOP of matrix products, so the floor is {floor:.1f} ms."
    )
    out()

    timers: dict = {}
    for engine in REGISTRY:
        if not is_installed(engine):
            out(f"({engine} skipped: not installed; {install_hint(engine)} adds its row)")
            continue
        timers[engine] = StepTimer(engine, small, device="cpu")
    if "tf-graph" in timers:
        timers["tf.function (same TF maths, reference)"] = TFFunctionTimer(small)
    medians = interleaved(timers, args.steps)
    rows = [(name, m["train"], m["eval"]) for name, m in medians.items()]
    record["small"] = [
        {
            "engine": name,
            "train_ms_per_step": train_ms,
            "eval_ms_per_step": eval_ms,
            "x_floor": train_ms / floor,
        }
        for name, train_ms, eval_ms in rows
    ]
    torch_ms = medians["torch"]["train"] if "torch" in medians else None
    out(
        f"Small config (batch 20 x 20 steps, hidden 200, vocabulary 10,000), float32, on the "
        f"CPU; median of {args.steps} steps per entry, taken in 5 interleaved rounds:"
    )
    out()
    out("| engine | train ms/step | x floor | x torch | eval ms/step | 13 epochs (est.) |")
    out("|---|---:|---:|---:|---:|---:|")
    for name, train_ms, eval_ms in rows:
        vs_torch = f"{train_ms / torch_ms:.2f}" if torch_ms else "–"
        epochs = full_training_seconds(small, train_ms / 1000, eval_ms / 1000) / 60
        out(
            f"| {name} | {train_ms:.1f} | {train_ms / floor:.2f} | {vs_torch} | {eval_ms:.1f} "
            f"| {epochs:.0f} min |"
        )
    floor_vs_torch = f"{floor / torch_ms:.2f}" if torch_ms else "–"
    out(
        f"| floor ({flops / 1e9:.2f} GFLOP at {rate:.0f} GFLOP/s) | {floor:.1f} | 1.00 | "
        f"{floor_vs_torch} | | |"
    )

    if not args.quick:
        out()
        out(
            "NumPy engine, how the cost grows from the small config (float32, num_steps 20, "
            "median of 10 steps; floor at the SGEMM rate above):"
        )
        out()
        out("| hidden | batch | steps | GFLOP/step | train ms/step | x floor | eval ms/step |")
        out("|---:|---:|---:|---:|---:|---:|---:|")
        for hidden, batch in ((200, 20), (650, 20), (1500, 20), (200, 10), (200, 40), (200, 80)):
            config = small.replace(hidden_size=hidden, batch_size=batch)
            r = bench("numpy", config, steps=10, warmup=2)
            f = step_flops(config)
            record.setdefault("numpy_scaling", []).append(
                {
                    "hidden_size": hidden,
                    "batch_size": batch,
                    "gflop": f / 1e9,
                    "train_ms_per_step": r.train_ms_per_step,
                    "eval_ms_per_step": r.eval_ms_per_step,
                }
            )
            out(
                f"| {hidden} | {batch} | {config.num_steps} | {f / 1e9:.1f} | "
                f"{r.train_ms_per_step:.1f} | "
                f"{r.train_ms_per_step / (1000 * f / (rate * 1e9)):.2f} | "
                f"{r.eval_ms_per_step:.1f} |"
            )
        out()
        out(
            "Peak resident memory of a fresh process running 20 NumPy training steps of each "
            "preset (float32, random batches, vocabulary 10,000):"
        )
        out()
        out("| config | parameters | before the model | peak |")
        out("|---|---:|---:|---:|")
        from ptb_lstm.params import count_params, init_params

        for name in ("small", "medium", "large"):
            memory = peak_memory_mb(name)
            count = count_params(init_params(PRESETS[name], 10_000))
            record.setdefault("peak_memory_mb", {})[name] = memory
            out(
                f"| {name} | {count / 1e6:.1f} M | {memory['base_mb']:.0f} MB | "
                f"{memory['peak_mb']:.0f} MB |"
            )
    out()
    out(f"(`make bench`, {time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s)")

    if not args.no_write:
        header = (
            "<!-- Generated by `make bench`: do not edit by hand, rerun the command. -->\n"
            "# Benchmark: every installed engine on this machine\n\n"
            "Written by `make bench` (benchmarks/bench.py); the numbers are also in "
            "[results/bench.json](results/bench.json). What they mean: "
            "[performance.md](performance.md).\n\n"
        )
        _write(PAGE, header + "\n".join(lines) + "\n")
        _write(NUMBERS, json.dumps(record, indent=1) + "\n")
        print(f"\nwrote {PAGE.relative_to(ROOT)} and {NUMBERS.relative_to(ROOT)}")
    return 0


def _write(path: Path, text: str) -> None:
    """Write a generated file whole and atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
