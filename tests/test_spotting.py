"""CTC phrase spotting (``singalign.spotting``): known answers and a brute-force check."""

import itertools

import numpy as np
import pytest
from conftest import clean_posteriors

from singalign.constants import BLANK_INDEX, CHAR_TO_INDEX
from singalign.decode import simulate_posteriors
from singalign.ranking import match_text
from singalign.spotting import (
    CHUNK_FRAMES,
    PACK_STEP,
    PACKED_CLASSES,
    SCORE_FLOOR,
    chunk_packed,
    heard_frames,
    pack_frames,
    pack_posteriors,
    phrase_labels,
    phrase_scores,
    unpack_frames,
    unpack_posteriors,
    unpack_window,
)


def _collapse(path: tuple[int, ...], blank: int) -> list[int]:
    out, last = [], None
    for c in path:
        if c != last and c != blank:
            out.append(c)
        last = c
    return out


def _brute_force(labels: list[int], ratio: np.ndarray) -> float:
    """Best sum over every stretch [a, b] and every frame labelling of it that CTC-collapses to
    ``labels`` and starts and ends in a letter (not a blank)."""
    blank = PACKED_CLASSES.index(BLANK_INDEX)
    x = np.maximum(ratio, SCORE_FLOOR)
    t, c = x.shape
    best = -np.inf
    for a in range(t):
        for b in range(a, t):
            for path in itertools.product(range(c), repeat=b - a + 1):
                if path[0] == blank or path[-1] == blank or _collapse(path, blank) != labels:
                    continue
                best = max(best, float(sum(x[a + i, k] for i, k in enumerate(path))))
    return best


def test_phrase_scores_equal_brute_force_over_every_alignment():
    rng = np.random.default_rng(0)
    # three classes at play (blank, "a", "b"), the rest impossible
    cls = [PACKED_CLASSES.index(i) for i in (BLANK_INDEX, CHAR_TO_INDEX["a"], CHAR_TO_INDEX["b"])]
    for trial in range(12):
        t = int(rng.integers(1, 7))
        r = np.full((t, len(PACKED_CLASSES)), SCORE_FLOOR, np.float32)
        r[:, cls] = -rng.exponential(2.0, (t, 3))
        r -= r.max(axis=1, keepdims=True)
        sub = np.full_like(r, -np.inf)  # the brute force enumerates only the three classes
        sub[:, :3] = r[:, cls]
        for labels in ([1], [1, 2], [1, 1], [2, 1, 2]):
            want = _brute_force(labels, sub[:, :3])
            got = phrase_scores([cls[k] for k in labels], [r])[0]
            assert got == pytest.approx(want, abs=1e-6) if np.isfinite(want) else got == -np.inf, (
                trial,
                labels,
            )


def test_the_song_whose_best_path_spells_the_phrase_scores_zero_and_ranks_first():
    songs = ["the quick brown fox jumps over the lazy dog", "a slow red cat sleeps under the tall tree"]
    ratios = [unpack_posteriors(pack_posteriors(clean_posteriors(s))) for s in songs]
    scores = phrase_scores(phrase_labels("Brown fox, jumps!"), ratios)
    assert scores[0] == 0.0 and scores[1] < -20
    scores = phrase_scores(phrase_labels("under the tall"), ratios)
    assert scores[1] == 0.0 and scores[0] < -20
    # a phrase longer than a song cannot be aligned to it
    assert phrase_scores(phrase_labels("abc"), [ratios[0][:2]])[0] == -np.inf
    assert phrase_scores([], ratios).tolist() == [0.0, 0.0]
    # noisy posteriors (simulated confusions): the right song still ranks first
    rng = np.random.default_rng(1)
    noisy = [unpack_posteriors(pack_posteriors(simulate_posteriors(s, rng))) for s in songs]
    for phrase, k in (("quick brown fox", 0), ("the lazy dog", 0), ("sleeps under the", 1)):
        scores = phrase_scores(phrase_labels(phrase), noisy)
        assert scores[k] > scores[1 - k] + 5, phrase


def test_a_misheard_letter_costs_only_its_ratio():
    """The best path spells "wark" but "l" was 2 nats behind "r": "walk" scores -2, where the
    transcript alone sees one wrong letter."""
    r = clean_posteriors("wark", frames=4)
    r[8, CHAR_TO_INDEX["l"]] = -2.0
    ratio = unpack_posteriors(pack_posteriors(r))  # a ratio to the best class is a log-posterior
    assert phrase_scores(phrase_labels("walk"), [ratio])[0] == pytest.approx(-2.0)
    assert phrase_scores(phrase_labels("wark"), [ratio])[0] == 0.0
    assert phrase_scores(phrase_labels("wait"), [ratio])[0] <= -10


def test_packing_keeps_ratios_to_a_quantization_step_and_folds_punctuation():
    rng = np.random.default_rng(2)
    lp = simulate_posteriors("hello, world - again", rng, noise=0.7)
    ratio = unpack_posteriors(pack_posteriors(lp))
    assert ratio.shape == (len(lp), len(PACKED_CLASSES))
    assert np.all(ratio.max(axis=1) == 0.0)
    from singalign.decode import fold_punctuation

    want = fold_punctuation(lp)[:, PACKED_CLASSES]
    want = np.maximum(want - want.max(axis=1, keepdims=True), SCORE_FLOOR)
    assert np.max(np.abs(ratio - want)) <= PACK_STEP / 2 + 1e-6
    assert unpack_posteriors(b"").shape == (0, len(PACKED_CLASSES))
    assert unpack_posteriors(pack_posteriors(lp[:0])).shape == (0, len(PACKED_CLASSES))


def test_optional_spaces_equal_brute_force_over_every_spelling_without_them():
    """With ``optional_space``, a phrase scores as the best of its spellings with any of its word
    boundaries left out (a singer, or the model, running two words together)."""
    rng = np.random.default_rng(3)
    space = CHAR_TO_INDEX[" "]
    cls = [PACKED_CLASSES.index(i) for i in (BLANK_INDEX, CHAR_TO_INDEX["a"], CHAR_TO_INDEX["b"], space)]
    phrases = ([1, 3, 2], [1, 3, 1], [2, 3, 1, 3, 2])
    for trial in range(8):
        t = int(rng.integers(2, 7))
        r = np.full((t, len(PACKED_CLASSES)), SCORE_FLOOR, np.float32)
        r[:, cls] = -rng.exponential(2.0, (t, 4))
        r -= r.max(axis=1, keepdims=True)
        sub = r[:, cls]
        for labels in phrases:
            spaces = [k for k, c in enumerate(labels) if c == 3]
            want = -np.inf
            for drop in itertools.product([False, True], repeat=len(spaces)):
                kept = [c for k, c in enumerate(labels) if not (k in spaces and drop[spaces.index(k)])]
                want = max(want, _brute_force(kept, sub))
            got = phrase_scores([cls[k] for k in labels], [r], optional_space=True)[0]
            assert got == pytest.approx(want, abs=1e-6) if np.isfinite(want) else got == -np.inf, (
                trial,
                labels,
            )
            # without the option the spaces must be there
            strict = phrase_scores([cls[k] for k in labels], [r])[0]
            want_strict = _brute_force(labels, sub)
            assert (
                strict == pytest.approx(want_strict, abs=1e-6)
                if np.isfinite(want_strict)
                else strict == -np.inf
            )


def test_a_window_of_chunks_reads_only_its_chunks_and_equals_the_whole_songs_frames():
    import zlib

    rng = np.random.default_rng(4)
    lp = simulate_posteriors("the quick brown fox jumps over the lazy dog " * 4, rng)
    blob = pack_posteriors(lp)
    whole = unpack_posteriors(blob)
    n_chunks = -(-len(whole) // CHUNK_FRAMES)
    assert len(whole) == len(lp) > 5 * CHUNK_FRAMES and blob[0] == 2
    # format 1 (schema v4: one zlib stream) unpacks the same, and is cut into the same chunks
    q = np.round(whole / -PACK_STEP).astype(np.uint8)
    stream = bytes([1]) + zlib.compress(np.ascontiguousarray(q.T).tobytes(), 9)
    assert unpack_posteriors(stream).tobytes() == whole.tobytes() and chunk_packed(stream) == blob
    reads = []

    def read(offset, size):
        reads.append(size)
        return blob[offset : offset + size if size >= 0 else None]

    c = CHUNK_FRAMES
    for first, last in [(0, 1), (c - 3, c + 3), (2 * c, 3 * c), (-5, 10), (len(whole) - 4, len(whole) + 9),
                        (0, None), (7, 7), (len(whole) + 1, None)]:  # fmt: skip
        reads.clear()
        got, start = unpack_window(read, first, last)
        a = min(max(first, 0), len(whole))
        assert start == a and got.tobytes() == whole[a:last].tobytes(), (first, last)
        if last is not None and last - first <= c:  # at most two chunks of data read
            per_chunk = max(len(blob) / n_chunks, 1)
            assert sum(reads) < 7 + 4 * n_chunks + 3 * per_chunk
    assert unpack_window(read, 0, None)[0].tobytes() == whole.tobytes()
    assert (
        unpack_window(lambda o, n: stream[o : o + n if n >= 0 else None], 3, 9)[0].tobytes()
        == whole[3:9].tobytes()
    )
    with pytest.raises(ValueError):
        unpack_posteriors(bytes([9, 1, 2]))


def test_heard_frames_are_the_frames_of_the_best_path_letters():
    text = "walk  the Dog!"
    lp = clean_posteriors("walk the dog")  # each character on frame 3 i
    frames = heard_frames(match_text(text), unpack_posteriors(pack_posteriors(lp)))
    assert match_text(text) == b"walk the dog" and frames.tolist() == [3 * i for i in range(12)]
    # a letter heard that is not in the best path gets a frame between its neighbours'
    frames = heard_frames(b"walk thxe dog", unpack_posteriors(pack_posteriors(lp)))
    assert frames.tolist() == [0, 3, 6, 9, 12, 15, 18, 20, 21, 24, 27, 30, 33]
    # nothing in common: spread over the song; no frames: frame 0
    assert heard_frames(b"zzzz", unpack_posteriors(pack_posteriors(lp))).tolist() == [0, 9, 18, 27]
    assert heard_frames(b"ab", np.zeros((0, len(PACKED_CLASSES)), np.float32)).tolist() == [0, 0]
    assert len(heard_frames(b"", unpack_posteriors(pack_posteriors(lp)))) == 0
    f = np.array([0, 3, 3, 70000, 70001])
    assert unpack_frames(pack_frames(f)).tolist() == f.tolist() and len(unpack_frames(b"")) == 0


def test_a_window_holding_the_best_alignment_scores_as_the_whole_song():
    rng = np.random.default_rng(5)
    song = "oh yeah baby the night is cold hold me now river of light " * 3
    ratio = unpack_posteriors(pack_posteriors(simulate_posteriors(song, rng)))
    labels = phrase_labels("hold me now")
    full = phrase_scores(labels, [ratio])[0]
    # the best alignment's last frame: where the score of the phrase ending there is best
    ends = [phrase_scores(labels, [ratio[: t + 1]])[0] for t in range(0, len(ratio), 8)]
    assert np.isfinite(full) and max(ends) == full
    stop = 8 * int(np.argmax(ends)) + 1  # a prefix that holds it
    start = max(a for a in range(0, stop, 8) if phrase_scores(labels, [ratio[a:stop]])[0] == full)
    assert stop - start < len(ratio) / 4  # a short window holds it
    window = ratio[start:stop]
    assert phrase_scores(labels, [window, ratio])[0] == full
    # a window that cuts into it scores lower
    assert phrase_scores(labels, [ratio[start + 8 : stop]])[0] < full
