"""The paper's data selection (Section 4.1.1): find each song's global pitch offset and drop
songs whose annotations disagree with a pitch model.

For each song, a pitch model's framewise estimates are compared with the note annotations
shifted by -12..+12 semitones; the shift with the lowest framewise error rate
(1 - correct frames / total frames, Eq. 10) is the song's global pitch offset, and songs whose
error at that shift exceeds a threshold (50% in the paper) are dropped. The authors' code for
this step was never published; only its output table was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from singalign import constants as C
from singalign.data.manifest import Record

SHIFTS = tuple(range(-12, 13))


@dataclass(frozen=True)
class Selection:
    """The outcome for one song."""

    id: str
    shift: int  # semitones to add to the annotations
    error: float  # framewise error rate at that shift
    kept: bool
    errors: tuple[float, ...]  # error rate for each of SHIFTS


def framewise_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """1 - (frames where pred == ref) / frames (Eq. 10). Both (T,) pitch classes (128 = no pitch)."""
    n = min(len(pred), len(ref))
    if n == 0:
        return 1.0
    return float(np.mean(pred[:n] != ref[:n]))


def shifted(ref: np.ndarray, shift: int) -> np.ndarray:
    """``ref`` with pitched frames moved by ``shift`` semitones (out of MIDI range: -1, never correct)."""
    out = ref.copy()
    pitched = ref != C.NO_PITCH
    moved = ref[pitched] + shift
    out[pitched] = np.where((moved >= 0) & (moved < C.N_MIDI), moved, -1)
    return out


def best_shift(
    pred: np.ndarray, ref: np.ndarray, shifts: Iterable[int] = SHIFTS
) -> tuple[int, float, list[float]]:
    """The shift of ``ref`` that best matches ``pred``: (shift, its error, errors of all shifts).

    Ties go to the shift of smallest magnitude (then the negative one), so an unshifted song whose
    estimates are all no-pitch keeps shift 0.
    """
    shifts = list(shifts)
    errors = [framewise_error(pred, shifted(ref, s)) for s in shifts]
    k = min(range(len(shifts)), key=lambda i: (round(errors[i], 12), abs(shifts[i]), shifts[i]))
    return shifts[k], errors[k], errors


def select_songs(
    records: list[Record],
    predict: Callable[[Record], np.ndarray],
    threshold: float = 0.5,
) -> tuple[list[Record], list[Selection]]:
    """Run the selection over songs.

    Args:
        records: whole songs with notes (times absolute in the file).
        predict: returns the pitch model's framewise classes (T,) for a record's audio, frames from
            the start of the file at ``constants.FRAME_RATE``.
        threshold: drop songs whose best framewise error exceeds this.

    Returns:
        (kept records with ``pitch_shift`` set, one Selection per input record).
    """
    from singalign.data.targets import frame_targets

    kept, report = [], []
    for r in records:
        pred = predict(r)
        start = r.offset
        a = int(np.floor(start * float(C.FRAME_RATE) + 1e-6))
        ref, _ = frame_targets(r.notes, start, len(pred) - a, 0)
        shift, err, errors = best_shift(pred[a:], ref)
        ok = err <= threshold
        report.append(Selection(r.id, shift, err, ok, tuple(errors)))
        if ok:
            kept.append(dataclasses.replace(r, pitch_shift=r.pitch_shift + shift))
    return kept, report
