"""Mixing: vocal reverb, vocal-to-accompaniment ratio, loudness, and an exact integer mix.

The stems are quantized to 16-bit integers first and the mixture is their integer sum, so
``mixture == vocals + accompaniment`` holds exactly in the written samples. A master gain with
headroom (peak of the float sum at -1 dBFS at most) guarantees that the sum never clips.
"""

from __future__ import annotations

import numpy as np

FULL_SCALE = 32767
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS
TARGET_RMS_DB = -17.0


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator, wet: float, rt60: float) -> np.ndarray:
    """Add a synthetic room (exponentially decaying noise) to a mono signal; same length."""
    if wet <= 0:
        return x
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.01 * sr)] *= np.linspace(0, 1, int(0.01 * sr))  # pre-delay softening
    ir /= np.sqrt(np.sum(ir**2))
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    tail = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]
    return ((1 - wet) * x + wet * tail).astype(np.float32)


def power_db(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean power in dB (re full scale 1.0) over the samples selected by ``mask`` (all if None)."""
    sel = x if mask is None else x[mask]
    return float(10 * np.log10(np.mean(np.asarray(sel, np.float64) ** 2) + 1e-12))


def _biquad(b: list[float], a: list[float], x: np.ndarray) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter(b, a, x, axis=0)


def loudness_lufs(x: np.ndarray, sr: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, gated) of a (samples,) or (samples, channels) signal."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    # K-weighting: high shelf then high pass, coefficients derived for any sample rate.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = np.tan(np.pi * f0 / sr)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    b1 = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]
    a1 = [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = np.tan(np.pi * f0 / sr)
    a2 = [1.0, 2 * (k * k - 1) / (1 + k / q + k * k), (1 - k / q + k * k) / (1 + k / q + k * k)]
    y = _biquad([1.0, -2.0, 1.0], a2, _biquad(b1, a1, x))
    block, hop = int(0.4 * sr), int(0.1 * sr)
    if len(y) < block:
        return float("-inf")
    starts = np.arange(0, len(y) - block + 1, hop)
    csum = np.concatenate([np.zeros((1, y.shape[1])), np.cumsum(y**2, axis=0)])
    z = (csum[starts + block] - csum[starts]) / block
    blk = -0.691 + 10 * np.log10(np.sum(z, axis=1) + 1e-20)
    gated = blk > -70
    if not gated.any():
        return float("-inf")
    rel = -0.691 + 10 * np.log10(np.mean(np.sum(z[gated], axis=1))) - 10
    gated &= blk > rel
    return float(-0.691 + 10 * np.log10(np.mean(np.sum(z[gated], axis=1))))


def mix(
    vocals: np.ndarray, accompaniment: np.ndarray, vocal_mask: np.ndarray, var_db: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Set the vocal-to-accompaniment ratio, master the level, and quantize.

    Args:
        vocals: (samples,) mono vocal (placed in the centre).
        accompaniment: (samples, 2).
        vocal_mask: (samples,) bool, where the voice sings (the ratio is measured there).
        var_db: wanted vocal-to-accompaniment power ratio over ``vocal_mask`` (dB).

    Returns:
        (vocals int16 (samples, 2), accompaniment int16 (samples, 2), mixture int16 (samples, 2),
        figures: measured ratio, RMS and peak of the mixture in dBFS).
    """
    acc_db = power_db(accompaniment.mean(axis=1), vocal_mask) if vocal_mask.any() else power_db(accompaniment)
    voc_db = power_db(vocals, vocal_mask) if vocal_mask.any() else power_db(vocals)
    v = vocals.astype(np.float64) * 10 ** ((var_db - (voc_db - acc_db)) / 20)
    v2 = np.repeat(v[:, None], 2, axis=1)
    total = v2 + accompaniment
    rms = np.sqrt(np.mean(total**2)) + 1e-12
    gain = min(10 ** (TARGET_RMS_DB / 20) / rms, PEAK_CEILING / (np.abs(total).max() + 1e-12))
    vq = np.round(v2 * gain * FULL_SCALE).astype(np.int16)
    aq = np.round(accompaniment * gain * FULL_SCALE).astype(np.int16)
    total_q = vq.astype(np.int32) + aq.astype(np.int32)
    assert np.abs(total_q).max() <= FULL_SCALE, "headroom guarantees no clipping"
    mq = total_q.astype(np.int16)
    figures = {
        "vocal_to_accompaniment_db": round(
            power_db(vq[:, 0] / FULL_SCALE, vocal_mask) - power_db(aq.mean(axis=1) / FULL_SCALE, vocal_mask),
            2,
        )
        if vocal_mask.any()
        else 0.0,
        "mixture_rms_dbfs": round(power_db(mq / FULL_SCALE), 2),
        "mixture_peak_dbfs": round(float(20 * np.log10(np.abs(mq).max() / FULL_SCALE + 1e-12)), 2),
    }
    return vq, aq, mq, figures
