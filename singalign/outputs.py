"""Files written from a ``TranscriptionResult`` (``transcribe`` and ``align``), each atomically.

Formats (:data:`FORMATS`), for ``<stem>``:

* ``json``: ``TranscriptionResult.to_json_dict()`` (text, lines, words, notes with lyrics).
* ``txt``: the lyrics, one line per line.
* ``lrc``: LRC lyrics: ``[mm:ss.xx]`` at the start of each line, and the enhanced ("A2") word
  timing ``<mm:ss.xx>word`` before every word, with a last ``<mm:ss.xx>`` at the end of the line's
  last word. Header tags: ``[length:]`` and ``[re:]``.
* ``mid``: standard MIDI file (type 1, 480 ticks per beat at 120 bpm, so 960 ticks per second):
  track 0 holds the tempo, track 1 ("vocals", program 53 "Voice Oohs") the notes, velocity 100,
  with a ``lyrics`` meta event at the onset of every note that carries a lyric (melisma
  continuations carry none). MIDI text is Latin-1: characters outside it are transliterated
  (accents dropped) or replaced by "?".
* ``notes.txt``: the notes in mir_eval's format, ``onset offset frequency_hz`` (tab-separated).
* ``png``: a picture to check a result at a glance: rows of 20 s, each with the piano roll of the
  notes over the log-mel spectrogram of the separated vocals (when ``result.frames`` is present,
  mel bins drawn at their MIDI pitch; the default feature settings are assumed: Slaney mel,
  0-8 kHz), the words with their spans under it, and the onset curve with the threshold.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from singalign.constants import FRAME_RATE, N_MELS, ONSET_THRESHOLD, SAMPLE_RATE
from singalign.errors import SingalignError
from singalign.files import atomic_path, write_json, write_text
from singalign.result import LineTiming, TranscriptionResult, WordTiming

FORMATS: tuple[str, ...] = ("json", "txt", "lrc", "mid", "notes.txt", "png")
#: MIDI layout.
TICKS_PER_BEAT = 480
TEMPO_US_PER_BEAT = 500_000  # 120 bpm
MIDI_PROGRAM = 53  # General MIDI "Voice Oohs" (0-based)
MIDI_VELOCITY = 100
#: Seconds of audio per row of the PNG.
PNG_SECONDS_PER_ROW = 20.0


def parse_formats(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Formats from "all" or a comma-separated list (order of :data:`FORMATS`; unknown ones rejected)."""
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items or "all" in items:
        return FORMATS
    unknown = [s for s in items if s not in FORMATS]
    if unknown:
        raise SingalignError(
            f"unknown output format(s) {', '.join(unknown)}: choose among {', '.join(FORMATS)}, all"
        )
    return tuple(f for f in FORMATS if f in items)


def write_outputs(
    result: TranscriptionResult,
    outdir: str | os.PathLike[str],
    stem: str,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Write ``outdir/<stem>.<format>`` for each format (each file atomically); returns the paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    writers = {
        "json": write_json_result,
        "txt": write_txt,
        "lrc": write_lrc,
        "mid": write_midi,
        "notes.txt": write_notes_txt,
        "png": write_png,
    }
    written = []
    for fmt in parse_formats(list(formats)):
        path = outdir / f"{stem}.{fmt}"
        writers[fmt](result, path)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- text formats


def write_json_result(result: TranscriptionResult, path: str | os.PathLike[str]) -> None:
    write_json(path, result.to_json_dict())


def lyric_lines(result: TranscriptionResult) -> list[str]:
    """The lyrics as lines: ``result.lines`` if any, else the lines of ``result.text``."""
    if result.lines:
        return [ln.text for ln in result.lines]
    return [ln.strip() for ln in result.text.splitlines() if ln.strip()]


def write_txt(result: TranscriptionResult, path: str | os.PathLike[str]) -> None:
    lines = lyric_lines(result)
    write_text(path, "".join(ln + "\n" for ln in lines))


def lrc_time(seconds: float) -> str:
    """``mm:ss.xx`` (centiseconds, rounded; minutes may exceed 99)."""
    cs = max(0, round(seconds * 100))
    minutes, cs = divmod(cs, 6000)
    return f"{minutes:02d}:{cs // 100:02d}.{cs % 100:02d}"


def _words_per_line(lines: list[LineTiming], words: list[WordTiming]) -> list[list[WordTiming]]:
    """Each word goes to the line whose span holds its midpoint (else the nearest line)."""
    groups: list[list[WordTiming]] = [[] for _ in lines]
    if not lines:
        return groups
    starts = np.array([ln.start for ln in lines])
    ends = np.array([ln.end for ln in lines])
    for w in words:
        mid = (w.start + w.end) / 2
        dist = np.maximum(starts - mid, mid - ends).clip(min=0)
        groups[int(dist.argmin())].append(w)
    return groups


def lrc_text(result: TranscriptionResult) -> str:
    """The LRC file's text (see the module docstring)."""
    out = [f"[length:{lrc_time(result.duration)[:5]}]", "[re:singalign]"]
    lines = list(result.lines)
    if not lines and result.words:
        lines = [
            LineTiming(" ".join(w.word for w in result.words), result.words[0].start, result.words[-1].end)
        ]
    if lines:
        for ln, words in zip(lines, _words_per_line(lines, list(result.words)), strict=True):
            if words:
                body = (
                    " ".join(f"<{lrc_time(w.start)}>{w.word}" for w in words)
                    + f" <{lrc_time(words[-1].end)}>"
                )
            else:
                body = ln.text
            out.append(f"[{lrc_time(ln.start)}]{body}")
    else:
        out += [f"[{lrc_time(0.0)}]{ln}" for ln in lyric_lines(result)]
    return "\n".join(out) + "\n"


def write_lrc(result: TranscriptionResult, path: str | os.PathLike[str]) -> None:
    write_text(path, lrc_text(result))


def parse_lrc(text: str) -> list[dict]:
    """Read LRC text (plain or enhanced): ``[{"time", "text", "words": [(time, word), ...]}]``.

    Header tags (``[ar:...]``, ``[length:...]``) are skipped; a trailing end-of-line stamp is
    returned as ``"end"``.
    """
    import re

    stamp = r"(\d+):(\d{2})(?:[.:](\d{1,3}))?"

    def secs(m: re.Match) -> float:
        frac = m.group(3) or "0"
        return int(m.group(1)) * 60 + int(m.group(2)) + int(frac) / 10 ** len(frac)

    out = []
    for raw in text.splitlines():
        m = re.match(rf"\[{stamp}\](.*)", raw.strip())
        if not m:
            continue
        body = m.group(4)
        words = [(secs(w), w.group(4).strip()) for w in re.finditer(rf"<{stamp}>([^<]*)", body)]
        entry = {"time": secs(m), "text": re.sub(rf"<{stamp}>", "", body).strip(), "words": []}
        if words and words[-1][1] == "":
            entry["end"] = words.pop()[0]
        entry["words"] = words
        out.append(entry)
    return out


def notes_txt(result: TranscriptionResult) -> str:
    """mir_eval note lines: ``onset offset frequency_hz``."""
    return "".join(
        f"{n.onset:.6f}\t{n.offset:.6f}\t{440.0 * 2.0 ** ((n.pitch - 69) / 12.0):.4f}\n" for n in result.notes
    )


def write_notes_txt(result: TranscriptionResult, path: str | os.PathLike[str]) -> None:
    write_text(path, notes_txt(result))


# ----------------------------------------------------------------------------- MIDI


def _latin1(text: str) -> str:
    """MIDI meta text is Latin-1: transliterate what is not (accents dropped), else "?"."""
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and base.isascii() else "?")
    return "".join(out)


def midi_file(result: TranscriptionResult):
    """A ``mido.MidiFile`` of the notes with their lyrics (see the module docstring)."""
    import mido

    ticks_per_second = TICKS_PER_BEAT * 1_000_000 / TEMPO_US_PER_BEAT

    def tick(t: float) -> int:
        return max(0, round(t * ticks_per_second))

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("track_name", name=_latin1(Path(result.audio).stem or "singalign"), time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US_PER_BEAT, time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)

    # (tick, order, message): at equal ticks note-offs first, then lyrics, then note-ons.
    events: list[tuple[int, int, object]] = []
    for n in result.notes:
        on = tick(n.onset)
        off = max(on + 1, tick(n.offset))
        if n.lyric:
            events.append((on, 1, mido.MetaMessage("lyrics", text=_latin1(n.lyric))))
        events.append((on, 2, mido.Message("note_on", note=int(n.pitch), velocity=MIDI_VELOCITY, channel=0)))
        events.append((off, 0, mido.Message("note_off", note=int(n.pitch), velocity=0, channel=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name="vocals", time=0))
    track.append(mido.Message("program_change", program=MIDI_PROGRAM, channel=0, time=0))
    now = 0
    for t, _, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(track)
    return mid


def write_midi(result: TranscriptionResult, path: str | os.PathLike[str]) -> None:
    mid = midi_file(result)
    with atomic_path(path) as tmp:
        mid.save(str(tmp))


# ----------------------------------------------------------------------------- PNG


def _mel_centres_midi(n_mels: int = N_MELS, f_max: float = SAMPLE_RATE / 2) -> np.ndarray:
    """MIDI pitch of the edges of each Slaney mel band (n_mels + 1 edges), for drawing."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=float)
        return np.where(
            f < 1000.0, 3.0 * f / 200.0, 15.0 + 27.0 * np.log(np.maximum(f, 1e-9) / 1000.0) / np.log(6.4)
        )

    def mel_to_hz(m):
        m = np.asarray(m, dtype=float)
        return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))

    centres = mel_to_hz(np.linspace(0.0, hz_to_mel(f_max), n_mels + 2))[1:-1]
    edges = np.r_[centres[0] / 2, np.sqrt(centres[:-1] * centres[1:]), centres[-1] * 1.02]
    return 69.0 + 12.0 * np.log2(np.maximum(edges, 1.0) / 440.0)


def _pitch_range(result: TranscriptionResult) -> tuple[int, int]:
    """Pitch axis: the 2nd-98th percentile of the notes (weighted by duration) +-4 semitones, at
    least two octaves, within the piano's range; stray notes outside are clipped, not zoomed out to."""
    if not result.notes:
        return 48, 84
    pitches = np.array([n.pitch for n in result.notes], dtype=float)
    weights = np.array([max(n.offset - n.onset, 1e-3) for n in result.notes])
    order = np.argsort(pitches)
    cum = np.cumsum(weights[order]) / weights.sum()
    lo = int(pitches[order][np.searchsorted(cum, 0.02)]) - 4
    hi = int(pitches[order][min(len(cum) - 1, np.searchsorted(cum, 0.98))]) + 5
    if hi - lo < 24:
        mid = (lo + hi) // 2
        lo, hi = mid - 12, mid + 12
    return max(21, lo), min(108, max(hi, 45))


def _note_name(midi: int) -> str:
    return ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][midi % 12] + str(midi // 12 - 1)


def write_png(result: TranscriptionResult, path: str | os.PathLike[str]) -> None:
    """Piano roll over the log-mel, words under it, onset curve; rows of 20 s (see module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    frames = result.frames
    duration = max(result.duration, max((n.offset for n in result.notes), default=0.0))
    duration = max(duration, max((w.end for w in result.words), default=0.0), 1.0)
    n_rows = max(1, math.ceil(duration / PNG_SECONDS_PER_ROW))
    # one row: fit the song; several rows: the same time scale on every row
    row_width = PNG_SECONDS_PER_ROW if n_rows > 1 else duration
    lo, hi = _pitch_range(result)
    has_frames = frames is not None and frames.log_mel.size > 0
    # Panels per row: piano roll, words, (onset curve), and an empty spacer that keeps the time
    # labels of one row clear of the next row.
    ratios = [5, 1.1] + ([1.2] if has_frames else []) + [0.55]
    fig_h = n_rows * sum(ratios) * 0.62
    fig, axes = plt.subplots(
        n_rows * len(ratios),
        1,
        figsize=(16, fig_h),
        gridspec_kw={"height_ratios": ratios * n_rows, "hspace": 0.08},
        squeeze=False,
    )
    axes = axes[:, 0]
    rate = float(FRAME_RATE)
    if has_frames:
        mel = frames.log_mel[0] if frames.log_mel.ndim == 3 else frames.log_mel
        edges_y = _mel_centres_midi(mel.shape[0])
        keep = (edges_y[1:] > lo - 1) & (edges_y[:-1] < hi + 1)
        onset = np.asarray(frames.onset_probs, dtype=float).reshape(-1)
    for r in range(n_rows):
        t0, t1 = r * PNG_SECONDS_PER_ROW, min((r + 1) * PNG_SECONDS_PER_ROW, duration)
        roll, wax = axes[r * len(ratios)], axes[r * len(ratios) + 1]
        axes[(r + 1) * len(ratios) - 1].set_axis_off()
        if has_frames:
            a, b = int(t0 * rate), min(mel.shape[1], int(math.ceil(t1 * rate)) + 1)
            if b > a:
                x = np.arange(a, b + 1) / rate
                rows = np.flatnonzero(keep)
                y = edges_y[rows[0] : rows[-1] + 2]
                img = mel[rows[0] : rows[-1] + 1, a:b]
                roll.pcolormesh(
                    x,
                    y,
                    img,
                    cmap="Greys",
                    shading="flat",
                    rasterized=True,
                    vmin=img.max() - 70,
                    vmax=img.max() + 10,
                )
        for n in result.notes:
            if n.offset < t0 or n.onset > t1:
                continue
            roll.add_patch(
                Rectangle(
                    (n.onset, n.pitch - 0.45),
                    n.offset - n.onset,
                    0.9,
                    facecolor="tab:orange",
                    edgecolor="black",
                    lw=0.5,
                    alpha=0.9,
                )  # fmt: skip
            )
            if n.lyric:
                roll.text(
                    n.onset,
                    n.pitch + 0.7,
                    n.lyric,
                    fontsize=7,
                    color="navy",
                    va="bottom",
                    clip_on=True,
                    bbox={"facecolor": "white", "alpha": 0.75, "pad": 0.8, "linewidth": 0},
                )
        roll.set_xlim(t0, t0 + row_width)
        roll.set_ylim(lo, hi)
        ticks = [p for p in range(lo, hi + 1) if p % 12 in (0, 7)]
        roll.set_yticks(ticks, [_note_name(p) for p in ticks], fontsize=7)
        roll.grid(axis="y", lw=0.3, alpha=0.5)
        roll.tick_params(axis="x", labelbottom=False)
        roll.set_ylabel("pitch", fontsize=8)
        if r == 0:
            title = f"{Path(result.audio).name}: {len(result.notes)} notes, {len(result.words)} words"
            roll.set_title(
                title + (" (log-mel of the vocals behind the notes)" if has_frames else ""), fontsize=10
            )
        # Words: spans as bars on alternating levels so neighbours never overlap.
        for i, w in enumerate(result.words):
            if w.end < t0 or w.start > t1:
                continue
            level = i % 2
            wax.plot([w.start, w.end], [level, level], color="tab:blue", lw=2.5, solid_capstyle="butt")
            wax.text(max(w.start, t0), level + 0.25, w.word, fontsize=8, va="bottom", clip_on=True)
        wax.set_xlim(t0, t0 + row_width)
        wax.set_ylim(-0.4, 2.0)
        wax.set_yticks([])
        wax.set_ylabel("words", fontsize=8)
        if has_frames:
            oax = axes[r * len(ratios) + 2]
            a, b = int(t0 * rate), min(len(onset), int(math.ceil(t1 * rate)) + 1)
            if b > a:
                oax.plot(np.arange(a, b) / rate, onset[a:b], color="tab:green", lw=0.8)
            oax.axhline(ONSET_THRESHOLD, color="tab:red", lw=0.6, ls="--")
            for n in result.notes:
                if t0 <= n.onset <= t1:
                    oax.axvline(n.onset, color="tab:orange", lw=0.5, alpha=0.6)
            oax.set_xlim(t0, t0 + row_width)
            oax.set_ylim(0, 1.05)
            oax.set_yticks([0, ONSET_THRESHOLD, 1], ["0", f"{ONSET_THRESHOLD:g}", "1"], fontsize=7)
            oax.set_ylabel("onset", fontsize=8)
            wax.tick_params(axis="x", labelbottom=False)
            last = oax
        else:
            last = wax
        last.set_xlabel("time (s)", fontsize=8)
        last.tick_params(axis="x", labelsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
