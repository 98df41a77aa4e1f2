"""Frame targets for the pitch/onset network and token targets for CTC.

Pitch: one class per feature frame, ``round(midi + pitch_shift)`` clipped to 0..127, or
``NO_PITCH`` (128) where no note sounds. A note covers every frame that holds part of it: from
the frame containing its onset, ``floor((onset - start) * FRAME_RATE)`` (as the authors), to the
frame containing the last instant before its offset, ``ceil((offset - start) * FRAME_RATE) - 1``
(so a note ending exactly on a frame boundary does not spill into the next frame). Times within
``1e-6`` frame of a boundary count as on it, so float error in annotation times (``1.3 - 0.3``)
cannot move a note by a frame. Where notes overlap, the later-starting note wins (a new note
starts while the previous one is still held: the new one is what is being sung).

Onset: 1.0 at the frame containing each note's onset, 0.0 elsewhere; a note that started before
``start`` has no onset in this window. Zero-length notes are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from singalign.constants import FRAME_RATE, N_MIDI, NO_PITCH
from singalign.data.manifest import Note
from singalign.text import encode

#: Tolerance, in frames, for times that fall on a frame boundary up to float error.
_FRAME_EPS = 1e-6


def frame_targets(
    notes: Iterable[Note], start: float, n_frames: int, pitch_shift: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch classes and onset flags for ``n_frames`` frames beginning at ``start`` seconds.

    Args:
        notes: notes with absolute times (seconds) and MIDI pitch (fractional allowed).
        start: time of the first frame within the file (seconds), e.g. a segment's ``offset``.
        n_frames: number of frames.
        pitch_shift: semitones added to every note (the song's global offset from data selection).

    Returns:
        ``pitch``: int64 array of shape ``(n_frames,)``, values 0..127 or ``NO_PITCH``;
        ``onset``: float32 array of shape ``(n_frames,)``, 1.0 at note onsets.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, not {n_frames}")
    rate = float(FRAME_RATE)
    pitch = np.full(n_frames, NO_PITCH, dtype=np.int64)
    onset = np.zeros(n_frames, dtype=np.float32)
    # Stable sort: among notes starting together, the later one in the list wins.
    for note in sorted(notes, key=lambda n: n.onset):
        if not note.offset > note.onset:
            continue
        first = math.floor((note.onset - start) * rate + _FRAME_EPS)
        last = math.ceil((note.offset - start) * rate - _FRAME_EPS) - 1
        last = max(last, first)  # a note shorter than a frame still marks the frame it is in
        if last < 0 or first >= n_frames:
            continue
        cls = min(max(round(note.pitch + pitch_shift), 0), N_MIDI - 1)
        pitch[max(first, 0) : min(last, n_frames - 1) + 1] = cls
        if first >= 0:
            onset[first] = 1.0
    return pitch, onset


def transcript_ids(text: str) -> list[int]:
    """CTC target ids of a transcript (``singalign.text.encode``: normalized, no blanks)."""
    return encode(text)
