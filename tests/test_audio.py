"""Decoding any format/rate/channel count, clear errors for bad files, windows."""

import numpy as np
import pytest
import soundfile as sf
from conftest import shared

from singalign.audio import check_not_silent, frame_windows, load_audio, probe
from singalign.errors import AudioError


def _tone(sr, seconds=1.0, channels=1, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize(
    "fmt,sr,channels",
    [("wav", 44100, 2), ("flac", 22050, 1), ("ogg", 48000, 2), ("mp3", 44100, 1), ("wav", 8000, 3)],
)
def test_any_format_rate_and_channels_to_16k_mono(tmp_path, fmt, sr, channels):
    path = tmp_path / f"a.{fmt}"
    sf.write(path, _tone(sr, channels=channels), sr)
    x = load_audio(path)
    assert x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - 16000) < 1200  # mp3 adds encoder padding
    spec = np.abs(np.fft.rfft(x[2000:14000]))
    assert abs(np.argmax(spec) * 16000 / 12000 - 440) < 3


def test_keep_channels_offset_and_duration(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, _tone(16000, 2.0, channels=2), 16000)
    x = load_audio(path, 16000, mono=False, offset=0.5, duration=1.0)
    assert x.shape == (2, 16000)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "cannot decode"),
    ],
)
def test_bad_files_name_themselves(tmp_path, make, message):
    path = tmp_path / "bad.mp3"
    make(path)
    with pytest.raises(AudioError, match=message) as exc:
        load_audio(path)
    assert str(path) in str(exc.value)


def test_zero_length_low_rate_too_long_and_silent(tmp_path):
    empty = tmp_path / "zero.wav"
    sf.write(empty, np.zeros(0), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(empty)
    low = tmp_path / "low.wav"
    sf.write(low, np.zeros(4000), 4000)
    with pytest.raises(AudioError, match="below 8000"):
        probe(low)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 3), 16000)
    with pytest.raises(AudioError, match="longer than the limit"):
        load_audio(long, max_seconds=2.0)
    with pytest.raises(AudioError, match="silent"):
        check_not_silent(load_audio(long), long)


def test_real_mp3_and_flac_samples():
    mp3 = shared("jamendolyrics_sample", "mp3", "Fantasma_-_Los_Rombos.mp3")
    info = probe(mp3)
    assert info.sample_rate == 44100 and info.channels == 2
    x = load_audio(mp3, duration=5.0)
    assert len(x) == 80000 and np.abs(x).max() > 0.05
    flac = shared("ljspeech", "LJ001-0001.flac")
    assert probe(flac).sample_rate == 22050
    assert abs(len(load_audio(flac)) / 16000 - probe(flac).duration) < 0.01


def test_frame_windows_cover_everything():
    assert frame_windows(2500, 1000) == [(0, 1000), (1000, 2000), (2000, 2500)]
    w = frame_windows(2500, 1000, overlap=200)
    assert w[0] == (0, 1000) and w[1] == (800, 1800) and w[-1][1] == 2500
    assert frame_windows(0, 1000) == [] and frame_windows(10, 1000, 200) == [(0, 10)]


def test_window_batches_keep_ranges_tile_the_song():
    from singalign.audio import window_batches

    for n in (1, 999, 1000, 1001, 2500, 10_001):
        groups = window_batches(n, 1000, 200, 4)
        kept = [w for g in groups for w in g]
        assert kept[0].keep_lo == 0 and kept[-1].keep_hi == n
        assert all(a.keep_hi == b.keep_lo for a, b in zip(kept, kept[1:], strict=False))
        assert all(len({w.stop - w.start for w in g}) == 1 and len(g) <= 4 for g in groups)
