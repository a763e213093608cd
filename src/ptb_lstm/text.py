"""Arbitrary text into PTB-style tokens, so that a PTB model can read it.

The language-modelling PTB is lower case, writes every number as ``N``, splits ``n't`` and the
endings ``'s 're 've 'll 'd 'm`` off their words, keeps ``$``, ``&`` and abbreviations such as
``mr.`` and ``u.s.`` as tokens, and has no other punctuation. ``normalize`` does the same.
"""

from __future__ import annotations

import re

from ptb_lstm.bounds import listed, shown
from ptb_lstm.data import EOS, UNK
from ptb_lstm.errors import UserError

NORMALIZATION_HELP = (
    "Text is normalised the PTB way: a word the vocabulary holds as written (N, <unk>) is "
    "kept, others are lower-cased; numbers (1,000  3.5  1990) become N; "
    "n't and the endings 's 're 've 'll 'd 'm are split off (don't -> do n't); $ and & are "
    "separate tokens; abbreviations in the vocabulary (mr. u.s. corp.) are kept; other "
    "punctuation is dropped. Each line, and each word ending in . ! or ?, ends a sentence, "
    "which adds one <eos>."
)

NO_EOS = (
    "the model's vocabulary has no <eos>, so it cannot read text as sentences; use a "
    "model trained on text with line ends (ptb-lstm train adds <eos> after every line)"
)

# A number: [+-]?\d[\d,.:/]* and at most one of _NUMBER_ENDINGS (1990s, 21st). The head is
# matched once and the ending compared, so that peeling clitics off "1,000's's..." does not
# rescan the digits each time.
_NUMBER_HEAD = re.compile(r"([+-]?\d)[\d,.:/]*")
_NUMBER_ENDINGS = ("", "st", "nd", "rd", "th", "s")
_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")  # none is the end of another
_EDGE_PUNCTUATION = "\"'`“”‘’()[]{}<>,;:!?.…*"


def normalize(text: str, vocab: set[str] | None = None) -> list[list[str]]:
    """Sentences of PTB tokens (without <eos>). A word, or what is left of it once edge
    punctuation is stripped, is looked up in ``vocab`` as written first (PTB's own ``N``,
    ``<unk>``), then lower-cased (``Mr.`` -> ``mr.``); words found are kept whole. A
    byte-order mark at the start of ``text`` is ignored."""
    vocab = vocab or set()
    longest = max(map(len, vocab), default=0)
    sentences: list[list[str]] = []
    for line in text.removeprefix("\ufeff").splitlines():
        current: list[str] = []
        for raw in line.split():
            ends_sentence = _known(raw, vocab) is None and raw.rstrip("\"')]}”’").endswith(
                (".", "!", "?")
            )
            current.extend(_split(raw, vocab, longest))
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


def _split(raw: str, vocab: set[str], longest: int) -> list[str]:
    """The tokens of one whitespace-separated word (``longest``: the length of the longest
    vocabulary word). Clitics are peeled off the end one at a time in a loop over the bounds
    ``[lo, hi)`` of what is left, which only ever shrink, so that a word of thousands of
    clitics (``x's's's...``) neither recurses nor is copied once per clitic: linear time."""
    tokens: list[str] = []
    clitics: list[str] = []  # peeled off the end, the last one first
    lo, hi = 0, len(raw)
    number_at, number_head = -1, None  # the number pattern's head at lo, found once per lo
    while True:
        known = _known(raw[lo:hi], vocab) if hi - lo <= longest else None
        if known is not None:
            tokens.append(known)
            break
        while lo < hi and raw[lo] in _EDGE_PUNCTUATION:
            lo += 1
        while hi > lo and raw[hi - 1] in _EDGE_PUNCTUATION:
            hi -= 1
        if hi > lo and raw[hi - 1] == "%":
            hi -= 1
        if hi > lo and raw[lo] == "$":
            tokens.append("$")
            lo += 1
        if lo == hi:
            break
        # Lower-casing never shortens a word, so one longer than every vocabulary word is
        # not in it: only a word that could be is copied out and looked up.
        known = _known(raw[lo:hi], vocab) if hi - lo <= longest else None
        if known is not None:
            tokens.append(known)
            break
        if number_at != lo:
            number_at, number_head = lo, _NUMBER_HEAD.match(raw, lo)
        if number_head is not None and _is_number(number_head, lo, hi, raw):
            tokens.append("N")
            break
        clitic = next((c for c in _CLITICS if raw[max(lo, hi - len(c)) : hi].lower() == c), None)
        stem_length = hi - lo - len(clitic) if clitic is not None else 0
        if clitic is not None and stem_length > 0 and not (stem_length == 1 and raw[lo] == "'"):
            if clitic == "n't" and stem_length == 2 and raw[lo : lo + 2].lower() == "ca":
                # can't -> ca n't, as PTB writes it
                tokens += ["ca", "n't"]
                break
            clitics.append(clitic)
            hi -= len(clitic)
            continue
        parts = [p for p in re.split(r"(&)", raw[lo:hi]) if p]
        tokens += [_known(p, vocab) or p.lower() for p in parts]
        break
    return tokens + clitics[::-1]


def _is_number(head: re.Match, lo: int, hi: int, raw: str) -> bool:
    """Whether ``raw[lo:hi]`` is a number, given the number head matched at ``lo``."""
    end = head.end()
    if hi <= end:  # within the run of digits and separators, with its first digit
        return hi >= lo + len(head.group(1))
    return raw[end:hi] in _NUMBER_ENDINGS


def to_ids(
    sentences: list[list[str]], word_to_id: dict[str, int]
) -> tuple[list[int], list[str], int]:
    """Ids of the sentences with <eos> after each, the tokens as used (unknown words become
    <unk>), and how many were unknown. Without <unk> or <eos> in the vocabulary, text that
    needs them is a UserError listing the words."""
    if UNK not in word_to_id or EOS not in word_to_id:
        missing = sorted(
            {t for sentence in sentences for t in [*sentence, EOS] if t not in word_to_id}
        )
        if EOS in missing:
            raise UserError(NO_EOS)
        if missing:
            raise UserError(
                f"{len(missing)} word(s) not in the model's vocabulary "
                f"({listed(map(shown, missing), 10)}), which has no <unk> to read "
                "them as; leave them out of "
                "the text, or use a model trained with <unk>"
            )
    ids, used, unknown = [], [], 0
    for sentence in sentences:
        for token in [*sentence, EOS]:
            if token in word_to_id:
                ids.append(word_to_id[token])
                used.append(token)
            else:
                unknown += 1
                ids.append(word_to_id[UNK])  # there is one: checked above
                used.append(UNK)
    return ids, used, unknown
