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


def test_planted_faults_are_all_caught_with_a_perfect_pitch_model():
    from singalign.select import fault_report, plant_faults

    songs = [
        _song(i, [(0.5 * k, 0.5 * k + 0.4, 50 + (k * (i + 3)) % 19) for k in range(20)]) for i in range(12)
    ]
    truth = {s.id: frame_targets(s.notes, 0.0, 700)[0] for s in songs}
    faulty, planted = plant_faults(songs, 0.5, seed=3)
    assert len(planted) == 6 and sorted(f for f, _ in planted.values()) == ["melody"] * 2 + ["shift"] * 2 + ["time"] * 2  # fmt: skip
    assert all(s != 0 for f, s in planted.values() if f == "shift")
    _, report = select_songs(faulty, lambda r: truth[r.id], threshold=0.5)
    caught = fault_report(report, planted)
    assert caught == {"clean": 1.0, "shift": 1.0, "melody": 1.0, "time": 1.0,
                      "n_clean": 6.0, "n_shift": 2.0, "n_melody": 2.0, "n_time": 2.0}  # fmt: skip
    # a selection that keeps everything unshifted fails every fault
    from singalign.select import Selection

    lazy = [Selection(s.id, 0, 0.0, True, ()) for s in report]
    assert fault_report(lazy, planted) == {**caught, "shift": 0.0, "melody": 0.0, "time": 0.0}
