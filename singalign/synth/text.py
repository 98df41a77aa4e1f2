"""Public-domain English sentences for the synthetic corpora, split into disjoint portions.

Source: the World English Bible (WEB, 2020 stable text, with the Deuterocanon), as shipped by
Debian's ``sword-text-web`` package (a SWORD "zText" module). The WEB is dedicated to the public
domain worldwide by its translators (see ``singalign/resources/synth/LICENSES.md``); unlike the King
James Version it carries no Crown copyright in the UK, and its English is contemporary ("you", not
"thou"). Only the name "World English Bible" is a trademark, and we change nothing in the text we
use except normalization (lower case, punctuation), so we name it as our source only.

Portions: every sentence goes to ``"train"`` or ``"heldout"`` by a hash of its normalized words
(:data:`HELDOUT_PERCENT` percent held out), so identical sentences always land in the same portion
and the split never depends on the order of reading. Held-out songs and speech take their text
from the ``"heldout"`` portion, which no training data and no language model ever see (the
default LM is built from :func:`sentences` with ``portion="train"``).

Vocabulary knob: ``vocab_size=K`` keeps only sentences (or lyric lines) whose every word is among
the K most frequent words of the *train* portion (proper names are excluded by default, which
removes "Israel", "Yahweh", ...). :data:`DEFAULT_LYRICS_VOCAB` is the default for songs and speech
(a small vocabulary that a CPU-trained model can learn); ``None`` keeps every sentence.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from singalign.errors import SingalignError
from singalign.text import to_vocab_text

#: Where Debian's ``sword-text-web`` installs the WEB module.
WEB_MODULE_DIR = Path("/usr/share/sword/modules/texts/ztext/engWEB2015eb")
#: Percentage of sentences (by hash) in the held-out portion.
HELDOUT_PERCENT = 10
PORTIONS = ("train", "heldout", "all")
#: Default vocabulary for lyrics and speech: the 2000 most frequent non-name words.
DEFAULT_LYRICS_VOCAB = 2000
#: Lyric lines have this many words (inclusive).
LINE_MIN_WORDS, LINE_MAX_WORDS = 3, 8

_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TITLE = re.compile(r"<title\b.*?</title>", re.S)
_TAG = re.compile(r"<[^>]+>")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")
_CLAUSE = re.compile(r"\s*(?:[,;:]|—|--)\s*")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


@dataclass(frozen=True)
class Sentence:
    """One sentence of the source text.

    Attributes:
        text: the sentence as written (punctuation kept; what a TTS engine should read).
        words: its normalized words (lower case, letters and inner apostrophes only).
        portion: ``"train"`` or ``"heldout"``.
        index: position in the source (consecutive sentences are consecutive in the text).
    """

    text: str
    words: tuple[str, ...]
    portion: str
    index: int

    @property
    def normalized(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class LyricLine:
    """A lyric line: a clause of a sentence, 3-8 words, keeping the sentence's portion."""

    words: tuple[str, ...]
    portion: str
    sentence_index: int

    @property
    def text(self) -> str:
        return " ".join(self.words)


def normalize_words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text`` (letters and inner apostrophes; everything else separates)."""
    return tuple(_WORD.findall(to_vocab_text(text.replace("-", " "))))


def portion_of(words: tuple[str, ...]) -> str:
    """The portion a sentence belongs to, from a hash of its normalized words (stable everywhere)."""
    digest = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).digest()
    return "heldout" if int.from_bytes(digest, "little") % 100 < HELDOUT_PERCENT else "train"


def _read_ztext(module_dir: Path) -> list[str]:
    """Raw OSIS text of every verse entry of a SWORD zText module (both testaments, in order)."""
    verses: list[str] = []
    for testament in ("ot", "nt"):
        try:
            bzs = (module_dir / f"{testament}.bzs").read_bytes()
            bzv = (module_dir / f"{testament}.bzv").read_bytes()
            bzz = (module_dir / f"{testament}.bzz").read_bytes()
        except OSError as exc:
            raise SingalignError(
                f"cannot read the World English Bible text in {module_dir} ({exc.strerror}): "
                "install the Debian package sword-text-web (`make system-deps`)"
            ) from exc
        # .bzs: one (offset, compressed size, size) per zlib block; .bzv: one (block, offset,
        # size) per verse slot; empty slots (size 0) are versification gaps.
        blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs) - 11, 12)]
        cache: dict[int, bytes] = {}
        for i in range(0, len(bzv) - 9, 10):
            block, offset, size = struct.unpack_from("<IIH", bzv, i)
            if size == 0:
                continue
            if block not in cache:
                start, csize, _ = blocks[block]
                cache = {block: zlib.decompress(bzz[start : start + csize])}
            verses.append(cache[block][offset : offset + size].decode("utf-8", errors="replace"))
    return verses


def _clean(osis: str) -> str:
    """Plain text of one OSIS verse: footnotes and headings dropped, markup removed."""
    text = _TITLE.sub(" ", _NOTE.sub(" ", osis))
    text = html.unescape(_TAG.sub("", text))
    text = text.replace("\u201c", "").replace("\u201d", "").replace("\u2018", "'").replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).strip()


@functools.lru_cache(maxsize=2)
def load_sentences(module_dir: str = str(WEB_MODULE_DIR)) -> tuple[Sentence, ...]:
    """Every usable sentence of the source text, in order (cached per process; about 2 s).

    A sentence is kept when it has 2-40 words, no digits, and only Latin letters and ordinary
    punctuation (so that a TTS engine reads exactly its normalized words).
    """
    text = " ".join(
        _clean(v)
        for v in _read_ztext(Path(module_dir))
        if "introduction" not in v and 'type="front"' not in v
    )
    out: list[Sentence] = []
    for raw in _SENTENCE_END.split(text):
        raw = raw.strip()
        if not raw or re.search(r"[^A-Za-z ,.;:?!'()\u2014-]", raw):
            continue
        words = normalize_words(raw)
        if not 2 <= len(words) <= 40:
            continue
        out.append(Sentence(raw, words, portion_of(words), len(out)))
    return tuple(out)


@functools.lru_cache(maxsize=2)
def _names(module_dir: str = str(WEB_MODULE_DIR)) -> frozenset[str]:
    """Words written capitalized in most of their non-initial occurrences (proper names)."""
    caps: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for s in load_sentences(module_dir):
        for tok in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*", s.text)[1:]:
            low = tok.lower()
            total[low] += 1
            caps[low] += tok[0].isupper()
    return frozenset(w for w, n in total.items() if caps[w] > n / 2 and w != "i" and not w.startswith("i'"))


@functools.lru_cache(maxsize=8)
def vocabulary(vocab_size: int | None, exclude_names: bool = True) -> frozenset[str] | None:
    """The ``vocab_size`` most frequent words of the train portion (None: no restriction)."""
    if vocab_size is None:
        return None
    if vocab_size < 1:
        raise SingalignError(f"vocab_size must be a positive number of words, not {vocab_size}")
    names = _names() if exclude_names else frozenset()
    counts = Counter(w for s in load_sentences() if s.portion == "train" for w in s.words if w not in names)
    # Ties are broken alphabetically so the vocabulary is the same on every machine.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return frozenset(w for w, _ in ranked[:vocab_size])


def _check_portion(portion: str) -> None:
    if portion not in PORTIONS:
        raise SingalignError(f"text portion must be one of {', '.join(PORTIONS)}, not {portion!r}")


def select_sentences(
    portion: str = "train",
    vocab_size: int | None = None,
    min_words: int = 2,
    max_words: int = 40,
) -> list[Sentence]:
    """Sentences of one portion, optionally restricted to a vocabulary, in text order."""
    _check_portion(portion)
    vocab = vocabulary(vocab_size)
    return [
        s
        for s in load_sentences()
        if (portion == "all" or s.portion == portion)
        and min_words <= len(s.words) <= max_words
        and (vocab is None or all(w in vocab for w in s.words))
    ]


def sentences(portion: str = "train", vocab_size: int | None = None) -> list[str]:
    """Normalized sentences (lower-case words joined by spaces) of one portion, in text order.

    This is the text the language model is built from (``portion="train"``). The split is
    deterministic: the same call returns the same list on every machine.

    Args:
        portion: ``"train"``, ``"heldout"`` or ``"all"``.
        vocab_size: keep only sentences whose words are all among the ``vocab_size`` most
            frequent words of the train portion (proper names excluded); None keeps all.
    """
    return [s.normalized for s in select_sentences(portion, vocab_size)]


def _split_clause(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Cut a clause longer than a line into near-equal lines."""
    n = len(words)
    parts = -(-n // LINE_MAX_WORDS)
    size = -(-n // parts)
    return [words[i : i + size] for i in range(0, n, size)]


@functools.lru_cache(maxsize=4)
def lyric_lines(
    portion: str = "train", vocab_size: int | None = DEFAULT_LYRICS_VOCAB
) -> tuple[LyricLine, ...]:
    """Lyric lines of one portion, in text order: clauses of 3-8 words (long ones cut, short merged).

    Consecutive lines come from consecutive text, so a song built from a run of lines reads as
    one passage.
    """
    _check_portion(portion)
    vocab = vocabulary(vocab_size)
    out: list[LyricLine] = []
    for s in load_sentences():
        if portion != "all" and s.portion != portion:
            continue
        clauses = [normalize_words(c) for c in _CLAUSE.split(s.text)]
        merged: list[tuple[str, ...]] = []
        for c in clauses:
            if not c:
                continue
            if (
                merged
                and (len(merged[-1]) < LINE_MIN_WORDS or len(c) < LINE_MIN_WORDS)
                and (len(merged[-1]) + len(c) <= LINE_MAX_WORDS)
            ):
                merged[-1] = merged[-1] + c
            else:
                merged.append(c)
        for c in merged:
            for line in _split_clause(c) if len(c) > LINE_MAX_WORDS else [c]:
                if LINE_MIN_WORDS <= len(line) <= LINE_MAX_WORDS and (
                    vocab is None or all(w in vocab for w in line)
                ):
                    out.append(LyricLine(line, s.portion, s.index))
    return tuple(out)


class SplitDefaults:
    """The split rule shared by the song and speech configs: a split whose name starts with
    "train" takes the train text portion and train voices; any other split the held-out ones.
    Needs ``split``, ``text_portion`` and ``voice_pool`` fields on the dataclass using it."""

    split: str
    text_portion: str | None
    voice_pool: str | None

    @property
    def portion(self) -> str:
        if self.text_portion is not None:
            return self.text_portion
        return "train" if self.split.startswith("train") else "heldout"

    @property
    def pool(self) -> str:
        return self.voice_pool if self.voice_pool is not None else self.portion
