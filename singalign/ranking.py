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
        fused = np.zeros(len(cand))
        first = np.full(len(cand), np.iinfo(np.int64).max)  # first appearance: fuse_rankings' tie order
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
                at = np.searchsorted(cand, np.asarray(r, np.int64))
                rank = np.arange(len(r))
                np.add.at(fused, at, 1.0 / (k + rank + 1))
                np.minimum.at(first, at, offset + rank)
                offset += len(r)
        order = np.lexsort((first, -fused))
        if complete or (len(order) >= top and fused[order[top - 1]] > bound):
            return [(int(cand[j]), float(fused[j])) for j in order[:top]]
        depth *= 8
