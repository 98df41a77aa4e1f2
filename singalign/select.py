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


FAULTS = ("shift", "melody", "time")


def plant_faults(
    records: list[Record], fraction: float, seed: int = 0
) -> tuple[list[Record], dict[str, tuple[str, int]]]:
    """Corrupt the annotations of a share of ``records``, to check the selection catches them.

    Each chosen record gets one fault, in turn: ``shift`` (every note moved by a nonzero number of
    semitones in -12..12: selection must find the opposite shift and keep the song), ``melody``
    (every pitch replaced by a random one: must be dropped) or ``time`` (notes 300 ms late: must
    be dropped).

    Returns:
        (records with the faults, {record id: (fault, planted shift or 0)}).
    """
    rng = np.random.default_rng(seed)
    n = int(round(fraction * len(records)))
    chosen = sorted(rng.choice(len(records), size=n, replace=False).tolist()) if n else []
    out, planted = list(records), {}
    for k, i in enumerate(chosen):
        r = records[i]
        fault = FAULTS[k % len(FAULTS)]
        shift = 0
        if fault == "shift":
            shift = int(rng.choice([s for s in SHIFTS if s != 0]))
            notes = [dataclasses.replace(x, pitch=x.pitch + shift) for x in r.notes]
        elif fault == "melody":
            notes = [dataclasses.replace(x, pitch=float(rng.integers(40, 80))) for x in r.notes]
        else:
            notes = [dataclasses.replace(x, onset=x.onset + 0.3, offset=x.offset + 0.3) for x in r.notes]
        out[i] = dataclasses.replace(r, notes=tuple(notes))
        planted[r.id] = (fault, shift)
    return out, planted


def fault_report(report: list[Selection], planted: dict[str, tuple[str, int]]) -> dict[str, float]:
    """How well the selection caught planted faults: shares of each kind handled correctly.

    A ``shift`` fault is caught when the song is kept with the opposite shift; ``melody`` and
    ``time`` faults when the song is dropped; a clean song is handled correctly when kept with
    shift 0.
    """
    ok: dict[str, list[bool]] = {"clean": [], **{f: [] for f in FAULTS}}
    for s in report:
        fault, shift = planted.get(s.id, ("clean", 0))
        if fault == "shift":
            ok[fault].append(s.kept and s.shift == -shift)
        elif fault == "clean":
            ok[fault].append(s.kept and s.shift == 0)
        else:
            ok[fault].append(not s.kept)
    return {k: (float(np.mean(v)) if v else float("nan")) for k, v in ok.items()} | {
        f"n_{k}": float(len(v)) for k, v in ok.items()
    }
