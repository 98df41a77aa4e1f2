"""Synthetic read speech in the LibriSpeech layout.

``DIR/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` (16 kHz, 16-bit mono) and
``<speaker>-<chapter>.trans.txt`` (``UTTID TRANSCRIPT`` per line, upper case, as LibriSpeech), plus
``DIR/SPEAKERS.TXT`` (``ID|SEX|SUBSET|MINUTES|NAME``, NAME being the synthetic voice).

A chapter is a run of consecutive sentences of the public-domain text read by one speaker; a
speaker is a voice timbre (eSpeak accent + variant, or a Festival voice) with a pitch and rate.
Speaker numbers are stable (the same voice always has the same number), and the ``train`` and
``heldout`` voice pools share no timbre, so dev/test sets can be speaker-disjoint.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singalign.constants import SAMPLE_RATE
from singalign.errors import SingalignError
from singalign.files import write_text
from singalign.synth.text import SplitDefaults

#: Pitch/rate settings per timbre: each timbre yields this many speakers.
VARIANTS_PER_TIMBRE = 3
ENGINES = ("espeak", "festival")


@dataclass(frozen=True)
class SpeechConfig(SplitDefaults):
    """Knobs of a speech set.

    Attributes:
        split: LibriSpeech-style split folder (``train-clean-100``, ``dev-clean``, ...).
        text_portion / voice_pool: as :class:`singalign.synth.songs.SongConfig` (None: ``train``
            for splits starting with "train", else ``heldout``).
        voices: fnmatch patterns of voice names (``en-us+*``, ``kal_diphone``); None: all.
        engines: which engines may speak.
        utterances_per_chapter, chapters_per_speaker: corpus shape.
        vocab_size: sentences use only the K most frequent words (None: any sentence).
        words: sentence length range in words.
    """

    split: str = "train"
    text_portion: str | None = None
    voice_pool: str | None = None
    voices: tuple[str, ...] | None = None
    engines: tuple[str, ...] = ENGINES
    utterances_per_chapter: int = 10
    chapters_per_speaker: int = 2
    vocab_size: int | None = 2000
    words: tuple[int, int] = (4, 30)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechConfig:
        d = dict(d)
        for key in ("voices", "engines", "words"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.split):
            raise SingalignError(f"bad split name {self.split!r} (letters, digits, '-', '_', '.')")
        if self.portion not in ("train", "heldout"):
            raise SingalignError(f"text portion must be train or heldout, not {self.portion!r}")
        bad = [e for e in self.engines if e not in ENGINES]
        if bad or not self.engines:
            raise SingalignError(
                f"engines must be among {', '.join(ENGINES)}, not {', '.join(bad) or 'none'}"
            )
        if self.utterances_per_chapter < 1 or self.chapters_per_speaker < 1:
            raise SingalignError("utterances per chapter and chapters per speaker must be >= 1")
        if not 1 <= self.words[0] <= self.words[1]:
            raise SingalignError(f"bad sentence length range {self.words}")
        if not speaker_catalog(self):
            raise SingalignError("no voice matches the requested pool, engines and patterns")


def _h(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def all_speakers() -> list[tuple[int, Any]]:
    """Every (speaker number, Voice) in a fixed order; numbers are stable across runs."""
    from singalign.synth.voice import FESTIVAL_VOICES, Voice, espeak_timbres

    timbres = [("espeak", n, g) for n, g in espeak_timbres("all")]
    timbres += [("festival", n, g) for n, g in FESTIVAL_VOICES.items()]
    out = []
    for ti, (engine, name, gender) in enumerate(timbres):
        for v in range(VARIANTS_PER_TIMBRE):
            h = _h(f"{engine}:{name}:{v}")
            if engine == "espeak":
                voice = Voice(engine, name, gender, pitch=30 + h % 50, rate=130 + (h >> 8) % 60)
            else:
                voice = Voice(engine, name, gender, pitch=int((h % 5) - 2), rate=90 + (h >> 8) % 25)
            out.append((100 + ti * VARIANTS_PER_TIMBRE + v, voice))
    return out


def speaker_catalog(cfg: SpeechConfig) -> list[tuple[int, Any]]:
    """Speakers allowed by the config (pool, engines, name patterns)."""
    import fnmatch

    from singalign.synth.voice import festival_voice_installed

    out = []
    for num, v in all_speakers():
        if v.engine not in cfg.engines or (cfg.pool != "all" and v.pool != cfg.pool):
            continue
        if v.engine == "festival" and not festival_voice_installed(v.name):
            continue
        if cfg.voices and not any(fnmatch.fnmatchcase(v.name, p) for p in cfg.voices):
            continue
        out.append((num, v))
    return out


def transcript(words: tuple[str, ...]) -> str:
    """LibriSpeech transcript: upper case words, apostrophes kept."""
    return " ".join(words).upper()


def speak(text: str, voice, rng: np.random.Generator) -> np.ndarray:
    """One utterance at 16 kHz, float32, with a little leading and trailing silence."""
    import soxr

    from singalign.synth.voice import ESPEAK_RATE, espeak, festival_say

    if voice.engine == "espeak":
        audio, _ = espeak().synth(text, voice.name, pitch=voice.pitch, rate=voice.rate, pitch_range=60)
        audio = soxr.resample(audio, ESPEAK_RATE, SAMPLE_RATE)
    else:
        audio = festival_say(text, voice, SAMPLE_RATE)
    peak = float(np.abs(audio).max()) or 1.0
    audio = audio / peak * 10 ** (rng.uniform(-9, -2) / 20)
    pad = [np.zeros(int(rng.uniform(0.15, 0.4) * SAMPLE_RATE), np.float32) for _ in range(2)]
    return np.concatenate([pad[0], audio.astype(np.float32), pad[1]])


def _chapter_job(args: tuple[str, int, int, dict[str, Any]]) -> tuple[str, str | None]:
    out, seed, chapter_index, cfg_d = args
    cfg = SpeechConfig.from_dict(cfg_d)
    name = f"chapter {chapter_index}"
    try:
        make_chapter(Path(out), seed, chapter_index, cfg)
        return name, None
    except SingalignError as exc:
        return name, str(exc)


def chapter_plan(seed: int, chapter_index: int, cfg: SpeechConfig) -> tuple[int, Any, int, list]:
    """(speaker number, voice, chapter number, sentences) of one chapter."""
    catalog = speaker_catalog(cfg)
    spk_rng = np.random.default_rng([seed, 1, chapter_index // cfg.chapters_per_speaker])
    number, voice = catalog[int(spk_rng.integers(len(catalog)))]
    sentences = _sentences(cfg.portion, cfg.vocab_size, *cfg.words)
    if not sentences:
        raise SingalignError("no sentences with this vocabulary and length range")
    rng = np.random.default_rng([seed, 2, chapter_index])
    start = int(rng.integers(len(sentences)))
    chosen = [sentences[(start + k) % len(sentences)] for k in range(cfg.utterances_per_chapter)]
    chapter = (seed % 1000) * 10000 + chapter_index + 1
    return number, voice, chapter, chosen


_SENTENCE_CACHE: dict[tuple, list] = {}


def _sentences(portion: str, vocab_size: int | None, lo: int, hi: int) -> list:
    from singalign.synth.text import select_sentences

    key = (portion, vocab_size, lo, hi)
    if key not in _SENTENCE_CACHE:
        _SENTENCE_CACHE[key] = select_sentences(portion, vocab_size, lo, hi)
    return _SENTENCE_CACHE[key]


def make_chapter(out: Path, seed: int, chapter_index: int, cfg: SpeechConfig) -> Path:
    """Write one chapter (its FLACs, then its transcript, which marks it done)."""
    from singalign.synth.layouts import write_audio

    number, voice, chapter, chosen = chapter_plan(seed, chapter_index, cfg)
    folder = out / cfg.split / str(number) / str(chapter)
    trans = folder / f"{number}-{chapter}.trans.txt"
    if trans.exists():
        return trans
    rng = np.random.default_rng([seed, 3, chapter_index])
    lines = []
    for u, s in enumerate(chosen):
        utt = f"{number}-{chapter}-{u:04d}"
        audio = speak(s.text, voice, rng)
        write_audio(folder / f"{utt}.flac", np.round(audio * 32767).astype(np.int16), SAMPLE_RATE, "FLAC")
        lines.append(f"{utt} {transcript(s.words)}\n")
    write_text(trans, "".join(lines))
    return trans


def write_speakers(out: Path) -> None:
    """``SPEAKERS.TXT`` in LibriSpeech's format for every speaker folder under ``out``."""
    import soundfile as sf

    voices = dict(all_speakers())
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME\n"]
    for split_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        for spk in sorted(
            (p for p in split_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
        ):
            seconds = sum(sf.info(str(f)).duration for f in spk.glob("*/*.flac"))
            v = voices.get(int(spk.name))
            sex = "F" if v is not None and v.gender == "female" else "M"
            name = v.id if v is not None else "unknown"
            rows.append(f"{spk.name:<5}| {sex} | {split_dir.name:<17}| {seconds / 60:5.2f} | {name}\n")
    write_text(out / "SPEAKERS.TXT", "".join(rows))


def generate_speech(
    out: str | os.PathLike[str], n: int, seed: int, cfg: SpeechConfig, workers: int | None = None
) -> dict[str, Any]:
    """Generate ``n`` utterances (rounded up to whole chapters) of ``seed`` into ``out``.

    Chapters already written are skipped, so an interrupted run resumes where it stopped.
    """
    from singalign.synth.songs import _run_parallel

    if n < 0:
        raise SingalignError(f"--n must be >= 0, not {n}")
    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_chapters = -(-n // cfg.utterances_per_chapter)
    _sentences(cfg.portion, cfg.vocab_size, *cfg.words)  # load the text before the workers fork
    jobs = [(str(out), seed, c, cfg.to_dict()) for c in range(n_chapters)]
    failures = _run_parallel(_chapter_job, jobs, workers, "chapters")
    write_speakers(out)
    return {"chapters": n_chapters - len(failures), "failed": len(failures), "failures": failures}
