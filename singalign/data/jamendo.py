"""JamendoLyrics (MultiLang) reader: the benchmark's own layout -> manifest records.

Layout (github.com/f90/jamendolyrics)::

    ROOT/
      JamendoLyrics.csv      URL,Filepath,Artist,Title,Genre,LicenseType,Language,
                             LyricOverlap,Polyphonic,NonLexical (one row per song)
      mp3/<NAME>.mp3         NAME = Filepath without ".mp3"
      lyrics/<NAME>.txt      one lyric line per line (blank lines separate stanzas)
      lyrics/<NAME>.words.txt  one word per line, in singing order
      annotations/words/<NAME>.csv   word_start,word_end,line_end  (one row per word;
                                     line_end is "nan" except on a line's last word)
      annotations/lines/<NAME>.csv   start_time,end_time,lyrics_line

One record per song: ``kind="song"``, ``corpus="jamendo"``, ``split="test"`` (the benchmark is a
test set), words from ``words.txt`` with the times of ``annotations/words`` (row k times word k),
lines from ``annotations/lines``, ``text`` the lyric lines of ``lyrics/<NAME>.txt`` joined by
newlines (blank lines dropped), ``tags`` the genre (lower case), ``speaker`` the artist, and the
language, title, license and flags in ``extra``. There are no notes.

Problems (a missing file, a malformed csv row, word and time counts that differ) raise a
``SingalignError`` naming the file and line when ``strict=True`` (default); ``strict=False`` warns
and skips the song.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path

from singalign.data.librispeech import audio_duration, report_problem
from singalign.data.manifest import Line, Record, Word
from singalign.errors import SingalignError

log = logging.getLogger(__name__)

CSV_NAME = "JamendoLyrics.csv"
_REQUIRED = ("Filepath", "Artist", "Title", "Genre", "Language")


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, row)`` pairs of a comma-separated file with a header."""
    if not path.is_file():
        raise SingalignError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            # line_num counts physical lines read so far, so quoted newlines keep numbers right.
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SingalignError(f"{path}: cannot read csv ({exc})") from exc
    if not rows:
        raise SingalignError(f"{path}: csv file is empty")
    header = [c.strip() for c in rows[0][1]]
    return header, rows[1:]


def _float(value: str, path: Path, line: int, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SingalignError(f"{path}:{line}: {column} is not a number: {value!r}") from None


def read_word_times(path: Path) -> list[tuple[float, float, bool]]:
    """``(start, end, ends_line)`` per row of ``annotations/words/<NAME>.csv``.

    Raises:
        SingalignError: missing file, wrong header, malformed row or end before start (file:line).
    """
    header, rows = _read_csv(path)
    if header[:2] != ["word_start", "word_end"]:
        raise SingalignError(
            f"{path}:1: expected header word_start,word_end[,line_end], got {','.join(header)}"
        )
    out = []
    for line, row in rows:
        if len(row) != len(header):
            raise SingalignError(f"{path}:{line}: expected {len(header)} fields, got {len(row)}")
        start = _float(row[0], path, line, "word_start")
        end = _float(row[1], path, line, "word_end")
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise SingalignError(f"{path}:{line}: word times {start}..{end} are not a valid interval")
        ends_line = len(row) > 2 and row[2].strip().lower() not in ("", "nan")
        out.append((start, end, ends_line))
    return out


def read_line_times(path: Path) -> list[Line]:
    """Lines of ``annotations/lines/<NAME>.csv`` (``start_time,end_time,lyrics_line``).

    Raises:
        SingalignError: missing file, wrong header, malformed row (file:line).
    """
    header, rows = _read_csv(path)
    if header[:3] != ["start_time", "end_time", "lyrics_line"]:
        raise SingalignError(
            f"{path}:1: expected header start_time,end_time,lyrics_line, got {','.join(header)}"
        )
    out = []
    for line, row in rows:
        if len(row) < 3:
            raise SingalignError(f"{path}:{line}: expected 3 fields, got {len(row)}")
        start = _float(row[0], path, line, "start_time")
        end = _float(row[1], path, line, "end_time")
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise SingalignError(f"{path}:{line}: line times {start}..{end} are not a valid interval")
        out.append(Line(",".join(row[2:]).strip(), start, end))  # a lyric line may hold a comma
    return out


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise SingalignError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SingalignError(f"{path}: cannot read ({exc})") from exc
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise SingalignError(f"{path}: file is empty")
    return lines


def _flag(value: str) -> bool | str:
    low = value.strip().lower()
    return {"true": True, "false": False}.get(low, value.strip())


def read_song(root: Path, row: dict[str, str], split: str) -> Record:
    """One song of the benchmark as a record (see the module docstring).

    Raises:
        SingalignError: a missing or malformed file of this song, naming it.
    """
    filepath = row["Filepath"].strip()
    name = filepath[: -len(".mp3")] if filepath.lower().endswith(".mp3") else Path(filepath).stem
    audio = root / "mp3" / filepath
    if not audio.is_file():
        raise SingalignError(f"{audio}: audio file not found")
    lyric_lines = _read_lines(root / "lyrics" / f"{name}.txt")
    words_path = root / "lyrics" / f"{name}.words.txt"
    word_texts = _read_lines(words_path)
    times_path = root / "annotations" / "words" / f"{name}.csv"
    times = read_word_times(times_path)
    if len(times) != len(word_texts):
        raise SingalignError(f"{times_path}: {len(times)} timed words but {words_path} has {len(word_texts)}")
    lines = read_line_times(root / "annotations" / "lines" / f"{name}.csv")
    words = tuple(Word(w, s, e) for w, (s, e, _) in zip(word_texts, times, strict=True))
    if [w for ln in lyric_lines for w in ln.split()] != list(word_texts):
        # Kept, not fatal: the benchmark scores against words.txt, which is what we time.
        log.warning("%s: words differ from the words of %s.txt", words_path, name)
    genre = row.get("Genre", "").strip()
    return Record(
        id=name,
        corpus="jamendo",
        kind="song",
        split=split,
        audio=str(audio.resolve()),
        offset=0.0,
        duration=audio_duration(audio),
        text="\n".join(lyric_lines),
        words=words,
        lines=tuple(lines),
        tags=(genre.lower(),) if genre else (),
        speaker=row.get("Artist", "").strip(),
        extra={
            "title": row.get("Title", "").strip(),
            "artist": row.get("Artist", "").strip(),
            "genre": genre,
            "language": row.get("Language", "").strip(),
            "license": row.get("LicenseType", "").strip(),
            "url": row.get("URL", "").strip(),
            "lyric_overlap": _flag(row.get("LyricOverlap", "")),
            "polyphonic": _flag(row.get("Polyphonic", "")),
            "non_lexical": _flag(row.get("NonLexical", "")),
            "line_ends": [k for k, (_, _, ends) in enumerate(times) if ends],
        },
    )


def read_jamendo(
    root: str | os.PathLike[str],
    *,
    languages: list[str] | None = None,
    split: str = "test",
    strict: bool = True,
) -> list[Record]:
    """Read a JamendoLyrics (MultiLang) folder into manifest records.

    Args:
        root: the folder holding ``JamendoLyrics.csv``, ``mp3/``, ``lyrics/``, ``annotations/``.
        languages: keep only songs in these languages (csv ``Language``, case-insensitive,
            e.g. ``["English"]`` for the English subset); None keeps all.
        split: written into every record.
        strict: raise on a bad song (default); False warns and skips it.

    Returns:
        One record per song, in csv order.

    Raises:
        SingalignError: ``root`` or its csv missing or malformed, or (strict) a bad song file.
    """
    root = Path(root)
    if not root.is_dir():
        raise SingalignError(f"{root}: JamendoLyrics folder not found")
    csv_path = root / CSV_NAME
    header, rows = _read_csv(csv_path)
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise SingalignError(f"{csv_path}:1: missing columns {', '.join(missing)}")
    wanted = {lang.lower() for lang in languages} if languages is not None else None
    records = []
    for line, values in rows:
        if len(values) != len(header):
            report_problem(f"{csv_path}:{line}: expected {len(header)} fields, got {len(values)}", strict)
            continue
        row = dict(zip(header, values, strict=True))
        if wanted is not None and row["Language"].strip().lower() not in wanted:
            continue
        try:
            records.append(read_song(root, row, split))
        except SingalignError as exc:
            report_problem(str(exc), strict)
    return records
