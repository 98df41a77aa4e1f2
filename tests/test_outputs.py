"""Output writers: LRC and MIDI round trips (mido and pretty_midi), notes.txt via mir_eval, PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest

from singalign import outputs
from singalign.constants import N_MELS, N_PITCH_CLASSES, VOCAB
from singalign.errors import SingalignError
from singalign.result import Frames, LineTiming, NoteEvent, TranscriptionResult, WordTiming


def _result(with_frames: bool = True) -> TranscriptionResult:
    words = [
        WordTiming("let", 1.0, 1.4),
        WordTiming("there", 1.5, 2.0),
        WordTiming("be", 2.1, 2.6),
        WordTiming("light", 4.0, 5.2),
        WordTiming("señor", 5.3, 6.0),
    ]
    lines = [LineTiming("let there be", 1.0, 2.6), LineTiming("light señor", 4.0, 6.0)]
    notes = [
        NoteEvent(1.0, 1.4, 60, "let"),
        NoteEvent(1.5, 2.0, 62, "there"),
        NoteEvent(2.1, 2.6, 64, "be"),
        NoteEvent(4.0, 4.6, 65, "light"),
        NoteEvent(4.6, 5.2, 67, ""),  # melisma continuation
        NoteEvent(5.3, 6.0, 69, "señor"),
    ]
    frames = None
    if with_frames:
        t = int(6.5 * 62.5)
        rng = np.random.default_rng(0)
        frames = Frames(
            log_mel=rng.normal(-40, 10, (2, N_MELS, t)).astype(np.float32),
            pitch_probs=np.zeros((t, N_PITCH_CLASSES), np.float32),
            onset_probs=rng.uniform(0, 1, t).astype(np.float32),
            char_log_probs=np.zeros((t // 2, len(VOCAB)), np.float32),
        )
    return TranscriptionResult(
        "song.flac", "bundle", 6.5, "let there be\nlight señor", words, lines, notes, frames
    )


def test_parse_formats():
    assert outputs.parse_formats("all") == outputs.FORMATS
    assert outputs.parse_formats("png, json") == ("json", "png")
    with pytest.raises(SingalignError, match="unknown output format"):
        outputs.parse_formats("json,wav")


def test_write_outputs_all_formats(tmp_path):
    written = outputs.write_outputs(_result(), tmp_path, "song")
    assert [p.name for p in written] == [f"song.{f}" for f in outputs.FORMATS]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporaries
    d = json.loads((tmp_path / "song.json").read_text())
    assert TranscriptionResult.from_json_dict(d).notes[4].lyric == ""
    assert (tmp_path / "song.txt").read_text() == "let there be\nlight señor\n"
    png = (tmp_path / "song.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_png_without_frames(tmp_path):
    outputs.write_png(_result(with_frames=False), tmp_path / "x.png")
    assert (tmp_path / "x.png").stat().st_size > 5_000


def test_lrc_round_trip(tmp_path):
    res = _result()
    outputs.write_lrc(res, tmp_path / "song.lrc")
    text = (tmp_path / "song.lrc").read_text()
    assert "[00:01.00]<00:01.00>let <00:01.50>there <00:02.10>be <00:02.60>" in text
    parsed = outputs.parse_lrc(text)
    assert [p["time"] for p in parsed] == [1.0, 4.0]
    assert [p["text"] for p in parsed] == ["let there be", "light señor"]
    got = [(t, w) for p in parsed for t, w in p["words"]]
    assert got == [(round(w.start, 2), w.word) for w in res.words]
    assert parsed[1]["end"] == 6.0
    assert outputs.lrc_time(59.996) == "01:00.00" and outputs.lrc_time(3725.5) == "62:05.50"


def test_midi_round_trip_mido_and_pretty_midi(tmp_path):
    import mido
    import pretty_midi

    res = _result()
    outputs.write_midi(res, tmp_path / "song.mid")
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "song.mid"))
    notes = pm.instruments[0].notes
    assert [n.pitch for n in notes] == [n.pitch for n in res.notes]
    for got, want in zip(notes, res.notes, strict=True):
        assert got.start == pytest.approx(want.onset, abs=1e-3) and got.end == pytest.approx(
            want.offset, abs=1e-3
        )
    assert [(round(ly.time, 3), ly.text) for ly in pm.lyrics] == [
        (n.onset, n.lyric) for n in res.notes if n.lyric
    ]  # "señor" is Latin-1: kept
    mid = mido.MidiFile(str(tmp_path / "song.mid"))
    lyr = [m.text for tr in mid.tracks for m in tr if m.type == "lyrics"]
    assert lyr == ["let", "there", "be", "light", "señor"]
    assert mid.length == pytest.approx(6.0, abs=1e-3)


def test_midi_text_outside_latin1_is_transliterated(tmp_path):
    import pretty_midi

    res = _result(with_frames=False)
    res.notes[0].lyric = "Dvořák 愛"
    outputs.write_midi(res, tmp_path / "x.mid")
    assert pretty_midi.PrettyMIDI(str(tmp_path / "x.mid")).lyrics[0].text == "Dvorák ?"


def test_notes_txt_reads_in_mir_eval(tmp_path):
    import mir_eval

    outputs.write_notes_txt(_result(), tmp_path / "n.txt")
    intervals, hz = mir_eval.io.load_valued_intervals(str(tmp_path / "n.txt"))
    assert intervals.shape == (6, 2)
    assert hz[0] == pytest.approx(261.6256, abs=1e-3)  # C4
    assert 69 + 12 * np.log2(hz[-1] / 440) == pytest.approx(69)
