"""Vocal separation with Open-Unmix, from local weights only, in bounded-memory chunks.

The paper used ``umxhq`` (the package's default changed to ``umxl`` later; we pin umxhq). Its
vocals weights come from Zenodo, which these machines cannot reach, so the weights are read
from a local file and a missing file is named in the error with where to put it.

A bundle's ``separator`` entry says which separator its model was trained with:
``{"kind": "none"}`` (the mixture is duplicated into the vocals channel) or
``{"kind": "umx", "weights": <path, relative to the bundle or absolute>, ...SeparatorConfig}``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singalign.errors import BundleError, MissingWeightsError, SingalignError

#: The umxhq vocals weights file name (Zenodo record 3370489) and where we look for it.
UMXHQ_VOCALS_FILE = "vocals-b62c91ce.pth"
UMX_WEIGHTS_ENV = "SINGALIGN_UMX_WEIGHTS"


def default_umxhq_path() -> Path:
    """``$SINGALIGN_UMX_WEIGHTS`` if set, else ``~/.cache/singalign/umxhq/vocals-b62c91ce.pth``."""
    env = os.environ.get(UMX_WEIGHTS_ENV)
    return Path(env) if env else Path.home() / ".cache" / "singalign" / "umxhq" / UMXHQ_VOCALS_FILE


@dataclass(frozen=True)
class SeparatorConfig:
    """Open-Unmix vocals model settings (umxhq's by default) and chunking."""

    kind: str = "umx"
    weights: str | None = None  # None: default_umxhq_path()
    sample_rate: int = 44_100
    n_fft: int = 4096
    n_hop: int = 1024
    nb_channels: int = 2
    hidden_size: int = 512
    bandwidth: float = 16_000.0
    niter: int = 1  # Wiener EM iterations (vocals + residual accompaniment)
    chunk_seconds: float = 30.0
    overlap_seconds: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeparatorConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_umx(cfg: SeparatorConfig, weights: Path | None, pretrained: bool = True):
    """An ``openunmix`` Separator for vocals (+ residual), with weights loaded from ``weights``."""
    import torch
    from openunmix.model import OpenUnmix
    from openunmix.utils import bandwidth_to_max_bin

    model = OpenUnmix(
        nb_bins=cfg.n_fft // 2 + 1,
        nb_channels=cfg.nb_channels,
        hidden_size=cfg.hidden_size,
        max_bin=bandwidth_to_max_bin(cfg.sample_rate, cfg.n_fft, cfg.bandwidth),
    )
    if pretrained:
        path = Path(weights) if weights else default_umxhq_path()
        if not path.exists():
            raise MissingWeightsError(
                f"{path}: Open-Unmix vocals weights not found; download {UMXHQ_VOCALS_FILE} "
                f"(Zenodo record 3370489) to {default_umxhq_path()} or set ${UMX_WEIGHTS_ENV}, "
                "or run with --no-separation"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:  # not strict: umxhq's file carries a sample_rate entry the model does not have
            missing = model.load_state_dict(state, strict=False).missing_keys
        except RuntimeError as exc:  # shapes differ: another hidden size, n_fft or channel count
            raise BundleError(
                f"{path}: does not fit the separator config ({str(exc).splitlines()[-1].strip()})"
            ) from None
        if missing:
            raise BundleError(f"{path}: not Open-Unmix vocals weights (missing {', '.join(missing[:3])})")
    sep = _separator_class()(
        {"vocals": model},
        niter=cfg.niter,
        residual=True,
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_hop=cfg.n_hop,
        nb_channels=cfg.nb_channels,
    )
    sep.freeze()
    return sep


def wiener_em(
    spectrograms,
    mix_stft,
    iterations: int = 1,
    residual: bool = True,
    scale_factor: float = 10.0,
    eps: float = 1e-10,
):
    """Open-Unmix's multichannel Wiener filter with EM refinement, on complex tensors.

    The same algorithm and arguments as ``openunmix.filtering.wiener`` (its default, not-softmask
    start: the estimated magnitudes with the mixture's phase; optionally the residual mixture minus
    the targets as one more source; ``iterations`` rounds of: power spectra as the channel mean of
    the estimates' power, spatial covariances as their v-weighted average, then the Wiener gains
    ``v_j R_j (sqrt(eps) I + sum_k v_k R_k)^-1`` applied to the mixture), with the same scaling for
    numerical stability. Open-Unmix writes complex arithmetic out on (real, imaginary) pairs, one
    matrix entry at a time, which took two thirds of a song's separation on 2 cores; here it is
    whole-tensor complex arithmetic, 2x2 inverses in closed form. Outputs agree with Open-Unmix's
    to float32 rounding (``tests/test_separation.py``). One difference: Open-Unmix's phase
    function sets the mixture to 1 in the bins where it is exactly 0 (it writes into its input);
    here those bins stay 0.

    Args:
        spectrograms: real (frames, bins, channels, targets) magnitude estimates.
        mix_stft: real (frames, bins, channels, 2) mixture STFT, (real, imaginary) last.

    Returns:
        real (frames, bins, channels, 2, sources): the sources' STFTs, the residual last when
        ``residual``.
    """
    import torch

    x = torch.view_as_complex(mix_stft.contiguous())  # (F, B, C)
    mag = x.abs()
    phase = torch.where(mag > 0, x / torch.where(mag > 0, mag, 1.0), torch.ones_like(x))
    y = spectrograms * phase[..., None]  # (F, B, C, J)
    if residual:
        y = torch.cat([y, x[..., None] - y.sum(-1, keepdim=True)], dim=-1)
    if iterations > 0:
        scale = torch.clamp(mag.max() / scale_factor, min=1.0)
        x, y = x / scale, y / scale
        n_ch = x.shape[-1]
        reg = float(np.sqrt(eps)) * torch.eye(n_ch, dtype=x.dtype)
        for _ in range(iterations):
            v = (y.real**2 + y.imag**2).mean(dim=2)  # (F, B, J): power, channel mean
            cov = torch.einsum("fbcj,fbdj->bcdj", y, y.conj())  # summed over frames
            r = cov / (eps + v.sum(0))[:, None, None, :]  # (B, C, C, J) spatial covariances
            vc = v.to(x.dtype)
            cxx = reg + torch.einsum("fbj,bcdj->fbcd", vc, r)  # (F, B, C, C)
            # inv(Cxx) x, per frame and bin (2x2: in closed form)
            if n_ch == 1:
                ix = x / cxx[..., 0]
            elif n_ch == 2:
                a, b, c, d = cxx[..., 0, 0], cxx[..., 0, 1], cxx[..., 1, 0], cxx[..., 1, 1]
                det = a * d - b * c
                x0, x1 = x[..., 0], x[..., 1]
                ix = torch.stack([d * x0 - b * x1, a * x1 - c * x0], dim=-1) / det[..., None]
            else:
                raise ValueError("Wiener filtering supports 1 or 2 channels")
            # y_j = v_j R_j inv(Cxx) x
            y = vc[:, :, None, :] * torch.einsum("bcdj,fbd->fbcj", r, ix)
        y = y * scale
    return torch.view_as_real(y.contiguous()).movedim(-1, -2).contiguous()  # (F, B, C, 2, J)


def _separator_class():
    """``openunmix.model.Separator`` with its forward pass on :func:`wiener_em` (imported lazily)."""
    from openunmix.model import Separator

    class ComplexWienerSeparator(Separator):
        def forward(self, audio):
            import torch

            mix = self.stft(audio)  # (S, C, B, F, 2)
            mag = self.complexnorm(mix)
            spec = torch.stack([m(mag) for m in self.target_models.values()], dim=-1)  # (S, C, B, F, J)
            spec, mix = spec.permute(0, 3, 2, 1, 4), mix.permute(0, 3, 2, 1, 4)  # frames first
            n_frames = spec.shape[1]
            win = self.wiener_win_len or n_frames
            out = []
            for s in range(spec.shape[0]):
                parts = [
                    wiener_em(spec[s, p : p + win], mix[s, p : p + win], self.niter, residual=self.residual)
                    for p in range(0, n_frames, win)
                ]
                out.append(torch.cat(parts, dim=0))
            # (S, F, B, C, 2, J) -> (S, J, C, B, F, 2)
            stft = torch.stack(out).permute(0, 5, 3, 2, 1, 4).contiguous()
            return self.istft(stft, length=audio.shape[2])

    return ComplexWienerSeparator


class VocalSeparator:
    """Separates vocals from a mixture, chunk by chunk with cross-faded overlaps."""

    def __init__(self, cfg: SeparatorConfig, weights: Path | None = None, device: str = "cpu") -> None:
        self.cfg = cfg
        self.device = device
        self.model = build_umx(cfg, weights).to(device)

    def __call__(self, mix: np.ndarray, progress=None) -> np.ndarray:
        """Vocals of ``mix``.

        Args:
            mix: (channels, samples) at ``cfg.sample_rate``; mono is duplicated to stereo.
            progress: optional callable taking the number of samples done.

        Returns:
            (channels, samples) float32 vocals at ``cfg.sample_rate``.
        """
        import torch

        if mix.ndim == 1:
            mix = mix[None]
        if mix.shape[0] == 1 and self.cfg.nb_channels == 2:
            mix = np.repeat(mix, 2, axis=0)
        mix = mix[: self.cfg.nb_channels]
        n = mix.shape[1]
        chunk = int(self.cfg.chunk_seconds * self.cfg.sample_rate)
        ov = min(int(self.cfg.overlap_seconds * self.cfg.sample_rate), chunk // 2)
        out = np.zeros_like(mix, dtype=np.float32)
        weight = np.zeros(n, dtype=np.float32)
        start = 0
        while start < n:
            stop = min(n, start + chunk)
            with torch.no_grad():
                x = torch.from_numpy(np.ascontiguousarray(mix[:, start:stop], dtype=np.float32))[None].to(
                    self.device
                )
                est = self.model(x)[0, 0].cpu().numpy()  # (channels, samples): the vocals target
            # linear cross-fade in the overlaps; dividing by the summed weights below makes it exact
            w = np.ones(stop - start, dtype=np.float32)
            ramp = np.linspace(0.0, 1.0, ov + 2, dtype=np.float32)[1:-1]
            if start > 0 and ov:
                w[:ov] = ramp
            if stop < n and ov:
                w[-ov:] = np.minimum(w[-ov:], ramp[::-1])
            out[:, start:stop] += est * w
            weight[start:stop] += w
            if progress:
                progress(stop - start - (ov if stop < n else 0))
            if stop >= n:
                break
            start = stop - ov
        return out / np.maximum(weight, 1e-8)


def separator_from_bundle(bundle, device: str = "cpu") -> VocalSeparator | None:
    """The separator a bundle names, or None for ``{"kind": "none"}``."""
    spec = dict(bundle.config.get("separator") or {"kind": "none"})
    if spec.get("kind", "none") == "none":
        return None
    if spec["kind"] != "umx":
        raise ValueError(f"unknown separator kind {spec['kind']!r} in bundle {bundle.path}")
    cfg = SeparatorConfig.from_dict(spec)
    return VocalSeparator(cfg, bundle.resolve(cfg.weights), device=device)


def stem_pairs(roots: list[str | os.PathLike[str]]) -> list[tuple[str, str, str]]:
    """``(song id, vocals file, accompaniment file)`` for every ``<id>/vocals.flac`` +
    ``<id>/accompaniment.flac`` under the given stems folders (the layout ``singalign synth songs``
    writes), sorted by id within each folder. A missing folder is a ``SingalignError``."""
    out = []
    for root in roots:
        if not Path(root).is_dir():
            raise SingalignError(f"{root}: no such stems folder")
        for d in sorted(p for p in Path(root).iterdir() if p.is_dir()):
            if (d / "vocals.flac").exists() and (d / "accompaniment.flac").exists():
                out.append((d.name, str(d / "vocals.flac"), str(d / "accompaniment.flac")))
    return out


def evaluate_separator(
    separator: VocalSeparator, stems: list[tuple[str, str, str]], progress: bool = True
) -> list[dict[str, Any]]:
    """Vocals SDR per song: the separator's estimate of the vocals of (vocals + accompaniment).

    Each row also has ``sdr_mixture``, the SDR of the mixture itself taken as the vocals estimate
    (what "no separator" gives), and ``sdr_gain``, the difference. Stems are read at the
    separator's rate and channel count.
    """
    from tqdm import tqdm

    from singalign.metrics import sdr

    rows = []
    for song, voc_path, acc_path in tqdm(stems, desc="separation eval", unit="song", disable=not progress):
        ch = separator.cfg.nb_channels
        voc, acc = (
            _read_excerpt(p, 0, _frames(p, separator.cfg.sample_rate), ch) for p in (voc_path, acc_path)
        )
        n = min(voc.shape[1], acc.shape[1])
        voc, mix = voc[:, :n], voc[:, :n] + acc[:, :n]
        est = separator(mix)
        row = {"id": song, "seconds": n / separator.cfg.sample_rate, "sdr": sdr(voc, est)}
        row["sdr_mixture"] = sdr(voc, mix)
        row["sdr_gain"] = row["sdr"] - row["sdr_mixture"]
        rows.append(row)
    return rows


def _frames(path: str, rate: int) -> int:
    """The length of a stem in frames; it must be at the separator's rate (stems are not resampled)."""
    import soundfile as sf

    info = sf.info(path)
    if info.samplerate != rate:
        raise SingalignError(f"{path}: {info.samplerate} Hz, the separator works at {rate} Hz")
    return info.frames


# ----------------------------------------------------------------------------- training on stems


@dataclass(frozen=True)
class SeparatorTrainConfig:
    """Training an Open-Unmix vocals model on (vocals, accompaniment) stems, as the package's own
    recipe does: magnitude-spectrogram MSE, random excerpts, random gains, and stems of different
    songs mixed together (incoherent mixing) for augmentation."""

    steps: int = 3000
    batch_size: int = 8
    excerpt_seconds: float = 6.0
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    save_every: int = 200
    incoherent_prob: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_excerpt(path: str, start: int, n: int, channels: int) -> np.ndarray:
    import soundfile as sf

    x, _ = sf.read(path, start=start, frames=n, dtype="float32", always_2d=True)
    if x.shape[0] < n:
        x = np.pad(x, ((0, n - x.shape[0]), (0, 0)))
    if x.shape[1] < channels:
        x = np.repeat(x[:, :1], channels, axis=1)
    return x[:, :channels].T


def train_separator(
    stems: list[tuple[str, str]],
    out_dir: str | os.PathLike[str],
    cfg: SeparatorConfig = SeparatorConfig(hidden_size=256),
    train: SeparatorTrainConfig = SeparatorTrainConfig(),
    progress: bool = True,
) -> Path:
    """Train (or resume training) a vocals model; returns the path of the exported weights.

    Args:
        stems: ``(vocals file, accompaniment file)`` pairs at ``cfg.sample_rate``.
        out_dir: holds ``checkpoint.pt`` (resumable, atomic) and ``vocals.pth`` (the weights, a plain
            state dict loadable with ``weights_only=True``) plus ``separator.json`` (the config).

    The exported weights go with ``SeparatorConfig(weights=...)`` in a bundle's ``separator`` entry.
    """
    import json
    import random

    import torch
    from openunmix.model import OpenUnmix
    from openunmix.transforms import ComplexNorm, make_filterbanks
    from openunmix.utils import bandwidth_to_max_bin
    from tqdm import tqdm

    from singalign.files import atomic_path, write_text

    if not stems:
        raise ValueError("no stems to train the separator on")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths = [min(_frames(v, cfg.sample_rate), _frames(a, cfg.sample_rate)) for v, a in stems]
    n = int(train.excerpt_seconds * cfg.sample_rate)
    stft, _ = make_filterbanks(cfg.n_fft, cfg.n_hop, center=True, sample_rate=cfg.sample_rate)
    norm = ComplexNorm(mono=cfg.nb_channels == 1)

    def spec(x: torch.Tensor) -> torch.Tensor:  # (B, ch, samples) -> (B, ch, bins, frames)
        return norm(stft(x.contiguous()))

    rng = random.Random(train.seed)

    def excerpt(k: int) -> np.ndarray:
        start = rng.randrange(max(1, lengths[k] - n))
        return np.stack([_read_excerpt(p, start, n, cfg.nb_channels) for p in stems[k]])  # (2, ch, n)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        voc, acc = [], []
        for _ in range(train.batch_size):
            k = rng.randrange(len(stems))
            v, a = excerpt(k)
            if rng.random() < train.incoherent_prob:
                a = excerpt(rng.randrange(len(stems)))[1]
            voc.append(v * rng.uniform(0.25, 1.25))
            acc.append(a * rng.uniform(0.25, 1.25))
        v, a = torch.from_numpy(np.stack(voc)), torch.from_numpy(np.stack(acc))
        return spec(v + a), spec(v)

    torch.manual_seed(train.seed)
    max_bin = bandwidth_to_max_bin(cfg.sample_rate, cfg.n_fft, cfg.bandwidth)
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model = OpenUnmix(
            nb_bins=cfg.n_fft // 2 + 1,
            nb_channels=cfg.nb_channels,
            hidden_size=cfg.hidden_size,
            max_bin=max_bin,
        )
        model.load_state_dict(state["model"])
    else:
        # input statistics from a few excerpts, as the package's training script does
        with torch.no_grad():
            mags = torch.cat([batch()[0] for _ in range(4)])  # (B, ch, bins, frames)
            x = mags.mean(1).permute(1, 0, 2).reshape(mags.shape[2], -1)[:max_bin]
        model = OpenUnmix(
            nb_bins=cfg.n_fft // 2 + 1,
            nb_channels=cfg.nb_channels,
            hidden_size=cfg.hidden_size,
            max_bin=max_bin,
            input_mean=x.mean(1).numpy(),
            input_scale=np.maximum(x.std(1).numpy(), 1e-4),
        )
        state = None
    opt = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    step = 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        rng.setstate(_as_tuple(state["python_rng"]))
        step = int(state["step"])

    def save() -> None:
        with atomic_path(ckpt) as tmp:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "python_rng": rng.getstate(),
                    "step": step,
                },  # fmt: skip
                tmp,
            )
        with atomic_path(out / "vocals.pth") as tmp:
            torch.save(model.state_dict(), tmp)
        write_text(
            out / "separator.json",
            json.dumps({**cfg.to_dict(), "weights": "vocals.pth", "trained_steps": step}, indent=2),
        )

    model.train()
    bar = tqdm(total=train.steps, initial=step, desc="separator", disable=not progress)
    while step < train.steps:
        mix, voc = batch()
        loss = torch.nn.functional.mse_loss(model(mix), voc)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % train.save_every == 0 or step == train.steps:
            save()
    bar.close()
    if not (out / "vocals.pth").exists():
        save()
    return out / "vocals.pth"


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x
