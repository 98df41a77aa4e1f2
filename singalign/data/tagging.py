"""Readers for music-tagging corpora (MagnaTagATune, MTG-Jamendo, GTZAN) -> manifest records.

Every record is ``kind="song"`` with ``tags`` (lower case, as the corpus spells them, without
category prefixes) and no lyrics. Audio is not opened: ``duration`` is the corpus's own figure
where it has one (MTG-Jamendo) and ``None`` ("to the end of the file") otherwise, so reading
MagnaTagATune's 25,863 clips takes a second. Missing audio files are found (a ``stat`` per file).

Layouts:

- **MagnaTagATune**: ``annotations_final.csv``, tab-separated with every field in double quotes,
  header ``clip_id``, 188 tag names, ``mp3_path``; a row is the clip id, 188 ``0``/``1`` flags
  and the mp3 path relative to the audio root (``f/artist-album-01-title-0-29.mp3``). Splits
  follow the usual convention (Dieleman & Schrauwen 2014, and most tagging papers since): folders
  ``0``-``b`` train, ``c`` valid, ``d``-``f`` test.
- **MTG-Jamendo**: ``autotagging*.tsv`` (also the ``splits/split-N/autotagging*-{train,validation,
  test}.tsv`` files), tab-separated, header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``;
  every field after the fifth is one tag ``category---tag`` (``genre---rock``,
  ``instrument---piano``, ``mood/theme---sad``). ``PATH`` is relative to the audio root
  (``14/214.mp3``; the low-quality download names it ``14/214.low.mp3``, found as well).
- **GTZAN**: ``genres/<genre>/<genre>.000NN.au`` (the original) or
  ``genres_original/<genre>/<genre>.000NN.wav`` (the common re-encoding); the tag is the genre.

Problems (a missing file, a malformed row, a missing or empty audio file) raise a
``SingalignError`` naming the file and line when ``strict=True`` (default); ``strict=False`` warns
and skips the item. MagnaTagATune has three known empty mp3 files: read it with ``strict=False``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from pathlib import Path

from singalign.data.librispeech import report_problem
from singalign.data.manifest import Record
from singalign.errors import AudioError, SingalignError

log = logging.getLogger(__name__)

MTAT_CSV = "annotations_final.csv"
#: MagnaTagATune's conventional split by the first path component (the 16 audio folders).
MTAT_SPLITS: dict[str, str] = {
    **{c: "train" for c in "0123456789ab"},
    "c": "valid",
    "d": "test",
    "e": "test",
    "f": "test",
}
MTG_COLUMNS = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION")
GTZAN_EXTS = (".wav", ".au")


def _check_audio(path: Path, strict: bool, where: str) -> bool:
    """True if ``path`` is a non-empty file; otherwise report (naming ``where``) and return False."""
    try:
        size = path.stat().st_size
    except OSError:
        report_problem(f"{path}: audio file not found (listed in {where})", strict, AudioError)
        return False
    if size == 0:
        report_problem(f"{path}: audio file is empty (listed in {where})", strict, AudioError)
        return False
    return True


def read_magnatagatune(
    root: str | os.PathLike[str],
    annotations: str | os.PathLike[str] | None = None,
    *,
    top_n: int | None = None,
    strict: bool = True,
) -> list[Record]:
    """Read MagnaTagATune clips with their tags.

    Args:
        root: the audio root holding the folders ``0``..``f``.
        annotations: ``annotations_final.csv`` (default: ``root/annotations_final.csv``).
        top_n: keep only the ``top_n`` most frequent tags (50 for the usual benchmark; ties
            broken by column order); clips then left without tags are kept with no tags.
        strict: raise on a problem (default); False warns and skips the clip.

    Returns:
        One record per clip in csv order; ``id`` the clip id, ``split`` from the audio folder
        (``MTAT_SPLITS``), ``tags`` in the csv's column order.

    Raises:
        SingalignError: missing root or csv, a bad header, or (strict) a bad row or audio file.
    """
    root = Path(root)
    if not root.is_dir():
        raise SingalignError(f"{root}: MagnaTagATune audio folder not found")
    csv_path = Path(annotations) if annotations is not None else root / MTAT_CSV
    if not csv_path.is_file():
        raise SingalignError(f"{csv_path}: MagnaTagATune annotations not found")
    try:
        with open(csv_path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            rows = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SingalignError(f"{csv_path}: cannot read ({exc})") from exc
    if not rows:
        raise SingalignError(f"{csv_path}: file is empty")
    header = [c.strip() for c in rows[0][1]]
    if len(header) < 3 or header[0] != "clip_id" or header[-1] != "mp3_path":
        raise SingalignError(f"{csv_path}:1: expected a header 'clip_id <tags...> mp3_path' (tab-separated)")
    tag_names = header[1:-1]
    parsed: list[tuple[str, list[str], str]] = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            report_problem(
                f"{csv_path}:{line}: expected {len(header)} tab-separated fields, got {len(row)}", strict
            )
            continue
        flags = [v.strip() for v in row[1:-1]]
        if any(v not in ("0", "1") for v in flags):
            report_problem(f"{csv_path}:{line}: tag flags must be 0 or 1", strict)
            continue
        tags = [t for t, v in zip(tag_names, flags, strict=True) if v == "1"]
        parsed.append((row[0].strip(), tags, row[-1].strip()))
    keep: set[str] | None = None
    if top_n is not None:
        counts = Counter(t for _, tags, _ in parsed for t in tags)
        order = sorted(tag_names, key=lambda t: (-counts[t], tag_names.index(t)))
        keep = set(order[:top_n])
    records = []
    for clip_id, tags, mp3 in parsed:
        path = root / mp3
        if not _check_audio(path, strict, str(csv_path)):
            continue
        folder = Path(mp3).parts[0] if Path(mp3).parts else ""
        records.append(
            Record(
                id=clip_id,
                corpus="magnatagatune",
                kind="song",
                split=MTAT_SPLITS.get(folder, ""),
                audio=str(path.resolve()),
                tags=tuple(t.lower() for t in tags if keep is None or t in keep),
                extra={"mp3_path": mp3},
            )
        )
    return records


def _split_from_name(path: Path) -> str:
    """``autotagging_top50tags-validation.tsv`` -> ``validation``; no suffix -> ``""``."""
    match = re.search(r"-(train|validation|test)$", path.stem)
    return match.group(1) if match else ""


def read_mtg_jamendo(
    tsv: str | os.PathLike[str],
    audio_root: str | os.PathLike[str],
    *,
    split: str | None = None,
    strict: bool = True,
) -> list[Record]:
    """Read an MTG-Jamendo ``autotagging*.tsv`` file.

    Args:
        tsv: the tsv file (a whole-set file or one of the split files).
        audio_root: the folder the ``PATH`` column is relative to (holding ``00``..``99``).
        split: written into every record; None takes it from a split file's name
            (``...-train.tsv`` -> ``train``), else ``""``.
        strict: raise on a problem (default); False warns and skips the track.

    Returns:
        One record per track in file order: ``id`` the TRACK_ID, ``speaker`` the ARTIST_ID,
        ``duration`` from the tsv, ``tags`` without their category, and
        ``extra["tag_categories"]`` mapping each category to its tags.

    Raises:
        SingalignError: missing file or folder, bad header, or (strict) a bad row or audio file.
    """
    tsv, audio_root = Path(tsv), Path(audio_root)
    if not tsv.is_file():
        raise SingalignError(f"{tsv}: MTG-Jamendo tsv not found")
    if not audio_root.is_dir():
        raise SingalignError(f"{audio_root}: MTG-Jamendo audio folder not found")
    split = _split_from_name(tsv) if split is None else split
    try:
        lines = tsv.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SingalignError(f"{tsv}: cannot read ({exc})") from exc
    if not lines:
        raise SingalignError(f"{tsv}: file is empty")
    header = lines[0].split("\t")
    if tuple(header[:5]) != MTG_COLUMNS:
        raise SingalignError(f"{tsv}:1: expected header {' '.join(MTG_COLUMNS)} TAGS (tab-separated)")
    records = []
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        row = text.split("\t")
        if len(row) < 6:
            report_problem(
                f"{tsv}:{number}: expected at least 6 tab-separated fields, got {len(row)}", strict
            )
            continue
        track, artist, album, rel, duration_text = (v.strip() for v in row[:5])
        try:
            duration = float(duration_text)
        except ValueError:
            report_problem(f"{tsv}:{number}: DURATION is not a number: {duration_text!r}", strict)
            continue
        categories: dict[str, list[str]] = {}
        tags = []
        for raw in (v.strip() for v in row[5:]):
            if not raw:
                continue
            category, sep, tag = raw.partition("---")
            if not sep or not tag:
                report_problem(f"{tsv}:{number}: tag {raw!r} is not 'category---tag'", strict)
                break
            categories.setdefault(category, []).append(tag)
            tags.append(tag.lower())
        else:
            path = audio_root / rel
            low = path.with_name(path.name[: -len(path.suffix)] + ".low" + path.suffix)
            if not path.is_file() and low.is_file():
                path = low
            if not _check_audio(path, strict, f"{tsv}:{number}"):
                continue
            records.append(
                Record(
                    id=track,
                    corpus="mtg-jamendo",
                    kind="song",
                    split=split,
                    audio=str(path.resolve()),
                    duration=duration,
                    tags=tuple(dict.fromkeys(tags)),
                    speaker=artist,
                    extra={"album_id": album, "path": rel, "tag_categories": categories},
                )
            )
    return records


def _gtzan_genres_dir(root: Path) -> Path:
    for name in ("genres", "genres_original"):
        if (root / name).is_dir():
            return root / name
    return root


def read_gtzan(root: str | os.PathLike[str], *, strict: bool = True) -> list[Record]:
    """Read GTZAN's genre folders.

    Args:
        root: the folder holding ``genres/`` or ``genres_original/``, or that folder itself.
        strict: raise on a problem (default); False warns and skips the file.

    Returns:
        One record per clip sorted by genre then file name; ``id`` the file stem
        (``blues.00000``), ``tags`` the genre, ``split`` ``""`` (GTZAN has no official split).

    Raises:
        SingalignError: missing root or no clips, or (strict) a misplaced or empty file.
    """
    root = Path(root)
    if not root.is_dir():
        raise SingalignError(f"{root}: GTZAN folder not found")
    genres_dir = _gtzan_genres_dir(root)
    records = []
    for genre_dir in sorted(p for p in genres_dir.iterdir() if p.is_dir()):
        genre = genre_dir.name
        for path in sorted(genre_dir.iterdir()):
            if path.suffix.lower() not in GTZAN_EXTS:
                continue  # GTZAN folders hold nothing else; ignore stray files (.DS_Store, ...)
            if not re.fullmatch(rf"{re.escape(genre)}\.\d+", path.stem):
                report_problem(f"{path}: expected {genre}.NNNNN{path.suffix} in folder {genre}/", strict)
                continue
            if not _check_audio(path, strict, str(genre_dir)):
                continue
            records.append(
                Record(
                    id=path.stem,
                    corpus="gtzan",
                    kind="song",
                    split="",
                    audio=str(path.resolve()),
                    tags=(genre.lower(),),
                )
            )
    if not records:
        raise SingalignError(f"{genres_dir}: no GTZAN clips (<genre>/<genre>.NNNNN.wav or .au)")
    return records
