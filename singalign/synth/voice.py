"""Voices: eSpeak NG (through its C library, with phoneme timings) and Festival (for speech).

eSpeak NG is driven through ``libespeak-ng.so.1`` with ``ctypes`` rather than its command line:
one synthesis of a word takes about a millisecond, and the library reports where every phoneme
starts (sample-exact), which the singing synthesizer needs to put syllables on notes. With the
pitch range set to zero eSpeak speaks on one constant pitch, which makes pitch-synchronous
re-synthesis (:mod:`singalign.synth.sing`) simple and exact.

A voice is an accent (eSpeak language) x a variant (timbre, sex) x a pitch setting x a rate.
:func:`voice_catalog` enumerates them deterministically and splits them into a ``"train"`` and a
``"heldout"`` pool (by hash), so that held-out sets can use voices never heard in training.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singalign.errors import SingalignError

#: eSpeak NG's output sample rate (Hz).
ESPEAK_RATE = 22050
#: eSpeak English accents (voice identifiers that ``espeak_SetVoiceByName`` accepts).
ACCENTS: tuple[str, ...] = (
    "en",  # British
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
#: eSpeak variants with a normal voiced timbre (whispering, robotic and echo-heavy ones left out).
FEMALE_VARIANTS: tuple[str, ...] = (
    "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda",
    "grandma", "linda", "steph", "steph2", "steph3",
)  # fmt: skip
MALE_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "Denis", "Diogo", "Gene",
    "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen",
    "Storm", "adam", "antonio", "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2",
    "gustave", "iven", "iven2", "iven3", "iven4", "john", "klatt", "klatt2", "klatt3", "klatt4",
    "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert",
    "sandro", "shelby", "travis", "victor", "zac",
)  # fmt: skip
#: Festival's English voices (Debian: festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts).
FESTIVAL_VOICES: dict[str, str] = {
    "kal_diphone": "male",
    "ked_diphone": "male",
    "cmu_us_slt_arctic_hts": "female",
}
#: Percentage of voices (by hash) in the held-out pool.
HELDOUT_VOICE_PERCENT = 15
VOICE_POOLS = ("train", "heldout", "all")

# eSpeak API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EV_END_LIST, _EV_WORD, _EV_PHONEME = 0, 1, 7
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE = 1, 2, 3, 4


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Attributes:
        engine: ``"espeak"`` or ``"festival"``.
        name: eSpeak ``accent+variant`` (e.g. ``"en-us+f3"``) or a Festival voice name.
        gender: ``"male"`` or ``"female"``.
        pitch: eSpeak pitch setting 0-99 (festival: semitones of shift, applied with sox).
        rate: speaking rate in words per minute (festival: percent of normal tempo).
    """

    engine: str
    name: str
    gender: str
    pitch: int = 50
    rate: int = 160

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}:p{self.pitch}:r{self.rate}"

    @property
    def pool(self) -> str:
        """``"heldout"`` for a fixed hashed subset of timbres (accent + variant), else ``"train"``."""
        return _hash_pool(f"{self.engine}:{self.name}")

    def to_dict(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "name": self.name,
            "gender": self.gender,
            "pitch": self.pitch,
            "rate": self.rate,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Voice:
        return cls(**d)  # type: ignore[arg-type]


def _hash_pool(key: str) -> str:
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return "heldout" if h % 100 < HELDOUT_VOICE_PERCENT else "train"


def espeak_timbres(pool: str = "all", gender: str | None = None) -> list[tuple[str, str]]:
    """(eSpeak name ``accent+variant``, gender) pairs of a pool, in a fixed order."""
    if pool not in VOICE_POOLS:
        raise SingalignError(f"voice pool must be one of {', '.join(VOICE_POOLS)}, not {pool!r}")
    out = []
    for accent in ACCENTS:
        for g, variants in (("female", FEMALE_VARIANTS), ("male", MALE_VARIANTS)):
            if gender not in (None, g):
                continue
            for v in variants:
                name = f"{accent}+{v}"
                if pool == "all" or _hash_pool(f"espeak:{name}") == pool:
                    out.append((name, g))
    return out


def festival_timbres(pool: str = "all") -> list[tuple[str, str]]:
    """(Festival voice, gender) pairs of a pool that are installed on this machine."""
    return [
        (name, g)
        for name, g in FESTIVAL_VOICES.items()
        if (pool == "all" or _hash_pool(f"festival:{name}") == pool) and festival_voice_installed(name)
    ]


def filter_timbres(timbres: list[tuple[str, str]], patterns: list[str] | None) -> list[tuple[str, str]]:
    """Keep timbres whose name matches one of the fnmatch ``patterns`` (None keeps all)."""
    if not patterns:
        return timbres
    import fnmatch

    kept = [t for t in timbres if any(fnmatch.fnmatchcase(t[0], p) for p in patterns)]
    if not kept:
        raise SingalignError(
            f"no voice matches {', '.join(patterns)} (examples: en-us+f3, en*+m*, kal_diphone)"
        )
    return kept


@functools.lru_cache(maxsize=1)
def festival_voice_installed(name: str) -> bool:
    roots = [Path("/usr/share/festival/voices")]
    return any(p.is_dir() for root in roots for p in root.glob(f"*/{name}"))


# ----------------------------------------------------------------------------------------------
# eSpeak NG through ctypes


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Phoneme:
    """An eSpeak phoneme with its span in the synthesized audio (samples at ESPEAK_RATE)."""

    symbol: str
    start: int
    end: int


class Espeak:
    """The eSpeak NG library, loaded once per process (use :func:`espeak`)."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError as exc:
            raise SingalignError(
                "cannot load libespeak-ng.so.1: install the Debian package espeak-ng (`make system-deps`)"
            ) from exc
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive: the library holds the pointer
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
        if rate != ESPEAK_RATE:
            raise SingalignError(f"eSpeak NG did not initialize (returned {rate})")
        self._lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _on_audio(self, wav, n, events) -> int:  # noqa: ANN001 (ctypes callback)
        i = 0
        while events[i].type != _EV_END_LIST:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                self._phonemes.append((ev.id.string.decode("ascii", "replace"), ev.sample))
            i += 1
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def synth(
        self,
        text: str,
        name: str,
        pitch: int = 50,
        rate: int = 160,
        monotone: bool = False,
        pitch_range: int = 50,
    ) -> tuple[np.ndarray, list[Phoneme]]:
        """Speak ``text``; returns (audio float32 (samples,) at ESPEAK_RATE, phonemes with spans).

        Pauses (``_``-phonemes) are left out of the phoneme list; each phoneme ends where the next
        event (phoneme or pause) starts.
        """
        if self._voice != name:
            if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise SingalignError(f"eSpeak NG has no voice {name!r}")
            self._voice = name
        self._lib.espeak_SetParameter(_P_RATE, int(rate), 0)
        self._lib.espeak_SetParameter(_P_PITCH, int(pitch), 0)
        self._lib.espeak_SetParameter(_P_RANGE, 0 if monotone else int(pitch_range), 0)
        self._chunks, self._phonemes = [], []
        data = text.encode("utf-8")
        self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        audio = (
            np.concatenate(self._chunks).astype(np.float32) / 32768
            if self._chunks
            else np.zeros(0, np.float32)
        )
        marks = self._phonemes + [("_", len(audio))]
        phonemes = [
            Phoneme(sym, start, min(marks[i + 1][1], len(audio)))
            for i, (sym, start) in enumerate(marks[:-1])
            if not sym.startswith("_") and marks[i + 1][1] > start
        ]
        return audio, phonemes


@functools.lru_cache(maxsize=1)
def espeak() -> Espeak:
    """The process-wide eSpeak NG instance."""
    return Espeak()


@functools.lru_cache(maxsize=512)
def espeak_f0(name: str, pitch: int) -> float:
    """The constant F0 (Hz) of a monotone eSpeak voice at a pitch setting, from a sung 'ah'."""
    audio, _ = espeak().synth("ah", name, pitch=pitch, rate=80, monotone=True)
    seg = audio[len(audio) // 4 : 3 * len(audio) // 4].astype(np.float64)
    max_lag = int(ESPEAK_RATE / 40)
    n = len(seg) - max_lag
    # YIN: cumulative-mean-normalized difference; the first deep dip is the period.
    spec_a = np.fft.rfft(seg, 2 * len(seg))
    spec_b = np.fft.rfft(seg[:n][::-1], 2 * len(seg))
    cross = np.fft.irfft(spec_a * spec_b)[n - 1 : n - 1 + max_lag]
    energy = np.cumsum(np.concatenate([[0.0], seg**2]))
    e_tau = energy[np.arange(max_lag) + n] - energy[np.arange(max_lag)]
    diff = energy[n] + e_tau - 2 * cross
    diff[0] = 0.0
    cmnd = diff * np.arange(max_lag) / np.maximum(np.cumsum(diff), 1e-12)
    cmnd[0] = 1.0
    lo = int(ESPEAK_RATE / 500)  # eSpeak voices never go above 500 Hz
    below = np.flatnonzero(cmnd[lo:-1] < 0.15) + lo
    lag = int(below[0]) if len(below) else lo + int(np.argmin(cmnd[lo:-1]))
    while lag + 1 < max_lag - 1 and cmnd[lag + 1] < cmnd[lag]:
        lag += 1
    a, b, c = cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return ESPEAK_RATE / (lag + shift)


@functools.lru_cache(maxsize=256)
def pitch_table(name: str) -> tuple[tuple[int, float], ...]:
    """Reliable (pitch setting, F0 Hz) pairs of a monotone voice for settings 30-99.

    F0 grows exponentially with the setting; estimates off a robust log-linear fit by more than
    8% (octave or formant errors of the estimator) are dropped.
    """
    settings = np.arange(30, 100, 3)
    f0 = np.array([espeak_f0(name, int(p)) for p in settings])
    logf = np.log(f0)
    slopes = [
        (logf[j] - logf[i]) / (settings[j] - settings[i])
        for i in range(len(settings))
        for j in range(i + 1, len(settings))
    ]
    slope = float(np.median(slopes))
    icept = float(np.median(logf - slope * settings))
    ok = np.abs(logf - (icept + slope * settings)) < np.log(1.08)
    return tuple((int(p), float(f)) for p, f, k in zip(settings, f0, ok, strict=True) if k)


def pitch_setting_for(name: str, target_hz: float) -> int:
    """The eSpeak pitch setting whose monotone F0 is closest to ``target_hz`` (log distance)."""
    table = pitch_table(name)
    if not table:
        raise SingalignError(f"cannot measure the pitch of eSpeak voice {name}")
    return min(table, key=lambda pf: abs(np.log(pf[1] / target_hz)))[0]


# ----------------------------------------------------------------------------------------------
# Festival (speech only)


def festival_say(text: str, voice: Voice, sample_rate: int) -> np.ndarray:
    """Speak ``text`` with a Festival voice; returns float32 (samples,) at ``sample_rate``.

    ``voice.pitch`` shifts the pitch by that many semitones and ``voice.rate`` sets the tempo in
    percent, both with sox, so one Festival voice yields several distinct speakers.
    """
    if shutil.which("text2wave") is None or shutil.which("sox") is None:
        raise SingalignError("festival and sox are needed for Festival voices (`make system-deps`)")
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="singalign-fest-") as tmp:
        src, dst = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.wav")
        proc = subprocess.run(
            ["text2wave", "-eval", f"(voice_{voice.name})", "-o", src],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0 or not os.path.exists(src):
            raise SingalignError(
                f"festival failed for voice {voice.name}: {proc.stderr.decode()[-200:].strip()}"
            )
        effects = []
        if voice.pitch:
            effects += ["pitch", str(100 * voice.pitch)]
        if voice.rate != 100:
            effects += ["tempo", "-s", f"{voice.rate / 100:.3f}"]
        cmd = [
            "sox",
            src,
            "-r",
            str(sample_rate),
            "-c",
            "1",
            "-b",
            "16",
            dst,
            *effects,
            "rate",
            "-h",
            str(sample_rate),
        ]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise SingalignError(f"sox failed: {proc.stderr.decode()[-200:].strip()}")
        audio, _ = sf.read(dst, dtype="float32")
    return audio
