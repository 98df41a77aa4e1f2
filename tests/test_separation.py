"""Vocal separation: SDR, chunked separation, training on stems and its evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singalign import metrics, separation
from singalign.errors import BundleError, MissingWeightsError, SingalignError
from singalign.separation import SeparatorConfig, SeparatorTrainConfig, VocalSeparator

ROOT = Path(__file__).resolve().parents[1]
# a separator small enough to train in a second: 8 kHz, 512-point frames, 16 LSTM units
TINY = SeparatorConfig(
    sample_rate=8000, n_fft=512, n_hop=128, hidden_size=16, bandwidth=4000.0, chunk_seconds=1.0
)


def test_sdr_known_values():
    s = np.sin(np.linspace(0, 40, 1000))
    assert metrics.sdr(s, 1.1 * s) == pytest.approx(20.0, abs=1e-6)  # error 0.1 s: 10 log10(1 / 0.01)
    assert metrics.sdr(s, 0.5 * s) == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert metrics.sdr(s, np.zeros_like(s)) == pytest.approx(0.0, abs=1e-6)
    assert metrics.sdr(s, s) > 60  # perfect: finite, very high
    with pytest.raises(ValueError, match="shape"):
        metrics.sdr(s, s[:-1])


class _Passthrough:
    """Stands in for the Open-Unmix Separator: returns its input as the vocals target."""

    def __call__(self, x):
        return x[:, None]  # (B, targets=1, channels, samples)

    def to(self, device):
        return self


def test_chunked_separation_reassembles_exactly(monkeypatch):
    monkeypatch.setattr(separation, "build_umx", lambda cfg, weights: _Passthrough())
    cfg = SeparatorConfig(sample_rate=100, chunk_seconds=1.0, overlap_seconds=0.3)
    sep = VocalSeparator(cfg)
    mix = np.random.default_rng(0).standard_normal((2, 437)).astype(np.float32)  # 5 chunks, a short last one
    done = []
    out = sep(mix, progress=done.append)
    np.testing.assert_allclose(out, mix, atol=1e-6)  # the cross-fade weights sum back to one everywhere
    assert sum(done) == mix.shape[1]
    np.testing.assert_allclose(sep(mix[0])[0], mix[0], atol=1e-6)  # mono in: duplicated to stereo


@pytest.mark.parametrize("channels,iterations", [(2, 1), (2, 2), (1, 1), (2, 0)])
def test_wiener_em_equals_open_unmix(channels, iterations):
    """Our complex-tensor Wiener EM gives Open-Unmix's own filter's output (float32 rounding)."""
    torch = pytest.importorskip("torch")
    from openunmix.filtering import wiener

    g = torch.Generator().manual_seed(channels + 10 * iterations)
    mix = 3 * torch.randn(40, 65, channels, 2, generator=g)
    mix[0, 0] = 0.0  # one all-zero bin: Open-Unmix rewrites it in its input, here it stays 0
    mag = torch.view_as_complex(mix).abs()[..., None] * torch.rand(40, 65, channels, 1, generator=g)
    ours = separation.wiener_em(mag, mix, iterations, residual=True)
    ref = wiener(mag.clone(), mix.clone(), iterations, residual=True)
    assert ours.shape == ref.shape == (40, 65, channels, 2, 2)
    # the other frequency bins (the zero entry changes its bin's spatial covariance at Open-Unmix)
    np.testing.assert_allclose(
        ours[:, 1:].numpy(), ref[:, 1:].numpy(), rtol=1e-4, atol=1e-5 * float(ref.abs().max())
    )
    # the zero entry itself: the vocals estimate is 0 in both
    assert float(ours[0, 0, ..., 0].abs().max()) == 0.0 == float(ref[0, 0, ..., 0].abs().max())
    if iterations == 0:  # the start: targets with the mixture's phase, the residual makes up the sum
        np.testing.assert_allclose(ours.sum(-1).numpy(), mix.numpy(), atol=1e-5 * float(mix.abs().max()))


def test_separator_model_equals_open_unmix_separator():
    """build_umx's model (STFT, the vocals network, our Wiener EM in 300-frame windows, inverse
    STFT) gives what ``openunmix.model.Separator`` gives with the same network."""
    torch = pytest.importorskip("torch")
    from openunmix.model import Separator

    torch.manual_seed(0)
    cfg = TINY
    ours = separation.build_umx(cfg, None, pretrained=False)
    ref = Separator(
        dict(ours.target_models), niter=1, residual=True, sample_rate=cfg.sample_rate, n_fft=cfg.n_fft,
        n_hop=cfg.n_hop, nb_channels=2, wiener_win_len=30,
    )  # fmt: skip
    ours.wiener_win_len = 30  # several windows in 2 s at hop 128
    ref.freeze()
    audio = torch.randn(1, 2, 2 * cfg.sample_rate, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = ours(audio), ref(audio)
    assert a.shape == b.shape == (1, 2, 2, 2 * cfg.sample_rate)
    assert metrics.sdr(b[0, 0].numpy(), a[0, 0].numpy()) > 60  # the vocals: the same to float rounding


def _write_stems(root: Path, n_songs: int = 3, seconds: float = 2.0, rate: int = 8000) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * rate)) / rate
    for k in range(n_songs):
        d = root / f"song-{k}"
        d.mkdir(parents=True)
        voc = 0.3 * np.sin(2 * np.pi * (220 + 40 * k) * t) * (np.sin(2 * np.pi * 2 * t) > 0)
        acc = 0.1 * rng.standard_normal(t.size)
        sf.write(d / "vocals.flac", np.stack([voc, voc], 1), rate)
        sf.write(d / "accompaniment.flac", np.stack([acc, acc], 1), rate)
    (root / "not-a-song").mkdir()  # ignored: no stems inside


def test_evaluate_separator_known_gain(tmp_path):
    _write_stems(tmp_path / "stems", n_songs=1)
    voc_path = tmp_path / "stems/song-0/vocals.flac"
    acc_path = tmp_path / "stems/song-0/accompaniment.flac"
    voc = sf.read(voc_path, always_2d=True)[0].T
    sf.write(acc_path, (-0.5 * voc).T, 8000)  # mixture = 0.5 vocals: the mixture's SDR is 6.02 dB

    class Times15:  # estimate = 1.5 mixture = 0.75 vocals: SDR 20 log10(4) = 12.04 dB
        cfg = TINY

        def __call__(self, mix):
            return 1.5 * mix

    stems = separation.stem_pairs([tmp_path / "stems"])
    assert [s[0] for s in stems] == ["song-0"]
    (row,) = separation.evaluate_separator(Times15(), stems, progress=False)
    assert row["sdr_mixture"] == pytest.approx(20 * np.log10(2), abs=0.01)
    assert row["sdr"] == pytest.approx(20 * np.log10(4), abs=0.01)
    assert row["sdr_gain"] == pytest.approx(20 * np.log10(2), abs=0.01)
    assert row["seconds"] == pytest.approx(2.0)

    class At16k:
        cfg = SeparatorConfig(sample_rate=16000)

    with pytest.raises(SingalignError, match="8000 Hz, the separator works at 16000 Hz"):
        separation.evaluate_separator(At16k(), stems, progress=False)


def test_missing_or_wrong_weights_name_the_file(tmp_path):
    import torch

    with pytest.raises(MissingWeightsError, match="nothing.pth: Open-Unmix vocals weights not found"):
        VocalSeparator(TINY, tmp_path / "nothing.pth")
    torch.save({"fc1.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(BundleError, match="other.pth: does not fit the separator config"):
        VocalSeparator(TINY, tmp_path / "other.pth")
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(BundleError, match="empty.pth: not Open-Unmix vocals weights"):
        VocalSeparator(TINY, tmp_path / "empty.pth")


def test_train_separator_resumes_and_its_weights_load(tmp_path):
    _write_stems(tmp_path / "stems")
    pairs = [(v, a) for _, v, a in separation.stem_pairs([tmp_path / "stems"])]
    train = SeparatorTrainConfig(steps=3, batch_size=2, excerpt_seconds=0.5, save_every=2)
    path = separation.train_separator(pairs, tmp_path / "sep", TINY, train, progress=False)
    info = json.loads((tmp_path / "sep/separator.json").read_text())
    assert info["trained_steps"] == 3 and info["hidden_size"] == 16 and info["weights"] == "vocals.pth"
    first = {k: v.clone() for k, v in __import__("torch").load(path, weights_only=True).items()}
    # resuming to 5 steps continues from step 3 (the weights move on) and records the new count
    separation.train_separator(pairs, tmp_path / "sep", TINY, SeparatorTrainConfig(**{**train.to_dict(), "steps": 5}),
                               progress=False)  # fmt: skip
    assert json.loads((tmp_path / "sep/separator.json").read_text())["trained_steps"] == 5
    second = __import__("torch").load(path, weights_only=True)
    assert any(not np.allclose(first[k].numpy(), second[k].numpy()) for k in first)
    # the exported weights load strictly into the architecture the config names, and separate
    sep = VocalSeparator(SeparatorConfig.from_dict(info), path)
    mix = sf.read(tmp_path / "stems/song-0/vocals.flac", always_2d=True)[0].T.astype(np.float32)
    out = sep(mix)
    assert out.shape == mix.shape and np.isfinite(out).all()


@pytest.mark.slow
def test_separator_recipes(tmp_path):
    _write_stems(tmp_path / "stems", seconds=1.0, rate=44100)  # the recipe trains at the default 44.1 kHz

    def run(*args):
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
        return proc

    # the recipe trains umxhq's layout except for the LSTM size: keep it tiny through --hidden
    proc = run("recipes/train_separator.py", "--stems", str(tmp_path / "stems"), "--out", str(tmp_path / "sep"),
               "--steps", "2", "--batch-size", "2", "--hidden", "16")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 songs" in proc.stdout
    proc = run("recipes/eval_separator.py", "--stems", str(tmp_path / "stems"), "--separator", str(tmp_path / "sep"),
               "--out", str(tmp_path / "eval"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "eval/summary.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "eval/per_song.jsonl").read_text().splitlines()]
    assert summary["songs"] == 3 and len(rows) == 3
    assert summary["median_sdr_mixture"] == pytest.approx(float(np.median([r["sdr_mixture"] for r in rows])))
    proc = run("recipes/eval_separator.py", "--stems", str(tmp_path / "nowhere"), "--separator", str(tmp_path / "sep"),
               "--out", str(tmp_path / "eval2"))  # fmt: skip
    assert (
        proc.returncode == 1
        and "eval_separator: error:" in proc.stderr
        and "nowhere: no such stems folder" in proc.stderr
    )
    proc = run(
        "recipes/train_separator.py", "--stems", str(tmp_path / "eval"), "--out", str(tmp_path / "sep2")
    )
    assert proc.returncode == 1 and "train_separator: error: no <id>/vocals.flac" in proc.stderr
