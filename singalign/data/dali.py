"""DALI v1 reader: the ``dali-dataset`` package's annotation files -> manifest records.

DALI v1.0 ships one gzip file per song, ``<DALI_ID>.gz``, holding a pickled
``DALI.Annotations.Annotations`` object (so the ``DALI`` package must be importable to read it,
and, as with any pickle, the files must come from a source you trust). The object has:

- ``info``: ``{"id", "artist", "title", "dataset_version", "ground-truth",
  "scores": {"NCC", "manual"}, "audio": {"url", "path", "working"},
  "metadata": {"album", "release_date", "cover", "genres": [...], "language"}}``;
- ``annotations``: ``{"type": "horizontal" | "vertical", "annot_param": {"fr", "offset"},
  "annot": {"notes", "words", "lines", "paragraphs"}}`` in the horizontal form, each level a
  list of ``{"text", "time": [start, end], "freq": [f_low, f_high], "index"}`` (``index`` links
  to the level above; paragraphs have none). Times are in seconds; a note's ``freq`` is its
  pitch in Hz (both values equal). Vertical files are converted with the package's own
  ``vertical2horizontal``.

The audio is not part of DALI (it is fetched separately, e.g. with ``DALI.get_audio``, which
names each file by its DALI id). It is looked up as ``<id>.<ext>`` (mp3, wav, flac, ogg) beside
the annotation files, then in ``audio_dir``, then at ``info["audio"]["path"]`` when that is set;
a song without audio is skipped with a warning.

One record per song: ``kind="song"``, ``corpus="dali"``, words/lines/notes with absolute times,
``notes[i].pitch`` the unrounded MIDI number ``12 * log2(f / 440) + 69`` (targets round it),
``tags`` the metadata genres (lower case), ``speaker`` the artist, ``text`` the words joined by
spaces, ``extra`` the rest (title, artist, language, album, release date, NCC score, url,
paragraphs).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from singalign.data.librispeech import audio_duration, report_problem
from singalign.data.manifest import Line, Note, Record, Word
from singalign.errors import AudioError, SingalignError

log = logging.getLogger(__name__)

#: Audio extensions tried, in order, for ``<id>.<ext>``.
AUDIO_EXTS: tuple[str, ...] = ("mp3", "wav", "flac", "ogg")
_LEVELS = ("notes", "words", "lines", "paragraphs")


def hz_to_midi(freq: float) -> float:
    """MIDI number (unrounded) of a frequency in Hz: A4 = 440 Hz = 69."""
    return 12.0 * math.log2(freq / 440.0) + 69.0


def load_entry(path: str | os.PathLike[str]) -> Any:
    """Load one DALI annotation file with the ``DALI`` package; returns its ``Annotations`` object.

    Raises:
        SingalignError: the file is missing, unreadable, or not a DALI annotation, naming it.
    """
    import DALI  # heavy-ish (imports youtube_dl); only when reading DALI

    path = Path(path).resolve()  # the package insists on absolute paths
    if not path.is_file():
        raise SingalignError(f"{path}: DALI annotation file not found")
    try:
        entry = DALI.get_an_entry(str(path))
    except Exception as exc:  # gzip, pickle and EOF errors
        raise SingalignError(f"{path}: cannot read DALI annotation ({type(exc).__name__}: {exc})") from exc
    if not (
        isinstance(getattr(entry, "info", None), dict)
        and isinstance(getattr(entry, "annotations", None), dict)
    ):
        raise SingalignError(f"{path}: not a DALI annotation (no info/annotations)")
    if entry.annotations.get("type") == "vertical":
        entry.vertical2horizontal()
    annot = entry.annotations.get("annot")
    if not isinstance(annot, dict) or "words" not in annot or "notes" not in annot:
        raise SingalignError(f"{path}: DALI annotation has no horizontal 'words'/'notes' levels")
    return entry


def _times(item: Any, path: Path, level: str, k: int) -> tuple[float, float]:
    try:
        start, end = (float(t) for t in item["time"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SingalignError(f"{path}: {level}[{k}] has no valid 'time' [start, end]") from exc
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        raise SingalignError(f"{path}: {level}[{k}] has time [{start}, {end}] (end before start)")
    return start, end


def _text(item: Any) -> str:
    text = item.get("text", "")
    return text.strip() if isinstance(text, str) else ""


def find_audio(song_id: str, folders: list[Path], info_path: str | None = None) -> Path | None:
    """The audio file of a song: ``<id>.<ext>`` in ``folders`` (in order), else ``info_path``."""
    for folder in folders:
        for ext in AUDIO_EXTS:
            candidate = folder / f"{song_id}.{ext}"
            if candidate.is_file():
                return candidate
    if info_path and info_path != "None":
        candidate = Path(info_path)
        if not candidate.is_absolute() and folders:
            candidate = folders[0] / candidate
        if candidate.is_file():
            return candidate
    return None


def entry_to_record(entry: Any, path: Path, audio: Path, duration: float, split: str = "") -> Record:
    """Convert one loaded DALI entry into a record (times absolute; pitch unrounded MIDI).

    Raises:
        SingalignError: a malformed time in any level, naming the file.
    """
    info, annot = entry.info, entry.annotations["annot"]
    words, notes, lines = [], [], []
    for k, item in enumerate(annot.get("words", [])):
        start, end = _times(item, path, "words", k)
        text = _text(item)
        if text:
            words.append(Word(text, start, end))
    bad_freq = 0
    for k, item in enumerate(annot.get("notes", [])):
        start, end = _times(item, path, "notes", k)
        try:
            freq = float(item["freq"][0])
        except (KeyError, TypeError, ValueError, IndexError):
            freq = float("nan")
        if not (freq > 0 and math.isfinite(freq)):  # an unpitched note cannot become a MIDI number
            bad_freq += 1
            continue
        notes.append(Note(start, end, hz_to_midi(freq)))
    if bad_freq:
        log.warning("%s: dropped %d notes without a positive frequency", path, bad_freq)
    for k, item in enumerate(annot.get("lines", [])):
        start, end = _times(item, path, "lines", k)
        lines.append(Line(_text(item), start, end))
    paragraphs = []
    for k, item in enumerate(annot.get("paragraphs", [])):
        start, end = _times(item, path, "paragraphs", k)
        paragraphs.append({"text": _text(item), "start": start, "end": end})
    # Readers downstream (segments, targets) assume time order; DALI is ordered, but be sure.
    words.sort(key=lambda w: (w.start, w.end))
    notes.sort(key=lambda n: (n.onset, n.offset))
    lines.sort(key=lambda ln: (ln.start, ln.end))
    metadata = info.get("metadata") or {}
    genres = metadata.get("genres") or []
    if isinstance(genres, str):
        genres = [genres]
    tags = tuple(dict.fromkeys(g.strip().lower() for g in genres if isinstance(g, str) and g.strip()))
    scores = info.get("scores") or {}
    audio_info = info.get("audio") or {}
    extra = {
        "title": info.get("title", ""),
        "artist": info.get("artist", ""),
        "language": metadata.get("language", ""),
        "album": metadata.get("album", ""),
        "release_date": metadata.get("release_date", ""),
        "ncc": scores.get("NCC"),
        "url": audio_info.get("url", ""),
        "dataset_version": info.get("dataset_version"),
        "paragraphs": paragraphs,
        "annotation": str(path),
    }
    return Record(
        id=str(info.get("id") or path.name[: -len(".gz")]),
        corpus="dali",
        kind="song",
        split=split,
        audio=str(audio.resolve()),
        offset=0.0,
        duration=duration,
        text=" ".join(w.word for w in words),
        words=tuple(words),
        lines=tuple(lines),
        notes=tuple(notes),
        tags=tags,
        speaker=str(info.get("artist") or ""),
        extra=extra,
    )


def read_dali(
    annot_dir: str | os.PathLike[str],
    audio_dir: str | os.PathLike[str] | None = None,
    *,
    split: str = "",
    strict: bool = True,
) -> list[Record]:
    """Read DALI v1 annotation files (``<id>.gz``) and their audio into manifest records.

    Args:
        annot_dir: folder of ``<DALI_ID>.gz`` annotation files.
        audio_dir: folder of ``<DALI_ID>.<ext>`` audio files (default: look beside the annotations).
        split: the split to write into every record (DALI has no official split; the recipes
            make the paper's seeded 18:1:1 split).
        strict: raise on an unreadable or malformed annotation or audio file (default); False
            warns and skips the song. A song whose audio is absent is always skipped with a warning.

    Returns:
        One ``kind="song"`` record per song with audio, sorted by annotation file name.

    Raises:
        SingalignError: ``annot_dir`` (or ``audio_dir``) missing or without ``.gz`` files, or
            (strict) a bad file, naming it.
    """
    from tqdm import tqdm

    annot_dir = Path(annot_dir)
    if not annot_dir.is_dir():
        raise SingalignError(f"{annot_dir}: DALI annotation folder not found")
    folders = [annot_dir]
    if audio_dir is not None:
        if not Path(audio_dir).is_dir():
            raise SingalignError(f"{audio_dir}: DALI audio folder not found")
        folders.append(Path(audio_dir))
    files = sorted(annot_dir.glob("*.gz"))
    if not files:
        raise SingalignError(f"{annot_dir}: no DALI annotation files (*.gz)")
    records: list[Record] = []
    no_audio = 0
    for path in tqdm(files, desc="dali", unit="song", disable=None):
        try:
            entry = load_entry(path)
        except SingalignError as exc:
            report_problem(str(exc), strict)
            continue
        song_id = str(entry.info.get("id") or path.name[: -len(".gz")])
        audio_path = (entry.info.get("audio") or {}).get("path")
        audio = find_audio(song_id, folders, audio_path if isinstance(audio_path, str) else None)
        if audio is None and song_id != path.name[: -len(".gz")]:
            audio = find_audio(path.name[: -len(".gz")], folders)
        if audio is None:
            no_audio += 1
            log.warning("%s: no audio %s.{%s} found; song skipped", path, song_id, ",".join(AUDIO_EXTS))
            continue
        try:
            duration = audio_duration(audio)
            records.append(entry_to_record(entry, path.resolve(), audio, duration, split))
        except SingalignError as exc:
            report_problem(str(exc), strict, AudioError if isinstance(exc, AudioError) else SingalignError)
    if no_audio:
        log.warning("%s: %d of %d songs skipped for lack of audio", annot_dir, no_audio, len(files))
    return records
