"""Rank fusion for library search: reciprocal rank fusion (Cormack et al. 2009) of full rankings,
and a top-k fusion that reads only the ranks the fused top needs (equal to fusing whole lists).
"""

from __future__ import annotations

import numpy as np

#: Reciprocal-rank-fusion constant (Cormack et al. 2009): score = sum of 1 / (RRF_K + rank).
RRF_K = 60


def fuse_rankings(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists: [(id, score)] best first (ties by first appearance)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for r, i in enumerate(ranking):
            scores[i] = scores.get(i, 0.0) + 1.0 / (k + r + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])


class VectorRanking:
    """All tracks of one space by decreasing cosine ``scores`` (N,) with ``ids`` (N,) ascending, as
    a ranked list: tracks whose score is not finite (excluded) are left out, ties go in id order."""

    def __init__(self, ids: np.ndarray, scores: np.ndarray) -> None:
        self.ids = ids
        self.scores = scores
        self.valid = np.isfinite(scores)
        self.n = int(self.valid.sum())
        self._sorted: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n

    def best(self, depth: int) -> np.ndarray:
        """Positions of every track scoring at least the ``depth``-th best score (>= depth of them)."""
        if depth >= self.n:
            return np.flatnonzero(self.valid)
        kth = np.partition(self.scores[self.valid], self.n - depth)[self.n - depth]
        return np.flatnonzero(self.scores >= kth)

    def ranks(self, pos: np.ndarray) -> np.ndarray:
        """Ranks (0 = best) of the tracks at positions ``pos`` (finite scores) in the list."""
        if self._sorted is None:
            self._sorted = np.sort(self.scores[self.valid])
        s = self.scores[pos]
        right = np.searchsorted(self._sorted, s, side="right")
        ranks = (self.n - right).astype(np.int64)  # tracks scoring higher
        tied = np.flatnonzero(right - np.searchsorted(self._sorted, s, side="left") > 1)
        if len(tied) > 64:  # many equal scores: one stable sort answers all
            order = np.argsort(-self.scores, kind="stable")
            full = np.empty(len(order), np.int64)
            full[order] = np.arange(len(order))
            return full[pos]
        for j in tied:  # equal scores before it (in id order)
            ranks[j] += np.count_nonzero(self.scores[: pos[j]] == s[j])
        return ranks


def fused_scores(rankings: list[list[int] | VectorRanking], ids: np.ndarray, k: int = RRF_K) -> np.ndarray:
    """The reciprocal-rank-fusion score ``fuse_rankings`` gives each of ``ids`` (ascending, unique;
    0 for a track in none of the rankings), a ``VectorRanking`` standing for its whole list."""
    return _fuse_at(rankings, np.asarray(ids, np.int64), k)[0]


def _fuse_at(rankings, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(RRF score, position of first appearance over the concatenated rankings: ``fuse_rankings``'
    tie order) of each of the ascending unique ids ``cand``; tracks not in ``cand`` are skipped."""
    fused = np.zeros(len(cand))
    first = np.full(len(cand), np.iinfo(np.int64).max)
    if len(cand) == 0:
        return fused, first
    offset = 0
    for r in rankings:  # in order, so each track's sum adds up as in fuse_rankings
        if isinstance(r, VectorRanking):
            pos = np.minimum(np.searchsorted(r.ids, cand), len(r.ids) - 1)
            there = np.flatnonzero((r.ids[pos] == cand) & r.valid[pos]) if len(r.ids) else pos[:0]
            rank = r.ranks(pos[there])
            fused[there] += 1.0 / (k + rank + 1)
            first[there] = np.minimum(first[there], offset + rank)
            offset += r.n
        elif len(r):
            ids = np.asarray(r, np.int64)
            at = np.minimum(np.searchsorted(cand, ids), len(cand) - 1)
            rank = np.flatnonzero(cand[at] == ids)
            np.add.at(fused, at[rank], 1.0 / (k + rank + 1))
            np.minimum.at(first, at[rank], offset + rank)
            offset += len(r)
    return fused, first


def fuse_top(rankings: list[list[int] | VectorRanking], top: int, k: int = RRF_K) -> list[tuple[int, float]]:
    """``fuse_rankings(rankings)[:top]`` (the same scores and order) where a ``VectorRanking``
    stands for its whole list, without listing it: the fused top can only hold tracks from the
    explicit lists or from the first ``depth`` of some vector ranking, as long as the ``top``-th
    fused score beats what a track ranked below ``depth`` everywhere can reach (else ``depth`` grows).
    """
    if top <= 0:
        return []
    vectors = [r for r in rankings if isinstance(r, VectorRanking)]
    listed = np.array([i for r in rankings if not isinstance(r, VectorRanking) for i in r], np.int64)
    depth = max(4 * top, 256)
    while True:
        parts, bound, complete = [listed], 0.0, True
        for v in vectors:
            best = v.best(depth)
            parts.append(v.ids[best])
            if len(best) < v.n:
                complete = False
                bound += 1.0 / (k + len(best) + 1)  # every other track ranks below all of these
        cand = np.unique(np.concatenate(parts))
        fused, first = _fuse_at(rankings, cand, k)
        order = np.lexsort((first, -fused))
        if complete or (len(order) >= top and fused[order[top - 1]] > bound):
            return [(int(cand[j]), float(fused[j])) for j in order[:top]]
        depth *= 8


_KEEP = set("abcdefghijklmnopqrstuvwxyz0123456789'")
_TO_SPACE = {c: " " for c in range(128) if chr(c) not in _KEEP}


def match_text(text: str) -> bytes:
    """``text`` as ``approximate_match_costs`` compares it: lowercase ASCII words of letters, digits
    and apostrophes joined by single spaces."""
    return " ".join(text.lower().translate(_TO_SPACE).split()).encode("ascii", "replace")


def query_text(query: str) -> bytes:
    """A typed lyrics query as the transcripts spell it (``metrics.normalize_for_scoring``: accents
    stripped, whole numbers spelled out, "99 luftballons" -> "ninety nine luftballons"), then
    ``match_text``. Transcripts are the model's output and need no more than ``match_text``."""
    from singalign.metrics import normalize_for_scoring

    return match_text(normalize_for_scoring(query))


def approximate_match_costs(query: str, texts: list[str], chunk: int = 1024) -> np.ndarray:
    """For each text, the fewest character edits (substitutions, insertions, deletions) that turn
    ``query`` into some substring of it (Sellers 1980), both lowercased to words of letters, digits
    and apostrophes joined by single spaces (``match_text``; the query is first spelled as a
    transcript is, ``query_text``). (N,) int32: 0 means the query occurs as it is.

    A query sung and then transcribed with errors still lies close to a stretch of the transcript,
    where word matching (FTS) finds nothing when every word has one wrong letter. See
    ``match_costs`` for texts already spelled (the library stores them so).
    """
    return match_costs(query_text(query), [match_text(t) for t in texts], chunk)


def match_costs(q: bytes, norm: list[bytes], chunk: int = 1024) -> np.ndarray:
    """``approximate_match_costs`` of a query and texts already spelled by ``query_text`` and
    ``match_text``. Queries up to 64 characters run Myers' bit-vector algorithm (1999), compiled
    (``kernels.myers_texts``: one pass over the characters of every text, about 2 ms per 400k
    characters); longer ones the dynamic programme in numpy (``len(q)`` times more work), in chunks
    of texts of similar length."""
    return match_ends(q, norm, chunk)[0]


def match_ends(q: bytes, norm: list[bytes], chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``match_costs`` and where each best match ends: (costs (N,) int32, ends (N,) int64, the
    index in the text of the last character of its first best stretch; -1 where the best is to
    delete the whole query, e.g. in an empty text). The stretch starts at most ``len(q) + cost``
    characters before its end (lyrics search checks the posteriors there: ``search.spot_rerank``)."""
    if not q:
        return np.zeros(len(norm), np.int32), np.full(len(norm), -1, np.int64)
    qa = np.frombuffer(q, np.uint8)
    if len(q) <= 64:
        peq = np.zeros(256, np.uint64)  # bit i of peq[c]: q[i] == c
        for i, c in enumerate(qa):
            peq[c] |= np.uint64(1 << i)
        offsets = np.zeros(len(norm) + 1, np.int64)
        np.cumsum([len(x) for x in norm], out=offsets[1:])
        buf = np.frombuffer(b"".join(norm) or b" ", np.uint8)
        from singalign.kernels import myers_texts  # numba: imported (and loaded) when first needed

        return myers_texts(peq, len(q), buf, offsets)
    out = np.full(len(norm), len(q), np.int32)  # an empty text: delete the whole query
    where = np.full(len(norm), -1, np.int64)
    order = sorted((i for i in range(len(norm)) if norm[i]), key=lambda i: len(norm[i]))
    for lo in range(0, len(order), chunk):
        rows = order[lo : lo + chunk]
        lens = np.array([len(norm[i]) for i in rows])
        t = np.zeros((len(rows), int(lens[-1])), np.uint8)
        for r, i in enumerate(rows):
            t[r, : lens[r]] = np.frombuffer(norm[i], np.uint8)
        out[rows], where[rows] = _sellers(qa, t, lens)
    where[out == len(q)] = -1
    return out, where


def _sellers(q: np.ndarray, t: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dynamic programme behind ``approximate_match_costs``, for any query length: each row's
    cost and the index of the last character of its first best stretch."""
    width = t.shape[1]
    j = np.arange(width + 1, dtype=np.int32)
    prev = np.zeros((t.shape[0], width + 1), np.int32)  # row 0: the match may start anywhere
    for i, c in enumerate(q, 1):
        # d[j] = min(prev[j-1] + (t[j] != c), prev[j] + 1, d[j-1] + 1), d[0] = i; the last
        # term (insertions along the row) is a running minimum of d[j] - j, plus j
        cur = np.empty_like(prev)
        cur[:, 0] = i
        cur[:, 1:] = np.minimum(prev[:, :-1] + (t != c), prev[:, 1:] + 1) - j[1:]
        np.minimum.accumulate(cur, axis=1, out=cur)
        cur[:, 1:] += j[1:]
        prev = cur
    # the match ends anywhere within the text (not in its padding); column j: after j characters
    prev = np.where(j[None, :] <= lens[:, None], prev, np.iinfo(np.int32).max)
    at = prev.argmin(axis=1)
    return prev[np.arange(len(prev)), at], at - 1
