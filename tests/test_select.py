"""Data selection: planted pitch shifts are found, corrupted annotations are dropped."""

import numpy as np

from singalign import constants as C
from singalign.data.manifest import Note, Record
from singalign.data.targets import frame_targets
from singalign.select import best_shift, framewise_error, select_songs


def _song(i, notes):
    return Record(id=f"song{i}", corpus="test", kind="song", split="train", audio=f"/x/{i}.wav",
                  notes=tuple(Note(a, b, p) for a, b, p in notes))  # fmt: skip


def test_framewise_error_eq10():
    assert framewise_error(np.array([60, 60, 128, 61]), np.array([60, 61, 128, 61])) == 0.25


def test_planted_shift_is_found_and_corruption_dropped():
    rng = np.random.default_rng(0)
    true_notes = [(0.5 * k, 0.5 * k + 0.4, 55 + (k * 7) % 12) for k in range(20)]
    truth = frame_targets([Note(*n) for n in true_notes], 0.0, 700)[0]
    songs = [
        _song(0, true_notes),  # correct
        _song(1, [(a, b, p + 3) for a, b, p in true_notes]),  # annotated 3 semitones too high
        _song(2, [(a, b, p - 12) for a, b, p in true_notes]),  # an octave too low
        _song(3, [(a, b, int(rng.integers(40, 80))) for a, b, p in true_notes]),  # wrong melody
        _song(4, [(a + 0.25, b + 0.25, p) for a, b, p in true_notes]),  # misaligned in time by 250 ms
    ]
    kept, report = select_songs(songs, lambda r: truth, threshold=0.2)
    by_id = {s.id: s for s in report}
    assert by_id["song0"].shift == 0 and by_id["song0"].error == 0.0
    assert by_id["song1"].shift == -3 and by_id["song1"].error == 0.0
    assert by_id["song2"].shift == 12 and by_id["song2"].kept
    assert not by_id["song3"].kept and not by_id["song4"].kept
    assert [r.id for r in kept] == ["song0", "song1", "song2"]
    # the shift is stored and makes the targets right
    fixed = frame_targets(kept[1].notes, 0.0, 700, kept[1].pitch_shift)[0]
    assert np.array_equal(fixed, truth)


def test_all_no_pitch_prediction_keeps_shift_zero():
    ref = np.full(10, C.NO_PITCH)
    ref[2:5] = 60
    assert best_shift(np.full(10, C.NO_PITCH), ref)[0] == 0
