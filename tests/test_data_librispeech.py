"""LibriSpeech reader: synthetic layout, real LJ Speech clips in that layout, and bad inputs."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singalign.data.librispeech import find_splits, read_librispeech
from singalign.errors import AudioError, SingalignError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LJSPEECH = SHARED / "ljspeech"


def _utterance(folder: Path, utt: str, seconds: float, sr: int = 16000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{utt}.flac", np.zeros(int(round(seconds * sr)), dtype=np.float32), sr)


def _chapter(root: Path, split: str, speaker: str, chapter: str, lines: dict[str, float]) -> Path:
    folder = root / split / speaker / chapter
    for k, seconds in enumerate(lines.values()):
        _utterance(folder, f"{speaker}-{chapter}-{k:04d}", seconds)
    text = "".join(f"{speaker}-{chapter}-{k:04d} {words}\n" for k, words in enumerate(lines))
    (folder / f"{speaker}-{chapter}.trans.txt").write_text(text)
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "LibriSpeech"
    _chapter(root, "train-clean-100", "103", "1240", {"CHAPTER ONE": 1.5, "MISSUS RACHEL LYNDE": 0.75})
    _chapter(root, "train-clean-100", "19", "198", {"HELLO THERE": 2.0})
    _chapter(root, "dev-clean", "84", "121123", {"GO DO YOU HEAR": 1.25})
    (root / "README.TXT").write_text("not a split\n")
    return root


def test_reads_every_split_with_known_fields(corpus: Path) -> None:
    records = read_librispeech(corpus)
    assert [r.id for r in records] == ["84-121123-0000", "103-1240-0000", "103-1240-0001", "19-198-0000"]
    by_id = {r.id: r for r in records}
    r = by_id["103-1240-0001"]
    assert (r.kind, r.corpus, r.split, r.speaker, r.text) == (
        "speech",
        "librispeech",
        "train-clean-100",
        "103",
        "MISSUS RACHEL LYNDE",
    )
    assert r.duration == pytest.approx(0.75)
    assert r.offset == 0.0 and r.extra["chapter"] == "1240"
    assert Path(r.audio).is_absolute() and Path(r.audio).name == "103-1240-0001.flac"
    assert by_id["84-121123-0000"].split == "dev-clean"
    assert by_id["19-198-0000"].duration == pytest.approx(2.0)


def test_root_may_be_parent_or_single_split(corpus: Path) -> None:
    assert len(read_librispeech(corpus.parent)) == 4  # the folder holding LibriSpeech/
    only_dev = read_librispeech(corpus / "dev-clean")
    assert [(r.id, r.split) for r in only_dev] == [("84-121123-0000", "dev-clean")]
    assert sorted(find_splits(corpus)) == ["dev-clean", "train-clean-100"]


def test_splits_filter_and_missing_split(corpus: Path) -> None:
    assert [r.id for r in read_librispeech(corpus, splits=["dev-clean"])] == ["84-121123-0000"]
    with pytest.raises(SingalignError, match="test-clean.*not found"):
        read_librispeech(corpus, splits=["test-clean"])


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(SingalignError, match="nowhere"):
        read_librispeech(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SingalignError, match="no LibriSpeech split"):
        read_librispeech(tmp_path / "empty")


def test_missing_audio_strict_and_lenient(corpus: Path, caplog: pytest.LogCaptureFixture) -> None:
    (corpus / "train-clean-100/103/1240/103-1240-0001.flac").unlink()
    with pytest.raises(SingalignError, match=r"103-1240-0001\.flac: audio missing"):
        read_librispeech(corpus)
    with caplog.at_level(logging.WARNING):
        records = read_librispeech(corpus, strict=False)
    assert "103-1240-0001" not in {r.id for r in records} and len(records) == 3
    assert "103-1240-0001.flac" in caplog.text


def test_audio_without_transcript_line(corpus: Path) -> None:
    _utterance(corpus / "dev-clean/84/121123", "84-121123-0007", 0.5)
    with pytest.raises(SingalignError, match=r"84-121123-0007\.flac: no line for 84-121123-0007"):
        read_librispeech(corpus)
    assert len(read_librispeech(corpus, strict=False)) == 4


def test_transcript_file_missing(corpus: Path) -> None:
    (corpus / "dev-clean/84/121123/84-121123.trans.txt").unlink()
    with pytest.raises(SingalignError, match=r"84-121123\.trans\.txt: transcript missing"):
        read_librispeech(corpus)


def test_empty_transcript_file(corpus: Path) -> None:
    (corpus / "dev-clean/84/121123/84-121123.trans.txt").write_text("\n")
    with pytest.raises(SingalignError, match=r"84-121123\.trans\.txt: transcript file is empty"):
        read_librispeech(corpus)


def test_malformed_transcript_lines(corpus: Path) -> None:
    trans = corpus / "dev-clean/84/121123/84-121123.trans.txt"
    trans.write_text("84-121123-0000 GO DO YOU HEAR\n84-121123-0001\n")
    with pytest.raises(SingalignError, match=r"84-121123\.trans\.txt:2: expected 'UTTERANCE-ID TRANSCRIPT'"):
        read_librispeech(corpus)
    trans.write_text("99-1-0000 WRONG CHAPTER\n")
    with pytest.raises(
        SingalignError, match=r"trans\.txt:1: utterance id '99-1-0000' does not match 84-121123-NNNN"
    ):
        read_librispeech(corpus)


def test_unreadable_audio(corpus: Path) -> None:
    (corpus / "dev-clean/84/121123/84-121123-0000.flac").write_bytes(b"not a flac file at all")
    with pytest.raises(AudioError, match=r"84-121123-0000\.flac: cannot read audio header"):
        read_librispeech(corpus)


@pytest.mark.skipif(not (LJSPEECH / "metadata.csv").is_file(), reason="shared LJ Speech sample absent")
def test_real_speech_in_librispeech_layout(tmp_path: Path) -> None:
    """Real LJ Speech clips (22.05 kHz FLAC) copied into the LibriSpeech layout read back exactly."""
    rows = [line.split("|") for line in (LJSPEECH / "metadata.csv").read_text(encoding="utf-8").splitlines()][
        :3
    ]
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "1" / "2"
    chapter.mkdir(parents=True)
    lines = []
    for k, (lj_id, transcript, *_) in enumerate(rows):
        shutil.copy(LJSPEECH / f"{lj_id}.flac", chapter / f"1-2-{k:04d}.flac")
        lines.append(f"1-2-{k:04d} {transcript.upper()}\n")
    (chapter / "1-2.trans.txt").write_text("".join(lines), encoding="utf-8")

    records = read_librispeech(tmp_path)
    assert [r.id for r in records] == ["1-2-0000", "1-2-0001", "1-2-0002"]
    assert records[1].text == "IN BEING COMPARATIVELY MODERN."
    assert records[0].text.startswith("PRINTING, IN THE ONLY SENSE WITH WHICH WE ARE AT PRESENT CONCERNED")
    assert records[0].duration == pytest.approx(9.655, abs=1e-3)  # LJ001-0001 is 9.655 s
    for r in records:  # the header's duration equals the decoded length
        audio, sr = sf.read(r.audio)
        assert sr == 22050 and r.duration == pytest.approx(len(audio) / sr)
