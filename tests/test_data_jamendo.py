"""JamendoLyrics reader on the real one-song sample, and on broken copies of it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from singalign.data.jamendo import read_jamendo
from singalign.errors import SingalignError

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "jamendolyrics_sample"
NAME = "Fantasma_-_Los_Rombos"
pytestmark = pytest.mark.skipif(
    not (SAMPLE / "JamendoLyrics.csv").is_file(), reason="shared Jamendo sample absent"
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "jamendo"
    shutil.copytree(SAMPLE, root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the shared sample is read-only
    return root


def test_real_sample_known_answers() -> None:
    (r,) = read_jamendo(SAMPLE)
    assert (r.id, r.corpus, r.kind, r.split) == (NAME, "jamendo", "song", "test")
    # Counts read from the files: 88 rows in annotations/words, 17 in annotations/lines.
    assert len(r.words) == 88 and len(r.lines) == 17 and r.notes == ()
    assert (r.words[0].word, r.words[0].start, r.words[0].end) == ("soy", 17.632653061, 18.390204082)
    assert (r.words[-1].word, r.words[-1].start, r.words[-1].end) == ("oh", 152.659591837, 154.213877551)
    assert (r.lines[0].text, r.lines[0].start, r.lines[0].end) == (
        "soy un fantasma que",
        17.632653061,
        21.420408163,
    )
    assert r.lines[-1].text == "ooh ooh oh ooh ooh oh"
    assert r.text.splitlines()[5] == "se alimenta de la belleza" and len(r.text.splitlines()) == 17
    assert "extraña" in r.text  # UTF-8 kept as given
    assert r.tags == ("folk",) and r.speaker == "LOS ROMBOS"
    assert r.extra["language"] == "Spanish" and r.extra["title"] == "Fantasma"
    assert r.extra["polyphonic"] is True and r.extra["lyric_overlap"] is False
    # Line ends in annotations/words: 17 rows, the first after word 4 ("soy un fantasma que").
    assert len(r.extra["line_ends"]) == 17 and r.extra["line_ends"][0] == 3
    assert r.duration == pytest.approx(166.01, abs=0.01)  # the mp3 decodes to 7,321,199 samples at 44.1 kHz
    assert all(w.start <= w.end for w in r.words)


def test_language_filter() -> None:
    assert read_jamendo(SAMPLE, languages=["English"]) == []
    assert len(read_jamendo(SAMPLE, languages=["spanish"])) == 1


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(SingalignError, match="missing: JamendoLyrics folder not found"):
        read_jamendo(tmp_path / "missing")
    with pytest.raises(SingalignError, match=r"JamendoLyrics\.csv: file not found"):
        read_jamendo(tmp_path)


def test_malformed_word_row(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    words = copy / "annotations" / "words" / f"{NAME}.csv"
    lines = words.read_text().splitlines()
    lines[3] = "18.760272109,oops,nan"
    words.write_text("\n".join(lines) + "\n")
    with pytest.raises(SingalignError, match=rf"{NAME}\.csv:4: word_end is not a number: 'oops'"):
        read_jamendo(copy)
    with caplog.at_level(logging.WARNING):
        assert read_jamendo(copy, strict=False) == []
    assert f"{NAME}.csv:4" in caplog.text


def test_word_count_mismatch(copy: Path) -> None:
    words_txt = copy / "lyrics" / f"{NAME}.words.txt"
    words_txt.write_text("\n".join(words_txt.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(SingalignError, match=r"88 timed words but .*words\.txt has 87"):
        read_jamendo(copy)


def test_missing_and_empty_files(copy: Path) -> None:
    (copy / "lyrics" / f"{NAME}.txt").write_text("\n\n")
    with pytest.raises(SingalignError, match=rf"{NAME}\.txt: file is empty"):
        read_jamendo(copy)
    (copy / "mp3" / f"{NAME}.mp3").unlink()
    with pytest.raises(SingalignError, match=rf"{NAME}\.mp3: audio file not found"):
        read_jamendo(copy)


def test_malformed_csv_row(copy: Path) -> None:
    csv_path = copy / "JamendoLyrics.csv"
    csv_path.write_text(csv_path.read_text() + "only,three,fields\n")
    with pytest.raises(SingalignError, match=r"JamendoLyrics\.csv:3: expected 10 fields, got 3"):
        read_jamendo(copy)
    assert len(read_jamendo(copy, strict=False)) == 1  # the good song is still read


def test_bad_line_header(copy: Path) -> None:
    lines_csv = copy / "annotations" / "lines" / f"{NAME}.csv"
    lines_csv.write_text("a,b,c\n1,2,x\n")
    with pytest.raises(
        SingalignError, match=rf"lines/{NAME}\.csv:1: expected header start_time,end_time,lyrics_line"
    ):
        read_jamendo(copy)
