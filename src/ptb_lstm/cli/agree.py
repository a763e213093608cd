"""``ptb-lstm agree``: the other engines compute what the NumPy engine computes."""

from __future__ import annotations

import json

from ptb_lstm.agreement import LIMITS, limits_text
from ptb_lstm.cli import options

HELP = "show that the other engines compute what the NumPy engine computes"
DESCRIPTION = (
    "From the same seeded weights and the same PTB batches, run a few "
    "training steps with each engine, without dropout and with dropout 0.5 "
    "(the same masks for every engine), and compare, against the NumPy "
    "engine, the per-step losses, every parameter afterwards and the "
    "perplexity of the first 4,000 valid tokens. A difference is "
    "max |engine - numpy| / max |numpy|. Fails (exit 1) above "
    f"{limits_text().replace(', ', ' or ')}."
)
EPILOG = (
    "examples:\n  ptb-lstm agree\n  ptb-lstm agree --config small --steps 3 --dtype float64 --json"
)


def add_arguments(p):
    options.add_config(
        p, default="tiny", help="model to compare on (default: tiny, 16 units, on the real PTB)"
    )
    options.add_data_dir(p)
    p.add_argument(
        "--engine",
        action="append",
        choices=[e for e in options.engine_names() if e != "numpy"],
        help="engine to compare with numpy (repeatable; default: every other "
        "one that is installed)",
    )
    p.add_argument(
        "--dtype",
        action="append",
        choices=sorted(LIMITS),
        help="floating-point type (repeatable; default: both)",
    )
    p.add_argument(
        "--dropout",
        action="append",
        type=float,
        metavar="RATE",
        help="dropout rate to train with (repeatable; default: 0 and 0.5)",
    )
    p.add_argument("--steps", type=int, default=5, help="training steps (default: 5)")
    options.add_json(p)


def run(args) -> int:
    from ptb_lstm.agreement import compare, passed
    from ptb_lstm.config import load_config
    from ptb_lstm.data import load_corpus

    options.positive(args.steps, "--steps")
    rates = args.dropout or [0.0, 0.5]
    for rate in rates:
        options.rate(rate)
    config = load_config(args.config)
    corpus = load_corpus(options.locate(args.data_dir))
    from ptb_lstm.engines import installed_engines

    engines = args.engine or [e for e in installed_engines() if e != "numpy"]
    rows = [
        row
        for rate in rates
        for dtype in (args.dtype or list(LIMITS))
        for row in compare(engines, config.replace(dropout=rate), corpus, dtype, steps=args.steps)
    ]
    ok = passed(rows)
    if args.json:
        print(
            json.dumps(
                {
                    "passed": ok,
                    "config": {**config.to_dict(), "dropout": rates},
                    "limits": LIMITS,
                    "rows": [r.to_dict() for r in rows],
                }
            )
        )
    else:
        print(
            f"against numpy, {args.steps} training steps of {args.config} on "
            f"{corpus.data_dir}; relative differences:"
        )
        width = max([len("engine")] + [len(r.engine) for r in rows])
        print(
            f"{'engine':<{width}}  {'dtype':<8} {'dropout':>7} {'losses':>9} {'params':>9} "
            f"{'valid ppl':>10}  worst parameter"
        )
        for r in rows:
            print(
                f"{r.engine:<{width}}  {r.dtype:<8} {r.dropout:>7g} {r.loss:>9.2e} "
                f"{r.params:>9.2e} {r.perplexity:>10.2e}  {r.worst_param}"
            )
        print(f"limits: {limits_text()}: {'PASSED' if ok else 'FAILED'}")
    return 0 if ok else 1
