"""Decoding with known answers: planted CTC posteriors, planted onset curves and pitch frames."""

from __future__ import annotations

import numpy as np
import pytest

from singalign import decode
from singalign.constants import BLANK_INDEX, CHAR_TO_INDEX, CTC_FRAME_RATE, FRAME_RATE, NO_PITCH, VOCAB
from singalign.decode import DecodeOptions
from singalign.errors import SingalignError
from singalign.lm import LMConfig, build_lm, kenlm_tool
from singalign.result import NoteEvent, WordTiming

V = len(VOCAB)
BACKENDS = ["pyctcdecode"] + (["flashlight"] if decode.flashlight_available() else [])


def planted(text: str, frames_per_char: int = 3, peak: float = 0.97) -> tuple[np.ndarray, list[int]]:
    """(T, 34) log-posteriors: each character peaks on the first of its frames, blanks elsewhere.

    Returns the posteriors and the frame where each character peaks.
    """
    rows, frames = [], []
    rest = (1 - peak) / (V - 1)
    for ch in text:
        for t in range(frames_per_char):
            row = np.full(V, rest)
            idx = CHAR_TO_INDEX[ch] if t == 0 else BLANK_INDEX
            row[idx] = peak
            if t == 0:
                frames.append(len(rows))
            rows.append(row)
    rows.append(np.eye(V)[BLANK_INDEX] * peak + rest)
    return np.log(np.array(rows, dtype=np.float64)).astype(np.float32), frames


CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog sat on the mat",
    "the light of the day",
    "the earth was without form",
    "and the spirit moved on the waters",
    "let there be light and there was light",
]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    try:
        kenlm_tool("lmplz")
    except SingalignError:
        pytest.skip("KenLM lmplz not built (make kenlm)")
    d = tmp_path_factory.mktemp("lm")
    text = d / "corpus.txt"
    text.write_text("\n".join(CORPUS * 3) + "\n")
    build_lm(text, d / "lm", LMConfig(order=3), progress=False)
    return d / "lm"


def test_options_round_trip_and_validation():
    o = DecodeOptions(method="greedy", alpha=0.5, lm_path="x")
    assert DecodeOptions.from_dict(o.to_dict()) == o
    with pytest.raises(SingalignError):
        DecodeOptions.from_dict({"alpah": 1.0})
    with pytest.raises(SingalignError):
        DecodeOptions(method="viterbi")


def test_greedy_decodes_planted_string_with_frames():
    text = "hello, world's"  # repeated letters, punctuation and an apostrophe
    lp, frames = planted(text)
    out, out_frames = decode.ctc_greedy(lp)
    assert out == text
    assert out_frames == frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_without_lm_decodes_planted_string(backend):
    lp, _ = planted("let there be light")
    assert decode.ctc_beam(lp, DecodeOptions(backend=backend)) == "let there be light"


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_folds_punctuation(backend):
    lp, _ = planted("light, day-time")
    assert decode.ctc_beam(lp, DecodeOptions(backend=backend)) == "light day time"


def test_lm_weight_zero_decodes_like_no_lm(tiny_lm):
    rng = np.random.default_rng(3)
    plain = DecodeOptions(backend="pyctcdecode")
    zero = DecodeOptions(backend="pyctcdecode", lm_path=str(tiny_lm), alpha=0.0, beta=0.0)
    weighted = DecodeOptions(backend="pyctcdecode", lm_path=str(tiny_lm))
    differs = 0
    for sentence in CORPUS + ["zebras quietly jump"]:  # includes words the LM does not know
        lp = decode.simulate_posteriors(sentence, rng)
        assert decode.ctc_beam(lp, zero) == decode.ctc_beam(lp, plain)
        differs += decode.ctc_beam(lp, weighted) != decode.ctc_beam(lp, plain)
    assert differs > 0  # the LM does something when weighted


@pytest.mark.parametrize("backend", BACKENDS)
def test_lm_resolves_acoustic_ambiguity(tiny_lm, backend):
    # The acoustic model prefers "cet" (e 0.55, a 0.40); the LM knows only "cat".
    lp, frames = planted("the cat sat")
    a_frame = frames[5]
    p = np.exp(lp[a_frame].astype(np.float64))
    p[CHAR_TO_INDEX["e"]], p[CHAR_TO_INDEX["a"]] = 0.55, 0.40
    lp[a_frame] = np.log(p / p.sum())
    assert decode.ctc_greedy(lp)[0] == "the cet sat"
    assert decode.ctc_beam(lp, DecodeOptions(backend=backend)) == "the cet sat"
    assert decode.ctc_beam(lp, DecodeOptions(backend=backend, lm_path=str(tiny_lm))) == "the cat sat"


def test_missing_lm_is_a_clear_error(tmp_path):
    lp, _ = planted("a")
    with pytest.raises(SingalignError, match="language model not found"):
        decode.ctc_beam(lp, DecodeOptions(lm_path=str(tmp_path / "nope.bin")))


def test_word_times_from_greedy_frames():
    lp, _ = planted("ab cd", frames_per_char=4)
    text, frames = decode.ctc_greedy(lp)
    words = decode.word_times(lp, text, frames, offset=10.0)
    rate = float(CTC_FRAME_RATE)
    # "ab": a at frame 0, b at 4 (one frame long); " " at 8; "cd": c at 12, d at 16.
    assert [w.word for w in words] == ["ab", "cd"]
    assert words[0].start == pytest.approx(10.0) and words[0].end == pytest.approx(10.0 + 5 / rate)
    assert words[1].start == pytest.approx(10.0 + 12 / rate) and words[1].end == pytest.approx(
        10.0 + 17 / rate
    )


def test_forced_alignment_finds_planted_words():
    lp, frames = planted("hello big world", frames_per_char=3)
    rate = float(CTC_FRAME_RATE)
    words = decode.forced_align_words(lp, "Héllo,  BIG world!")
    assert [w.word for w in words] == ["Héllo,", "BIG", "world!"]  # as written
    starts = [frames[0], frames[6], frames[10]]
    for w, s in zip(words, starts, strict=True):
        assert w.start == pytest.approx(s / rate)
    # each word ends after its last character's frame, before the next word starts
    assert words[0].end == pytest.approx((frames[4] + 1) / rate)


def test_forced_alignment_normalizes_digits_and_rejects_too_long_text():
    lp, _ = planted("two cats")
    words = decode.forced_align_words(lp, "2 cats")
    assert [w.word for w in words] == ["2", "cats"]
    with pytest.raises(SingalignError, match="too long"):
        decode.forced_align_words(lp[:5], "two cats")


def test_pick_onsets_planted_curve():
    p = np.zeros(40)
    p[5] = 0.9  # clear peak
    p[6] = 0.8  # neighbour of a larger peak: not an onset
    p[12] = 0.39  # below threshold
    p[20:24] = 0.7  # plateau: first frame only
    p[30], p[32] = 0.5, 0.6  # two frames apart: both (window +-1)
    assert decode.pick_onsets(p, 0.4, 1).tolist() == [5, 20, 30, 32]
    assert decode.pick_onsets(p, 0.4, 2).tolist() == [5, 20, 32]
    assert decode.pick_onsets(p, 0.4, 0).tolist() == [5, 6, 20, 21, 22, 23, 30, 32]
    assert decode.pick_onsets(np.zeros(0)).size == 0


def _pitch_frames(pitches: list[int]) -> np.ndarray:
    pp = np.full((len(pitches), NO_PITCH + 1), 0.001)
    pp[np.arange(len(pitches)), pitches] = 0.9
    return pp


def test_notes_from_planted_frames():
    pitches = [60] * 10 + [62] * 10 + [NO_PITCH] * 5 + [62] * 10
    notes = decode.notes_from_frames(_pitch_frames(pitches), [0, 30])
    r = float(FRAME_RATE)
    got = [(round(n.onset * r), round(n.offset * r), n.pitch) for n in notes]
    assert got == [(0, 10, 60), (10, 20, 62), (25, 30, 62), (30, 35, 62)]
    assert notes[0].onset == pytest.approx(0.0) and notes[0].offset == pytest.approx(10 / r)


def test_min_note_length_merges_jitter():
    # one frame of 61 inside a 60 note (no onset there) merges back; a lone short note drops
    pitches = [60] * 5 + [61] + [60] * 5 + [NO_PITCH] * 4 + [64] * 2 + [NO_PITCH] * 3
    notes = decode.notes_from_frames(_pitch_frames(pitches), [0], min_note_frames=3)
    r = float(FRAME_RATE)
    assert [(round(n.onset * r), round(n.offset * r), n.pitch) for n in notes] == [(0, 11, 60)]
    # without the option every segment is a note
    assert len(decode.notes_from_frames(_pitch_frames(pitches), [0])) == 4


def test_attach_lyrics_melisma_and_shared_notes():
    notes = [
        NoteEvent(0.0, 1.0, 60),
        NoteEvent(1.0, 2.0, 62),
        NoteEvent(2.0, 3.0, 64),
        NoteEvent(3.0, 4.0, 65),
    ]
    words = [
        WordTiming("love", 0.05, 1.9),  # melisma over notes 0 and 1
        WordTiming("to", 2.0, 2.3),  # two short words on note 2
        WordTiming("the", 2.35, 2.6),
        WordTiming("end", 5.0, 5.3),  # after every note: nearest within 0.5 s -> no (gap 1.0)
    ]
    out = decode.attach_lyrics(notes, words)
    assert [n.lyric for n in out] == ["love", "", "to the", ""]
    assert [n.lyric for n in decode.attach_lyrics(notes, words, continuation="_")] == [
        "love",
        "_",
        "to the",
        "",
    ]
    assert notes[0].lyric == ""  # inputs untouched
    near = decode.attach_lyrics(notes, [WordTiming("end", 4.2, 4.5)])
    assert [n.lyric for n in near] == ["", "", "", "end"]


def test_tune_lm_weights_picks_the_grid_minimum(tiny_lm):
    rng = np.random.default_rng(5)
    post = [decode.simulate_posteriors(s, rng) for s in CORPUS]
    rows = decode.tune_lm_weights(post, CORPUS, (0.0, 0.5), (0.0, 1.0), DecodeOptions(lm_path=str(tiny_lm)))
    assert {(r["alpha"], r["beta"]) for r in rows} == {(0.0, 0.0), (0.0, 1.0), (0.5, 0.0), (0.5, 1.0)}
    assert rows[0]["wer"] == min(r["wer"] for r in rows)
    no_lm = next(r for r in rows if r["alpha"] == 0.0 and r["beta"] == 0.0)
    assert rows[0]["wer"] < no_lm["wer"]  # an in-domain LM helps on these sentences


def _flickering_song():
    """Two true notes (frames 10-40 at MIDI 60, 50-90 at 64) as CRNN-1 might see them: a 2-frame
    pitch blip inside the first, a weaker onset peak (0.5) inside the second."""
    from singalign.metrics import midi_to_hz

    t = 100
    pitch = np.full(t, NO_PITCH)
    pitch[10:40], pitch[50:90], pitch[25:27] = 60, 64, 61
    pp = np.full((t, NO_PITCH + 1), 0.001, np.float32)
    pp[np.arange(t), pitch] = 1.0
    onset = np.zeros(t, np.float32)
    onset[[10, 50]], onset[70] = 0.9, 0.5
    rate = float(FRAME_RATE)
    return {
        "id": "song",
        "pitch_probs": pp,
        "onset_probs": onset,
        "duration": t / rate,
        "ref_intervals": np.array([[10, 40], [50, 90]]) / rate,
        "ref_hz": midi_to_hz(np.array([60.0, 64.0])),
    }


def test_note_tuning_finds_the_threshold_and_minimum_length_that_undo_the_flicker():
    from singalign.evaluate import item_note_scores, notes_grid_table, tune_notes

    item = _flickering_song()
    # the paper's decoding (0.4, no minimum): 2 blip notes + 1 split = 5 notes for 2, COnP P 2/5
    paper = item_note_scores(item, DecodeOptions())
    assert paper["COnP"]["recall"] == 1.0 and paper["COnP"]["precision"] == pytest.approx(2 / 5)
    result = tune_notes([item], DecodeOptions(), [0.6, 0.4], [4, 0], progress=False)
    assert (result["best"]["onset_threshold"], result["best"]["min_note_frames"]) == (0.6, 4)
    assert result["best"]["COnP"]["f"] == 1.0 and result["current"]["COnP"] == paper["COnP"]
    cells = {(g["onset_threshold"], g["min_note_frames"]): g["COnP"]["f"] for g in result["grid"]}
    assert cells[(0.4, 4)] < 1.0 and cells[(0.6, 0)] < 1.0  # each fault needs its own remedy
    assert (
        result["decode_options"]["onset_threshold"] == 0.6
        and result["decode_options"]["min_note_frames"] == 4
    )
    table = notes_grid_table(result["grid"])
    assert "100.00*" in table and table.count("*") == 1
    # the same decoding the Transcriber uses: notes past the duration are dropped
    notes = decode.notes_from_posteriors(
        item["pitch_probs"], item["onset_probs"], DecodeOptions(), duration=0.5
    )
    assert [n.pitch for n in notes] == [60, 61, 60] and notes[-1].offset == pytest.approx(0.5)
