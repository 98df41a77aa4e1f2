"""Decode any audio file, check it, resample it, and cut long audio into windows.

Decoding uses libsndfile through ``soundfile`` (wav, flac, ogg, mp3 and more) and reads in
blocks, so memory stays bounded by the decoded signal at the target rate. Resampling uses
``soxr`` (high quality, streaming).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singalign.constants import SAMPLE_RATE
from singalign.errors import AudioError

#: Longest input accepted by default (seconds): 3 hours. Longer files are refused with a clear error.
MAX_SECONDS = 3 * 3600.0
#: Lowest sample rate accepted (Hz); below it there is no content above 4 kHz to speak of.
MIN_SAMPLE_RATE = 8000
#: A signal whose peak is below this (about -100 dBFS) is treated as silent.
SILENCE_PEAK = 1e-5
_BLOCK_FRAMES = 1 << 18


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says."""

    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of ``path``; raise AudioError naming the file if it is unusable."""
    import soundfile as sf

    path = str(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a folder, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file")
    try:
        info = sf.info(path)
    except Exception as exc:  # libsndfile's messages vary by format
        raise AudioError(f"{path}: cannot decode audio ({_short(exc)})") from None
    if info.samplerate < MIN_SAMPLE_RATE:
        raise AudioError(f"{path}: sample rate {info.samplerate} Hz is below {MIN_SAMPLE_RATE} Hz")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames))


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int = SAMPLE_RATE,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    max_seconds: float = MAX_SECONDS,
) -> np.ndarray:
    """Decode ``path`` and resample it to ``sample_rate``.

    Args:
        path: any file libsndfile decodes (wav, flac, ogg, mp3, ...).
        sample_rate: target rate in Hz.
        mono: average the channels when True; otherwise keep them.
        offset: start reading at this time (s).
        duration: read at most this long (s); None reads to the end.
        max_seconds: refuse longer inputs (after offset/duration) with AudioError.

    Returns:
        float32 array, shape (samples,) when mono, else (channels, samples).

    Raises:
        AudioError: missing, empty, undecodable, too long, empty after decoding, or non-finite.
    """
    import soundfile as sf
    import soxr

    info = probe(path)
    start = int(round(offset * info.sample_rate))
    stop = (
        info.frames if duration is None else min(info.frames, start + int(round(duration * info.sample_rate)))
    )
    n = max(0, stop - start)
    if info.frames <= 0 or n <= 0:
        raise AudioError(f"{path}: no audio samples{' in the requested range' if info.frames > 0 else ''}")
    if n / info.sample_rate > max_seconds:
        raise AudioError(
            f"{path}: {n / info.sample_rate / 60:.1f} minutes is longer than the limit of {max_seconds / 60:.0f} minutes"
        )
    out_channels = 1 if mono else info.channels
    resampler = (
        None
        if info.sample_rate == sample_rate
        else soxr.ResampleStream(info.sample_rate, sample_rate, out_channels, dtype="float32", quality="HQ")
    )
    pieces: list[np.ndarray] = []
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(start)
            remaining = n
            while remaining > 0:
                block = f.read(min(_BLOCK_FRAMES, remaining), dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                remaining -= len(block)
                block = block.mean(axis=1, keepdims=True) if mono else block
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=remaining <= 0)
                pieces.append(block)
            if resampler is not None and remaining > 0:  # file shorter than its header said
                pieces.append(resampler.resample_chunk(np.zeros((0, out_channels), np.float32), last=True))
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_short(exc)})") from None
    audio = np.concatenate(pieces, axis=0) if pieces else np.zeros((0, out_channels), np.float32)
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples could be decoded")
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    audio = np.ascontiguousarray(audio.T)
    return audio[0] if mono else audio


def check_not_silent(audio: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Raise AudioError when ``audio`` has no signal (peak below about -100 dBFS)."""
    if audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise AudioError(f"{path}: the audio is silent")


def save_audio(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
    """Write ``audio`` ((samples,) or (channels, samples)) atomically; the format follows the suffix."""
    import soundfile as sf

    from singalign.files import atomic_path

    data = audio.T if audio.ndim == 2 else audio
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, format=Path(path).suffix.lstrip(".").upper() or None)


def frame_windows(n_frames: int, window: int, overlap: int = 0) -> list[tuple[int, int]]:
    """Split ``n_frames`` into consecutive windows ``[(start, stop), ...]`` of at most ``window``.

    With ``overlap`` > 0 consecutive windows share ``overlap`` frames (their ``start`` advances by
    ``window - overlap``); the caller keeps the centre of each overlap region.
    """
    if window <= 0 or not 0 <= overlap < window:
        raise ValueError(f"bad window/overlap: {window}/{overlap}")
    if n_frames <= 0:
        return []
    step = window - overlap
    starts = range(0, max(1, n_frames - overlap), step)
    return [(s, min(s + window, n_frames)) for s in starts if s < n_frames]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


@dataclass(frozen=True)
class Window:
    """One model window over a song: frames ``[start, stop)`` are fed, ``[keep_lo, keep_hi)`` kept.

    Consecutive windows overlap; each keeps the centre of its overlaps (all of it at the song's
    ends), so the kept ranges tile the song exactly once.
    """

    start: int
    stop: int
    keep_lo: int
    keep_hi: int


def window_batches(n_frames: int, window: int, overlap: int, batch: int) -> list[list[Window]]:
    """The overlapping windows of a song, grouped into batches of equal-length windows.

    Only windows of equal length share a batch: a padded batch sends packed BiLSTMs down a
    per-step path on the CPU, several times slower (only the last window is shorter).
    """
    half = overlap // 2
    groups: list[list[Window]] = []
    for a, b in frame_windows(n_frames, window, overlap):
        w = Window(a, b, a + (half if a > 0 else 0), b - (half if b < n_frames else 0))
        g = groups[-1] if groups else None
        if g and len(g) < batch and g[0].stop - g[0].start == b - a:
            g.append(w)
        else:
            groups.append([w])
    return groups
