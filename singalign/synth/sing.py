"""A singing voice: eSpeak NG words re-synthesized onto the melody (pitch-synchronous overlap-add).

Every lyric word is spoken once by eSpeak NG on one constant pitch, with its phoneme timings.
Its phonemes are grouped into syllables (one vowel each); each syllable is then placed on its
note(s):

* the syllable's leading obstruents (``s``, ``t``, ``b``, ...) are sung just *before* the note,
  as singers do, and are never stretched;
* the note's onset label is where the sonorant part (nasals, liquids, glides and the vowel)
  begins, i.e. where the sung pitch begins; the vowel is stretched (its steady middle) to hold
  the note, and through every note of a melisma;
* trailing obstruents follow the voiced part; the note's offset label is where voicing ends.

The new pitch comes from TD-PSOLA: two-period Hann grains cut around the glottal pulses of the
monotone source are laid down at the periods of the target contour (note pitch, a little
per-note drift, vibrato on held notes), so the F0 follows the labels exactly while the formants
(the words) stay eSpeak's. Labels are computed from the very numbers that place the audio, so
they are true to it by construction; the tests check them with a pitch tracker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singalign.errors import SingalignError
from singalign.synth.melody import Melody
from singalign.synth.voice import ESPEAK_RATE, Phoneme, espeak, espeak_f0

SR = ESPEAK_RATE
_VOWEL_START = tuple("aAeEiIoOuUV03@y")
_SONORANT_START = tuple("mnNlrwj")


class LyricsError(SingalignError):
    """A lyric word that the voice cannot sing (e.g. eSpeak gives it no vowel)."""


def is_vowel(symbol: str) -> bool:
    return symbol.startswith(_VOWEL_START)


def is_sonorant(symbol: str) -> bool:
    """Vowels, nasals, liquids, glides and the flap: the phonemes that carry a clear pitch."""
    return is_vowel(symbol) or symbol.startswith(_SONORANT_START) or symbol == "t#"


@dataclass(frozen=True)
class Syllable:
    """Phoneme index ranges of one syllable within its word: [start, son_start, v0, v1, son_end, end)."""

    start: int
    son_start: int
    vowel: int
    son_end: int
    end: int


@dataclass(frozen=True)
class WordTake:
    """One word spoken by the monotone voice: audio, phonemes, syllables, pulse marks."""

    word: str
    audio: np.ndarray  # (samples,) float32 at SR
    phonemes: tuple[Phoneme, ...]
    syllables: tuple[Syllable, ...]
    marks: np.ndarray  # (n_marks,) sample positions of glottal pulses


def syllabify(phonemes: list[Phoneme] | tuple[Phoneme, ...]) -> list[Syllable]:
    """Group phonemes into syllables around vowels.

    Between two vowels one consonant starts the next syllable; of two or more, the first ends the
    previous syllable and the rest start the next one.
    """
    nuclei = [i for i, p in enumerate(phonemes) if is_vowel(p.symbol)]
    if not nuclei:
        return []
    bounds = [0]
    for a, b in zip(nuclei, nuclei[1:], strict=False):
        n_cons = b - a - 1
        bounds.append(b - n_cons + (1 if n_cons >= 2 else 0))
    bounds.append(len(phonemes))
    out = []
    for k, v in enumerate(nuclei):
        start, end = bounds[k], bounds[k + 1]
        son_start = v
        while son_start > start and is_sonorant(phonemes[son_start - 1].symbol):
            son_start -= 1
        son_end = v + 1
        while son_end < end and is_sonorant(phonemes[son_end].symbol):
            son_end += 1
        out.append(Syllable(start, son_start, v, son_end, end))
    return out


def pulse_marks(audio: np.ndarray, period: float) -> np.ndarray:
    """Glottal pulse positions of a monotone signal: energy peaks tracked one period apart."""
    width = max(3, int(period / 4))
    energy = np.convolve(audio.astype(np.float64) ** 2, np.hanning(width), mode="same")
    floor = 1e-4 * float(energy.max() or 1.0)
    marks = [int(np.argmax(energy[: int(period) + 1]))]
    lo_off, hi_off = int(0.8 * period), int(1.2 * period) + 1
    n = len(audio)
    while True:
        pos = marks[-1]
        lo, hi = pos + lo_off, min(n, pos + hi_off)
        if lo >= n:
            break
        seg = energy[lo:hi]
        marks.append(lo + int(np.argmax(seg)) if seg.max() > floor else pos + int(round(period)))
    return np.asarray(marks, dtype=np.int64)


def take_word(word: str, voice_name: str, pitch: int, rate: int) -> WordTake:
    """Speak ``word`` on one pitch and analyse it; raises LyricsError if it has no vowel."""
    audio, phonemes = espeak().synth(word, voice_name, pitch=pitch, rate=rate, monotone=True)
    syllables = syllabify(phonemes)
    if not syllables:
        raise LyricsError(f"the voice {voice_name} gives the word {word!r} no vowel")
    period = SR / espeak_f0(voice_name, pitch)
    return WordTake(word, audio, tuple(phonemes), tuple(syllables), pulse_marks(audio, period))


def orthographic_syllables(word: str, n: int) -> list[str]:
    """Split the spelling of ``word`` into ``n`` pieces at vowel groups (for DALI note texts)."""
    if n <= 1:
        return [word]
    groups = [i for i, c in enumerate(word) if c in "aeiouy" and (i == 0 or word[i - 1] not in "aeiouy")]
    if len(groups) >= n:
        cuts = []
        for g_prev, g in zip(groups[: n - 1], groups[1:n], strict=False):
            end_prev = g_prev
            while end_prev < len(word) and word[end_prev] in "aeiouy":
                end_prev += 1
            n_cons = g - end_prev
            cuts.append(g - n_cons + (1 if n_cons >= 2 else 0))
    else:
        cuts = [round(len(word) * k / n) for k in range(1, n)]
    pieces = [word[a:b] for a, b in zip([0, *cuts], [*cuts, len(word)], strict=False)]
    return [p if p else word for p in pieces]


@dataclass(frozen=True)
class SingerStyle:
    """Expressive settings of one singer (drawn per song)."""

    vibrato_cents: float = 30.0
    vibrato_hz: float = 5.5
    drift_cents: float = 6.0
    rate_wpm: int = 140


@dataclass(frozen=True)
class SungNote:
    onset: float
    offset: float
    midi: int
    text: str
    word: int


@dataclass(frozen=True)
class SungWord:
    text: str
    start: float
    end: float
    line: int


@dataclass(frozen=True)
class Performance:
    """The sung vocal and its exact labels (seconds from the song start)."""

    audio: np.ndarray  # (samples,) float32 at SR
    notes: tuple[SungNote, ...]
    words: tuple[SungWord, ...]


def _vowel_map(o0: float, o1: float, s0: float, s1: float) -> list[tuple[float, float]]:
    """Breakpoints mapping output span [o0, o1] onto source span [s0, s1], stretching the middle."""
    src_edge = 0.3 * (s1 - s0)
    out_edge = min(src_edge, 0.3 * (o1 - o0))
    return [(o0, s0), (o0 + out_edge, s0 + src_edge), (o1 - out_edge, s1 - src_edge), (o1, s1)]


def sing(
    melody: Melody,
    lines: list[list[str]],
    voice_name: str,
    pitch: int,
    singer: SingerStyle,
    rng: np.random.Generator,
    takes: dict[str, WordTake] | None = None,
) -> Performance:
    """Sing ``lines`` (lists of words) on ``melody``; syllables are numbered as in the melody.

    Raises:
        LyricsError: when the words' syllable count differs from the melody's or a word has no vowel.
    """
    takes = {} if takes is None else takes
    words = [w for line in lines for w in line]
    word_line = [li for li, line in enumerate(lines) for _ in line]
    for w in words:
        if w not in takes:
            takes[w] = take_word(w, voice_name, pitch, singer.rate_wpm)
    # Syllable table: (word index, syllable within word).
    table = [(wi, k) for wi, w in enumerate(words) for k in range(len(takes[w].syllables))]
    notes_of: list[list] = [[] for _ in table]
    for note in melody.notes:
        if note.syllable >= len(table):
            raise LyricsError("the melody has more syllables than the lyrics")
        notes_of[note.syllable].append(note)
    if any(not n for n in notes_of):
        raise LyricsError("the lyrics have more syllables than the melody")

    source_period = SR / espeak_f0(voice_name, pitch)
    half = int(round(source_period))
    window = np.hanning(2 * half + 1)

    def secs(beat: float) -> float:
        return float(melody.seconds(beat))

    n_syl = len(table)
    onsets = [[secs(n.onset) for n in notes] for notes in notes_of]
    ends = [secs(notes[-1].onset + notes[-1].duration) for notes in notes_of]
    # Source durations (s) of each syllable's parts.
    parts = []
    for wi, k in table:
        tk = takes[words[wi]]
        s = tk.syllables[k]
        ph = tk.phonemes
        t = [ph[s.start].start, ph[s.son_start].start, ph[s.vowel].start, ph[s.vowel].end]
        t += [ph[s.son_end - 1].end, ph[s.end - 1].end]
        parts.append(np.asarray(t, dtype=np.float64) / SR)
    # Pass 1: lead-in obstruents before each note, never more than 40% of the previous note.
    pre = np.zeros(n_syl)
    for i in range(n_syl):
        natural = parts[i][1] - parts[i][0]
        room = onsets[i][0] - (onsets[i - 1][-1] if i else onsets[i][0] - 1.0)
        pre[i] = min(natural, 0.12, 0.4 * room)
    # Pass 2: end of voicing (offset label) and trailing obstruents.
    post = np.zeros(n_syl)
    voiced_end = np.zeros(n_syl)
    for i in range(n_syl):
        post[i] = min(parts[i][5] - parts[i][4], 0.10)
        limit = ends[i] if i == n_syl - 1 else min(ends[i], onsets[i + 1][0] - pre[i + 1])
        min_voiced = max(0.06, 0.6 * (ends[i] - onsets[i][0]))
        if limit - post[i] - onsets[i][0] < min_voiced:
            post[i] = max(0.0, limit - onsets[i][0] - min_voiced)
        voiced_end[i] = max(onsets[i][0] + 0.04, min(ends[i], limit - post[i]))
        if i < n_syl - 1 and voiced_end[i] + post[i] > onsets[i + 1][0] - pre[i + 1]:
            pre[i + 1] = max(0.0, onsets[i + 1][0] - voiced_end[i] - post[i])

    total = melody.duration_seconds + 1.0
    out = np.zeros(int(total * SR) + 4 * half + 8, dtype=np.float64)
    sung_notes: list[SungNote] = []
    word_start: dict[int, float] = {}
    word_end: dict[int, float] = {}
    prev_midi: int | None = None
    prev_release = -1.0
    for i, (wi, k) in enumerate(table):
        tk = takes[words[wi]]
        notes = notes_of[i]
        p = parts[i]
        a, e = onsets[i][0], voiced_end[i]
        t0, t1 = a - pre[i], e + post[i]
        voiced = e - a
        son_on = min(p[2] - p[1], 0.3 * voiced, 0.5 * (onsets[i][1] - a) if len(notes) > 1 else 1.0)
        son_off = min(p[4] - p[3], 0.25 * voiced)
        bp = [(t0, p[0]), (a, p[1]), (a + son_on, p[2])]
        bp += _vowel_map(a + son_on, e - son_off, p[2], p[3])[1:]
        bp += [(e, p[4]), (t1, p[5])]
        bp_out = np.maximum.accumulate(np.array([b[0] for b in bp]))
        bp_src = np.array([b[1] for b in bp])
        # Target pitch (MIDI, fractional) as a function of output time.
        midis = np.array([n.midi for n in notes], dtype=np.float64)
        drift = rng.normal(0.0, singer.drift_cents, size=len(notes)).clip(-15, 15) / 100.0
        starts = np.array(onsets[i])
        lead_midi = prev_midi if (prev_midi is not None and t0 - prev_release < 0.05) else notes[0].midi

        def target(t: float, midis=midis, drift=drift, starts=starts, lead_midi=lead_midi, a=a, e=e) -> float:
            if t < a:
                return float(lead_midi)
            j = int(np.searchsorted(starts, t, side="right")) - 1
            m = midis[j] + drift[j]
            if j + 1 < len(starts) and starts[j + 1] - t < 0.015:  # melisma glide, centred on the boundary
                m += (midis[j + 1] + drift[j + 1] - m) * (0.015 - (starts[j + 1] - t)) / 0.03
            elif j > 0 and t - starts[j] < 0.015:
                prev = midis[j - 1] + drift[j - 1]
                m = prev + (m - prev) * (0.5 + (t - starts[j]) / 0.03)
            note_end = starts[j + 1] if j + 1 < len(starts) else e
            age = t - starts[j]
            if note_end - starts[j] > 0.35 and age > 0.15:
                depth = singer.vibrato_cents / 100.0 * min(1.0, (age - 0.15) / 0.2)
                m += depth * np.sin(2 * np.pi * singer.vibrato_hz * age)
            return m

        # Output pitch marks and the source pulse each one copies.
        t = t0
        marks_out = []
        periods = []
        while t < t1:
            f0 = 440.0 * 2 ** ((target(t) - 69) / 12)
            marks_out.append(t)
            periods.append(SR / f0)
            t += 1.0 / f0
        if not marks_out:
            continue
        marks_out = np.asarray(marks_out)
        src_t = np.interp(marks_out, bp_out, bp_src) * SR
        idx = np.clip(np.searchsorted(tk.marks, src_t), 1, len(tk.marks) - 1)
        left = tk.marks[idx - 1]
        right = tk.marks[idx]
        src_marks = np.where(src_t - left < right - src_t, left, right)
        padded = np.pad(tk.audio.astype(np.float64), (half, half))
        offs = np.arange(-half, half + 1)
        grains = padded[(src_marks + half)[:, None] + offs[None, :]] * window[None, :]
        # Level: fewer grains per second at low pitch, more at high; keep loudness steady.
        gain = np.sqrt(np.asarray(periods) / source_period)
        ramp_in = np.clip((marks_out - t0) / 0.008, 0, 1)
        ramp_out = np.clip((t1 - marks_out) / 0.015, 0, 1)
        grains *= (gain * ramp_in * ramp_out)[:, None]
        pos = np.round(marks_out * SR).astype(np.int64) + 2 * half
        out += np.bincount(
            (pos[:, None] + offs[None, :]).ravel(), weights=grains.ravel(), minlength=len(out)
        )[: len(out)]
        texts = orthographic_syllables(words[wi], len(tk.syllables))
        for j, n in enumerate(notes):
            if j > 0 and onsets[i][j] >= e - 0.02:
                break  # voicing ended before this melisma note: it is not sung, so it gets no label
            off = min(onsets[i][j + 1], e) if j + 1 < len(notes) else e
            sung_notes.append(SungNote(onsets[i][j], off, n.midi, texts[k], wi))
        word_start.setdefault(wi, t0)
        word_end[wi] = t1
        prev_midi = notes[-1].midi
        prev_release = t1
    audio = out[2 * half : 2 * half + int(total * SR)].astype(np.float32)
    sung_words = tuple(SungWord(w, word_start[i], word_end[i], word_line[i]) for i, w in enumerate(words))
    return Performance(audio, tuple(sung_notes), sung_words)
