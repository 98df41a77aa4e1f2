"""Harmony and melody: a key, a chord progression, and a sung line per lyric line.

Times here are in beats (quarter notes) from the start of the song; :meth:`Melody.seconds`
converts them (tempo and swing) so the melody and the accompaniment share one clock.

A lyric line becomes one phrase of 1, 2 or 4 bars: its syllables are set to notes on an eighth-note
grid (sixteenths for dense lines at slow tempi), some syllables get a melisma (2-3 notes), the last
note of the line is held, and a rest of at least one beat closes the phrase. Pitches walk the
scale with steps, skips and a few leaps, land on chord tones on strong beats, stay inside the
voice's range, and the song ends on the tonic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: Chord qualities as intervals above the root.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "5": (0, 7, 12),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "m7": (0, 3, 7, 10), "m7b5": (0, 3, 6, 10),
}  # fmt: skip

# Progressions as (scale degree 0-6, quality) per bar.
_MAJOR_PROGS = (
    ((0, "maj"), (4, "maj"), (5, "min"), (3, "maj")),
    ((0, "maj"), (3, "maj"), (4, "maj"), (3, "maj")),
    ((5, "min"), (3, "maj"), (0, "maj"), (4, "maj")),
    ((0, "maj"), (5, "min"), (3, "maj"), (4, "maj")),
    ((0, "maj"), (3, "maj"), (0, "maj"), (4, "maj")),
    ((0, "maj"), (2, "min"), (3, "maj"), (4, "maj")),
)
_MINOR_PROGS = (
    ((0, "min"), (5, "maj"), (2, "maj"), (6, "maj")),
    ((0, "min"), (3, "min"), (4, "maj"), (0, "min")),
    ((0, "min"), (6, "maj"), (5, "maj"), (6, "maj")),
    ((0, "min"), (3, "min"), (6, "maj"), (2, "maj")),
    ((0, "min"), (5, "maj"), (3, "min"), (4, "maj")),
)
_SEVENTH = {"maj": "maj7", "min": "m7", "dim": "m7b5"}
_BLUES_MAJOR = ((0, "7"),) * 4 + ((3, "7"),) * 2 + ((0, "7"),) * 2 + ((4, "7"), (3, "7"), (0, "7"), (4, "7"))
_JAZZ_MAJOR = (((1, "m7"), (4, "7"), (0, "maj7"), (0, "maj7")), ((0, "maj7"), (5, "m7"), (1, "m7"), (4, "7")))
_JAZZ_MINOR = (((0, "m7"), (3, "m7"), (4, "7"), (0, "m7")), ((0, "m7"), (5, "maj7"), (1, "m7b5"), (4, "7")))


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class (0 = C) and quality (a key of :data:`QUALITIES`)."""

    root: int
    quality: str

    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in QUALITIES[self.quality])

    @property
    def name(self) -> str:
        suffix = {"maj": "", "min": "m", "5": "5"}.get(self.quality, self.quality)
        return NOTE_NAMES[self.root] + suffix


@dataclass(frozen=True)
class MelodyNote:
    """A sung note: onset and duration in beats, MIDI pitch, and the syllable it carries."""

    onset: float
    duration: float
    midi: int
    syllable: int
    line: int


@dataclass(frozen=True)
class Melody:
    """The song's clock, harmony and vocal line."""

    bpm: float
    meter: int
    swing: float
    tonic: int
    major: bool
    chords: tuple[Chord, ...]  # one per bar
    notes: tuple[MelodyNote, ...]
    line_bars: tuple[tuple[int, int], ...]  # (first bar, number of bars) per lyric line

    @property
    def n_bars(self) -> int:
        return len(self.chords)

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {'major' if self.major else 'minor'}"

    def seconds(self, beat: float | np.ndarray) -> float | np.ndarray:
        """Time in seconds of a beat position (swing delays off-beat eighths)."""
        beat = np.asarray(beat, dtype=np.float64)
        whole = np.floor(beat)
        frac = beat - whole
        mid = 0.5 + self.swing / 2
        frac = np.where(frac < 0.5, frac * (mid / 0.5), mid + (frac - 0.5) * ((1 - mid) / 0.5))
        out = (whole + frac) * 60.0 / self.bpm
        return float(out) if out.ndim == 0 else out

    @property
    def duration_seconds(self) -> float:
        return float(self.seconds(self.n_bars * self.meter))


def progression(
    rng: np.random.Generator, tonic: int, major: bool, chords: str, style_name: str
) -> list[Chord]:
    """A 4- or 12-bar chord progression in the key."""
    scale = MAJOR_SCALE if major else MINOR_SCALE
    if style_name == "blues" and major:
        degrees = _BLUES_MAJOR
    elif chords == "seventh" and style_name == "jazz":
        options = _JAZZ_MAJOR if major else _JAZZ_MINOR
        degrees = options[rng.integers(len(options))]
    else:
        options = _MAJOR_PROGS if major else _MINOR_PROGS
        degrees = options[rng.integers(len(options))]
    out = []
    for degree, quality in degrees:
        if chords == "seventh" and quality in _SEVENTH and style_name != "blues":
            quality = "7" if (degree == 4 and quality == "maj") else _SEVENTH[quality]
        if chords == "power":
            quality = "5"
        out.append(Chord((tonic + scale[degree]) % 12, quality))
    return out


def _scale_pitches(tonic: int, major: bool, lo: int, hi: int) -> np.ndarray:
    scale = MAJOR_SCALE if major else MINOR_SCALE
    return np.array([p for p in range(lo, hi + 1) if (p - tonic) % 12 in scale])


def _rhythm(rng: np.random.Generator, n_notes: int, slots: int, weights: np.ndarray) -> np.ndarray:
    """Split ``slots`` grid units among ``n_notes`` notes (each >= 1), favouring ``weights``."""
    dur = np.ones(n_notes, dtype=int)
    extra = slots - n_notes
    if extra > 0:
        p = weights / weights.sum()
        dur += np.bincount(rng.choice(n_notes, size=extra, p=p), minlength=n_notes)
    return dur


def compose(
    rng: np.random.Generator,
    *,
    style_name: str,
    chords_kind: str,
    bpm: float,
    meter: int,
    swing: float,
    tonic: int,
    major: bool,
    vocal_range: tuple[int, int],
    line_syllables: list[int],
    paragraph_breaks: set[int],
    intro_bars: int,
    melisma_rate: float = 0.12,
) -> Melody:
    """Compose the melody for lines of ``line_syllables[i]`` syllables.

    Args:
        vocal_range: lowest and highest MIDI note the voice may sing.
        paragraph_breaks: line indices that start a new paragraph (an instrumental bar before them).
        intro_bars: bars of accompaniment before the first line.
        melisma_rate: probability that a syllable is sung on 2-3 notes.
    """
    prog = progression(rng, tonic, major, chords_kind, style_name)
    beat_s = 60.0 / bpm
    lo, hi = vocal_range
    pitches = _scale_pitches(tonic, major, lo, hi)
    notes: list[MelodyNote] = []
    line_bars: list[tuple[int, int]] = []
    bar = intro_bars
    syllable = 0
    cur = int(pitches[len(pitches) // 2])
    for li, n_syl in enumerate(line_syllables):
        if li in paragraph_breaks and li > 0:
            bar += 1
        # Melismas: extra notes on some syllables (never more than the line can hold).
        extra_notes = [int(rng.random() < melisma_rate) * (1 + int(rng.random() < 0.3)) for _ in range(n_syl)]
        n_notes = n_syl + sum(extra_notes)
        # Phrase length: about 0.22-0.45 s per note plus a rest, rounded to 1, 2 or 4 bars.
        want_beats = (n_notes * rng.uniform(0.24, 0.45)) / beat_s + 1.5
        n_bars = min((1, 2, 4), key=lambda b: abs(b * meter - want_beats) + (0.5 if b == 1 else 0.0))
        while True:
            rest_beats = 1.0 if n_bars * meter <= 4 else float(rng.choice([1.0, 1.5, 2.0]))
            avail = n_bars * meter - rest_beats
            unit = 0.5 if avail * 2 >= n_notes else 0.25
            if avail / unit >= n_notes and unit * beat_s >= 0.12:
                break
            if n_bars >= 4:  # a very dense line at a fast tempo: drop melismas, then squeeze
                extra_notes = [0] * n_syl
                n_notes = n_syl
                if avail / unit >= n_notes:
                    break
                unit = avail / n_notes
                break
            n_bars *= 2
        start = bar * meter + (0.5 if rng.random() < 0.2 else 0.0)  # sometimes a late entry
        slots = int(round((bar * meter + avail - start) / unit))
        weights = np.ones(n_notes)
        weights[-1] = 4.0  # hold the line's last note
        durations = _rhythm(rng, n_notes, slots, weights)
        onsets = start + unit * np.concatenate([[0], np.cumsum(durations)[:-1]])
        # Pitches: arc up then down, chord tones on strong beats.
        owner = [s for s, e in enumerate(extra_notes) for _ in range(1 + e)]
        for k in range(n_notes):
            onset = float(onsets[k])
            chord = prog[int(onset // meter) % len(prog)]
            tones = chord.pitch_classes()
            strong = abs(onset % (meter / (2 if meter == 4 else 1))) < 1e-9
            is_melisma = k > 0 and owner[k] == owner[k - 1]
            direction = 1 if k < n_notes * 0.55 else -1
            idx = int(np.argmin(np.abs(pitches - cur)))
            if is_melisma:
                step = int(rng.choice([-1, 1]))
            else:
                step = int(rng.choice([0, 1, 1, 1, 2, 2, 3, -1, -1, -2])) * direction
            idx = int(np.clip(idx + step, 0, len(pitches) - 1))
            if (strong or k == n_notes - 1) and not is_melisma:
                candidates = [p for p in pitches if p % 12 in tones]
                if k == n_notes - 1 and li == len(line_syllables) - 1:
                    candidates = [p for p in pitches if p % 12 == tonic] or candidates
                if candidates:
                    cur = int(min(candidates, key=lambda p: (abs(p - pitches[idx]), p)))
                else:
                    cur = int(pitches[idx])
            else:
                cur = int(pitches[idx])
            notes.append(MelodyNote(onset, float(durations[k] * unit), cur, syllable + owner[k], li))
        syllable += n_syl
        line_bars.append((bar, n_bars))
        bar += n_bars
    total_bars = bar + 1  # an outro bar
    chords = [prog[b % len(prog)] for b in range(total_bars)]
    chords[-1] = Chord(tonic, "maj" if major else "min") if chords_kind != "power" else Chord(tonic, "5")
    return Melody(bpm, meter, swing, tonic, major, tuple(chords), tuple(notes), tuple(line_bars))
