"""``ptb-lstm inspect``: what a checkpoint holds."""

from __future__ import annotations

import json

from ptb_lstm.cli import options

HELP = "what a checkpoint holds"
DESCRIPTION = (
    "Config, vocabulary size, parameter names, shapes and count, training "
    "progress, the optimizer's state (Adam, AMSGrad), and the engine and dtype "
    "that wrote a checkpoint."
)
EPILOG = "example:\n  ptb-lstm inspect runs/x/model.npz --json"


def add_arguments(p):
    p.add_argument("checkpoint", metavar="CKPT", help="a model.npz")
    options.add_json(p)


def run(args) -> int:
    from ptb_lstm import checkpoint
    from ptb_lstm.params import count_params

    ckpt = checkpoint.load(args.checkpoint)
    shapes = {name: list(value.shape) for name, value in ckpt.params.items()}
    record = {
        "checkpoint": args.checkpoint,
        "format_version": checkpoint.VERSION,
        "engine": ckpt.engine,
        "dtype": ckpt.dtype,
        "vocab_size": len(ckpt.vocab),
        "parameters": count_params(ckpt.params),
        "shapes": shapes,
        "config": ckpt.config.to_dict(),
        "progress": {k: v for k, v in ckpt.progress.items() if k != "rng_state"},
        "carried_state": ckpt.carried is not None,
        "optimizer_updates": int(ckpt.optimizer["t"]) if ckpt.optimizer else None,
    }
    if args.json:
        print(json.dumps(record))
        return 0
    print(f"checkpoint:  {args.checkpoint} (ptb-lstm format {checkpoint.VERSION})")
    print(f"written by:  engine {ckpt.engine}, {ckpt.dtype}")
    print(f"vocabulary:  {len(ckpt.vocab):,} words")
    print(f"config:      {options.config_line(ckpt.config)}")
    progress = record["progress"]
    if progress:
        print(
            "progress:    "
            + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in progress.items()
            )
        )
    if ckpt.carried is not None:
        print("             (holds the carried state, for an exact --resume mid-epoch)")
    if ckpt.optimizer:
        print(
            f"optimizer:   {ckpt.config.optimizer} state after {int(ckpt.optimizer['t']):,} "
            "updates (t, m, v"
            + (", vmax" if "vmax_embedding" in ckpt.optimizer else "")
            + "), for an exact --resume"
        )
    print(f"parameters:  {record['parameters']:,}")
    for name, shape in shapes.items():
        print(f"  {name:<26} {' x '.join(map(str, shape)):>14}")
    return 0
