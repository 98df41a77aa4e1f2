"""Frame targets (pitch classes, onsets) and transcript ids with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from singalign.constants import NO_PITCH
from singalign.data.manifest import Note
from singalign.data.targets import frame_targets, transcript_ids


def _frames_of(pitch: np.ndarray, value: int) -> list[int]:
    return np.flatnonzero(pitch == value).tolist()


def test_one_note_known_frames() -> None:
    pitch, onset = frame_targets([Note(1.0, 1.5, 69.0)], start=0.0, n_frames=200)
    assert pitch.dtype == np.int64 and onset.dtype == np.float32
    assert pitch.shape == onset.shape == (200,)
    # 1.0 s * 62.5 = 62.5 -> frame 62; 1.5 s * 62.5 = 93.75 -> last frame 93.
    assert _frames_of(pitch, 69) == list(range(62, 94))
    assert _frames_of(pitch, NO_PITCH) == list(range(62)) + list(range(94, 200))
    assert np.flatnonzero(onset).tolist() == [62] and onset[62] == 1.0


def test_window_start_shifts_frames() -> None:
    pitch, onset = frame_targets([Note(1.0, 1.5, 69.0)], start=0.5, n_frames=100)
    # (1.0 - 0.5) * 62.5 = 31.25 -> 31; (1.5 - 0.5) * 62.5 = 62.5 -> 62.
    assert _frames_of(pitch, 69) == list(range(31, 63)) and np.flatnonzero(onset).tolist() == [31]


def test_offset_on_a_frame_boundary_and_float_error() -> None:
    # A note from frame 10's start to frame 20's start covers frames 10..19, even when the times
    # carry float error (0.3 + 0.16 - 0.3 is not exactly 0.16).
    start = 0.3
    pitch, onset = frame_targets([Note(start + 0.16, start + 0.32, 60.0)], start=start, n_frames=40)
    assert _frames_of(pitch, 60) == list(range(10, 20)) and np.flatnonzero(onset).tolist() == [10]


def test_overlap_later_start_wins_and_shift_rounding_clipping() -> None:
    notes = [Note(1.5, 1.8, 64.0), Note(1.0, 2.0, 60.0)]  # out of order on purpose
    pitch, onset = frame_targets(notes, start=0.0, n_frames=130)
    # 60 on 62..124 except where 64 (frames 93..112, 1.8 * 62.5 = 112.5) overrides it.
    assert _frames_of(pitch, 64) == list(range(93, 113))
    assert _frames_of(pitch, 60) == list(range(62, 93)) + list(range(113, 125))
    assert np.flatnonzero(onset).tolist() == [62, 93]

    pitch, _ = frame_targets([Note(0.0, 0.1, 69.0)], 0.0, 10, pitch_shift=-12)
    assert pitch[0] == 57
    for midi, expected in ((69.4, 69), (69.6, 70), (130.0, 127), (-3.0, 0)):
        pitch, _ = frame_targets([Note(0.0, 0.1, midi)], 0.0, 10)
        assert pitch[0] == expected


def test_notes_crossing_the_window() -> None:
    notes = [Note(-1.0, 0.1, 50.0), Note(1.9, 3.0, 55.0), Note(5.0, 6.0, 70.0), Note(0.5, 0.5, 80.0)]
    pitch, onset = frame_targets(notes, start=0.0, n_frames=125)  # 2 s window
    assert _frames_of(pitch, 50) == list(range(0, 7))  # 0.1 * 62.5 = 6.25 -> last frame 6
    assert _frames_of(pitch, 55) == list(range(118, 125))  # 1.9 * 62.5 = 118.75
    assert 70 not in pitch and 80 not in pitch  # beyond the window; zero length
    assert np.flatnonzero(onset).tolist() == [118]  # the first note began before the window
    short_pitch, short_onset = frame_targets([Note(1.0, 1.001, 62.0)], 0.0, 100)
    assert _frames_of(short_pitch, 62) == [62] and short_onset[62] == 1.0
    empty_pitch, empty_onset = frame_targets([], 0.0, 0)
    assert empty_pitch.shape == empty_onset.shape == (0,)
    with pytest.raises(ValueError):
        frame_targets([], 0.0, -1)


def test_transcript_ids_known() -> None:
    # VOCAB: blank 0, space 1, a 2 ... z 27, then , . ? ! - '  (28..33)
    assert transcript_ids("Hi!") == [9, 10, 31]
    assert transcript_ids("GO DO") == [8, 16, 1, 5, 16]
    assert transcript_ids("") == []
