"""``ptb-lstm gradcheck``: the NumPy back-propagation against finite differences."""

from __future__ import annotations

import json

from ptb_lstm.cli import options

HELP = "check the NumPy back-propagation against finite differences"
DESCRIPTION = (
    "Compare a NumPy engine's gradients with central differences in float64 "
    "on a tiny random model, for every entry of every parameter and of the "
    "incoming state. Error of an array: max |analytic - numeric| / "
    "max(max |analytic|, 1e-6). Fails (exit 1) above 1e-6."
)
EPILOG = (
    "examples:\n  ptb-lstm gradcheck --dropout 0.5 --seed 3\n"
    "  ptb-lstm gradcheck --engine numpy-reference"
)


def add_arguments(p):
    p.add_argument("--seed", type=int, default=0, help="seed of the model and data (default: 0)")
    p.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="check with fixed dropout masks of this rate (default: 0)",
    )
    p.add_argument(
        "--engine",
        choices=("numpy", "numpy-reference"),
        default="numpy",
        help="engine whose hand-written gradients are checked (default: numpy)",
    )
    options.add_json(p)


def run(args) -> int:
    from ptb_lstm.gradcheck import TOLERANCE, gradcheck

    options.rate(args.dropout)
    rows = gradcheck(seed=args.seed, dropout=args.dropout, engine=args.engine)
    worst = max(rows, key=lambda r: r.error)
    passed = worst.error <= TOLERANCE
    if args.json:
        print(
            json.dumps(
                {
                    "engine": args.engine,
                    "passed": passed,
                    "tolerance": TOLERANCE,
                    "worst_error": worst.error,
                    "worst": worst.name,
                    "rows": [r.summary() for r in rows],
                }
            )
        )
    else:
        print(f"{'array':<26} {'entries':>7} {'max |grad|':>11} {'error':>10}")
        for r in rows:
            print(f"{r.name:<26} {r.entries:>7} {r.max_abs_grad:>11.3e} {r.error:>10.2e}")
        verdict = "PASSED" if passed else "FAILED"
        print(f"worst error {worst.error:.2e} ({worst.name}); tolerance {TOLERANCE:g}: {verdict}")
    return 0 if passed else 1
