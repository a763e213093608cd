"""Sample text word by word from a trained model, carrying the LSTM state.

Words are produced one at a time (an iterator), so a caller can print each as it comes and
memory does not grow with their number; a long prompt is read in chunks of PROMPT_CHUNK words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ptb_lstm.bounds import listed, shown
from ptb_lstm.data import EOS, UNK
from ptb_lstm.engines import Engine
from ptb_lstm.errors import UserError
from ptb_lstm.text import normalize

# Prompt words read per call of Engine.logits: the call returns [1, chunk, vocab_size] scores,
# so this bounds memory (64 x 10,000 float64 = 5 MB), whatever the prompt's length.
PROMPT_CHUNK = 64


@dataclass
class Prompt:
    """A prompt as the model reads it."""

    ids: list[int]  # word ids, without the <eos> it is read after
    tokens: list[str]  # the words as read: unknown ones as <unk>
    unknown: list[str]  # distinct words not in the vocabulary

    @property
    def warning(self) -> str | None:
        """What to tell the user about unknown words, or None."""
        if not self.unknown:
            return None
        return f"not in the vocabulary, read as <unk>: {listed(self.unknown, 10)}"


def read_prompt(text: str, vocab: list[str]) -> Prompt:
    """``text`` normalised the PTB way (``text.normalize``) into the vocabulary's words; its
    sentences are read as one stream. Words the vocabulary lacks are read as <unk>; without
    <unk> they are a UserError naming them, as ``score`` refuses them."""
    known = set(vocab)
    words = [token for sentence in normalize(text, known) for token in sentence]
    unknown = sorted({w for w in words if w not in known})
    if unknown and UNK not in known:
        raise UserError(
            f"--prompt: {len(unknown)} word(s) not in the model's vocabulary "
            f"({listed(map(shown, unknown), 10)}), which has no <unk> to read "
            "them as; leave them out of the prompt, or use a model trained with "
            "<unk>"
        )
    tokens = [w if w in known else UNK for w in words]
    index = {w: i for i, w in enumerate(vocab)}
    return Prompt([index[t] for t in tokens], tokens, unknown)


def generate(
    engine: Engine,
    vocab: list[str],
    prompt_ids: list[int],
    words: int,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
) -> Iterator[str]:
    """``words`` sampled words after ``prompt_ids`` (read after an <eos>, as a new sentence,
    when the vocabulary has <eos>), yielded one by one as they are drawn.

    The next word is drawn from softmax(logits / temperature), restricted to the ``top_k``
    most likely words when top_k > 0. The same seed gives the same words."""
    if isinstance(words, bool) or not isinstance(words, int) or words < 0:
        raise UserError(f"--words must be a whole number >= 0, got {words!r}")
    if not temperature > 0:
        raise UserError(f"--temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise UserError(f"--top-k must be >= 0, got {top_k}")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    context = ([vocab.index(EOS)] if EOS in vocab else []) + list(prompt_ids)
    if not context:
        raise UserError(
            "the model's vocabulary has no <eos> to start a sentence from; give a "
            "--prompt with words it knows"
        )
    return _sample(engine, vocab, context, words, temperature, top_k, seed)


def _sample(
    engine: Engine,
    vocab: list[str],
    context: list[int],
    words: int,
    temperature: float,
    top_k: int,
    seed: int,
) -> Iterator[str]:
    rng = np.random.default_rng(seed)
    engine.reset_state(1)
    for start in range(0, len(context), PROMPT_CHUNK):
        logits = engine.logits(np.array([context[start : start + PROMPT_CHUNK]]))[0, -1].copy()
    for _ in range(words):
        word = _draw(logits, temperature, top_k, rng)
        yield vocab[word]
        logits = engine.logits(np.array([[word]]))[0, -1].copy()


def _draw(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """One word id from softmax(logits / temperature) over the top_k likeliest (all if 0)."""
    if not np.isfinite(logits).all():
        raise UserError(
            "the model's next-word scores overflowed to infinity or NaN; its "
            "weights are too large to sample from"
        )
    # Shifted before dividing, so that a tiny temperature gives -inf, never inf - inf.
    with np.errstate(over="ignore"):
        scores = (logits.astype(np.float64) - logits.max()) / temperature
    if 0 < top_k < len(scores):
        cutoff = np.partition(scores, -top_k)[-top_k]
        scores = np.where(scores >= cutoff, scores, -np.inf)
    probs = np.exp(scores)
    probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


def text_pieces(tokens: Iterable[str]) -> Iterator[str]:
    """The printed text of ``tokens``, piece by piece as they come: words separated by one
    space, <eos> as a line break, and a line break at the end."""
    after_word = False
    for token in tokens:
        if token == EOS:
            yield "\n"
            after_word = False
        else:
            yield f" {token}" if after_word else token
            after_word = True
    yield "\n"
