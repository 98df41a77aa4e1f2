"""The band: chords, bass and drums from the melody's harmony, rendered with FluidSynth.

The arrangement is a General MIDI file (``pretty_midi``) built on the melody's own clock (tempo
and swing), so the accompaniment and the voice agree to the sample. FluidSynth renders it with
the FluidR3 General MIDI soundfont (Debian: ``fluid-soundfont-gm``) at 44.1 kHz stereo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singalign.errors import SingalignError
from singalign.synth.melody import MAJOR_SCALE, MINOR_SCALE, Chord, Melody
from singalign.synth.styles import CRASH, INSTRUMENT_TAGS, Style

#: Where Debian's fluid-soundfont-gm installs its soundfont.
SOUNDFONT_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
SONG_RATE = 44_100
_PADS = {16, 19, 21, 48, 49, 88, 89, 90}


@dataclass(frozen=True)
class Band:
    """The instruments of one song (General MIDI programs; extra -1 for none)."""

    chords: int
    bass: int
    extra: int
    kit: int

    def tags(self) -> list[str]:
        names = [INSTRUMENT_TAGS[p] for p in (self.chords, self.extra, self.bass) if p >= 0]
        return list(dict.fromkeys([*names, "drums"]))


def soundfont() -> str:
    for path in SOUNDFONT_CANDIDATES:
        if os.path.exists(path):
            return path
    raise SingalignError(
        "no General MIDI soundfont: install the Debian package fluid-soundfont-gm (`make system-deps`)"
    )


def choose_band(rng: np.random.Generator, style: Style) -> Band:
    return Band(
        int(rng.choice(style.chord_programs)),
        int(rng.choice(style.bass_programs)),
        int(rng.choice(style.extra_programs)),
        style.kit,
    )


def _voicing(chord: Chord, low: int = 55) -> list[int]:
    """Chord tones stacked upwards from the first pitch >= ``low`` of the root's class."""
    root = low + (chord.root - low) % 12
    from singalign.synth.melody import QUALITIES

    return [root + i for i in QUALITIES[chord.quality]]


def _bass_note(pc: int) -> int:
    return 36 + (pc - 36) % 12  # C2..B2


def _figure(kind: str, meter: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(beat, duration) of chord hits within one bar."""
    eighths = [k * 0.5 for k in range(2 * meter)]
    if kind == "block":
        return [(b, 0.9) for b in range(meter)]
    if kind in ("pulse8", "power"):
        return [(b, 0.42) for b in eighths]
    if kind == "offbeat":
        return [(b + 0.5, 0.3) for b in range(meter)]
    if kind == "oompah":
        return [(b, 0.45) for b in range(1, meter)]
    if kind == "strum":
        pattern = [0, 1, 1.5, 2.5, 3, 3.5] if meter == 4 else [0, 1, 1.5, 2, 2.5]
        return [(b, 0.5) for b in pattern]
    if kind == "comp":
        options = (
            [(0, 0.5), (1.5, 1.0)],
            [(1, 0.5), (2.5, 0.8)],
            [(0, 1.5), (2.5, 0.5)],
            [(0.5, 0.4), (2, 1.0)],
        )
        return options[int(rng.integers(len(options)))]
    if kind == "bossa":
        return [(0, 0.4), (0.75, 0.4), (1.5, 0.4), (2.5, 0.4), (3.25, 0.6)]
    if kind == "pad":
        return [(0, meter - 0.05)]
    return [(b, 0.9) for b in range(meter)]


def arrange(melody: Melody, style: Style, band: Band, rng: np.random.Generator):  # -> pretty_midi.PrettyMIDI
    """The accompaniment as a MIDI file in the melody's tempo and key."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=melody.bpm)
    comp = pretty_midi.Instrument(band.chords)
    bass = pretty_midi.Instrument(band.bass)
    drums = pretty_midi.Instrument(band.kit, is_drum=True)
    extra = pretty_midi.Instrument(max(band.extra, 0))
    m = melody.meter
    scale = MAJOR_SCALE if melody.major else MINOR_SCALE
    vocal_bars = {int(n.onset // m) for n in melody.notes}
    line_starts = {b for b, _ in melody.line_bars}
    last = melody.n_bars - 1

    def add(inst, pitch: int, beat: float, dur: float, vel: int) -> None:
        start = float(melody.seconds(beat))
        end = float(melody.seconds(beat + dur))
        vel = int(np.clip(vel + rng.integers(-6, 7), 1, 127))
        inst.notes.append(pretty_midi.Note(vel, int(pitch), start, max(end, start + 0.03)))

    for bar, chord in enumerate(melody.chords):
        b0 = bar * m
        if bar == last:  # the final chord, held
            for p in _voicing(chord):
                add(comp, p, b0, m, 70)
            add(bass, _bass_note(chord.root), b0, m, 90)
            add(drums, CRASH, b0, 1, 80)
            add(drums, 36, b0, 1, 90)
            continue
        fig = "arpeggio" if style.comp == "arpeggio" else style.comp
        if fig == "arpeggio":
            tones = _voicing(chord, 52)
            seq = [*tones, tones[0] + 12, *tones[::-1][1:-1]]
            for k in range(2 * m):
                add(comp, seq[k % len(seq)], b0 + 0.5 * k, 0.9, 62)
        else:
            voicing = _voicing(chord)
            if fig == "power":
                voicing = [
                    _bass_note(chord.root) + 12,
                    _bass_note(chord.root) + 19,
                    _bass_note(chord.root) + 24,
                ]
            for beat, dur in _figure(fig, m, rng):
                for j, p in enumerate(voicing):
                    strum = 0.03 * j if fig == "strum" else 0.0
                    add(comp, p, b0 + beat + strum, dur, 66 if beat % 1 == 0 else 58)
        # Bass.
        root = _bass_note(chord.root)
        fifth = root + 7 if root + 7 <= 52 else root - 5
        nxt = melody.chords[bar + 1] if bar + 1 < len(melody.chords) else chord
        if style.bass == "root":
            add(bass, root, b0, m / 2, 88)
            add(bass, root, b0 + m / 2, m / 2 - 0.1, 80)
        elif style.bass == "root8":
            for k in range(2 * m):
                add(bass, root, b0 + 0.5 * k, 0.45, 92 if k % 2 == 0 else 78)
        elif style.bass == "rootfifth":
            add(bass, root, b0, 0.9, 92)
            if m == 4:
                add(bass, fifth, b0 + 2, 0.9, 85)
        elif style.bass == "walking":
            target = _bass_note(nxt.root)
            tones = [root, root + (4 if chord.quality in ("maj", "7", "maj7") else 3), root + 7]
            walk = [*tones[: m - 1], target + (1 if rng.random() < 0.5 else -1)]
            for k, p in enumerate(walk[:m]):
                add(bass, p, b0 + k, 0.9, 85)
        elif style.bass == "octave":
            for k in range(2 * m):
                add(bass, root + (12 if k % 2 else 0), b0 + 0.5 * k, 0.4, 95 if k % 2 else 75)
        elif style.bass == "reggae":
            add(bass, root, b0, 1.4, 95)
            add(bass, fifth, b0 + 2.5, 0.4, 85)
            add(bass, root, b0 + 3, 0.8, 85)
        elif style.bass == "bossa":
            add(bass, root, b0, 1.4, 88)
            add(bass, fifth, b0 + 1.5, 0.4, 80)
            add(bass, fifth, b0 + 2, 1.4, 85)
            add(bass, root, b0 + 3.5, 0.4, 80)
        # Drums.
        for note, hits in style.drums[m].items():
            if note == CRASH and bar not in line_starts:
                continue
            for step, vel in hits:
                add(drums, note, b0 + step * 0.25, 0.2, vel)
        # Extra part: pads under everything, melodic instruments only where nobody sings.
        if band.extra >= 0:
            if band.extra in _PADS:
                for p in _voicing(chord, 60):
                    add(extra, p, b0, m - 0.05, 48)
            elif bar not in vocal_bars:
                tones = [p for p in range(67, 84) if (p - melody.tonic) % 12 in scale]
                cur = int(rng.integers(len(tones)))
                for k in range(m):
                    cur = int(np.clip(cur + rng.choice([-2, -1, 1, 2]), 0, len(tones) - 1))
                    pitch = tones[cur]
                    if k == 0:  # start on a chord tone
                        pitch = min(_voicing(chord, 67), key=lambda q: abs(q - pitch))
                    add(extra, pitch, b0 + k, 0.9, 72)
    # Reverb send (CC91) per channel: more for slow and soft styles.
    for inst in (comp, bass, drums, extra):
        inst.control_changes.append(pretty_midi.ControlChange(91, int(rng.integers(20, 60)), 0.0))
    pm.instruments.extend([i for i in (comp, bass, drums, extra) if i.notes])
    return pm


def render(pm, seconds: float, sample_rate: int = SONG_RATE) -> np.ndarray:  # pm: pretty_midi.PrettyMIDI
    """Render a MIDI file with FluidSynth; returns float32 (samples, 2), exactly ``seconds`` long."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise SingalignError("fluidsynth is not installed (`make system-deps`)")
    # Chorus off and a polyphony cap make rendering about a quarter faster; neither is audible
    # on these arrangements.
    with tempfile.TemporaryDirectory(prefix="singalign-fs-") as tmp:
        mid, wav = Path(tmp) / "a.mid", Path(tmp) / "a.wav"
        pm.write(str(mid))
        cmd = [
            "fluidsynth",
            "-ni",
            "-q",
            "-C",
            "0",
            "-o",
            "synth.polyphony=64",
            "-g",
            "0.5",
            "-r",
            str(sample_rate),
            "-F",
            str(wav),
            "-T",
            "wav",
            soundfont(),
            str(mid),
        ]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or not wav.exists():
            raise SingalignError(f"fluidsynth failed: {proc.stderr.decode()[-300:].strip()}")
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    n = int(round(seconds * sample_rate))
    out = np.zeros((n, 2), dtype=np.float32)
    out[: min(n, len(audio))] = audio[:n, :2] if audio.shape[1] >= 2 else np.repeat(audio[:n], 2, axis=1)
    return out
