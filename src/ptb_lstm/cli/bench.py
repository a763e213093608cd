"""``ptb-lstm bench``: time an engine's training and evaluation steps."""

from __future__ import annotations

import json

from ptb_lstm.cli import options

HELP = "time an engine's training and evaluation steps"
DESCRIPTION = (
    "Warm up, then time N training steps (forward, backward, clipped SGD) and "
    "N evaluation steps on random PTB-shaped batches (vocabulary 10,000); "
    "print the median ms per step, words per second and the estimated wall "
    "time of the config's full training on PTB, evaluations included."
)
EPILOG = (
    "examples:\n  ptb-lstm bench --engine numpy --config small\n"
    "  ptb-lstm bench --engine tf-graph --config medium --steps 20 --json"
)


def add_arguments(p):
    options.add_engine(p)
    options.add_config(p, default="small", help="model and batch shape (default: small)")
    options.add_set(p, help="override a config field (repeatable)")
    p.add_argument("--steps", type=int, default=50, help="timed steps of each kind (default: 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    options.add_json(p, "train_ms_per_step, eval_ms_per_step, ...")


def run(args) -> int:
    from ptb_lstm.bench import bench
    from ptb_lstm.config import apply_overrides, load_config, parse_sets

    options.positive(args.steps, "--steps")
    options.positive(args.warmup, "--warmup", allow_zero=True)
    config = apply_overrides(load_config(args.config), parse_sets(args.set))
    result = bench(
        args.engine,
        config,
        steps=args.steps,
        warmup=args.warmup,
        dtype=args.dtype,
        device=args.device,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"{result.engine} on {result.device}, {result.dtype}, {args.config} "
        f"(batch {result.batch_size} x {result.num_steps} steps, hidden {result.hidden_size}), "
        f"median of {result.steps} steps:"
    )
    print(
        f"  train {result.train_ms_per_step:8.1f} ms/step  ({result.words_per_second:,.0f} words/s)"
    )
    print(f"  eval  {result.eval_ms_per_step:8.1f} ms/step")
    print(
        f"  full training of {config.epochs} epochs on PTB: about "
        f"{result.full_training_hours * 60:.0f} min"
    )
    return 0
