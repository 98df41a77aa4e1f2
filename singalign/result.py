"""What ``transcribe`` and ``align`` return, and the JSON they write.

JSON layout (times in seconds, pitch as a MIDI number)::

    {"audio": str, "bundle": str, "duration": float, "text": str,
     "lines": [{"text", "start", "end"}],
     "words": [{"word", "start", "end"}],
     "notes": [{"onset", "offset", "pitch", "lyric"}]}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class WordTiming:
    word: str
    start: float
    end: float


@dataclass
class LineTiming:
    text: str
    start: float
    end: float


@dataclass
class NoteEvent:
    onset: float
    offset: float
    pitch: int  # MIDI note number
    lyric: str = ""  # the word or syllable sung on this note ("" when none attached)


@dataclass
class Frames:
    """Framewise evidence, kept for plots and re-decoding (not written to JSON).

    Attributes:
        log_mel: (2, n_mels, T) features (vocals, mixture).
        pitch_probs: (T, 129) pitch posteriors.
        onset_probs: (T,) onset probabilities.
        char_log_probs: (T/2, 34) CTC log-posteriors.
    """

    log_mel: np.ndarray
    pitch_probs: np.ndarray
    onset_probs: np.ndarray
    char_log_probs: np.ndarray


@dataclass
class TranscriptionResult:
    audio: str
    bundle: str
    duration: float
    text: str
    words: list[WordTiming] = field(default_factory=list)
    lines: list[LineTiming] = field(default_factory=list)
    notes: list[NoteEvent] = field(default_factory=list)
    frames: Frames | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON-ready dict written as ``<stem>.json`` (no framewise arrays)."""
        return {
            "audio": self.audio,
            "bundle": self.bundle,
            "duration": round(self.duration, 4),
            "text": self.text,
            "lines": [asdict(x) for x in self.lines],
            "words": [asdict(x) for x in self.words],
            "notes": [asdict(x) for x in self.notes],
        }

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> TranscriptionResult:
        return cls(
            audio=d["audio"],
            bundle=d.get("bundle", ""),
            duration=float(d.get("duration", 0.0)),
            text=d.get("text", ""),
            words=[WordTiming(**w) for w in d.get("words", [])],
            lines=[LineTiming(**ln) for ln in d.get("lines", [])],
            notes=[NoteEvent(**n) for n in d.get("notes", [])],
        )
