"""Musical styles: tempo, meter, drum pattern, instruments and accompaniment figures.

Each style decides things a listener (and a tagger) can hear: its tempo range, its drum groove,
its instruments (General MIDI programs rendered by FluidSynth), how chords are played and how the
bass moves. Styles are split into a ``"train"`` and a ``"heldout"`` pool only by name lists given
on the command line (``--styles``); every style is available to every split by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from singalign.errors import SingalignError

#: General MIDI programs (0-based) and the tag a listener would use for each.
INSTRUMENT_TAGS: dict[int, str] = {
    0: "piano", 4: "electric piano", 5: "electric piano", 11: "vibraphone", 16: "organ",
    21: "accordion", 22: "harmonica", 24: "acoustic guitar", 25: "acoustic guitar",
    26: "electric guitar", 27: "electric guitar", 29: "distorted guitar", 30: "distorted guitar",
    32: "upright bass", 33: "bass guitar", 34: "bass guitar", 35: "fretless bass",
    38: "synth bass", 39: "synth bass", 40: "violin", 48: "strings", 49: "strings",
    56: "trumpet", 61: "brass", 65: "saxophone", 66: "saxophone", 71: "clarinet", 73: "flute",
    81: "synth lead", 88: "synth pad", 89: "synth pad", 90: "synth pad", 105: "banjo",
}  # fmt: skip

# Drum notes (General MIDI percussion key map).
KICK, RIM, SNARE, CLAP, HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, TAMB, SHAKER = (
    36,
    37,
    38,
    39,
    42,
    44,
    46,
    49,
    51,
    54,
    70,
)


@dataclass(frozen=True)
class Style:
    """A musical style.

    Attributes:
        name: the genre tag.
        bpm: tempo range (inclusive).
        meters: beats per bar that the style may use (quarter-note beats).
        swing: 0 for straight eighths, 1/3 for a triplet (shuffle) feel.
        kit: General MIDI drum-kit program (0 standard, 8 room, 16 power, 24/25 electronic, 32 jazz, 40 brush).
        drums: per meter, drum note -> list of (step, velocity) on a 16th-note grid of one bar.
        chord_programs / bass_programs / extra_programs: instrument choices (one of each per song;
            extra is an optional pad or lead line, -1 for none).
        comp: chord figure: ``block`` (chords on beats), ``pulse8`` (eighths), ``arpeggio``,
            ``strum`` (down-up strums), ``offbeat`` (reggae skank), ``comp`` (jazz stabs),
            ``bossa``, ``oompah`` (waltz/country beats 2, 3, 4), ``power`` (power-chord eighths),
            ``pad`` (sustained).
        bass: bass figure: ``root``, ``root8``, ``rootfifth``, ``walking``, ``octave``, ``reggae``, ``bossa``.
        chords: ``triad``, ``seventh`` or ``power``.
        p_major: probability of a major key.
        reverb: reverb amount range for the vocal (0..1 wet).
    """

    name: str
    bpm: tuple[int, int]
    meters: tuple[int, ...]
    swing: float
    kit: int
    drums: dict[int, dict[int, list[tuple[int, int]]]]
    chord_programs: tuple[int, ...]
    bass_programs: tuple[int, ...]
    extra_programs: tuple[int, ...]
    comp: str
    bass: str
    chords: str = "triad"
    p_major: float = 0.6
    reverb: tuple[float, float] = (0.0, 0.2)
    notes_per_beat: tuple[int, ...] = field(default=(2,))


def _steps(*pairs: tuple[int, int]) -> list[tuple[int, int]]:
    return list(pairs)


def _every(start: int, step: int, n: int, vel: int) -> list[tuple[int, int]]:
    return [(s, vel) for s in range(start, n, step)]


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "pop", (96, 124), (4,), 0.0, 0,
            {4: {KICK: _steps((0, 100), (8, 95), (10, 70)), SNARE: _steps((4, 100), (12, 100)), HAT: _every(0, 2, 16, 70)}},
            (0, 4, 27, 88), (33, 34), (88, 48, -1), "pulse8", "root8",
        ),
        Style(
            "rock", (112, 150), (4,), 0.0, 16,
            {4: {KICK: _steps((0, 115), (6, 90), (8, 110)), SNARE: _steps((4, 120), (12, 120)),
                 OPEN_HAT: _every(0, 2, 16, 85), CRASH: _steps((0, 80))}},
            (29, 30), (34,), (16, -1), "power", "root8", chords="power", p_major=0.5,
        ),
        Style(
            "folk", (84, 116), (4, 3), 0.0, 8,
            {4: {KICK: _steps((0, 70), (8, 60)), RIM: _steps((4, 60), (12, 60)), SHAKER: _every(0, 2, 16, 50)},
             3: {KICK: _steps((0, 70)), RIM: _steps((4, 55), (8, 55)), SHAKER: _every(0, 2, 12, 45)}},
            (25, 24), (32, 33), (105, 22, 21, -1), "strum", "rootfifth", p_major=0.7, reverb=(0.05, 0.25),
        ),
        Style(
            "ballad", (60, 78), (4,), 0.0, 8,
            {4: {KICK: _steps((0, 75)), RIM: _steps((8, 70)), HAT: _every(0, 4, 16, 45)}},
            (0, 4), (33, 35), (48, 49, 89), "arpeggio", "root", p_major=0.5, reverb=(0.15, 0.35),
        ),
        Style(
            "jazz", (100, 160), (4,), 1 / 3, 32,
            {4: {RIDE: _steps((0, 80), (4, 85), (6, 65), (8, 80), (12, 85), (14, 65)),
                 PEDAL_HAT: _steps((4, 70), (12, 70)), KICK: _steps((0, 45))}},
            (0, 26, 11), (32,), (65, 66, -1), "comp", "walking", chords="seventh", p_major=0.6, reverb=(0.1, 0.3),
        ),
        Style(
            "reggae", (70, 92), (4,), 0.0, 0,
            {4: {KICK: _steps((8, 110)), RIM: _steps((8, 90)), HAT: _every(0, 2, 16, 60)}},
            (27, 16), (33, 38), (16, -1), "offbeat", "reggae", p_major=0.55,
        ),
        Style(
            "electronic", (120, 132), (4,), 0.0, 25,
            {4: {KICK: _steps((0, 120), (4, 120), (8, 120), (12, 120)), CLAP: _steps((4, 100), (12, 100)),
                 OPEN_HAT: _steps((2, 80), (6, 80), (10, 80), (14, 80)), HAT: _every(1, 2, 16, 45)}},
            (81, 90), (38, 39), (88, 89), "pulse8", "octave", p_major=0.5,
        ),
        Style(
            "country", (96, 132), (4,), 0.0, 0,
            {4: {KICK: _steps((0, 90), (8, 85)), SNARE: _steps((4, 80), (12, 80)), HAT: _every(0, 2, 16, 55)}},
            (25, 105), (33, 32), (22, 40, -1), "oompah", "rootfifth", p_major=0.85,
        ),
        Style(
            "blues", (68, 100), (4,), 1 / 3, 0,
            {4: {KICK: _steps((0, 90), (8, 80)), SNARE: _steps((4, 90), (12, 90)), HAT: _every(0, 2, 16, 65)}},
            (26, 16, 0), (33,), (22, 65, -1), "comp", "walking", chords="seventh", p_major=0.7, reverb=(0.05, 0.25),
        ),
        Style(
            "bossa nova", (120, 144), (4,), 0.0, 0,
            {4: {RIM: _steps((0, 70), (6, 70), (12, 70)), KICK: _steps((0, 70), (6, 55), (8, 70), (14, 55)),
                 SHAKER: _every(0, 1, 16, 40)}},
            (24,), (32, 33), (73, 48, -1), "bossa", "bossa", chords="seventh", p_major=0.5, reverb=(0.05, 0.2),
        ),
        Style(
            "waltz", (90, 150), (3,), 0.0, 8,
            {3: {KICK: _steps((0, 80)), RIM: _steps((4, 55), (8, 55)), HAT: _every(0, 4, 12, 40)}},
            (0, 21, 48), (32, 33), (40, 73, -1), "oompah", "root", p_major=0.6, reverb=(0.1, 0.3),
        ),
    )
}  # fmt: skip


def tempo_class(bpm: float) -> str:
    """``slow`` (< 90 BPM), ``medium tempo`` (90-119) or ``fast`` (>= 120)."""
    return "slow" if bpm < 90 else ("medium tempo" if bpm < 120 else "fast")


def mood_of(major: bool, bpm: float) -> str:
    """A mood tied to what is audible: mode and tempo (happy, calm, sad, tense)."""
    if major:
        return "happy" if bpm >= 100 else "calm"
    return "tense" if bpm >= 100 else "sad"


def select_styles(names: list[str] | None) -> list[Style]:
    """Styles named in ``names`` (all when None); unknown names are an error."""
    if not names:
        return list(STYLES.values())
    unknown = [n for n in names if n not in STYLES]
    if unknown:
        raise SingalignError(f"unknown style(s) {', '.join(unknown)}; known: {', '.join(STYLES)}")
    return [STYLES[n] for n in names]
