"""Writers for the real corpora's layouts: DALI v1, JamendoLyrics, mir_eval notes, stems.

Every file is written atomically (temporary name, then rename).

* ``dali/<id>.gz``: a gzip-compressed pickle (protocol 2) of ``DALI.Annotations.Annotations``
  in the *horizontal* format, exactly what ``DALI.main.get_the_DALI_dataset`` and
  ``DALI.utilities.read_gzip`` load: ``annot = {"notes", "words", "lines", "paragraphs"}``, each a
  list of ``{"text", "time": [start, end], "freq": [low, high], "index"}`` (index = position of the
  parent in the next level; paragraphs have none). ``dali/<id>.mp3`` is the mixture beside it.
* ``jamendo/``: ``mp3/<id>.mp3``, ``lyrics/<id>.txt`` (one line per lyric line, a blank line
  between paragraphs, no final newline), ``lyrics/<id>.words.txt`` (one word per line),
  ``annotations/words/<id>.csv`` (``word_start,word_end,line_end``; ``line_end`` is ``nan`` except
  on a line's last word), ``annotations/lines/<id>.csv`` (``start_time,end_time,lyrics_line``) and
  ``JamendoLyrics.csv``, column for column as the benchmark's files.
* ``notes/<id>.txt``: ``onset offset frequency_hz`` per line (mir_eval's format).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from singalign.errors import SingalignError
from singalign.files import atomic_path, write_bytes, write_text

JAMENDO_COLUMNS = (
    "URL", "Filepath", "Artist", "Title", "Genre", "LicenseType", "Language", "LyricOverlap", "Polyphonic", "NonLexical",
)  # fmt: skip


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _num(x: float) -> str:
    """A time as the Jamendo files write it: up to 9 decimals, no trailing zeros."""
    return repr(round(float(x), 9))


def write_audio(path: Path, audio_int16: np.ndarray, sample_rate: int, fmt: str) -> None:
    """Write 16-bit audio (``fmt`` ``FLAC`` or ``MP3``) atomically."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        if fmt == "MP3" and shutil.which("lame"):
            # The lame program gives the same bytes on every run (libsndfile's MP3 writer does
            # not across processes) and is three times faster. 128 kbit/s joint stereo, like
            # the Jamendo files.
            pcm = np.ascontiguousarray(audio_int16, dtype="<i2").tobytes()
            channels = audio_int16.shape[1] if audio_int16.ndim == 2 else 1
            cmd = ["lame", "--quiet", "-r", "-s", f"{sample_rate / 1000:g}", "--bitwidth", "16", "--signed"]
            cmd += ["--little-endian", "-m", "j" if channels == 2 else "m", "-b", "128", "-", str(tmp)]
            proc = subprocess.run(cmd, input=pcm, capture_output=True, check=False)
            if proc.returncode != 0:
                raise SingalignError(f"lame failed on {path}: {proc.stderr.decode()[-200:].strip()}")
        elif fmt == "MP3":
            sf.write(str(tmp), audio_int16, sample_rate, format="MP3")
        else:
            sf.write(str(tmp), audio_int16, sample_rate, format=fmt, subtype="PCM_16")


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same bytes, no extra space), copying if links are impossible."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            tmp.write_bytes(src.read_bytes())


def write_notes(path: Path, notes: list[dict[str, Any]]) -> None:
    """mir_eval note list: ``onset offset frequency_hz`` (seconds, Hz) per line."""
    write_text(
        path, "".join(f"{n['onset']:.6f}\t{n['offset']:.6f}\t{midi_to_hz(n['pitch']):.4f}\n" for n in notes)
    )


def write_jamendo(root: Path, song_id: str, song: dict[str, Any]) -> None:
    """Lyrics and annotation files of one song (the mp3 is written by the caller)."""
    paragraphs: list[list[str]] = []
    for line in song["lines"]:
        if not paragraphs or line["paragraph"] != len(paragraphs) - 1:
            paragraphs.append([])
        paragraphs[-1].append(line["text"])
    write_text(root / "lyrics" / f"{song_id}.txt", "\n\n".join("\n".join(p) for p in paragraphs))
    write_text(root / "lyrics" / f"{song_id}.words.txt", "\n".join(w["word"] for w in song["words"]))
    last_word_of_line = {}
    for k, w in enumerate(song["words"]):
        last_word_of_line[w["line"]] = k
    rows = ["word_start,word_end,line_end"]
    for k, w in enumerate(song["words"]):
        line = song["lines"][w["line"]]
        end = _num(line["end"]) if last_word_of_line[w["line"]] == k else "nan"
        rows.append(f"{_num(w['start'])},{_num(w['end'])},{end}")
    write_text(root / "annotations" / "words" / f"{song_id}.csv", "\n".join(rows) + "\n")
    rows = ["start_time,end_time,lyrics_line"]
    rows += [f"{_num(ln['start'])},{_num(ln['end'])},{ln['text']}" for ln in song["lines"]]
    write_text(root / "annotations" / "lines" / f"{song_id}.csv", "\n".join(rows) + "\n")


def jamendo_row(song: dict[str, Any]) -> dict[str, str]:
    return {
        "URL": "",
        "Filepath": f"{song['id']}.mp3",
        "Artist": song["artist"],
        "Title": song["title"],
        "Genre": song["style"].title(),
        "LicenseType": "CC0",
        "Language": "English",
        "LyricOverlap": "false",
        "Polyphonic": "true",
        "NonLexical": "false",
    }


def write_jamendo_index(root: Path, songs: list[dict[str, Any]]) -> None:
    """``JamendoLyrics.csv`` with one row per song."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=JAMENDO_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in songs:
        writer.writerow(jamendo_row(s))
    write_text(root / "JamendoLyrics.csv", buf.getvalue())


def dali_annotations(song: dict[str, Any]):  # -> DALI.Annotations.Annotations
    """The song as a DALI v1 ``Annotations`` object (horizontal format)."""
    from DALI.Annotations import Annotations

    def freq_range(notes: list[dict[str, Any]]) -> list[float]:
        hz = [midi_to_hz(n["pitch"]) for n in notes] or [0.0]
        return [float(min(hz)), float(max(hz))]

    notes_by_word: dict[int, list] = {}
    for n in song["notes"]:
        notes_by_word.setdefault(n["word"], []).append(n)
    a_notes = [
        {
            "text": n["text"],
            "time": [float(n["onset"]), float(n["offset"])],
            "freq": [midi_to_hz(n["pitch"])] * 2,
            "index": n["word"],
        }
        for n in song["notes"]
    ]
    a_words = [
        {
            "text": w["word"],
            "time": [float(w["start"]), float(w["end"])],
            "freq": freq_range(notes_by_word.get(k, [])),
            "index": w["line"],
        }
        for k, w in enumerate(song["words"])
    ]
    a_lines, a_paragraphs = [], []
    for li, line in enumerate(song["lines"]):
        notes = [n for k, w in enumerate(song["words"]) if w["line"] == li for n in notes_by_word.get(k, [])]
        a_lines.append(
            {
                "text": line["text"],
                "time": [float(line["start"]), float(line["end"])],
                "freq": freq_range(notes),
                "index": line["paragraph"],
            }
        )
    for p in sorted({ln["paragraph"] for ln in song["lines"]}):
        members = [(li, ln) for li, ln in enumerate(song["lines"]) if ln["paragraph"] == p]
        notes = [
            n
            for li, _ in members
            for k, w in enumerate(song["words"])
            if w["line"] == li
            for n in notes_by_word.get(k, [])
        ]
        a_paragraphs.append(
            {
                "text": " ".join(ln["text"] for _, ln in members),
                "time": [float(members[0][1]["start"]), float(members[-1][1]["end"])],
                "freq": freq_range(notes),
            }
        )
    entry = Annotations(song["id"])
    entry.info.update(
        {
            "artist": song["artist"],
            "title": song["title"],
            "audio": {"url": "", "working": True, "path": f"{song['id']}.mp3"},
            "metadata": {
                "album": "singalign synthetic",
                "release_date": "",
                "cover": "",
                "genres": [song["style"]],
                "language": "english",
            },
            "scores": {"NCC": 1.0, "manual": 1.0},
            "dataset_version": 1.0,
            "ground-truth": True,
        }
    )
    entry.annotations = {
        "type": "horizontal",
        "annot": {"notes": a_notes, "words": a_words, "lines": a_lines, "paragraphs": a_paragraphs},
        "annot_param": {"fr": float(song["bpm"]), "offset": 0.0},
    }
    return entry


def write_dali(root: Path, song: dict[str, Any]) -> None:
    """``<id>.gz``: gzip (mtime 0, so the bytes are reproducible) of a protocol-2 pickle."""
    # A JSON round trip first: pickle shares repeated objects by identity, which would make the
    # bytes depend on how the song was built; fresh objects make them depend on its content only.
    song = json.loads(json.dumps(song))
    data = pickle.dumps(dali_annotations(song), protocol=2)
    write_bytes(root / f"{song['id']}.gz", gzip.compress(data, mtime=0))
