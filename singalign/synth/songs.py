"""Synthetic songs with exact ground truth, written in the DALI and JamendoLyrics layouts.

One song: a style (tempo, meter, groove, instruments), a key and mode, a voice (eSpeak timbre,
voice type and range), a run of consecutive lyric lines from the public-domain text, a melody
setting them, the sung vocal (:mod:`singalign.synth.sing`), the band (FluidSynth), and a mix at a
chosen vocal-to-accompaniment ratio. Everything random comes from ``numpy`` generators seeded by
``(seed, index)``, so a song does not depend on which worker made it or on ``--n``.

Output folder (see :mod:`singalign.synth.layouts` for the formats)::

    DIR/dali/<id>.gz, DIR/dali/<id>.mp3
    DIR/jamendo/{mp3,lyrics,annotations/words,annotations/lines}/..., DIR/jamendo/JamendoLyrics.csv
    DIR/notes/<id>.txt
    DIR/stems/<id>/{vocals,accompaniment,mixture}.flac     (mixture = vocals + accompaniment, exactly)
    DIR/songs/<id>.json                                    (all labels; written last: the "done" mark)
    DIR/metadata.jsonl                                     (one line per song)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singalign.errors import SingalignError
from singalign.files import write_json, write_jsonl
from singalign.synth.text import SplitDefaults

log = logging.getLogger(__name__)

#: Voice types: gender and the MIDI range a song's melody may use (a 12-semitone window of it).
VOICE_TYPES: dict[str, tuple[str, int, int]] = {
    "baritone": ("male", 45, 64),  # A2-E4
    "tenor": ("male", 50, 67),  # D3-G4
    "alto": ("female", 55, 72),  # G3-C5
    "soprano": ("female", 60, 77),  # C4-F5
}
TESSITURA = 12


@dataclass(frozen=True)
class SongConfig(SplitDefaults):
    """Knobs of a song set (defaults: 20-40 s songs, every style, clearly audible vocals).

    Attributes:
        split: split name written into the metadata (``train``, ``dev``, ``test``, ...).
        text_portion: ``train`` or ``heldout`` text; None: ``train`` for splits starting with
            "train", else ``heldout``.
        voice_pool: ``train``, ``heldout`` or ``all`` voices; None: as ``text_portion``.
        voices: fnmatch patterns of eSpeak voices (``en-us+f*``); None: the whole pool.
        voice_types: subset of :data:`VOICE_TYPES`; None: all.
        styles: style names; None: all (see :mod:`singalign.synth.styles`).
        seconds: song length range.
        vocal_level_db: range of the vocal-to-accompaniment ratio (dB, where the voice sings).
        reverb_probability: chance of reverb on the vocal.
        vocab_size: lyrics use only the K most frequent words (:mod:`singalign.synth.text`).
        melisma_rate: chance that a syllable is sung on 2-3 notes.
    """

    split: str = "train"
    text_portion: str | None = None
    voice_pool: str | None = None
    voices: tuple[str, ...] | None = None
    voice_types: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    seconds: tuple[float, float] = (20.0, 40.0)
    vocal_level_db: tuple[float, float] = (0.0, 6.0)
    reverb_probability: float = 0.5
    vocab_size: int | None = 2000
    melisma_rate: float = 0.12

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SongConfig:
        d = dict(d)
        for key in ("voices", "voice_types", "styles", "seconds", "vocal_level_db"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def validate(self) -> None:
        """Raise SingalignError naming the first bad setting."""
        from singalign.synth.styles import select_styles
        from singalign.synth.text import PORTIONS
        from singalign.synth.voice import VOICE_POOLS

        if not self.split or "/" in self.split or self.split.startswith("."):
            raise SingalignError(f"bad split name {self.split!r}")
        if self.portion not in PORTIONS[:2]:
            raise SingalignError(f"text portion must be train or heldout, not {self.portion!r}")
        if self.pool not in VOICE_POOLS:
            raise SingalignError(f"voice pool must be one of {', '.join(VOICE_POOLS)}, not {self.pool!r}")
        lo, hi = self.seconds
        if not 8 <= lo <= hi <= 600:
            raise SingalignError(f"song length must satisfy 8 <= min <= max <= 600 seconds, not {lo}-{hi}")
        if self.vocal_level_db[0] > self.vocal_level_db[1] or abs(self.vocal_level_db[0]) > 30:
            raise SingalignError(f"bad vocal level range {self.vocal_level_db} (dB, min <= max, within +-30)")
        unknown = [t for t in self.voice_types or () if t not in VOICE_TYPES]
        if unknown:
            raise SingalignError(
                f"unknown voice type(s) {', '.join(unknown)}; known: {', '.join(VOICE_TYPES)}"
            )
        if not 0 <= self.reverb_probability <= 1 or not 0 <= self.melisma_rate <= 1:
            raise SingalignError("reverb probability and melisma rate must be within 0..1")
        select_styles(list(self.styles) if self.styles else None)
        self.timbres()  # raises when no voice matches

    def timbres(self) -> list[tuple[str, str]]:
        from singalign.synth.voice import espeak_timbres, filter_timbres

        return filter_timbres(espeak_timbres(self.pool), list(self.voices) if self.voices else None)


def song_id(split: str, seed: int, index: int) -> str:
    return f"{split}-{seed}-{index:05d}"


def _plan_lines(rng, lines, n_lines: int):
    start = int(rng.integers(0, max(1, len(lines) - 4 * n_lines)))
    return lines[start:]


def make_song(seed: int, index: int, cfg: SongConfig) -> dict[str, Any]:
    """Compose, sing, arrange and mix one song; returns its labels and audio (not written)."""
    import soxr

    from singalign.synth import accompaniment as acc
    from singalign.synth import melody as mel
    from singalign.synth import mixing
    from singalign.synth.sing import LyricsError, SingerStyle, sing, take_word
    from singalign.synth.styles import mood_of, select_styles, tempo_class
    from singalign.synth.text import lyric_lines
    from singalign.synth.voice import ESPEAK_RATE, pitch_setting_for

    rng = np.random.default_rng([seed, index])
    style = select_styles(list(cfg.styles) if cfg.styles else None)
    style = style[int(rng.integers(len(style)))]
    meter = int(rng.choice(style.meters))
    bpm = int(rng.integers(style.bpm[0], style.bpm[1] + 1))
    major = bool(rng.random() < style.p_major)
    tonic = int(rng.integers(12))
    types = list(cfg.voice_types or VOICE_TYPES)
    timbres = cfg.timbres()
    for _ in range(20):
        vtype = types[int(rng.integers(len(types)))]
        gender, lo, hi = VOICE_TYPES[vtype]
        candidates = [t for t in timbres if t[1] == gender]
        if candidates:
            break
    else:
        raise SingalignError("no voice of the requested types in the voice pool")
    voice_name = candidates[int(rng.integers(len(candidates)))][0]
    low = int(rng.integers(lo, hi - TESSITURA + 1))
    vocal_range = (low, low + TESSITURA)
    center_hz = 440.0 * 2 ** ((low + TESSITURA / 2 - 69) / 12)
    pitch = pitch_setting_for(voice_name, center_hz)
    singer = SingerStyle(
        vibrato_cents=float(rng.uniform(15, 40)),
        vibrato_hz=float(rng.uniform(4.8, 6.2)),
        drift_cents=float(rng.uniform(2, 8)),
        rate_wpm=int(rng.integers(120, 170)),
    )
    target = float(rng.uniform(*cfg.seconds))
    beat = 60.0 / bpm
    intro_bars = 1 if meter * beat * 2 > 5 else 2
    pool = lyric_lines(cfg.portion, cfg.vocab_size)
    if not pool:
        raise SingalignError("no lyric lines with this vocabulary")
    start = int(rng.integers(len(pool)))
    takes: dict = {}
    chosen: list[list[str]] = []
    k = start
    # Take consecutive lines until the song would be long enough (about 2 bars a line).
    est_line = 2 * meter * beat
    while len(chosen) < 2 or (len(chosen) + 1) * est_line + (intro_bars + 1.5) * meter * beat < target:
        words = list(pool[k % len(pool)].words)
        k += 1
        try:
            for w in words:
                if w not in takes:
                    takes[w] = take_word(w, voice_name, pitch, singer.rate_wpm)
        except LyricsError:
            continue
        chosen.append(words)
        if k - start > 200:
            break
    for _ in range(len(chosen) + 12):
        per_para = int(rng.choice([2, 4]))
        breaks = set(range(0, len(chosen), per_para))
        nsyl = [sum(len(takes[w].syllables) for w in line) for line in chosen]
        melody = mel.compose(
            rng,
            style_name=style.name,
            chords_kind=style.chords,
            bpm=bpm,
            meter=meter,
            swing=style.swing,
            tonic=tonic,
            major=major,
            vocal_range=vocal_range,
            line_syllables=nsyl,
            paragraph_breaks=breaks,
            intro_bars=intro_bars,
            melisma_rate=cfg.melisma_rate,
        )
        too_short = melody.duration_seconds < cfg.seconds[0] and k - start < 200
        if too_short:  # phrases came out shorter than estimated: one more line
            words = list(pool[k % len(pool)].words)
            k += 1
            try:
                for w in words:
                    if w not in takes:
                        takes[w] = take_word(w, voice_name, pitch, singer.rate_wpm)
                chosen.append(words)
            except LyricsError:
                pass
            continue
        if melody.duration_seconds <= cfg.seconds[1] or len(chosen) <= 2:
            break
        chosen = chosen[:-1]
    perf = sing(melody, chosen, voice_name, pitch, singer, rng, takes)
    band = acc.choose_band(rng, style)
    seconds = melody.duration_seconds + 0.5
    accomp = acc.render(acc.arrange(melody, style, band, rng), seconds)
    use_reverb = bool(rng.random() < cfg.reverb_probability)
    wet = float(rng.uniform(*style.reverb)) if use_reverb else 0.0
    rt60 = float(rng.uniform(0.4, 1.4))
    # Reverb at the voice's own rate (half the work), then up to the song rate.
    vocals = mixing.reverb(perf.audio, ESPEAK_RATE, rng, wet, rt60)
    vocals = soxr.resample(vocals, ESPEAK_RATE, acc.SONG_RATE).astype(np.float32)
    n = len(accomp)
    vocals = np.pad(vocals, (0, max(0, n - len(vocals))))[:n]
    mask = np.zeros(n, dtype=bool)
    for w in perf.words:
        mask[int(w.start * acc.SONG_RATE) : int(w.end * acc.SONG_RATE)] = True
    var_db = float(rng.uniform(*cfg.vocal_level_db))
    vq, aq, mq, figures = mixing.mix(vocals, accomp, mask, var_db)

    # Labels.
    line_para = {}
    para = -1
    for li in range(len(chosen)):
        if li in breaks:
            para += 1
        line_para[li] = para
    words = [
        {"word": w.text, "start": round(w.start, 6), "end": round(w.end, 6), "line": w.line}
        for w in perf.words
    ]
    lines = []
    for li, line in enumerate(chosen):
        ws = [w for w in words if w["line"] == li]
        lines.append(
            {
                "text": " ".join(line),
                "start": ws[0]["start"],
                "end": ws[-1]["end"],
                "paragraph": line_para[li],
            }
        )
    notes = [
        {
            "onset": round(x.onset, 6),
            "offset": round(x.offset, 6),
            "pitch": x.midi,
            "text": x.text,
            "word": x.word,
        }
        for x in perf.notes
    ]
    sid = song_id(cfg.split, seed, index)
    mood = mood_of(major, bpm)
    tags = [
        style.name,
        *band.tags(),
        tempo_class(bpm),
        mood,
        f"{gender} vocal",
        vtype,
        "major key" if major else "minor key",
    ]
    if use_reverb and wet > 0.15:
        tags.append("reverb")
    caption = _caption(rng, style.name, band.tags(), bpm, mood, gender, vtype, melody.key_name)
    return {
        "id": sid,
        "split": cfg.split,
        "seed": seed,
        "index": index,
        "tags": tags,
        "caption": caption,
        "lyrics": "\n".join(ln["text"] for ln in lines),
        "bpm": bpm,
        "meter": meter,
        "key": melody.key_name,
        "style": style.name,
        "voice": {
            "engine": "espeak",
            "name": voice_name,
            "gender": gender,
            "type": vtype,
            "pitch": pitch,
            "range": list(vocal_range),
        },
        "instruments": {"chords": band.chords, "bass": band.bass, "extra": band.extra, "kit": band.kit},
        "chords": [c.name for c in melody.chords],
        "reverb": {"wet": round(wet, 3), "rt60": round(rt60, 3)},
        "mix": {"target_vocal_to_accompaniment_db": round(var_db, 2), **figures},
        "duration": round(n / acc.SONG_RATE, 6),
        "sample_rate": acc.SONG_RATE,
        "text_portion": cfg.portion,
        "artist": f"singalign {voice_name}",
        "title": lines[0]["text"].title(),
        "lines": lines,
        "words": words,
        "notes": notes,
        "_audio": (vq, aq, mq),
    }


def _caption(rng, style, instruments, bpm, mood, gender, vtype, key) -> str:
    inst = ", ".join(instruments[:-1]) + f" and {instruments[-1]}" if len(instruments) > 1 else instruments[0]
    article = "An" if mood[0] in "aeiou" else "A"
    templates = (
        f"{article} {mood} {style} song in {key} at {bpm} BPM with {inst}, sung by a {gender} {vtype} voice.",
        f"A {gender} {vtype} sings a {mood} {style} tune in {key} over {inst}, {tempo_word(bpm)} at {bpm} BPM.",
        f"{style.capitalize()} in {key}, {mood} and {tempo_word(bpm)} ({bpm} BPM): {inst} accompany a {gender} {vtype}.",
    )
    return templates[int(rng.integers(len(templates)))]


def tempo_word(bpm: int) -> str:
    from singalign.synth.styles import tempo_class

    return {"slow": "slow", "medium tempo": "at a medium tempo", "fast": "fast"}[tempo_class(bpm)]


def write_song(out: Path, song: dict[str, Any]) -> None:
    """Write one song's files; ``songs/<id>.json`` last (it marks the song as done)."""
    from singalign.synth import layouts
    from singalign.synth.accompaniment import SONG_RATE

    sid = song["id"]
    vq, aq, mq = song.pop("_audio")
    stems = out / "stems" / sid
    layouts.write_audio(stems / "vocals.flac", vq, SONG_RATE, "FLAC")
    layouts.write_audio(stems / "accompaniment.flac", aq, SONG_RATE, "FLAC")
    layouts.write_audio(stems / "mixture.flac", mq, SONG_RATE, "FLAC")
    mp3 = out / "jamendo" / "mp3" / f"{sid}.mp3"
    layouts.write_audio(mp3, mq, SONG_RATE, "MP3")
    layouts.link_or_copy(mp3, out / "dali" / f"{sid}.mp3")
    layouts.write_jamendo(out / "jamendo", sid, song)
    layouts.write_dali(out / "dali", song)
    layouts.write_notes(out / "notes" / f"{sid}.txt", song["notes"])
    write_json(out / "songs" / f"{sid}.json", song)


def _work(args: tuple[str, int, int, dict[str, Any]]) -> tuple[str, str | None]:
    out, seed, index, cfg_d = args
    cfg = SongConfig.from_dict(cfg_d)
    sid = song_id(cfg.split, seed, index)
    try:
        song = make_song(seed, index, cfg)
        write_song(Path(out), song)
        return sid, None
    except SingalignError as exc:
        return sid, str(exc)


METADATA_KEYS = (
    "id",
    "split",
    "tags",
    "caption",
    "lyrics",
    "bpm",
    "key",
    "voice",
    "seed",
    "index",
    "style",
    "duration",
    "mix",
)


def finalize(out: Path) -> list[dict[str, Any]]:
    """(Re)write ``metadata.jsonl`` and ``jamendo/JamendoLyrics.csv`` from every finished song."""
    from singalign.synth import layouts

    songs = []
    for path in sorted((out / "songs").glob("*.json")):
        with open(path, encoding="utf-8") as f:
            songs.append(json.load(f))
    write_jsonl(out / "metadata.jsonl", [{k: s[k] for k in METADATA_KEYS} for s in songs])
    layouts.write_jamendo_index(out / "jamendo", songs)
    return songs


def generate_songs(
    out: str | os.PathLike[str], n: int, seed: int, cfg: SongConfig, workers: int | None = None
) -> dict[str, Any]:
    """Generate songs ``0..n-1`` of ``seed`` into ``out`` (skipping finished ones), in parallel.

    Returns a summary: numbers made, skipped and failed, and the failures' messages.
    """
    from singalign.synth.text import lyric_lines

    if n < 0:
        raise SingalignError(f"--n must be >= 0, not {n}")
    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(n) if not (out / "songs" / f"{song_id(cfg.split, seed, i)}.json").exists()]
    skipped = n - len(todo)
    lyric_lines(cfg.portion, cfg.vocab_size)  # load the text once, before the workers fork
    failures = _run_parallel(_work, [(str(out), seed, i, cfg.to_dict()) for i in todo], workers, "songs")
    finalize(out)
    return {
        "made": len(todo) - len(failures),
        "skipped": skipped,
        "failed": len(failures),
        "failures": failures,
    }


def preload_modules() -> None:
    """Import what every job needs once, here, so that the forked children do not each pay for it."""
    import DALI.Annotations  # noqa: F401
    import pretty_midi  # noqa: F401
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    from singalign.synth import accompaniment, layouts, melody, mixing, sing, speech, styles  # noqa: F401


def _run_parallel(fn, jobs: list, workers: int | None, unit: str) -> list[str]:
    """Run ``fn`` on every job, each in a fresh process forked from this one; returns failures.

    A fresh process per job matters: eSpeak NG keeps synthesis state (waveform phase, noise)
    from one call to the next, so a song is reproducible only when its process starts clean.
    This process must therefore not have used eSpeak itself (the generators never do).
    """
    import multiprocessing as mp

    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    preload_modules()
    failures = []
    bar = tqdm(total=len(jobs), unit=unit, desc=f"synth {unit}", disable=len(jobs) < 2)
    with mp.get_context("fork").Pool(workers, maxtasksperchild=1) as pool:
        for name, err in pool.imap(fn, jobs, chunksize=1):
            if err:
                failures.append(f"{name}: {err}")
                log.error("%s: %s", name, err)
            bar.update()
    bar.close()
    return failures
