"""Tagging-corpus readers on tiny files in MagnaTagATune, MTG-Jamendo and GTZAN layouts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singalign.data.tagging import read_gtzan, read_magnatagatune, read_mtg_jamendo
from singalign.errors import AudioError, SingalignError

# MagnaTagATune's csv has 188 tag columns; a few real names first, then fillers.
MTAT_TAGS = ["no voice", "singer", "duet", "guitar", "classical", "rock"] + [f"tag{k}" for k in range(182)]


def _mp3(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000, format="MP3")


def _mtat(root: Path, rows: list[tuple[str, set[str], str]], extra_line: str = "") -> Path:
    """Write annotations_final.csv as the original: tab-separated, every field quoted, CRLF."""

    def quoted(fields: list[str]) -> str:
        return "\t".join(f'"{f}"' for f in fields) + "\r\n"

    text = quoted(["clip_id", *MTAT_TAGS, "mp3_path"])
    for clip_id, tags, mp3 in rows:
        text += quoted([clip_id, *("1" if t in tags else "0" for t in MTAT_TAGS), mp3])
        _mp3(root / mp3)
    path = root / "annotations_final.csv"
    path.write_text(text + extra_line, newline="")
    return path


MTAT_ROWS = [
    (
        "2",
        {"classical", "guitar"},
        "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3",
    ),
    ("6", {"classical", "singer"}, "0/jeff_wahl-guitarish-01-spanish_dance-0-29.mp3"),
    ("10", {"rock", "guitar", "duet"}, "c/magnatune_compilation-rock-02-run-88-117.mp3"),
]


def test_mtat_known_answers(tmp_path: Path) -> None:
    _mtat(tmp_path, MTAT_ROWS)
    records = read_magnatagatune(tmp_path)
    assert [(r.id, r.split, r.tags) for r in records] == [
        ("2", "test", ("guitar", "classical")),
        ("6", "train", ("singer", "classical")),
        ("10", "valid", ("duet", "guitar", "rock")),
    ]
    assert records[0].kind == "song" and records[0].corpus == "magnatagatune" and records[0].duration is None
    assert Path(records[1].audio).name == "jeff_wahl-guitarish-01-spanish_dance-0-29.mp3"
    # top 2 tags by frequency: guitar (2) and classical (2); the rest are dropped.
    top = read_magnatagatune(tmp_path, top_n=2)
    assert [r.tags for r in top] == [("guitar", "classical"), ("classical",), ("guitar",)]


def test_mtat_bad_inputs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SingalignError, match="nowhere: MagnaTagATune audio folder not found"):
        read_magnatagatune(tmp_path / "nowhere")
    with pytest.raises(SingalignError, match=r"annotations_final\.csv: MagnaTagATune annotations not found"):
        read_magnatagatune(tmp_path)
    _mtat(tmp_path, MTAT_ROWS, extra_line='"11"\t"1"\t"x.mp3"\r\n')
    with pytest.raises(
        SingalignError, match=r"annotations_final\.csv:5: expected 190 tab-separated fields, got 3"
    ):
        read_magnatagatune(tmp_path)
    _mtat(tmp_path, MTAT_ROWS)
    (tmp_path / MTAT_ROWS[1][2]).write_bytes(b"")  # MTAT has a few empty mp3 files
    with pytest.raises(AudioError, match=r"spanish_dance-0-29\.mp3: audio file is empty"):
        read_magnatagatune(tmp_path)
    (tmp_path / MTAT_ROWS[2][2]).unlink()
    with caplog.at_level(logging.WARNING):
        assert [r.id for r in read_magnatagatune(tmp_path, strict=False)] == ["2"]
    assert "run-88-117.mp3: audio file not found" in caplog.text


MTG_HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"


def test_mtg_jamendo_known_answers(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    _mp3(audio / "14" / "214.mp3")
    _mp3(audio / "15" / "1015.low.mp3")  # the low-quality download's name
    tsv = tmp_path / "autotagging_top50tags-validation.tsv"
    tsv.write_text(
        MTG_HEADER
        + "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t124.6\tgenre---punkrock\n"
        + "track_0001015\tartist_000326\talbum_000151\t15/1015.mp3\t269.8\tgenre---dubstep\t"
        + "instrument---piano\tmood/theme---sad\tgenre---electronic\n"
    )
    records = read_mtg_jamendo(tsv, audio)
    assert [(r.id, r.split, r.duration, r.tags) for r in records] == [
        ("track_0000214", "validation", 124.6, ("punkrock",)),
        ("track_0001015", "validation", 269.8, ("dubstep", "piano", "sad", "electronic")),
    ]
    assert records[1].speaker == "artist_000326" and Path(records[1].audio).name == "1015.low.mp3"
    assert records[1].extra["tag_categories"] == {
        "genre": ["dubstep", "electronic"],
        "instrument": ["piano"],
        "mood/theme": ["sad"],
    }
    whole = tmp_path / "autotagging.tsv"
    whole.write_text(tsv.read_text())
    assert {r.split for r in read_mtg_jamendo(whole, audio)} == {""}


def test_mtg_jamendo_bad_inputs(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    _mp3(audio / "14" / "214.mp3")
    tsv = tmp_path / "autotagging.tsv"
    with pytest.raises(SingalignError, match=r"autotagging\.tsv: MTG-Jamendo tsv not found"):
        read_mtg_jamendo(tsv, audio)
    tsv.write_text(
        MTG_HEADER + "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\tlong\tgenre---rock\n"
    )
    with pytest.raises(SingalignError, match=r"autotagging\.tsv:2: DURATION is not a number: 'long'"):
        read_mtg_jamendo(tsv, audio)
    tsv.write_text(MTG_HEADER + "track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t10.0\trock\n")
    with pytest.raises(SingalignError, match=r"autotagging\.tsv:2: tag 'rock' is not 'category---tag'"):
        read_mtg_jamendo(tsv, audio)
    tsv.write_text(
        MTG_HEADER + "track_0000999\tartist_000014\talbum_000031\t99/999.mp3\t10.0\tgenre---rock\n"
    )
    with pytest.raises(
        AudioError, match=r"999\.mp3: audio file not found \(listed in .*autotagging\.tsv:2\)"
    ):
        read_mtg_jamendo(tsv, audio)
    assert read_mtg_jamendo(tsv, audio, strict=False) == []
    tsv.write_text("ID\tPATH\n")
    with pytest.raises(SingalignError, match=r"autotagging\.tsv:1: expected header TRACK_ID"):
        read_mtg_jamendo(tsv, audio)


def test_gtzan_known_answers(tmp_path: Path) -> None:
    for genre, k, fmt in (("blues", 0, "WAV"), ("blues", 1, "WAV"), ("rock", 17, "AU")):
        folder = tmp_path / "genres" / genre
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(
            folder / f"{genre}.{k:05d}.{fmt.lower()}", np.zeros(2205, dtype=np.float32), 22050, format=fmt
        )
    (tmp_path / "genres" / "blues" / ".DS_Store").write_bytes(b"x")
    records = read_gtzan(tmp_path)
    assert [(r.id, r.tags, r.corpus) for r in records] == [
        ("blues.00000", ("blues",), "gtzan"),
        ("blues.00001", ("blues",), "gtzan"),
        ("rock.00017", ("rock",), "gtzan"),
    ]
    assert Path(records[2].audio).suffix == ".au"
    assert len(read_gtzan(tmp_path / "genres")) == 3  # the genres folder itself


def test_gtzan_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(SingalignError, match="nowhere: GTZAN folder not found"):
        read_gtzan(tmp_path / "nowhere")
    (tmp_path / "genres_original" / "jazz").mkdir(parents=True)
    with pytest.raises(SingalignError, match="no GTZAN clips"):
        read_gtzan(tmp_path)
    (tmp_path / "genres_original" / "jazz" / "jazz.00054.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"jazz\.00054\.wav: audio file is empty"):
        read_gtzan(tmp_path)
    (tmp_path / "genres_original" / "jazz" / "jazz.00054.wav").unlink()
    sf.write(tmp_path / "genres_original" / "jazz" / "rock.00001.wav", np.zeros(10, dtype=np.float32), 22050)
    with pytest.raises(SingalignError, match=r"rock\.00001\.wav: expected jazz\.NNNNN\.wav in folder jazz/"):
        read_gtzan(tmp_path)
