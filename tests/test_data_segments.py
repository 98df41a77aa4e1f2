"""Segmenting songs between words: known cut points, truncation, filters, and invariants."""

from __future__ import annotations

import logging
import random

import pytest

from singalign.constants import FRAME_RATE, SEGMENT_FRAMES
from singalign.data.manifest import Line, Note, Record, Word
from singalign.data.segments import LEAD_IN, MAX_SECONDS, segment_record


def _song(words: list[tuple[str, float, float]], notes=None, lines=(), duration=40.0, **kw) -> Record:
    words_t = tuple(Word(*w) for w in words)
    if notes is None:  # one note per word, MIDI 60
        notes = [(s, e, 60.0) for _, s, e in words]
    return Record(
        id="song",
        corpus="dali",
        kind="song",
        split="train",
        audio="/x/song.wav",
        duration=duration,
        text=" ".join(w for w, _, _ in words),
        words=words_t,
        lines=tuple(Line(*ln) for ln in lines),
        notes=tuple(Note(*n) for n in notes),
        tags=("pop",),
        extra={"title": "t"},
        **kw,
    )


# 15 words of 1.5 s, one every 2 s from 1 s: word k spans [1 + 2k, 2.5 + 2k].
REGULAR = [(f"w{k}", 1.0 + 2 * k, 2.5 + 2 * k) for k in range(15)]


def test_default_length_is_segment_frames() -> None:
    assert MAX_SECONDS == float(SEGMENT_FRAMES / FRAME_RATE) == 16.0


def test_known_cut_points() -> None:
    segs = segment_record(_song(REGULAR))
    # Window 1 fits words 0..6 (w6 ends 14.5 <= 16); it ends LEAD_IN before w7 (15.0): 14.75.
    # Window 2 from 14.75 fits w7..w14 (w14 ends 30.5 <= 30.75) and ends at the limit 30.75.
    # Window 3 [30.75, 40] has no words and is dropped.
    assert [s.id for s in segs] == ["song/seg000", "song/seg001"]
    assert (segs[0].offset, segs[0].duration) == (0.0, 15.0 - LEAD_IN)
    assert segs[1].offset == 15.0 - LEAD_IN and segs[1].duration == pytest.approx(16.0)
    assert segs[0].text == "w0 w1 w2 w3 w4 w5 w6" and segs[1].text == "w7 w8 w9 w10 w11 w12 w13 w14"
    assert [w.start for w in segs[1].words] == [15.0 + 2 * k for k in range(8)]  # times stay absolute
    assert len(segs[0].notes) == 7 and segs[0].notes[0] == Note(1.0, 2.5, 60.0)
    s = segs[0]
    assert (s.tags, s.split, s.audio, s.kind, s.extra) == (
        ("pop",),
        "train",
        "/x/song.wav",
        "song",
        {"title": "t", "parent": "song"},
    )


def test_never_cuts_a_word_or_note_random() -> None:
    rng = random.Random(3756)
    for _ in range(200):
        t, words = rng.uniform(0, 5), []
        for k in range(rng.randint(1, 60)):
            start = t
            t += rng.uniform(0.05, 3.0)
            words.append((f"w{k}", start, t))
            t += rng.choice([0.0, 0.0, rng.uniform(0, 0.5), rng.uniform(0, 10)])
        song = _song(words, duration=t + rng.uniform(0, 20))
        segs = segment_record(song, min_note_coverage=0.0)
        seen = []
        for a, b in zip(segs, segs[1:], strict=False):
            assert a.offset + a.duration <= b.offset + 1e-9  # in order, no overlap
        for s in segs:
            assert 0 < s.duration <= 16.0 + 1e-9
            for w in s.words:  # whole words only, inside the window
                assert s.offset - 1e-9 <= w.start and w.end <= s.offset + s.duration + 1e-9
                assert (w.word, w.start, w.end) in words
            assert s.text == " ".join(w.word for w in s.words)
            seen += [w.word for w in s.words]
        assert seen == [w for w, _, _ in words]  # every word exactly once, in order


def test_overlapping_words_are_not_separated() -> None:
    # b overlaps a (DALI has such words): no cut may fall between them.
    words = [("a", 0.5, 8.0), ("b", 7.5, 15.9), ("c", 16.0, 17.0)]
    segs = segment_record(_song(words, duration=17.0))
    assert [s.text for s in segs] == ["a b", "c"]
    assert segs[0].offset + segs[0].duration == pytest.approx(
        15.9
    )  # gap 15.9..16.0 is shorter than the lead-in


def test_word_longer_than_max_is_truncated_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    words = [("short", 1.0, 2.0), ("looong", 3.0, 23.0), ("after", 24.0, 25.0)]
    with caplog.at_level(logging.WARNING):
        segs = segment_record(_song(words, duration=26.0))
    assert "longer than 16.0 s" in caplog.text and "looong" in caplog.text
    assert [(s.id, s.text) for s in segs] == [
        ("song/seg000", "short"),
        ("song/seg001", "looong"),
        ("song/seg002", "after"),
    ]
    long = segs[1]
    assert long.offset == 3.0 - LEAD_IN and long.duration == pytest.approx(16.0)
    assert long.words == (Word("looong", 3.0, 3.0 - LEAD_IN + 16.0),)  # clipped to the window
    assert long.notes == (Note(3.0, 3.0 - LEAD_IN + 16.0, 60.0),)
    assert segs[2].offset == 23.0  # the rest of the long word is in no segment


def test_note_coverage_filter() -> None:
    # Two windows; the second's notes cover 0.5 s of 10 s (5%): dropped at 10%, kept at 1%.
    words = [("a", 1.0, 12.0), ("b", 20.0, 21.0)]
    notes = [(1.0, 12.0, 64.0), (20.0, 20.5, 65.0)]
    song = _song(words, notes=notes, duration=30.0)
    assert [s.text for s in segment_record(song)] == ["a"]
    kept = segment_record(song, min_note_coverage=0.01)
    assert [s.text for s in kept] == ["a", "b"] and kept[1].notes == (Note(20.0, 20.5, 65.0),)
    # Without notes there is no coverage filter.
    assert [s.text for s in segment_record(_song(words, notes=[], duration=30.0))] == ["a", "b"]


def test_lines_crossing_an_edge_keep_their_inside_words() -> None:
    lines = [("w0 w1 w2 w3", 1.0, 8.5), ("w4 w5 w6 w7 w8", 9.0, 18.5)]
    segs = segment_record(_song(REGULAR[:9], lines=lines, duration=20.0))
    assert [(ln.text, ln.start, ln.end) for ln in segs[0].lines] == [
        ("w0 w1 w2 w3", 1.0, 8.5),
        ("w4 w5 w6", 9.0, 14.5),
    ]
    assert [(ln.text, ln.start, ln.end) for ln in segs[1].lines] == [("w7 w8", 15.0, 18.5)]


def test_records_without_word_times_are_returned_whole() -> None:
    speech = Record(
        id="1-2-0000",
        corpus="librispeech",
        kind="speech",
        split="dev",
        audio="a.flac",
        duration=35.0,
        text="LONG",
    )
    assert segment_record(speech) == [speech]
    text_only = _song([], notes=[], duration=50.0)
    text_only = Record(**{**text_only.__dict__, "text": "words without times"})
    assert segment_record(text_only) == [text_only]


def test_record_offset_and_short_song() -> None:
    # A short song becomes one segment; a record starting at 100 s tiles from there.
    (one,) = segment_record(_song([("x", 101.0, 102.0)], duration=5.0, offset=100.0))
    assert (one.id, one.offset, one.duration, one.text) == ("song/seg000", 100.0, 5.0, "x")


def test_lines_only_song_is_cut_between_lines() -> None:
    lines = [("first line", 1.0, 9.0), ("second line", 10.0, 20.0)]
    song = Record(id="j", corpus="jamendo", kind="song", split="test", audio="a.mp3", duration=21.0,
                  text="first line\nsecond line", lines=tuple(Line(*ln) for ln in lines))  # fmt: skip
    segs = segment_record(song)
    assert [(s.text, s.offset) for s in segs] == [("first line", 0.0), ("second line", 10.0 - LEAD_IN)]
