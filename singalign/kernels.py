"""Compiled inner loops (numba, cached on disk after the first compilation): the few loops
that numpy cannot vectorise well. Imported where first needed, so commands that never run them
do not pay for importing numba (about 0.2 s).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def myers_texts(
    peq: np.ndarray, m: int, buf: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Myers' bit-parallel search (m <= 64) over each text ``buf[offsets[i]:offsets[i + 1]]``:
    the best edit distance of the query (``peq[c]``: bit k set where its k-th character is c) to a
    substring of the text, and the index of the first character where such a substring ends (-1
    where nothing beats deleting the whole query, cost m)."""
    n = len(offsets) - 1
    costs = np.full(n, m, np.int32)
    ends = np.full(n, -1, np.int64)
    one = np.uint64(1)
    mask = (one << np.uint64(m)) - one if m < 64 else ~np.uint64(0)
    high = one << np.uint64(m - 1)
    for i in range(n):
        pv, mv = mask, np.uint64(0)
        score, lo = m, offsets[i]
        for j in range(lo, offsets[i + 1]):
            eq = peq[buf[j]]
            xv = eq | mv
            xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
            ph = mv | (~(xh | pv) & mask)
            mh = pv & xh
            if ph & high:
                score += 1
            elif mh & high:  # pv and mv never share a bit: ph and mh are not both set there
                score -= 1
            ph = (ph << one) & mask  # a match may start anywhere: no carry-in
            mh = (mh << one) & mask
            pv = mh | (~(xv | ph) & mask)
            mv = ph & xv
            if score < costs[i]:
                costs[i] = score
                ends[i] = j - lo
    return costs, ends


@numba.njit(cache=True, nogil=True)
def ctc_phrase_viterbi(
    frames: np.ndarray, offsets: np.ndarray, cols: np.ndarray, into: np.ndarray
) -> np.ndarray:
    """The best CTC alignment of a phrase to a stretch of each window ``frames[offsets[i]:offsets[i +
    1]]`` ((T, K) float32 scores, floored), as ``spotting.phrase_scores`` defines it: state ``s``
    reads column ``cols[s]`` and is entered from state ``s - k`` (k = 1..4) at a cost of
    ``into[s, k - 1]`` (0 where allowed, -inf where not; state 0 is entered from nothing: the phrase
    starts at any frame); the score is the last state's best. (n,) float64, -inf for a window with
    too few frames. float32 sums, as numpy's."""
    n = len(offsets) - 1
    n_states = len(cols)
    out = np.full(n, -np.inf)
    minus_inf = np.float32(-np.inf)
    for i in range(n):
        # each state's score at the frame before, four impossible states ahead of state 0
        prev = np.full(n_states + 4, minus_inf, np.float32)
        cur = np.full(n_states + 4, minus_inf, np.float32)
        best = minus_inf
        for t in range(offsets[i], offsets[i + 1]):
            row = frames[t]
            stay = prev[4]
            cur[4] = row[cols[0]] + (stay if stay > 0 else np.float32(0.0))
            for s in range(1, n_states):
                j = s + 4
                entered = max(
                    max(prev[j - 1] + into[s, 0], prev[j - 2] + into[s, 1]),
                    max(prev[j - 3] + into[s, 2], prev[j - 4] + into[s, 3]),
                )
                cur[j] = row[cols[s]] + max(prev[j], entered)
            if cur[n_states + 3] > best:
                best = cur[n_states + 3]
            prev, cur = cur, prev
        out[i] = best
    return out
