"""Finding a typed phrase in what a song's lyrics model heard: CTC phrase spotting.

The lyrics search of a library (``singalign.search``) first matches the phrase letter by letter
against the transcript decoded without the language model. That transcript keeps only the best
letter of every frame; the CTC posteriors keep the others too, so a word heard as "wark" where
"walk" was almost as likely still holds the phrase. This module scores a phrase directly in the
posteriors, as keyword spotting does with a CTC model (the best CTC alignment of the phrase to any
stretch of frames, Fernández et al. 2007; Lengerich & Hannun 2016), and stores the posteriors
compactly enough for an index (``pack_posteriors``).

The score of a phrase in a song is the log-probability of its best CTC alignment to some stretch
of frames, minus that of the best path through the same frames (the model's own reading of them):
0 when the best path spells the phrase there, and more negative the more the model would have to
be overruled. Frames outside the stretch cost nothing, so a song is not penalised for being long.
Per state, the Viterbi recursion over frames is a running maximum of cumulative sums (as in
``ranking._sellers``), so one phrase is scored over many songs in a few numpy passes over all their
frames per state (``2 * letters - 1`` states).
"""

from __future__ import annotations

import zlib

import numpy as np

from singalign.constants import BLANK_INDEX, CHAR_TO_INDEX, VOCAB
from singalign.decode import fold_punctuation

#: The classes a packed posterior keeps: the blank, the space, the letters and the apostrophe
#: (punctuation is folded into the blank and the space first, as the beam search does).
PACKED_CLASSES: tuple[int, ...] = tuple(i for i, c in enumerate(VOCAB) if c not in ",.?!-")
#: Quantization step of a packed log-posterior ratio (nats), and the most steps stored: a class
#: less likely than the frame's best by more than ``PACK_STEP * PACK_LEVELS`` nats is stored there.
#: On 100 held-out synthetic songs, 1-nat steps down to 10 nats found as many phrases first as
#: unquantized posteriors, in about 190 bytes per second of audio (1/8-nat steps: 760).
PACK_STEP = 1.0
PACK_LEVELS = 10
#: A packed blob starts with this byte (the format's version).
_PACK_VERSION = 1
#: Below this, a frame's class scores the same: keeps one impossible letter from outweighing the rest.
SCORE_FLOOR = -PACK_STEP * PACK_LEVELS
#: Scores of frames that do not exist (padding when songs of different lengths are scored together).
_PAD = -1.0e4

_INDEX_OF = {c: k for k, c in enumerate(PACKED_CLASSES)}
_BLANK = _INDEX_OF[BLANK_INDEX]


def pack_posteriors(log_probs: np.ndarray) -> bytes:
    """(T, 34) CTC log-posteriors as a compact blob: punctuation folded, each frame's classes as
    whole steps of ``PACK_STEP`` nats below its best class (at most ``PACK_LEVELS``), one byte each,
    class by class, zlib-compressed: about 190 bytes per second of audio (31.25 frames a second)."""
    lp = fold_punctuation(log_probs)[:, PACKED_CLASSES].astype(np.float64)
    ratio = lp - lp.max(axis=1, keepdims=True) if len(lp) else lp
    q = np.clip(np.round(-ratio / PACK_STEP), 0, PACK_LEVELS).astype(np.uint8)
    return bytes([_PACK_VERSION]) + zlib.compress(np.ascontiguousarray(q.T).tobytes(), 9)


def unpack_posteriors(blob: bytes) -> np.ndarray:
    """(T, len(PACKED_CLASSES)) float32 log-posterior ratios (0 for each frame's best class) of a
    ``pack_posteriors`` blob; an empty blob gives no frames."""
    if not blob:
        return np.zeros((0, len(PACKED_CLASSES)), np.float32)
    if blob[0] != _PACK_VERSION:
        raise ValueError(f"unknown packed posterior format {blob[0]}")
    q = np.frombuffer(zlib.decompress(blob[1:]), np.uint8).reshape(len(PACKED_CLASSES), -1)
    return (q * np.float32(-PACK_STEP)).T  # stored class by class: each class's frames contiguous


def phrase_labels(text: str) -> list[int]:
    """The packed-class indices of a phrase as transcripts spell it (``text.to_vocab_text``:
    accents stripped, numbers in words), punctuation dropped."""
    from singalign.text import encode

    return [_INDEX_OF[c] for c in encode(text) if c in _INDEX_OF]


def phrase_scores(labels: list[int], ratios: list[np.ndarray], optional_space: bool = False) -> np.ndarray:
    """The spotting score of a phrase (``phrase_labels``) in each song's ``unpack_posteriors``
    ratios: the best CTC alignment of the phrase to a stretch of frames, summed ratio (<= 0; 0 where
    the best path spells the phrase). (N,) float64; -inf for a song with too few frames.

    States are the phrase's letters with a blank between each two (a blank may be skipped between
    different letters, as in CTC); the alignment starts in the first letter and ends in the last.
    With ``optional_space``, a space of the phrase may be skipped too (words run together).
    The songs are scored as one sequence, each followed by a frame no alignment can cross, in
    float32: exact for packed ratios (whole steps) while the sums stay below 2**24.
    """
    n = len(ratios)
    if not labels or n == 0:
        return np.zeros(n)
    ext: list[int] = []
    for i, c in enumerate(labels):
        ext += [_BLANK, c] if i else [c]
    lengths = np.array([len(r) for r in ratios], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    total = int(lengths.sum() + n)
    columns = {}
    for c in set(ext):  # only the classes the phrase needs, each as one contiguous row of frames
        col = np.full(total, _PAD, np.float32)
        for k, r in enumerate(ratios):
            col[starts[k] : starts[k] + len(r)] = r[:, c]
        columns[c] = np.maximum(col, SCORE_FLOOR, out=col, where=col > _PAD)
    space = _INDEX_OF[CHAR_TO_INDEX[" "]]
    # per class (the blank serves half the states): C, the cumulative sum of x, and x - C = -C[t-1]
    cums = {c: np.cumsum(x) for c, x in columns.items()}
    minus_before = {c: columns[c] - cums[c] for c in columns}  # exact: packed ratios are whole steps
    # late[s][t] = D_s[t - 1]: each state's scores one frame late (a view), what the next states read
    late: list[np.ndarray | None] = []
    for s, c in enumerate(ext):
        # D[t] = x[t] + max(D[t-1], into[t]) over frames, for this state: with C the cumulative
        # sum of x, D[t] = C[t] + max over u <= t of (into[u] - C[u-1])
        buf = np.empty(total + 1, np.float32)
        buf[0] = -np.inf
        d = buf[1:]
        if s == 0:
            np.copyto(d, minus_before[c])  # into = 0: the phrase may start at any frame
        else:
            np.copyto(d, late[s - 1])
            if c != _BLANK and ext[s - 2] != c:
                np.maximum(d, late[s - 2], out=d)
            if optional_space and c != _BLANK and s >= 4 and ext[s - 2] == space:
                # a word boundary the singer (or the model) ran over: straight from the letter before
                np.maximum(d, late[s - 3], out=d)
                if ext[s - 4] != c:
                    np.maximum(d, late[s - 4], out=d)
            d += minus_before[c]
        np.maximum.accumulate(d, out=d)
        d += cums[c]
        late.append(buf[:-1])
        if s >= 4:
            late[s - 4] = None  # only the last four states are read
    best = np.maximum.reduceat(d, starts).astype(np.float64)  # d: the last letter's scores
    return np.where(best > _PAD / 2, best, -np.inf)
