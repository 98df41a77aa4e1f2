"""The one manifest schema every corpus reader produces (JSONL, one record per line).

A record is one recording or one segment of a recording. Times are in seconds and are
**absolute within the audio file** (not relative to ``offset``), so a segment can be cut
from a record without rewriting its annotations.

Fields (JSON types):
    id (str): unique within the manifest, e.g. ``"103-1240-0000"`` or ``"song0007/seg003"``.
    corpus (str): ``"librispeech" | "dali" | "jamendo" | ...``.
    kind (str): ``"speech"`` or ``"song"``.
    split (str): e.g. ``"train"``, ``"dev-clean"``, ``"test"``.
    audio (str): path to the audio file (absolute, or relative to the manifest's folder).
    offset (float): start of the record within the file (s).
    duration (float | null): length of the record (s); null means to the end of the file.
    text (str): the transcript of the record, as the corpus gives it (not normalized).
    words (list): ``[{"word": str, "start": float, "end": float}]``, may be empty.
    lines (list): ``[{"text": str, "start": float, "end": float}]``, may be empty.
    notes (list): ``[{"onset": float, "offset": float, "pitch": float}]`` (pitch: MIDI number,
        fractional allowed), may be empty. Speech has none.
    tags (list[str]): free tags (genre, instruments, mood, ...), may be empty.
    caption (str): a sentence describing the music, may be empty.
    speaker (str): speaker or singer id, may be empty.
    pitch_shift (int): global pitch offset in semitones to add to ``notes`` (data selection).
    extra (dict): anything else the corpus has (stems, bpm, key, ...).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singalign.files import read_jsonl, write_jsonl


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Line:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Note:
    onset: float
    offset: float
    pitch: float


@dataclass(frozen=True)
class Record:
    """One recording or segment; see the module docstring for the fields."""

    id: str
    corpus: str
    kind: str
    split: str
    audio: str
    offset: float = 0.0
    duration: float | None = None
    text: str = ""
    words: tuple[Word, ...] = ()
    lines: tuple[Line, ...] = ()
    notes: tuple[Note, ...] = ()
    tags: tuple[str, ...] = ()
    caption: str = ""
    speaker: str = ""
    pitch_shift: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("speech", "song"):
            raise ValueError(f"record {self.id}: kind must be 'speech' or 'song', not {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples of dataclasses become lists of dicts)."""
        d = dataclasses.asdict(self)
        for key in ("words", "lines", "notes", "tags"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        d = dict(d)
        d["words"] = tuple(Word(**w) for w in d.get("words", ()))
        d["lines"] = tuple(Line(**ln) for ln in d.get("lines", ()))
        d["notes"] = tuple(Note(**n) for n in d.get("notes", ()))
        d["tags"] = tuple(d.get("tags", ()))
        return cls(**d)

    @property
    def end(self) -> float | None:
        """End time of the record within its file, or None for 'to the end'."""
        return None if self.duration is None else self.offset + self.duration


def save_manifest(path: str | os.PathLike[str], records: list[Record]) -> None:
    """Write records as JSONL, atomically."""
    write_jsonl(path, [r.to_dict() for r in records])


def load_manifest(path: str | os.PathLike[str]) -> list[Record]:
    """Read a JSONL manifest. Relative audio paths are resolved against the manifest's folder."""
    base = Path(path).resolve().parent
    records = []
    for d in read_jsonl(path):
        if not os.path.isabs(d["audio"]):
            d["audio"] = str(base / d["audio"])
        records.append(Record.from_dict(d))
    return records
