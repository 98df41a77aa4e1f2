"""Scorers with known answers: WER/CER, mir_eval's own note vectors, alignment, retrieval, tagging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from singalign import metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MIR_EVAL = DATA / "mir_eval_transcription"


def test_normalization():
    assert metrics.normalize_for_scoring("Don't STOP, 'cause I'm rockin' 12 times!") == (
        "don't stop cause i'm rockin twelve times"
    )
    assert metrics.normalize_for_scoring("Twenty-one — café “naïve”") == "twenty one cafe naive"
    assert metrics.normalize_for_scoring(" ... ") == ""


def test_wer_known_pairs():
    u = metrics.utterance_errors("the cat sat on the mat", "The cat SIT on mat now.")
    assert (u["substitutions"], u["deletions"], u["insertions"]) == (1, 1, 1)
    assert u["wer"] == pytest.approx(3 / 6)
    assert u["alignment"] == "the cat sat->sit on -the mat +now"
    assert metrics.wer("a b c d", "a b c d") == 0.0
    assert metrics.wer("a b", "") == 1.0
    assert metrics.wer("", "") == 0.0
    assert metrics.wer("", "x") is None  # undefined
    assert metrics.cer("abcd", "abxd") == pytest.approx(1 / 4)


def test_corpus_wer_sums_errors_not_rates():
    refs = ["one two three four five six seven eight nine ten", "hello"]
    hyps = ["one two three four five six seven eight nine ten", "goodbye"]
    r = metrics.error_rates(refs, hyps, ids=["long", "short"])
    assert r["wer"] == pytest.approx(1 / 11)  # a mean of per-song rates would be 0.5
    assert [u["wer"] for u in r["per_utterance"]] == [0.0, 1.0]
    assert r["n_ref_words"] == 11 and r["word_errors"] == 1
    assert [u["id"] for u in r["per_utterance"]] == ["long", "short"]


def test_edit_distance_against_brute_force():
    rng = np.random.default_rng(0)

    def lev(a, b):
        d = list(range(len(b) + 1))
        for i in range(1, len(a) + 1):
            prev, d[0] = d[:], i
            for j in range(1, len(b) + 1):
                d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        return d[-1]

    for _ in range(300):
        a = list(rng.choice(list("abc"), rng.integers(0, 9)))
        b = list(rng.choice(list("abc"), rng.integers(0, 9)))
        ops = metrics.edit_ops(a, b)
        assert ops["errors"] == lev(a, b)
        assert ops["hits"] + ops["substitutions"] + ops["deletions"] == len(a)
        assert ops["hits"] + ops["substitutions"] + ops["insertions"] == len(b)


@pytest.mark.skipif(not MIR_EVAL.is_dir(), reason="shared mir_eval vectors absent")
@pytest.mark.parametrize("i", range(10))
def test_note_scores_equal_mir_eval_vectors(i):
    import mir_eval

    ri, rp = mir_eval.io.load_valued_intervals(str(MIR_EVAL / f"ref{i:02d}.txt"))
    ei, ep = mir_eval.io.load_valued_intervals(str(MIR_EVAL / f"est{i:02d}.txt"))
    expected = json.loads((MIR_EVAL / f"output{i:02d}.json").read_text())
    got = metrics.note_scores(ri, rp, ei, ep)
    names = {"COn": "Onset_{}", "COnP": "{}_no_offset", "COnPOff": "{}"}
    for measure, pattern in names.items():
        for ours, theirs in (("precision", "Precision"), ("recall", "Recall"), ("f", "F-measure")):
            assert got[measure][ours] == pytest.approx(expected[pattern.format(theirs)], abs=1e-9)


def test_note_scores_planted():
    ref = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    ref_hz = metrics.midi_to_hz([60, 62, 64])
    est = np.array([[0.02, 1.0], [1.03, 1.5], [2.2, 3.0]])  # 3rd onset 200 ms late
    est_hz = metrics.midi_to_hz([60, 63, 64])  # 2nd a semitone off
    s = metrics.note_scores(ref, ref_hz, est, est_hz)
    assert s["COn"]["f"] == pytest.approx(2 / 3)
    assert s["COnP"]["f"] == pytest.approx(1 / 3)
    assert s["COnPOff"]["f"] == pytest.approx(1 / 3)
    assert metrics.midi_to_hz(69) == pytest.approx(440.0)


def test_alignment_errors_pairing_by_words():
    ref_words = ["Soy", "un", "fantasma", "que"]
    ref_on = [1.0, 2.0, 3.0, 4.0]
    e = metrics.alignment_errors(ref_on, [1.1, 2.0, 3.5, 4.0])
    assert e["mean_abs_error"] == pytest.approx(0.15)
    assert e["median_abs_error"] == pytest.approx(0.05)
    assert e["within_0.3s"] == pytest.approx(0.75)
    # hypothesis lost "un": the other three pair by text; the lost word counts as not within
    e = metrics.alignment_errors(ref_on, [1.0, 3.2, 4.4], ref_words, ["soy", "fantasma,", "que"])
    assert e["n_paired"] == 3 and e["mean_abs_error"] == pytest.approx((0.0 + 0.2 + 0.4) / 3)
    assert e["within_0.3s"] == pytest.approx(2 / 4)
    with pytest.raises(ValueError):
        metrics.alignment_errors(ref_on, [1.0])


def test_retrieval_identical_embeddings_and_ties():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(20, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sim = emb @ emb.T
    m = metrics.retrieval_metrics(sim)
    assert m["R@1"] == 1.0 and m["mAP@10"] == 1.0 and m["median_rank"] == 1.0
    # a collapsed model (all similarities equal) gets the worst rank, not the best
    assert metrics.retrieval_ranks(np.ones((4, 4))).tolist() == [4, 4, 4, 4]


def test_planted_ranking_map_and_recall():
    # one query, items ranked 0..5 by score; relevant items at ranks 1, 3 and 6
    sim = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    rel = [[0, 2, 5]]
    assert metrics.mean_average_precision_at_k(sim, rel, k=10) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert metrics.mean_average_precision_at_k(sim, rel, k=3) == pytest.approx((1 + 2 / 3) / 3)
    sim2 = np.array([[0.1, 0.9, 0.5], [0.2, 0.1, 0.3], [0.3, 0.2, 0.1]])
    assert metrics.retrieval_ranks(sim2).tolist() == [3, 3, 3]
    assert metrics.recall_at_k(sim2, 3) == 1.0 and metrics.recall_at_k(sim2, 2) == 0.0
    assert metrics.median_rank(sim2) == 3.0


def test_first_relevant_rank_of_a_ranked_list():
    ranked = ["c", "a", "b", "d"]
    assert metrics.first_relevant_rank(ranked, {"a"}) == 2
    assert metrics.first_relevant_rank(ranked, {"d", "a"}) == 2  # the first of several
    assert metrics.first_relevant_rank(ranked, {"c"}) == 1
    assert metrics.first_relevant_rank(ranked, {"z"}) == 5  # never returned: one past the end
    assert metrics.first_relevant_rank([], {"a"}) == 1


def test_tagging_metrics():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0]])
    perfect = y + 0.1
    assert metrics.macro_roc_auc(y, perfect) == pytest.approx(1.0)
    assert metrics.macro_pr_auc(y, perfect) == pytest.approx(1.0)
    assert metrics.macro_roc_auc(y, -perfect) == pytest.approx(0.0)
    # a tag with one class only is skipped
    y3 = np.c_[y, np.ones(5)]
    assert metrics.macro_roc_auc(y3, np.c_[perfect, np.zeros(5)]) == pytest.approx(1.0)
    assert metrics.zero_shot_accuracy(
        np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]), [0, 1, 1]
    ) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- paired bootstrap


def test_paired_bootstrap_known_answers():
    n = [10, 10, 20, 40]
    same = metrics.paired_bootstrap([1, 2, 3, 4], [1, 2, 3, 4], n)
    assert same == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_b_not_better": 1.0}
    # B makes one error fewer on every item: B - A = -4 / 80, and no draw can favour A
    better = metrics.paired_bootstrap([1, 2, 3, 4], [0, 1, 2, 3], n)
    assert better["diff"] == pytest.approx(-4 / 80)
    assert better["high"] < 0 and better["p_b_not_better"] == 0.0
    # a single item decides every draw: the interval collapses onto the observed difference
    one = metrics.paired_bootstrap([3], [5], [10])
    assert one == pytest.approx({"diff": 0.2, "low": 0.2, "high": 0.2, "p_b_not_better": 1.0})


def test_paired_bootstrap_interval_holds_the_difference_and_shrinks_with_more_items():
    rng = np.random.default_rng(1)
    widths = []
    for items in (50, 800):
        n = rng.integers(5, 30, items)
        a = rng.binomial(n, 0.40)
        b = rng.binomial(n, 0.35)  # B is truly 5 points better
        r = metrics.paired_bootstrap(a, b, n, resamples=1000, seed=3)
        assert r["low"] <= r["diff"] <= r["high"]
        widths.append(r["high"] - r["low"])
    assert widths[1] < widths[0] / 2  # about 1 / sqrt(16) as wide
    assert r["high"] < 0 and r["p_b_not_better"] < 0.01  # 800 items settle 5 points
    with pytest.raises(ValueError):
        metrics.paired_bootstrap([1], [1, 2], [3, 3])
