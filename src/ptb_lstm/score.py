"""Log-likelihood and perplexity of arbitrary text under a trained model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ptb_lstm.data import EOS
from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError
from ptb_lstm.evaluate import perplexity
from ptb_lstm.text import NO_EOS, normalize, to_ids


@dataclass
class SentenceScore:
    text: str  # the tokens as the model read them
    tokens: int  # words and the closing <eos>
    unknown: int
    log_likelihood: float  # natural log
    perplexity: float


@dataclass
class Score:
    perplexity: float
    tokens: int
    unknown: int
    log_likelihood: float
    sentences: list[SentenceScore] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def token_log_probs(engine: Engine, ids: list[int], num_steps: int) -> np.ndarray:
    """log p(ids[k] | ids[:k]) for k >= 1, reading one stream (batch 1) from a zero state
    in chunks of ``num_steps``; [len(ids) - 1] float64."""
    engine.reset_state(1)
    out = []
    stream = np.asarray(ids, dtype=np.int64)
    for start in range(0, len(stream) - 1, num_steps):
        inputs = stream[start : start + num_steps][None, :]
        targets = stream[start + 1 : start + 1 + inputs.shape[1]]
        inputs = inputs[:, : len(targets)]
        logits = engine.logits(inputs)[0].astype(np.float64)  # [T, V]
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1))
        out.append(logits[np.arange(len(targets)), targets] - log_norm)
    return np.concatenate(out) if out else np.zeros(0)


def score_text(engine: Engine, vocab: list[str], text: str, num_steps: int = 35) -> Score:
    """Score ``text`` (normalised the PTB way), read after a sentence end (<eos>)."""
    word_to_id = {w: i for i, w in enumerate(vocab)}
    if EOS not in word_to_id:  # the text is read after a sentence end
        raise UserError(NO_EOS)
    sentences = normalize(text, set(vocab))
    ids, used, unknown = to_ids(sentences, word_to_id)
    log_probs = token_log_probs(engine, [word_to_id[EOS], *ids], num_steps)
    total = float(log_probs.sum())
    result = Score(perplexity(-total, len(ids)), len(ids), unknown, total)
    position = 0
    for sentence in sentences:
        length = len(sentence) + 1
        words = used[position : position + length]
        ll = float(log_probs[position : position + length].sum())
        result.sentences.append(
            SentenceScore(
                " ".join(words[:-1]),
                length,
                sum(w != t for w, t in zip(words, [*sentence, EOS], strict=True)),
                ll,
                perplexity(-ll, length),
            )
        )
        position += length
    return result
