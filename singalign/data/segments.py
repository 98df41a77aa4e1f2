"""Cut songs into training segments (at most ``SEGMENT_FRAMES`` frames, 16 s) between words.

The authors cut DALI songs into fixed 1000-frame windows from t=0, kept the notes fully inside a
window for the transcript but the notes *starting* inside it for the targets, so words were cut
in half and labels disagreed with transcripts. Here a segment boundary is only ever placed where
no word and no note is sounding, so every word and note lies wholly inside one segment, and the
transcript, the word times and the frame targets of a segment agree.

How boundaries are chosen: the words and notes of the record are merged into *blocks* (maximal
runs of overlapping intervals; intervals that merely touch stay separate, since a boundary at the
touching instant cuts nothing). Segments tile the record from its start; each one is extended
greedily over as many blocks as fit in ``max_seconds``, and its end is placed in the gap after
the last block that fits: ``LEAD_IN`` seconds before the next block where the gap allows (so the
next segment starts with a little context instead of on the first note), never past
``max_seconds``. Stretches without words or notes become segments of their own and are dropped
below. A single block longer than ``max_seconds`` (one over-long word, or a chain of overlapping
ones) gets a segment of its own, truncated to ``max_seconds`` with a warning; the rest of that
block is left out of every segment.

A segment keeps the words and notes inside it (a note or word crossing its edge, which happens
only in a truncated segment, is clipped to it), its lines (a line crossing an edge keeps the words
of that line inside the segment), ``text`` = its words joined by spaces, ``offset``/``duration``
its window, times absolute in the file. Segments are dropped when:

- the record has notes and the notes cover at most ``min_note_coverage`` of the segment (union of
  note intervals; as the authors, who kept windows whose notes covered more than 10%);
- the record has words and the segment has none (an instrumental stretch).

Records without word times (speech, or songs with text only) cannot be split without cutting the
transcript blindly: they are returned whole, unchanged, and the caller filters them by length.
(Records with lines but no words are cut between lines the same way; records with notes but no
text are cut between notes.)

Segment ids are ``<id>/segNNN``, numbered over all cut windows before any is dropped, so an id
always names the same stretch of audio whatever the filters kept.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from singalign.constants import FRAME_RATE, SEGMENT_FRAMES
from singalign.data.manifest import Line, Note, Record, Word

log = logging.getLogger(__name__)

#: Default segment length: SEGMENT_FRAMES feature frames (16 s).
MAX_SECONDS = float(SEGMENT_FRAMES / FRAME_RATE)
#: Context kept before the first word of a segment when the gap before it allows (seconds).
LEAD_IN = 0.25
#: Times closer than this are equal (absorbs float error in annotation times).
_EPS = 1e-9


@dataclass(frozen=True)
class Window:
    """One cut window: ``[start, end]`` in seconds, holding blocks ``first..stop-1``.

    ``truncated`` marks a window whose last block is longer than the window allows; that block
    is clipped at ``end`` and its remainder lies in no window.
    """

    start: float
    end: float
    first: int
    stop: int
    truncated: bool = False


def merge_blocks(intervals: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], list[int]]:
    """Merge overlapping intervals into sorted blocks; intervals that only touch stay apart.

    Returns:
        The blocks ``(start, end)`` in time order, and the block index of every input interval.
    """
    order = sorted(range(len(intervals)), key=lambda k: intervals[k])
    blocks: list[tuple[float, float]] = []
    member = [0] * len(intervals)
    for k in order:
        start, end = intervals[k]
        if blocks and start < blocks[-1][1] - _EPS:
            blocks[-1] = (blocks[-1][0], max(blocks[-1][1], end))
        else:
            blocks.append((start, end))
        member[k] = len(blocks) - 1
    return blocks, member


def cut_windows(
    blocks: list[tuple[float, float]], region_start: float, region_end: float, max_seconds: float
) -> list[Window]:
    """Windows tiling ``[region_start, region_end]``, each at most ``max_seconds``, cut between blocks.

    Args:
        blocks: disjoint ``(start, end)`` intervals in time order, inside the region.
        region_start, region_end: the stretch to tile (seconds).
        max_seconds: the longest window.
    """
    windows: list[Window] = []
    s = region_start
    i = 0  # first block not yet in a window
    while region_end - s > _EPS:
        limit = s + max_seconds
        if region_end <= limit + _EPS:
            windows.append(Window(s, region_end, i, len(blocks)))
            break
        best = None
        # Candidate: a cut after blocks i..j-1 (j == i: before block i, a window without blocks).
        for j in range(i, len(blocks) + 1):
            lo = blocks[j - 1][1] if j > i else s
            if lo > limit + _EPS:
                break
            if j < len(blocks):
                end = min(max(lo, blocks[j][0] - LEAD_IN), limit)
            else:
                end = limit  # after the last block; region_end lies beyond limit here
            if end > s + _EPS:
                best = (j, end)
        if best is not None:
            j, end = best
            windows.append(Window(s, end, i, j))
            s, i = end, j
            continue
        # No cut fits: the first block reaching past the limit is too long. It gets a truncated
        # window (with the blocks before it), and its remainder is left out.
        j = next(k for k in range(i, len(blocks)) if blocks[k][1] > limit + _EPS)
        windows.append(Window(s, limit, i, j + 1, truncated=True))
        s, i = blocks[j][1], j + 1
    return windows


def _covered(notes: list[Note]) -> float:
    """Length of the union of note intervals (seconds)."""
    total, cur_start, cur_end = 0.0, 0.0, None
    for n in sorted(notes, key=lambda n: n.onset):
        if cur_end is None or n.onset > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = n.onset, n.offset
        else:
            cur_end = max(cur_end, n.offset)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def _overlaps(start: float, end: float, w0: float, w1: float) -> bool:
    """True if ``[start, end]`` shares a positive length with ``[w0, w1]`` (an instant: lies in it)."""
    if end - start <= _EPS:
        return w0 - _EPS <= start <= w1 + _EPS
    return start < w1 - _EPS and end > w0 + _EPS


def _partial_lines(lines: tuple[Line, ...], words: list[Word], w0: float, w1: float) -> list[Line]:
    """Lines of a window cut between words: whole lines inside it, and the inside part of the others."""
    out = []
    for ln in lines:
        if not _overlaps(ln.start, ln.end, w0, w1):
            continue
        if ln.start >= w0 - _EPS and ln.end <= w1 + _EPS:
            out.append(ln)
            continue
        # A line crossing an edge keeps the words of this window that it spans (by midpoint).
        inside = [w for w in words if ln.start - _EPS <= (w.start + w.end) / 2 <= ln.end + _EPS]
        if inside:
            out.append(Line(" ".join(w.word for w in inside), inside[0].start, inside[-1].end))
    return out


def segment_record(
    record: Record, max_seconds: float = MAX_SECONDS, min_note_coverage: float = 0.1
) -> list[Record]:
    """Cut a record into segments of at most ``max_seconds`` whose edges fall between words.

    See the module docstring for the rules.

    Args:
        record: a song (or any record) with absolute word/line/note times.
        max_seconds: the longest segment (default 16 s = ``SEGMENT_FRAMES`` frames).
        min_note_coverage: drop segments whose notes cover at most this fraction of their length
            (only when the record has notes).

    Returns:
        The kept segments in time order, or ``[record]`` unchanged when it has no word, line or
        note times (or has text but no word/line times).
    """
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, not {max_seconds}")
    if record.words:
        mode = "words"
    elif record.lines:
        mode = "lines"
    elif record.notes and not record.text.strip():
        mode = "notes"
    else:
        return [record]
    words = [w for w in record.words if w.end - w.start >= 0]
    lines = [ln for ln in record.lines if ln.end - ln.start >= 0] if mode == "lines" else []
    notes = [n for n in record.notes if n.offset - n.onset > _EPS]
    region_start = record.offset
    latest = max(
        [w.end for w in words] + [ln.end for ln in lines] + [n.offset for n in notes] + [region_start]
    )
    region_end = record.end if record.end is not None else latest
    # Units outside the record's region are ignored; those crossing its edges are clipped to it.
    spans = {
        "w": [(w.start, w.end) for w in words],
        "l": [(ln.start, ln.end) for ln in lines],
        "n": [(n.onset, n.offset) for n in notes],
    }
    units: list[tuple[str, int, float, float]] = []
    for kind, items in spans.items():
        for k, (a, b) in enumerate(items):
            if _overlaps(a, b, region_start, region_end):
                units.append((kind, k, max(a, region_start), min(b, region_end)))
    blocks, member = merge_blocks([(a, b) for _, _, a, b in units])
    block_of = {(kind, k): member[u] for u, (kind, k, _, _) in enumerate(units)}
    windows = cut_windows(blocks, region_start, region_end, max_seconds)

    segments = []
    for number, win in enumerate(windows):
        w0, w1 = win.start, win.end

        def inside(kind: str, k: int, start: float, win: Window = win) -> bool:
            block = block_of.get((kind, k))
            return block is not None and win.first <= block < win.stop and start < win.end + _EPS

        seg_words = [
            Word(w.word, max(w.start, w0), min(w.end, w1))
            for k, w in enumerate(words)
            if inside("w", k, w.start)
        ]
        seg_notes = [
            Note(max(n.onset, w0), min(n.offset, w1), n.pitch)
            for k, n in enumerate(notes)
            if inside("n", k, n.onset)
        ]
        seg_notes = [n for n in seg_notes if n.offset - n.onset > _EPS]
        if mode == "lines":
            seg_lines = [
                Line(ln.text, max(ln.start, w0), min(ln.end, w1))
                for k, ln in enumerate(lines)
                if inside("l", k, ln.start)
            ]
        else:
            seg_lines = _partial_lines(record.lines, seg_words, w0, w1)
        if win.truncated:
            what = " ".join(w.word for w in seg_words) or f"{len(seg_notes)} notes"
            log.warning(
                "%s: a word or note block is longer than %.1f s; segment %.2f-%.2f s (%s) is truncated",
                record.id, max_seconds, w0, w1, what,
            )  # fmt: skip
        if (mode == "words" and not seg_words) or (mode == "lines" and not seg_lines):
            continue  # an instrumental stretch
        if notes and _covered(seg_notes) <= min_note_coverage * (w1 - w0):
            continue
        if mode == "words":
            text = " ".join(w.word for w in seg_words)
        elif mode == "lines":
            text = " ".join(ln.text for ln in seg_lines)
        else:
            text = ""
        segments.append(
            dataclasses.replace(
                record,
                id=f"{record.id}/seg{number:03d}",
                offset=w0,
                duration=w1 - w0,
                text=text,
                words=tuple(seg_words),
                lines=tuple(seg_lines),
                notes=tuple(seg_notes),
                extra={**record.extra, "parent": record.id},
            )
        )
    return segments
