"""Scores: WER/CER, COn/COnP/COnPOff, word-onset alignment errors, retrieval and tagging metrics.

Lyrics (WER/CER):
    Both sides go through :func:`normalize_for_scoring` first. WER over a corpus sums the edit
    operations of every utterance and divides by the total number of reference words (it is not a
    mean of per-song rates: a short song must not weigh as much as a long one). CER is the same over
    the characters of the normalized text, spaces included.

Notes: ``mir_eval.transcription`` with the paper's tolerances (onset 50 ms, pitch 50 cents, offset
20% of the note's length with a 50 ms floor).

Alignment: the MIREX lyrics-to-audio measures on word onsets (mean and median absolute error,
share of words within 0.3 s).

Separation: the signal-to-distortion ratio of the Music Demixing Challenge (no BSS-eval
projection), per song, in dB.

Retrieval (issue 6): queries against items through a similarity matrix. Ties are broken
pessimistically (an item that scores the same as the relevant one is ranked before it), so a
collapsed model whose embeddings are all equal gets the worst ranks, not the best.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from singalign.text import to_vocab_text

# ----------------------------------------------------------------------------- normalization

_EDGE_APOSTROPHES = re.compile(r"(?<![a-z])'|'(?![a-z])")
_NOT_WORD = re.compile(r"[^a-z' ]+")


def normalize_for_scoring(text: str) -> str:
    """The text both sides of WER/CER are compared in (also the LM's word normalization).

    Steps: ``singalign.text.to_vocab_text`` (lower case; accents stripped, é -> e; typographic
    quotes to ASCII; whole numbers spelled out, 12 -> "twelve"; other symbols to spaces), then
    every punctuation mark becomes a space (hyphens too: "twenty-one" -> "twenty one"), except
    apostrophes inside a word ("don't", "god's" stay; "'cause" -> "cause", "rockin'" -> "rockin"),
    and runs of spaces collapse.

    Returns:
        Words of letters and inner apostrophes separated by single spaces ("" for no words).
    """
    text = _NOT_WORD.sub(" ", to_vocab_text(text))
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return " ".join(text.split())


# ----------------------------------------------------------------------------- edit distance


def edit_ops(ref: Sequence[Any], hyp: Sequence[Any]) -> dict[str, Any]:
    """Levenshtein alignment of two sequences (unit costs), with the operations counted.

    Rows of the dynamic programme are computed with numpy (insertions by a running minimum), so a
    song of 2,000 characters against 2,000 takes a few milliseconds.

    Returns:
        ``{"substitutions", "deletions", "insertions", "hits", "errors", "pairs"}`` where ``pairs``
        lists (ref index or None, hyp index or None) along one optimal alignment.
    """
    vocab: dict[Any, int] = {}
    r = np.array([vocab.setdefault(x, len(vocab)) for x in ref], dtype=np.int64)
    h = np.array([vocab.setdefault(x, len(vocab)) for x in hyp], dtype=np.int64)
    n, m = len(r), len(h)
    d = np.empty((n + 1, m + 1), dtype=np.int32)
    d[0] = np.arange(m + 1)
    j = np.arange(m + 1)
    for i in range(1, n + 1):
        cand = np.empty(m + 1, dtype=np.int64)
        cand[0] = i
        cand[1:] = np.minimum(d[i - 1, 1:] + 1, d[i - 1, :-1] + (h != r[i - 1]))
        # d[i, j] = min_k<=j cand[k] + (j - k): a running minimum of cand - j.
        d[i] = np.minimum.accumulate(cand - j) + j
    # Backtrace. Among equally cheap paths prefer a hit, then a deletion or an insertion, then a
    # substitution: "the cat sat on the mat" / "the cat sit on mat now" reads
    # "the cat sat->sit on -the mat +now", not "... on the->mat mat->now" (which would also pair
    # the wrong words for onset errors).
    pairs: list[tuple[int | None, int | None]] = []
    subs = dels = ins = hits = 0
    i, k = n, m
    while i > 0 or k > 0:
        if i > 0 and k > 0 and r[i - 1] == h[k - 1] and d[i, k] == d[i - 1, k - 1]:
            hits += 1
            pairs.append((i - 1, k - 1))
            i, k = i - 1, k - 1
        elif i > 0 and d[i, k] == d[i - 1, k] + 1:
            dels += 1
            pairs.append((i - 1, None))
            i -= 1
        elif k > 0 and d[i, k] == d[i, k - 1] + 1:
            ins += 1
            pairs.append((None, k - 1))
            k -= 1
        else:
            subs += 1
            pairs.append((i - 1, k - 1))
            i, k = i - 1, k - 1
    pairs.reverse()
    return {
        "substitutions": subs,
        "deletions": dels,
        "insertions": ins,
        "hits": hits,
        "errors": subs + dels + ins,
        "pairs": pairs,
    }


def _rate(errors: int, n: int) -> float | None:
    """errors / n; for an empty reference 0.0 if there are no errors, else None (undefined)."""
    if n:
        return errors / n
    return 0.0 if errors == 0 else None


def utterance_errors(ref: str, hyp: str, utt_id: str = "") -> dict[str, Any]:
    """Word and character errors of one utterance after :func:`normalize_for_scoring`.

    Returns:
        ``{"id", "ref", "hyp", "n_ref_words", "substitutions", "deletions", "insertions",
        "word_errors", "wer", "n_ref_chars", "char_errors", "cer", "alignment"}`` (``ref``/``hyp``
        normalized; ``alignment`` from :func:`alignment_string`).
    """
    r, h = normalize_for_scoring(ref), normalize_for_scoring(hyp)
    rw, hw = r.split(), h.split()
    w = edit_ops(rw, hw)
    c = edit_ops(list(r), list(h))
    n_words = len(r.split())
    return {
        "id": utt_id,
        "ref": r,
        "hyp": h,
        "n_ref_words": n_words,
        "substitutions": w["substitutions"],
        "deletions": w["deletions"],
        "insertions": w["insertions"],
        "word_errors": w["errors"],
        "wer": _rate(w["errors"], n_words),
        "n_ref_chars": len(r),
        "char_errors": c["errors"],
        "cer": _rate(c["errors"], len(r)),
        "alignment": alignment_string(rw, hw, w["pairs"]),
    }


def alignment_string(ref_words: Sequence[str], hyp_words: Sequence[str], pairs) -> str:
    """One line showing a word alignment: hits as is, ``REF->HYP`` substitutions, ``-REF``
    deletions, ``+HYP`` insertions (e.g. ``the cat sat->sit on -the mat``)."""
    out = []
    for a, b in pairs:
        if a is not None and b is not None:
            out.append(ref_words[a] if ref_words[a] == hyp_words[b] else f"{ref_words[a]}->{hyp_words[b]}")
        elif a is not None:
            out.append(f"-{ref_words[a]}")
        else:
            out.append(f"+{hyp_words[b]}")
    return " ".join(out)


def error_rates(refs: Sequence[str], hyps: Sequence[str], ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Corpus-level WER and CER (errors summed over utterances), with per-utterance figures.

    Args:
        refs: reference texts.
        hyps: hypotheses, one per reference.
        ids: names of the utterances (default "0", "1", ...).

    Returns:
        ``{"wer", "cer", "n_utterances", "n_ref_words", "n_ref_chars", "substitutions",
        "deletions", "insertions", "word_errors", "char_errors", "per_utterance": [...]}``;
        ``wer``/``cer`` are None when there are no reference words/characters at all.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    ids = list(ids) if ids is not None else [str(i) for i in range(len(refs))]
    per = [utterance_errors(r, h, i) for r, h, i in zip(refs, hyps, ids, strict=True)]
    tot = {k: sum(u[k] for u in per) for k in ("n_ref_words", "n_ref_chars", "substitutions", "deletions", "insertions", "word_errors", "char_errors")}  # fmt: skip
    return {
        "wer": _rate(tot["word_errors"], tot["n_ref_words"]) if per else None,
        "cer": _rate(tot["char_errors"], tot["n_ref_chars"]) if per else None,
        "n_utterances": len(per),
        **tot,
        "per_utterance": per,
    }


def paired_bootstrap(
    errors_a: Sequence[int],
    errors_b: Sequence[int],
    n_ref: Sequence[int],
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """How sure is a difference of two systems' corpus error rates on the same items? A paired
    bootstrap over items (Bisani & Ney 2004; Koehn 2004).

    Items are drawn with replacement ``resamples`` times; each draw's difference is
    ``sum(errors_b) / sum(n_ref) - sum(errors_a) / sum(n_ref)`` over the drawn items (corpus rates,
    as WER and CER are computed), so both systems always see the same draw.

    Args:
        errors_a, errors_b: per-item errors (words or characters) of systems A and B.
        n_ref: per-item reference lengths in the same unit.

    Returns:
        ``{"diff"}`` the observed difference B - A (negative: B makes fewer errors), ``{"low",
        "high"}`` its percentile confidence interval at ``level``, ``{"p_b_not_better"}`` the share
        of draws in which B is not better than A (a one-sided bootstrap p-value for "B is better").
    """
    a, b, n = (np.asarray(x, dtype=np.float64) for x in (errors_a, errors_b, n_ref))
    if not (len(a) == len(b) == len(n)) or len(n) == 0:
        raise ValueError("errors_a, errors_b and n_ref must be non-empty and of the same length")
    if n.sum() <= 0:
        raise ValueError("the references are empty")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(n))  # bounded memory for large test sets
    for lo in range(0, resamples, chunk):
        idx = rng.integers(0, len(n), (min(chunk, resamples - lo), len(n)))
        refs = n[idx].sum(axis=1)
        diffs[lo : lo + len(idx)] = (b[idx].sum(axis=1) - a[idx].sum(axis=1)) / np.maximum(refs, 1e-12)
    tail = (1.0 - level) / 2
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return {
        "diff": float((b.sum() - a.sum()) / n.sum()),
        "low": float(low),
        "high": float(high),
        "p_b_not_better": float(np.mean(diffs >= 0)),
    }


def wer(ref: str | Sequence[str], hyp: str | Sequence[str]) -> float | None:
    """Word error rate of one text pair, or corpus-level over lists of texts."""
    if isinstance(ref, str):
        return utterance_errors(ref, hyp)["wer"]  # type: ignore[arg-type]
    return error_rates(ref, hyp)["wer"]  # type: ignore[arg-type]


def cer(ref: str | Sequence[str], hyp: str | Sequence[str]) -> float | None:
    """Character error rate of one text pair, or corpus-level over lists of texts."""
    if isinstance(ref, str):
        return utterance_errors(ref, hyp)["cer"]  # type: ignore[arg-type]
    return error_rates(ref, hyp)["cer"]  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- notes

#: The paper's note tolerances (mir_eval defaults).
ONSET_TOLERANCE = 0.05
PITCH_TOLERANCE_CENTS = 50.0
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE = 0.05


def note_scores(
    ref_intervals: np.ndarray,
    ref_pitches_hz: np.ndarray,
    est_intervals: np.ndarray,
    est_pitches_hz: np.ndarray,
) -> dict[str, dict[str, float]]:
    """COn, COnP and COnPOff (precision, recall, F) with ``mir_eval.transcription``.

    Args:
        ref_intervals: (n_ref, 2) onset and offset seconds.
        ref_pitches_hz: (n_ref,) frequencies in Hz.
        est_intervals: (n_est, 2) onset and offset seconds.
        est_pitches_hz: (n_est,) frequencies in Hz.

    Returns:
        ``{"COn": {"precision", "recall", "f"}, "COnP": {...}, "COnPOff": {...}}``. COn matches
        onsets only (50 ms), COnP onsets and pitch (50 cents), COnPOff also offsets (20% / 50 ms).
    """
    import warnings

    import mir_eval

    ri = np.asarray(ref_intervals, dtype=float).reshape(-1, 2)
    ei = np.asarray(est_intervals, dtype=float).reshape(-1, 2)
    rp = np.asarray(ref_pitches_hz, dtype=float).reshape(-1)
    ep = np.asarray(est_pitches_hz, dtype=float).reshape(-1)
    t = mir_eval.transcription
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns on empty note lists (scores are then 0)
        t.validate(ri, rp, ei, ep)
        con = t.onset_precision_recall_f1(ri, ei, onset_tolerance=ONSET_TOLERANCE)
        conp = t.precision_recall_f1_overlap(
            ri,
            rp,
            ei,
            ep,
            onset_tolerance=ONSET_TOLERANCE,
            pitch_tolerance=PITCH_TOLERANCE_CENTS,
            offset_ratio=None,
        )
        conpoff = t.precision_recall_f1_overlap(
            ri,
            rp,
            ei,
            ep,
            onset_tolerance=ONSET_TOLERANCE,
            pitch_tolerance=PITCH_TOLERANCE_CENTS,
            offset_ratio=OFFSET_RATIO,
            offset_min_tolerance=OFFSET_MIN_TOLERANCE,
        )
    return {
        name: {"precision": float(v[0]), "recall": float(v[1]), "f": float(v[2])}
        for name, v in (("COn", con), ("COnP", conp), ("COnPOff", conpoff))
    }


def event_note_scores(ref_intervals, ref_pitches_hz, notes) -> dict[str, dict[str, float]]:
    """:func:`note_scores` of transcribed notes: objects with ``onset``, ``offset`` (s) and ``pitch``
    (MIDI), e.g. ``singalign.result.NoteEvent``."""
    est_iv = np.array([[n.onset, n.offset] for n in notes], dtype=float).reshape(-1, 2)
    est_hz = midi_to_hz(np.array([n.pitch for n in notes], dtype=float))
    return note_scores(
        np.asarray(ref_intervals, dtype=float), np.asarray(ref_pitches_hz, dtype=float), est_iv, est_hz
    )


def midi_to_hz(midi: np.ndarray | Sequence[float]) -> np.ndarray:
    """MIDI note numbers to Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


# ----------------------------------------------------------------------------- alignment

#: MIREX tolerance for "correct" word onsets (seconds).
ALIGNMENT_TOLERANCE = 0.3


def word_onset_errors(
    ref_word_onsets: Sequence[float],
    hyp_word_onsets: Sequence[float],
    ref_words: Sequence[str] | None = None,
    hyp_words: Sequence[str] | None = None,
) -> np.ndarray:
    """Absolute onset errors (seconds) of the paired words; pairing as in :func:`alignment_errors`.

    Returns:
        (n_paired,) absolute errors, in reference order.
    """
    ref_on = np.asarray(ref_word_onsets, dtype=float)
    hyp_on = np.asarray(hyp_word_onsets, dtype=float)
    if ref_words is None or hyp_words is None:
        if len(ref_on) != len(hyp_on):
            raise ValueError(
                f"{len(ref_on)} reference onsets but {len(hyp_on)} hypothesis onsets: give the words to pair them"
            )
        return np.abs(hyp_on - ref_on)
    if len(ref_words) != len(ref_on) or len(hyp_words) != len(hyp_on):
        raise ValueError("each word needs exactly one onset")
    rn = [normalize_for_scoring(w).replace(" ", "") for w in ref_words]
    hn = [normalize_for_scoring(w).replace(" ", "") for w in hyp_words]
    rk = [i for i, w in enumerate(rn) if w]
    hk = [i for i, w in enumerate(hn) if w]
    ops = edit_ops([rn[i] for i in rk], [hn[i] for i in hk])
    pairs = [(rk[a], hk[b]) for a, b in ops["pairs"] if a is not None and b is not None]
    return np.array([abs(hyp_on[b] - ref_on[a]) for a, b in pairs], dtype=float)


def alignment_errors(
    ref_word_onsets: Sequence[float],
    hyp_word_onsets: Sequence[float],
    ref_words: Sequence[str] | None = None,
    hyp_words: Sequence[str] | None = None,
    tolerance: float = ALIGNMENT_TOLERANCE,
) -> dict[str, Any]:
    """Word-onset errors (seconds): the MIREX lyrics-to-audio alignment measures.

    Pairing: without words, the i-th reference onset pairs with the i-th hypothesis onset (the
    counts must then be equal). With words, both word lists are normalized
    (:func:`normalize_for_scoring`, each word on its own, its pieces joined) and aligned by edit
    distance; every reference word on the alignment's diagonal (a hit or a substitution) pairs
    with its hypothesis word. Reference words left unpaired (deletions, or words that normalize
    to nothing) have no error; they count as not within the tolerance.

    Returns:
        ``{"mean_abs_error", "median_abs_error"`` (over paired words; None if none),
        ``"within_0.3s"`` (paired words within ``tolerance`` / all reference words),
        ``"n_ref_words", "n_hyp_words", "n_paired"}``.
    """
    err = word_onset_errors(ref_word_onsets, hyp_word_onsets, ref_words, hyp_words)
    n_ref = len(ref_word_onsets)
    return {
        "mean_abs_error": float(err.mean()) if err.size else None,
        "median_abs_error": float(np.median(err)) if err.size else None,
        f"within_{tolerance:g}s": float((err <= tolerance).sum() / n_ref) if n_ref else None,
        "n_ref_words": n_ref,
        "n_hyp_words": len(hyp_word_onsets),
        "n_paired": int(err.size),
    }


# ----------------------------------------------------------------------------- retrieval, tagging


def _relevance(sim: np.ndarray, relevant: Sequence[Sequence[int]] | np.ndarray | None) -> np.ndarray:
    """(n_queries, n_items) boolean relevance; default: item i is the one relevant item of query i."""
    nq, ni = sim.shape
    if relevant is None:
        if nq > ni:
            raise ValueError(f"{nq} queries but {ni} items: give the relevant items")
        rel = np.zeros((nq, ni), dtype=bool)
        rel[np.arange(nq), np.arange(nq)] = True
        return rel
    rel_arr = np.asarray(relevant) if not isinstance(relevant, list) else None
    if rel_arr is not None and rel_arr.dtype == bool and rel_arr.shape == sim.shape:
        return rel_arr
    rel = np.zeros((nq, ni), dtype=bool)
    for q, items in enumerate(relevant):
        rel[q, list(np.atleast_1d(items))] = True
    return rel


def _ranking(sim: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """(n_queries, n_items) relevance in ranked order (ties: irrelevant items first)."""
    order = np.lexsort((rel, -sim), axis=1)  # primary key -sim, then relevant last among equals
    return np.take_along_axis(rel, order, axis=1)


def retrieval_ranks(sim: np.ndarray, relevant=None) -> np.ndarray:
    """1-based rank of the best-ranked relevant item of each query.

    Args:
        sim: (n_queries, n_items) similarities (higher is better).
        relevant: None (item i for query i), a list of relevant item indices per query, or a
            boolean (n_queries, n_items) matrix.

    Returns:
        (n_queries,) ranks (n_items + 1 for a query with no relevant item).
    """
    sim = np.asarray(sim, dtype=float)
    ranked = _ranking(sim, _relevance(sim, relevant))
    has = ranked.any(axis=1)
    return np.where(has, ranked.argmax(axis=1) + 1, sim.shape[1] + 1)


def first_relevant_rank(ranked: Sequence[Any], relevant: Collection[Any]) -> int:
    """1-based rank of the first item of ``ranked`` (best first) that is in ``relevant``;
    ``len(ranked) + 1`` when none is (a search that never returns a relevant item)."""
    return next((k + 1 for k, item in enumerate(ranked) if item in relevant), len(ranked) + 1)


def recall_at_k(sim: np.ndarray, k: int, relevant=None) -> float:
    """Share of queries with a relevant item among the top ``k``."""
    return float((retrieval_ranks(sim, relevant) <= k).mean())


def median_rank(sim: np.ndarray, relevant=None) -> float:
    """Median over queries of the rank of the first relevant item."""
    return float(np.median(retrieval_ranks(sim, relevant)))


def mean_average_precision_at_k(sim: np.ndarray, relevant=None, k: int = 10) -> float:
    """mAP@k: mean over queries of (1 / min(n_relevant, k)) * sum_{i<=k} precision@i * rel(i)."""
    sim = np.asarray(sim, dtype=float)
    rel = _relevance(sim, relevant)
    ranked = _ranking(sim, rel)[:, :k].astype(float)
    prec = np.cumsum(ranked, axis=1) / np.arange(1, ranked.shape[1] + 1)
    denom = np.minimum(rel.sum(axis=1), k)
    ap = np.where(denom > 0, (prec * ranked).sum(axis=1) / np.maximum(denom, 1), 0.0)
    return float(ap.mean())


def retrieval_metrics(sim: np.ndarray, relevant=None, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``{"R@1", "R@5", "R@10", "mAP@10", "median_rank"}`` for one direction of retrieval."""
    ranks = retrieval_ranks(sim, relevant)
    out = {f"R@{k}": float((ranks <= k).mean()) for k in ks}
    out["mAP@10"] = mean_average_precision_at_k(sim, relevant, 10)
    out["median_rank"] = float(np.median(ranks))
    return out


def _tag_columns(y_true: np.ndarray) -> np.ndarray:
    """Tags with both positive and negative examples (AUCs are undefined for the others)."""
    pos = y_true.sum(axis=0)
    return np.flatnonzero((pos > 0) & (pos < y_true.shape[0]))


def macro_roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean over tags of ROC-AUC; tags with only one class in ``y_true`` are skipped (None if all are)."""
    from sklearn.metrics import roc_auc_score

    y, s = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    cols = _tag_columns(y)
    return float(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in cols])) if cols.size else None


def macro_pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean over tags of average precision (PR-AUC); single-class tags skipped (None if all are)."""
    from sklearn.metrics import average_precision_score

    y, s = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    cols = _tag_columns(y)
    return float(np.mean([average_precision_score(y[:, c], s[:, c]) for c in cols])) if cols.size else None


def zero_shot_accuracy(scores: np.ndarray, labels: Sequence[int]) -> float:
    """Share of items whose best-scoring class (row argmax of (n_items, n_classes)) is the label."""
    s = np.asarray(scores, dtype=float)
    return float((s.argmax(axis=1) == np.asarray(labels)).mean())


# ----------------------------------------------------------------------------- separation


def sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-10) -> float:
    """Signal-to-distortion ratio in dB, ``10 log10(sum s^2 / sum (s - s_hat)^2)``.

    The Music Demixing Challenge's global SDR: no allowed distortion filter (BSS-eval's projection),
    so a gain error counts as distortion. Both arrays must have the same shape; ``eps`` keeps a
    silent reference or a perfect estimate finite.
    """
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"reference {s.shape} and estimate {e.shape} differ in shape")
    return float(10.0 * np.log10((np.sum(s**2) + eps) / (np.sum((s - e) ** 2) + eps)))
