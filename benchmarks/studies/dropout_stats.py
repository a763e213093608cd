"""The dropout masks' statistics: the figures behind tests/test_dropout.py's assertions.

For the medium config's masks (dropout 0.5, [35, 20, 650] per place, three places) and the
large config's (0.65, [35, 20, 1500]), over a number of training steps: the kept fraction
against the keep rate with its binomial standard deviation, the kept value, and the fraction
of units kept in both of two places, two neighbouring time steps, two neighbouring batch rows
and two consecutive training steps, against keep**2 (what independent draws give):

    python benchmarks/studies/dropout_stats.py          # log: docs/logs/dropout-stats.txt
"""

from __future__ import annotations

import math
import time

import numpy as np

from ptb_lstm.config import PRESETS
from ptb_lstm.dropout import step_masks


def both(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a > 0) & (b > 0)))


def report(name: str, steps: int) -> None:
    config = PRESETS[name]
    keep = 1 - config.dropout
    masks = [step_masks(config, s) for s in range(steps)]
    kept = np.array([[np.mean(m > 0) for m in step] for step in masks])
    n = masks[0][0].size
    sd = math.sqrt(keep * (1 - keep) / n)
    values = np.unique(np.concatenate([np.unique(m) for step in masks for m in step]))
    print(
        f"{name}: dropout {config.dropout}, {len(masks[0])} masks of "
        f"{list(masks[0][0].shape)} per step, {steps} steps"
    )
    print(f"  values: {values.tolist()} (1 / (1 - p) = {1 / keep:.6g})")
    print(
        f"  kept fraction: mean {kept.mean():.5f}, range {kept.min():.5f}..{kept.max():.5f}; "
        f"keep {keep:.5f}, binomial sd per mask {sd:.5f}; largest deviation "
        f"{np.abs(kept - keep).max() / sd:.2f} sd"
    )
    e, between, top = masks[0][0], masks[0][1], masks[0][-1]
    pairs = {
        "embedding & between layers": both(e, between),
        "embedding & top": both(e, top),
        "between layers & top": both(between, top),
        "time t & t+1": both(e[1:], e[:-1]),
        "batch row r & r+1": both(e[:, 1:], e[:, :-1]),
        "step s & s+1 (embedding)": both(masks[0][0], masks[1][0]),
        "step s & s+1 (top)": both(masks[0][-1], masks[1][-1]),
    }
    sd2 = math.sqrt(keep**2 * (1 - keep**2) / n)
    print(f"  both kept (independent: keep^2 = {keep**2:.5f}, sd {sd2:.5f}):")
    for label, value in pairs.items():
        print(f"    {label:<28} {value:.5f}  ({(value - keep**2) / sd2:+.2f} sd)")


def main() -> None:
    print(f"ptb_lstm.dropout masks, measured {time.strftime('%Y-%m-%d')}")
    report("medium", 20)
    report("large", 5)


if __name__ == "__main__":
    main()
