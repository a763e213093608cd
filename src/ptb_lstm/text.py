"""Arbitrary text into PTB-style tokens, so that a PTB model can read it.

The language-modelling PTB is lower case, writes every number as ``N``, splits ``n't`` and the
endings ``'s 're 've 'll 'd 'm`` off their words, keeps ``$``, ``&`` and abbreviations such as
``mr.`` and ``u.s.`` as tokens, and has no other punctuation. ``normalize`` does the same.
"""

from __future__ import annotations

import re

from ptb_lstm.data import EOS, UNK
from ptb_lstm.errors import UserError

NORMALIZATION_HELP = (
    "Text is normalised the PTB way: a word the vocabulary holds as written (N, <unk>) is "
    "kept, others are lower-cased; numbers (1,000  3.5  1990) become N; "
    "n't and the endings 's 're 've 'll 'd 'm are split off (don't -> do n't); $ and & are "
    "separate tokens; abbreviations in the vocabulary (mr. u.s. corp.) are kept; other "
    "punctuation is dropped. Each line, and each word ending in . ! or ?, ends a sentence, "
    "which adds one <eos>.")

NO_EOS = ("the model's vocabulary has no <eos>, so it cannot read text as sentences; use a "
          "model trained on text with line ends (ptb-lstm train adds <eos> after every line)")

_NUMBER = re.compile(r"^[+-]?\d[\d,.:/]*(st|nd|rd|th|s)?$")
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_EDGE_PUNCTUATION = "\"'`“”‘’()[]{}<>,;:!?.…*"


def normalize(text: str, vocab: set[str] | None = None) -> list[list[str]]:
    """Sentences of PTB tokens (without <eos>). A word, or what is left of it once edge
    punctuation is stripped, is looked up in ``vocab`` as written first (PTB's own ``N``,
    ``<unk>``), then lower-cased (``Mr.`` -> ``mr.``); words found are kept whole. A
    byte-order mark at the start of ``text`` is ignored."""
    vocab = vocab or set()
    sentences: list[list[str]] = []
    for line in text.removeprefix("\ufeff").splitlines():
        current: list[str] = []
        for raw in line.split():
            ends_sentence = _known(raw, vocab) is None and \
                raw.rstrip("\"')]}”’").endswith((".", "!", "?"))
            current.extend(_split(raw, vocab))
            if ends_sentence and current:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
    return sentences


def _known(word: str, vocab: set[str]) -> str | None:
    """``word`` as the vocabulary holds it: as written, else lower-cased; None if neither."""
    if word in vocab:
        return word
    lower = word.lower()
    return lower if lower in vocab else None


def _split(raw: str, vocab: set[str]) -> list[str]:
    known = _known(raw, vocab)
    if known is not None:
        return [known]
    tokens: list[str] = []
    word = raw.strip(_EDGE_PUNCTUATION)
    if word.endswith("%"):
        word = word[:-1]
    if word.startswith("$"):
        tokens.append("$")
        word = word[1:]
    if not word:
        return tokens
    known = _known(word, vocab)
    if known is not None:
        return tokens + [known]
    if _NUMBER.match(word):
        return tokens + ["N"]
    match = _CLITIC.match(word.lower())
    if match and match.group(1) not in ("", "'"):
        stem, clitic = word[:len(match.group(1))], match.group(2)
        if clitic == "n't" and stem.lower() == "ca":  # can't -> ca n't, as PTB writes it
            return tokens + ["ca", "n't"]
        return tokens + _split(stem, vocab) + [clitic]
    parts = [p for p in re.split(r"(&)", word) if p]
    return tokens + [_known(p, vocab) or p.lower() for p in parts]


def to_ids(sentences: list[list[str]], word_to_id: dict[str, int]
           ) -> tuple[list[int], list[str], int]:
    """Ids of the sentences with <eos> after each, the tokens as used (unknown words become
    <unk>), and how many were unknown. Without <unk> or <eos> in the vocabulary, text that
    needs them is a UserError listing the words."""
    if UNK not in word_to_id or EOS not in word_to_id:
        missing = sorted({t for sentence in sentences for t in [*sentence, EOS]
                          if t not in word_to_id})
        if EOS in missing:
            raise UserError(NO_EOS)
        if missing:
            shown = ", ".join(repr(w) for w in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise UserError(f"{len(missing)} word(s) not in the model's vocabulary ({shown}"
                            f"{more}), which has no <unk> to read them as; leave them out of "
                            "the text, or use a model trained with <unk>")
    ids, used, unknown = [], [], 0
    unk_id = word_to_id.get(UNK)
    for sentence in sentences:
        for token in [*sentence, EOS]:
            if token in word_to_id:
                ids.append(word_to_id[token])
                used.append(token)
            else:
                unknown += 1
                ids.append(unk_id)
                used.append(UNK)
    return ids, used, unknown
