"""Arbitrary text into PTB-style tokens, so that a PTB model can read it.

The language-modelling PTB is lower case, writes every number as ``N``, splits ``n't`` and the
endings ``'s 're 've 'll 'd 'm`` off their words, keeps ``$``, ``&`` and abbreviations such as
``mr.`` and ``u.s.`` as tokens, and has no other punctuation. ``normalize`` does the same.
"""

from __future__ import annotations

import re

from ptb_lstm.data import EOS, UNK

NORMALIZATION_HELP = (
    "Text is normalised the PTB way: lower case; numbers (1,000  3.5  1990) become N; "
    "n't and the endings 's 're 've 'll 'd 'm are split off (don't -> do n't); $ and & are "
    "separate tokens; abbreviations in the vocabulary (mr. u.s. corp.) are kept; other "
    "punctuation is dropped. Each line, and each word ending in . ! or ?, ends a sentence, "
    "which adds one <eos>.")

_NUMBER = re.compile(r"^[+-]?\d[\d,.:/]*(st|nd|rd|th|s)?$")
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_EDGE_PUNCTUATION = "\"'`“”‘’()[]{}<>,;:!?.…*"


def normalize(text: str, vocab: set[str] | None = None) -> list[list[str]]:
    """Sentences of PTB tokens (without <eos>). Tokens found in ``vocab`` as they stand
    (``mr.``, ``'s``, ``$``) are kept whole."""
    vocab = vocab or set()
    sentences: list[list[str]] = []
    for line in text.splitlines():
        current: list[str] = []
        for raw in line.lower().split():
            ends_sentence = raw.rstrip("\"')]}”’").endswith((".", "!", "?"))
            for token in _split(raw, vocab):
                current.append(token)
            if ends_sentence and raw not in vocab and current:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
    return sentences


def _split(raw: str, vocab: set[str]) -> list[str]:
    if raw in vocab:
        return [raw]
    tokens: list[str] = []
    word = raw.strip(_EDGE_PUNCTUATION)
    if word.endswith("%"):
        word = word[:-1]
    if word.startswith("$"):
        tokens.append("$")
        word = word[1:]
    if not word:
        return tokens
    if word in vocab:
        return tokens + [word]
    if _NUMBER.match(word):
        return tokens + ["N"]
    match = _CLITIC.match(word)
    if match and match.group(1) not in ("", "'"):
        stem, clitic = match.groups()
        if clitic == "n't" and stem == "ca":  # can't -> ca n't, as PTB writes it
            return tokens + ["ca", "n't"]
        return tokens + _split(stem, vocab) + [clitic]
    parts = [p for p in re.split(r"(&)", word) if p]
    return tokens + parts


def to_ids(sentences: list[list[str]], word_to_id: dict[str, int]
           ) -> tuple[list[int], list[str], int]:
    """Ids of the sentences with <eos> after each, the tokens as used (unknown words become
    <unk>), and how many were unknown."""
    ids, used, unknown = [], [], 0
    unk_id = word_to_id.get(UNK)
    for sentence in sentences:
        for token in [*sentence, EOS]:
            if token in word_to_id:
                ids.append(word_to_id[token])
                used.append(token)
            else:
                unknown += 1
                if unk_id is None:
                    raise ValueError(f"{token!r} is not in the vocabulary, which has no <unk>")
                ids.append(unk_id)
                used.append(UNK)
    return ids, used, unknown
