"""DALI v1 reader on annotation files written with the DALI package's own classes and writer."""

from __future__ import annotations

import gzip
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

DALI = pytest.importorskip("DALI")
from DALI import utilities as dali_utils  # noqa: E402

from singalign.data.dali import hz_to_midi, read_dali  # noqa: E402
from singalign.errors import SingalignError  # noqa: E402

A4, C4, B4_FLAT = 440.0, 261.6255653005986, 466.1637615180899


def _item(text: str, start: float, end: float, freq: float, index: int | None) -> dict:
    item = {"text": text, "time": [start, end], "freq": [freq, freq]}
    if index is not None:
        item["index"] = index
    return item


def _entry(song_id: str, genres: list[str]) -> object:
    """A two-word, one-line song in DALI v1's horizontal format."""
    entry = DALI.Annotations(song_id)
    entry.info.update(
        {
            "artist": "The Testers",
            "title": "Two Words",
            "dataset_version": 1.0,
            "scores": {"NCC": 0.91, "manual": 0.0},
            "audio": {"url": "dQw4w9WgXcQ", "working": True, "path": "None"},
            "metadata": {
                "album": "Tests",
                "release_date": "2018",
                "cover": "None",
                "genres": genres,
                "language": "english",
            },
        }
    )
    entry.annotations["type"] = "horizontal"
    entry.annotations["annot_param"] = {"fr": 25.0, "offset": 0.0}
    entry.annotations["annot"] = {
        "notes": [
            _item("hel", 1.0, 1.5, A4, 0),
            _item("lo", 1.5, 2.0, C4, 0),
            _item("world", 2.25, 3.0, B4_FLAT, 1),
        ],
        "words": [_item("hello", 1.0, 2.0, C4, 0), _item("world", 2.25, 3.0, B4_FLAT, 0)],
        "lines": [_item("hello world", 1.0, 3.0, C4, 0)],
        "paragraphs": [_item("hello world", 1.0, 3.0, C4, None)],
    }
    return entry


def _audio(path: Path, seconds: float = 4.0, sr: int = 16000) -> None:
    sf.write(path, np.zeros(int(seconds * sr), dtype=np.float32), sr)


@pytest.fixture
def dali_dirs(tmp_path: Path) -> tuple[Path, Path]:
    annot, audio = tmp_path / "annot", tmp_path / "audio"
    annot.mkdir()
    audio.mkdir()
    for song_id, genres in (("aaa111", ["Pop", "Rock"]), ("bbb222", ["Jazz"]), ("ccc333", [])):
        dali_utils.write_in_gzip(str(annot), song_id, _entry(song_id, genres))
    _audio(annot / "aaa111.wav")  # audio beside the annotations
    _audio(audio / "bbb222.flac", seconds=3.5)  # audio in audio_dir; ccc333 has none
    return annot, audio


def test_hz_to_midi_known_values() -> None:
    assert hz_to_midi(A4) == pytest.approx(69.0)
    assert hz_to_midi(C4) == pytest.approx(60.0)
    assert hz_to_midi(880.0) == pytest.approx(81.0)
    assert hz_to_midi(450.0) == pytest.approx(69.389, abs=1e-3)  # kept fractional


def test_reads_songs_with_audio(dali_dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    annot, audio = dali_dirs
    with caplog.at_level(logging.WARNING):
        records = read_dali(annot, audio, split="train")
    assert [r.id for r in records] == ["aaa111", "bbb222"]
    assert "ccc333" in caplog.text and "no audio" in caplog.text
    r = records[0]
    assert (r.kind, r.corpus, r.split, r.speaker) == ("song", "dali", "train", "The Testers")
    assert r.text == "hello world"
    assert [(w.word, w.start, w.end) for w in r.words] == [("hello", 1.0, 2.0), ("world", 2.25, 3.0)]
    assert [(ln.text, ln.start, ln.end) for ln in r.lines] == [("hello world", 1.0, 3.0)]
    assert [(n.onset, n.offset) for n in r.notes] == [(1.0, 1.5), (1.5, 2.0), (2.25, 3.0)]
    assert [n.pitch for n in r.notes] == pytest.approx([69.0, 60.0, 70.0])
    assert r.tags == ("pop", "rock")
    assert r.duration == pytest.approx(4.0) and Path(r.audio).name == "aaa111.wav"
    assert r.extra["language"] == "english" and r.extra["ncc"] == pytest.approx(0.91)
    assert r.extra["title"] == "Two Words" and r.extra["paragraphs"][0]["text"] == "hello world"
    assert records[1].tags == ("jazz",) and records[1].duration == pytest.approx(3.5)
    assert Path(records[1].audio).parent == audio.resolve()


def test_record_round_trips_through_json(dali_dirs: tuple[Path, Path]) -> None:
    from singalign.data.manifest import Record

    r = read_dali(*dali_dirs)[0]
    assert Record.from_dict(r.to_dict()) == r


def test_vertical_file_is_converted(tmp_path: Path) -> None:
    entry = _entry("vvv444", ["Pop"])
    entry.horizontal2vertical()  # the package's own conversion; the reader must undo it
    assert entry.annotations["type"] == "vertical"
    dali_utils.write_in_gzip(str(tmp_path), "vvv444", entry)
    _audio(tmp_path / "vvv444.mp3", seconds=4.0)
    (r,) = read_dali(tmp_path)
    # In the vertical form only notes hold text; upper levels are rebuilt from them.
    assert [w.word for w in r.words] == ["hello", "world"]
    assert [n.pitch for n in r.notes] == pytest.approx([69.0, 60.0, 70.0])


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(SingalignError, match="nope: DALI annotation folder not found"):
        read_dali(tmp_path / "nope")
    with pytest.raises(SingalignError, match=r"no DALI annotation files \(\*\.gz\)"):
        read_dali(tmp_path)
    with pytest.raises(SingalignError, match="gone: DALI audio folder not found"):
        read_dali(tmp_path, tmp_path / "gone")


def test_corrupt_and_malformed_files(dali_dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    annot, audio = dali_dirs
    (annot / "ddd444.gz").write_bytes(b"this is not gzip")
    _audio(annot / "ddd444.wav")
    with pytest.raises(SingalignError, match=r"ddd444\.gz: cannot read DALI annotation"):
        read_dali(annot, audio)
    with caplog.at_level(logging.WARNING):
        assert [r.id for r in read_dali(annot, audio, strict=False)] == ["aaa111", "bbb222"]
    assert "ddd444.gz" in caplog.text

    (annot / "ddd444.gz").unlink()
    bad = _entry("eee555", [])
    bad.annotations["annot"]["words"][1]["time"] = [3.0, 2.0]
    dali_utils.write_in_gzip(str(annot), "eee555", bad)
    _audio(annot / "eee555.wav")
    with pytest.raises(SingalignError, match=r"eee555\.gz: words\[1\] has time \[3\.0, 2\.0\]"):
        read_dali(annot, audio)

    (annot / "eee555.gz").unlink()
    with gzip.open(annot / "fff666.gz", "wb") as f:
        f.write(pickle.dumps({"not": "an entry"}))
    _audio(annot / "fff666.wav")
    with pytest.raises(SingalignError, match=r"fff666\.gz: not a DALI annotation"):
        read_dali(annot, audio)
