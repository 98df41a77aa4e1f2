"""Text to and from the model's character vocabulary (``constants.VOCAB``).

``to_vocab_text`` is the one normalization used for CTC targets, LM text and alignment:
lower case, accents stripped (é -> e), typographic quotes and dashes mapped to ASCII,
whole numbers spelled out (12 -> twelve), any other character outside the vocabulary
becomes a space (as the authors did), and runs of spaces collapse.
"""

from __future__ import annotations

import re
import unicodedata

from singalign.constants import BLANK_INDEX, CHAR_TO_INDEX, VOCAB

_ASCII_MAP = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201b": "'", "`": "'", "\u00b4": "'",
        "\u201c": " ", "\u201d": " ", '"': " ",
        "\u2013": "-", "\u2014": " - ", "\u2212": "-",
        "\u2026": ".", "\u00bf": " ", "\u00a1": " ",
        "\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "\u00f8": "o", "\u0142": "l", "\u0111": "d",
    }
)  # fmt: skip

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """Spell a whole number 0 <= n < 10**12 in English words (no 'and')."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("-" + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_to_words(rest) if rest else "")
    for scale, name in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand")):
        if n >= scale:
            high, rest = divmod(n, scale)
            return number_to_words(high) + " " + name + (" " + number_to_words(rest) if rest else "")
    raise AssertionError("unreachable")


_NUMBER = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


def to_vocab_text(text: str) -> str:
    """Normalize ``text`` so that every character is in the vocabulary (blank excluded)."""
    text = text.translate(_ASCII_MAP)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _NUMBER.sub(
        lambda m: " " + number_to_words(int(m.group())) + " " if len(m.group()) <= 12 else " ", text
    )
    text = "".join(c if (c in CHAR_TO_INDEX and c != VOCAB[BLANK_INDEX]) else " " for c in text)
    return _SPACES.sub(" ", text).strip()


def encode(text: str) -> list[int]:
    """Token ids of ``to_vocab_text(text)`` (never contains the blank)."""
    return [CHAR_TO_INDEX[c] for c in to_vocab_text(text)]


def decode(ids: list[int]) -> str:
    """Characters of ``ids`` (blanks dropped; no CTC collapsing)."""
    return "".join(VOCAB[i] for i in ids if i != BLANK_INDEX)
