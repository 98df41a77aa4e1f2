"""Log-mel features exactly as the paper's code computed them, from one frozen config.

The authors used ``librosa.power_to_db(librosa.feature.melspectrogram(sr=16000, n_fft=512,
hop_length=256, n_mels=80))`` with librosa's defaults: Hann window, ``center=True`` with zero
padding, power 2, Slaney mel scale and normalization, fmin 0, fmax sr/2, ``10*log10`` with
amin 1e-10, ref 1.0 and ``top_db=80`` (clamped to 80 dB below the maximum of the whole input).
We compute the same in torch (fast, batched) and a golden test checks it against librosa.

The model input stacks two channels: separated vocals and the mixture (speech: the same
signal twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from singalign import constants as C
from singalign.jsonconfig import JsonConfig


@dataclass(frozen=True)
class LogMelConfig(JsonConfig):
    """Every setting of the features; stored in each bundle and read back at inference."""

    sample_rate: int = C.SAMPLE_RATE
    n_fft: int = C.N_FFT
    hop_length: int = C.HOP_LENGTH
    n_mels: int = C.N_MELS
    f_min: float = 0.0
    f_max: float | None = None  # None: sample_rate / 2 (librosa's default)
    power: float = 2.0
    amin: float = 1e-10
    ref: float = 1.0
    top_db: float | None = 80.0
    center: bool = True
    channels: tuple[str, ...] = ("vocals", "mixture")

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` samples."""
        return (
            1 + n_samples // self.hop_length
            if self.center
            else 1 + (n_samples - self.n_fft) // self.hop_length
        )


@lru_cache(maxsize=8)
def _mel_basis(cfg: LogMelConfig):
    import torchaudio

    return torchaudio.functional.melscale_fbanks(
        n_freqs=cfg.n_fft // 2 + 1,
        f_min=cfg.f_min,
        f_max=cfg.f_max if cfg.f_max is not None else cfg.sample_rate / 2,
        n_mels=cfg.n_mels,
        sample_rate=cfg.sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )  # (n_freqs, n_mels)


def log_mel(wave: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """Log-mel spectrogram of one signal.

    Args:
        wave: float waveform at ``cfg.sample_rate``, shape (samples,).
        cfg: feature settings.

    Returns:
        float32 array, shape (n_mels, frames), in dB.
    """
    import torch

    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    if x.ndim != 1:
        raise ValueError(f"log_mel expects one channel (samples,), got shape {tuple(x.shape)}")
    if x.numel() < cfg.n_fft // 2 + 1 and cfg.center:
        x = torch.nn.functional.pad(x, (0, cfg.n_fft // 2 + 1 - x.numel()))
    window = torch.hann_window(cfg.n_fft, periodic=True)
    spec = torch.stft(
        x,
        cfg.n_fft,
        cfg.hop_length,
        window=window,
        center=cfg.center,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.abs().pow(cfg.power)  # (n_freqs, frames)
    mel = _mel_basis(cfg).T @ power  # (n_mels, frames)
    db = 10.0 * torch.log10(torch.clamp(mel, min=cfg.amin)) - 10.0 * np.log10(max(cfg.amin, cfg.ref))
    if cfg.top_db is not None:
        db = torch.maximum(db, db.max() - cfg.top_db)
    return db.numpy().astype(np.float32, copy=False)


def stack_features(vocals: np.ndarray, mixture: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """The model input: log-mel of vocals and of the mixture.

    Args:
        vocals: (samples,) separated vocals at ``cfg.sample_rate``.
        mixture: (samples,) the mixture (speech: the same signal).

    Returns:
        float32 array, shape (2, n_mels, frames).
    """
    n = min(len(vocals), len(mixture))
    return np.stack([log_mel(vocals[:n], cfg), log_mel(mixture[:n], cfg)])
