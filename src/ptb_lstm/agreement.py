"""Do the engines compute the same function? Same weights, same batches, compare.

For each engine against the NumPy engine: the per-step training losses over a few steps (with
the config's dropout, the same masks handed to every engine), every parameter afterwards, and
the evaluation perplexity of the starting weights on the first ``EVAL_TOKENS`` tokens of the
valid split (enough to compare; the whole split at a tiny batch shape would take TensorFlow
eager a minute). A difference is max |engine - numpy| / max |numpy| over the array (or the
list of losses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ptb_lstm.config import Config
from ptb_lstm.data import Corpus, batches
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines import create_engine
from ptb_lstm.evaluate import evaluate
from ptb_lstm.params import Params, init_params


@dataclass
class Agreement:
    engine: str
    dtype: str
    dropout: float
    steps: int
    loss: float  # largest relative difference of the per-step losses
    params: float  # largest relative difference of any parameter after the steps
    worst_param: str
    perplexity: float  # relative difference of the initial weights' valid perplexity

    def to_dict(self) -> dict:
        return asdict(self)


EVAL_TOKENS = 4001

#: The largest relative difference ``agree`` accepts, per dtype: float64 leaves room for sums
#: taken in another order; float32 for its rounding over a few steps.
LIMITS = {"float64": 1e-9, "float32": 1e-4}


def passed(rows: list[Agreement]) -> bool:
    """True when every difference of every row is within its dtype's limit."""
    return all(max(r.loss, r.params, r.perplexity) <= LIMITS[r.dtype] for r in rows)


def limits_text() -> str:
    """The limits as a reader writes them: ``1e-9 in float64, 1e-4 in float32``."""
    return ", ".join(
        f"{limit:.0e} in {dtype}".replace("e-0", "e-") for dtype, limit in LIMITS.items()
    )


def relative(reference: np.ndarray, other: np.ndarray) -> float:
    reference = np.asarray(reference, np.float64)
    scale = max(float(np.abs(reference).max()), 1e-30)
    return float(np.abs(reference - np.asarray(other, np.float64)).max() / scale)


def run_steps(
    name: str,
    config: Config,
    params: Params,
    corpus: Corpus,
    dtype: str,
    steps: int,
    device: str = "auto",
) -> tuple[np.ndarray, Params]:
    """Losses of ``steps`` training steps from ``params``, and the parameters afterwards.
    The learning rate halves after the third step, so the schedule is exercised too; with
    dropout, step ``s`` gets the masks ``ptb_lstm.dropout`` draws for it."""
    engine = create_engine(name, config, params, dtype=dtype, device=device)
    engine.reset_state(config.batch_size)
    losses = []
    for step, (x, y) in enumerate(batches(corpus.train, config.batch_size, config.num_steps)):
        if step == steps:
            break
        masks = step_masks(config, step, dtype=np.dtype(dtype))
        losses.append(engine.train_step(x, y, 1.0 if step < 3 else 0.5, masks))
    return np.array(losses), engine.get_params()


def compare(
    engines: list[str],
    config: Config,
    corpus: Corpus,
    dtype: str,
    steps: int = 5,
    device: str = "auto",
) -> list[Agreement]:
    """Each of ``engines`` (on ``device``) against the NumPy engine, from the same seeded
    weights."""
    params = init_params(config, corpus.vocab_size, np.float64)
    ref_losses, ref_params = run_steps("numpy", config, params, corpus, dtype, steps)
    valid = corpus.valid[:EVAL_TOKENS]
    ref_ppl = evaluate(
        create_engine("numpy", config, params, dtype), valid, config.batch_size, config.num_steps
    ).perplexity
    rows = []
    for name in engines:
        losses, after = run_steps(name, config, params, corpus, dtype, steps, device)
        diffs = {key: relative(value, after[key]) for key, value in ref_params.items()}
        worst = max(diffs, key=diffs.__getitem__)
        ppl = evaluate(
            create_engine(name, config, params, dtype, device),
            valid,
            config.batch_size,
            config.num_steps,
        ).perplexity
        rows.append(
            Agreement(
                name,
                dtype,
                config.dropout,
                steps,
                relative(ref_losses, losses),
                diffs[worst],
                worst,
                abs(ppl - ref_ppl) / ref_ppl,
            )
        )
    return rows


@dataclass
class UpdateAgreement:
    engine: str
    optimizer: str
    dtype: str
    steps: int
    params: float  # largest difference of a parameter, relative to how far it moved
    worst_param: str
    state: float  # largest relative difference of the optimizer's state (0 for SGD)

    def to_dict(self) -> dict:
        return asdict(self)


def relative_to_update(initial: np.ndarray, reference: np.ndarray, other: np.ndarray) -> float:
    """max |other - reference| / max |reference - initial|: a difference on the scale of
    the steps taken, not of the weights (Adam's first steps move every weight by about the
    learning rate, far less than the weights' size)."""
    moved = np.abs(np.asarray(reference, np.float64) - np.asarray(initial, np.float64)).max()
    gap = np.abs(np.asarray(reference, np.float64) - np.asarray(other, np.float64)).max()
    return float(gap / max(float(moved), 1e-300))


def compare_updates(
    engines: list[str],
    config: Config,
    corpus: Corpus,
    dtype: str,
    steps: int = 6,
    reference: str = "numpy-reference",
    device: str = "auto",
) -> list[UpdateAgreement]:
    """Each of ``engines`` against ``reference`` after ``steps`` training steps of
    ``config`` (its optimizer, betas and epsilon; the learning rate halved after the third
    step) from the same seeded weights: parameters relative to the update, and the
    optimizer's state (t exactly, the moments relative to their largest value)."""
    params = init_params(config, corpus.vocab_size, np.float64)

    def run(name: str) -> tuple[Params, dict]:
        engine = create_engine(name, config, params, dtype=dtype, device=device)
        for step, (x, y) in enumerate(batches(corpus.train, config.batch_size, config.num_steps)):
            if step == steps:
                break
            lr = config.learning_rate * (1.0 if step < 3 else 0.5)
            engine.train_step(x, y, lr, step_masks(config, step, dtype=np.dtype(dtype)))
        return engine.get_params(), engine.get_optimizer_state()

    ref_params, ref_state = run(reference)
    rows = []
    for name in engines:
        after, state = run(name)
        diffs = {
            key: relative_to_update(params[key], value, after[key])
            for key, value in ref_params.items()
        }
        worst = max(diffs, key=diffs.__getitem__)
        if state.keys() != ref_state.keys() or (state and int(state["t"]) != int(ref_state["t"])):
            state_diff = float("inf")
        else:
            state_diff = max(
                [relative(value, state[key]) for key, value in ref_state.items() if key != "t"],
                default=0.0,
            )
        rows.append(
            UpdateAgreement(name, config.optimizer, dtype, steps, diffs[worst], worst, state_diff)
        )
    return rows
