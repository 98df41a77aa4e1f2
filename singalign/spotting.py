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
The Viterbi recursion over frames and the phrase's ``2 * letters - 1`` states is compiled
(``kernels.ctc_phrase_viterbi``).

A query checks each candidate in a window of frames, not the whole song: a packed blob is cut into
chunks of ``CHUNK_FRAMES`` frames compressed on their own (``unpack_window`` reads only those it
needs), and ``heard_frames`` gives the frame of each character of what was heard, where the
approximate text match located the phrase. A window holding the best alignment scores as the
whole song does.
"""

from __future__ import annotations

import difflib
import struct
import zlib
from collections.abc import Callable

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
#: Frames per independently compressed chunk of a packed blob (about 2 s): a window of frames is
#: read and decompressed without the rest of the song. On the 500 held-out synthetic songs of the
#: library evaluation, 64-frame chunks take 200 bytes a second of audio (one zlib stream: 184;
#: 32 frames: 212; 128: 193).
CHUNK_FRAMES = 64
#: A packed blob starts with its format: 1, one zlib stream (schema v4); 2, chunks (v5 on).
_PACK_WHOLE = 1
_PACK_CHUNKED = 2
#: Format 2's header: format, frames, frames per chunk; then each chunk's end offset (uint32, from
#: the end of the offset table), then the chunks, each ``zlib`` of its frames class by class.
_HEAD = struct.Struct("<BIH")
#: Below this, a frame's class scores the same: keeps one impossible letter from outweighing the rest.
SCORE_FLOOR = -PACK_STEP * PACK_LEVELS
#: A score at or below this marks a class impossible on that frame: it is not raised to ``SCORE_FLOOR``.
_PAD = -1.0e4

_INDEX_OF = {c: k for k, c in enumerate(PACKED_CLASSES)}
_BLANK = _INDEX_OF[BLANK_INDEX]
_N = len(PACKED_CLASSES)


def pack_posteriors(log_probs: np.ndarray, chunk_frames: int = CHUNK_FRAMES) -> bytes:
    """(T, 34) CTC log-posteriors as a compact blob: punctuation folded, each frame's classes as
    whole steps of ``PACK_STEP`` nats below its best class (at most ``PACK_LEVELS``), one byte each,
    in chunks of ``chunk_frames`` frames, each class by class and zlib-compressed on its own: about
    200 bytes per second of audio (31.25 frames a second). ``unpack_posteriors`` reads it whole,
    ``unpack_window`` a stretch of frames."""
    lp = fold_punctuation(log_probs)[:, PACKED_CLASSES].astype(np.float64)
    ratio = lp - lp.max(axis=1, keepdims=True) if len(lp) else lp
    q = np.clip(np.round(-ratio / PACK_STEP), 0, PACK_LEVELS).astype(np.uint8)
    return _chunked(q, chunk_frames)


def _chunked(q: np.ndarray, chunk_frames: int) -> bytes:
    """Format 2 of the quantized steps ``q`` (T, classes) uint8."""
    chunks = [
        zlib.compress(np.ascontiguousarray(q[a : a + chunk_frames].T).tobytes(), 9)
        for a in range(0, len(q), chunk_frames)
    ]
    table = np.cumsum([len(c) for c in chunks], dtype=np.int64).astype("<u4").tobytes()
    return _HEAD.pack(_PACK_CHUNKED, len(q), chunk_frames) + table + b"".join(chunks)


def chunk_packed(blob: bytes, chunk_frames: int = CHUNK_FRAMES) -> bytes:
    """A packed blob in chunks (format 2; one already in chunks is returned as it is): what the
    upgrade of a v4 library does to each track's posteriors. Unpacks to the same values."""
    if not blob or blob[0] == _PACK_CHUNKED:
        return blob
    q = np.round(unpack_posteriors(blob) / np.float32(-PACK_STEP)).astype(np.uint8)
    return _chunked(q, chunk_frames)


def unpack_posteriors(blob: bytes) -> np.ndarray:
    """(T, len(PACKED_CLASSES)) float32 log-posterior ratios (0 for each frame's best class) of a
    ``pack_posteriors`` blob (either format); an empty blob gives no frames."""
    if not blob:
        return np.zeros((0, _N), np.float32)
    if blob[0] == _PACK_WHOLE:
        q = np.frombuffer(zlib.decompress(blob[1:]), np.uint8).reshape(_N, -1)
        return (q * np.float32(-PACK_STEP)).T  # stored class by class: each class's frames contiguous
    return unpack_window(lambda offset, size: blob[offset : offset + size if size >= 0 else None], 0, None)[0]


def unpack_window(read: Callable[[int, int], bytes], first: int, last: int | None) -> tuple[np.ndarray, int]:
    """Frames ``first`` to ``last`` (excluded; None: to the end; both clipped to the song) of a
    chunked blob, reading only its header and the chunks that hold them: (ratios (frames,
    classes) float32 as ``unpack_posteriors`` gives them, the frame they start at).

    ``read(offset, size)`` returns ``size`` bytes of the blob from ``offset`` (``size`` -1: to its
    end), e.g. from SQLite's incremental blob I/O (``Library.posterior_windows``).
    """
    head = read(0, _HEAD.size)
    if len(head) < _HEAD.size or head[0] != _PACK_CHUNKED:
        if head and head[0] == _PACK_WHOLE:  # a whole stream: decompressed whole
            r = unpack_posteriors(read(0, -1))
            a = min(max(first, 0), len(r))
            return r[a : None if last is None else max(a, last)], a
        raise ValueError(f"unknown packed posterior format {head[:1]!r}")
    _, frames, step = _HEAD.unpack(head)
    a = min(max(first, 0), frames)
    b = frames if last is None else min(max(last, a), frames)
    if b <= a:
        return np.zeros((0, _N), np.float32), a
    k0, k1 = a // step, -(-b // step)  # the chunks [k0, k1) hold the frames
    n_chunks = -(-frames // step)
    # the end offsets of chunks k0 - 1 .. k1 - 1 (the start of k0 is the end of k0 - 1)
    lo = max(k0 - 1, 0)
    ends = np.frombuffer(read(_HEAD.size + 4 * lo, 4 * (k1 - lo)), "<u4").astype(np.int64)
    start = int(ends[0]) if k0 > 0 else 0
    ends = ends[1:] if k0 > 0 else ends
    data = read(_HEAD.size + 4 * n_chunks + start, int(ends[-1]) - start)
    parts, at = [], 0
    for e in ends - start:
        parts.append(np.frombuffer(zlib.decompress(data[at:e]), np.uint8).reshape(_N, -1))
        at = int(e)
    q = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return (q[:, a - k0 * step : b - k0 * step] * np.float32(-PACK_STEP)).T, a


def heard_frames(match: bytes, ratios: np.ndarray) -> np.ndarray:
    """The frame at which each character of ``match`` (what was heard, as ``ranking.match_text``
    spells it) was heard in ``unpack_posteriors`` ratios: (len(match),) int64.

    The best path of the ratios (each frame's best class, a letter before the blank on a tie,
    collapsed as CTC does) spells about what the beam search decoded; its characters carry their
    frames, and ``match`` is aligned to it (``difflib``: 40 ms for a 3.5-minute song whose texts
    differ in one letter in ten). A character that is not in the best path gets a frame
    interpolated between its aligned neighbours; with none aligned, the characters are spread
    evenly over the song.
    """
    n = len(match)
    if n == 0:
        return np.zeros(0, np.int64)
    t = len(ratios)
    if t == 0:
        return np.zeros(n, np.int64)
    favour = np.zeros(_N, np.float32)
    favour[_BLANK] = -0.5  # quantized ratios tie often: keep the letter
    best = np.argmax(ratios + favour, axis=1)
    starts = np.flatnonzero((best != _BLANK) & np.concatenate([[True], best[1:] != best[:-1]]))
    space = _INDEX_OF[CHAR_TO_INDEX[" "]]
    chars, frames = bytearray(), []
    for f in starts:  # spaces collapsed and trimmed as ``match_text`` does
        c = int(best[f])
        if c == space and (not chars or chars[-1] == 32):
            continue
        chars.append(32 if c == space else ord(VOCAB[PACKED_CLASSES[c]]))
        frames.append(int(f))
    if chars and chars[-1] == 32:
        del chars[-1], frames[-1]
    at, to = [], []
    for blk in difflib.SequenceMatcher(None, match, bytes(chars), autojunk=False).get_matching_blocks():
        at.extend(range(blk.a, blk.a + blk.size))
        to.extend(frames[blk.b : blk.b + blk.size])
    if not at:
        return np.minimum(np.arange(n) * t // n, t - 1).astype(np.int64)
    return np.round(np.interp(np.arange(n), at, to)).astype(np.int64)


def pack_frames(frames: np.ndarray) -> bytes:
    """``heard_frames`` as stored: uint32 little-endian, 4 bytes a character (not compressed: a
    query reads the two frames of its matched stretch from each of 50 tracks without decoding)."""
    return np.asarray(frames, "<u4").tobytes()


def unpack_frames(blob: bytes) -> np.ndarray:
    """The frames of a ``pack_frames`` blob ((0,) for an empty one), a read-only view."""
    return np.frombuffer(blob, "<u4")


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
    Each song is one compiled Viterbi pass over its frames and the phrase's states
    (``kernels.ctc_phrase_viterbi``), in float32: exact for packed ratios (whole steps) while the
    sums stay below 2**24. 50 windows of 250 frames and a 5-word phrase: about 1.5 ms (numpy's
    running maxima of cumulative sums, per state over all songs at once, took 5 ms).
    """
    from singalign.kernels import ctc_phrase_viterbi

    n = len(ratios)
    if not labels or n == 0:
        return np.zeros(n)
    ext: list[int] = []
    for i, c in enumerate(labels):
        ext += [_BLANK, c] if i else [c]
    space = _INDEX_OF[CHAR_TO_INDEX[" "]]
    # the cost of entering state s from state s - k (k = 1..4): 0 where allowed, -inf where not
    into = np.full((len(ext), 4), -np.inf, np.float32)
    for s, c in enumerate(ext):
        if s > 0:
            into[s, 0] = 0.0
        if s >= 2 and c != _BLANK and ext[s - 2] != c:  # a blank skipped between different letters
            into[s, 1] = 0.0
        if optional_space and c != _BLANK and s >= 4 and ext[s - 2] == space:
            # a word boundary the singer (or the model) ran over: straight from the letter before
            into[s, 2] = 0.0
            if ext[s - 4] != c:
                into[s, 3] = 0.0
    classes = sorted(set(ext))  # only the classes the phrase needs
    frames = np.concatenate([np.asarray(r, np.float32)[:, classes] for r in ratios])
    np.maximum(frames, SCORE_FLOOR, out=frames, where=frames > _PAD)  # impossible frames stay so
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in ratios])]).astype(np.int64)
    cols = np.array([classes.index(c) for c in ext], np.int64)
    return ctc_phrase_viterbi(frames, offsets, cols, into)
