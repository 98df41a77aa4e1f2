"""Features: locked by a golden fixture and checked against librosa (the authors' code)."""

import numpy as np
import pytest
from conftest import FIXTURES

from singalign import constants as C
from singalign.features import LogMelConfig, log_mel, stack_features


def test_golden_fixture_unchanged():
    golden = np.load(FIXTURES / "golden_logmel.npz")
    got = log_mel(golden["signal"], LogMelConfig())
    assert got.shape == (80, 63)  # 1 s at 16 kHz, hop 256, centred: 1 + 16000 // 256
    np.testing.assert_allclose(got, golden["log_mel"], atol=1e-3)


def test_matches_librosa_defaults_of_the_authors_code():
    librosa = pytest.importorskip("librosa")
    golden = np.load(FIXTURES / "golden_logmel.npz")
    x = golden["signal"]
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=256, n_mels=80)
    )
    np.testing.assert_allclose(log_mel(x), ref, atol=2e-3)


def test_tone_energy_in_the_right_mel_band():
    librosa = pytest.importorskip("librosa")
    t = np.arange(C.SAMPLE_RATE) / C.SAMPLE_RATE
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    band = int(np.argmax(log_mel(x)[:, 20:40].mean(axis=1)))
    mel_freqs = librosa.mel_frequencies(n_mels=80 + 2, fmin=0, fmax=8000)[1:-1]
    assert abs(mel_freqs[band] - 1000) < 80


def test_top_db_floor_and_shapes():
    x = np.zeros(C.SAMPLE_RATE // 2, np.float32)
    x[100] = 1.0
    m = log_mel(x)
    assert m.min() >= m.max() - 80.0 - 1e-4
    feats = stack_features(x, x[:-10])
    assert feats.shape == (2, 80, LogMelConfig().n_frames(len(x) - 10))


def test_config_round_trip():
    cfg = LogMelConfig(top_db=None)
    assert LogMelConfig.from_dict(cfg.to_dict()) == cfg
