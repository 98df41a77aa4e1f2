"""Embedding audio (files or feature arrays) and text with a bundle that has an audio-text head.

Audio: decode -> (separate vocals, as the bundle says) -> 2-channel log-mel -> the ALT model in
overlapping windows (as ``singalign.transcribe``), keeping the lyrics CRNN's encoder output
(``LyricsCRNN.encode``) and stitching the windows' centres into one (T2, D) sequence for the whole
song -> each space's head pools the whole sequence -> (embed_dim,) unit vectors.

Text: the head's text tower + projection -> (embed_dim,) unit vectors. A tag is embedded as the
average of its zero-shot prompts (``singalign.textsample.zero_shot_prompts``), renormalized.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singalign import constants as C


@dataclass(frozen=True)
class EmbedOptions:
    """Run-time choices (model settings come from the bundle).

    Attributes:
        separation: run the bundle's separator (if it names one); False puts the mixture in both channels.
        window_frames, overlap_frames, batch_windows: the windowing of ``TranscribeOptions``.
        device: "cpu" or "cuda".
    """

    separation: bool = True
    window_frames: int = C.SEGMENT_FRAMES
    overlap_frames: int = 200
    batch_windows: int = 4
    device: str = "cpu"


@contextlib.contextmanager
def capture_encoding(model, evidence: bool = False):
    """Within the block, ``box["h"]`` holds the last (B, T2, D) lyrics encoding the model computed.

    The encoding is the input of the lyrics CRNN's output layer, caught with a forward pre-hook,
    so ``SingAlignModel.forward`` runs unchanged (and gradients flow through it when training).
    With ``evidence`` it is followed by CRNN-1's pitch and onset probabilities as the lyrics CRNN
    received them (max-pooled to the encoding's rate): (B, T2, D + n_pitch + 1). A CTC-trained
    encoding keeps what spells the words and may drop what describes the music (the singer's
    range, the key, the rhythm); CRNN-1's output says it directly.
    """
    import torch

    if model.lyrics is None:
        raise ValueError("a pitch/onset-only model has no lyrics encoder")
    box: dict = {}
    k1 = model.cfg.n_pitch + 1

    def grab_evidence(_module, inputs):
        box["po"] = inputs[0][..., -k1:]  # the first RNN's input ends with the pooled probabilities

    def grab(_module, inputs):
        h = inputs[0]
        box["h"] = torch.cat([h, box.pop("po").to(h.dtype)], dim=-1) if evidence else h

    handles = [model.lyrics.fc.register_forward_pre_hook(grab)]
    if evidence:
        handles.append(model.lyrics.rnns[0].register_forward_pre_hook(grab_evidence))
    try:
        yield box
    finally:
        for handle in handles:
            handle.remove()


class Embedder:
    """A loaded bundle with a head: embeds audio files, feature arrays and text."""

    def __init__(self, bundle, options: EmbedOptions = EmbedOptions()) -> None:
        from singalign.models.heads import load_head

        self.bundle = bundle
        self.options = options
        self.head = load_head(bundle, options.device)
        self.model = bundle.build_model().to(options.device)
        self.features = bundle.feature_config
        self.spaces = self.head.cfg.spaces
        self.tag_vocab: list[str] = list(bundle.config["head"].get("tag_vocab") or [])
        self.separator = None
        if options.separation:
            from singalign.separation import separator_from_bundle

            self.separator = separator_from_bundle(bundle, options.device)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str] | None, options: EmbedOptions = EmbedOptions()
    ) -> Embedder:
        from singalign.bundle import Bundle, default_bundle_path

        return cls(Bundle.load(path or default_bundle_path()), options)

    # -- audio ---------------------------------------------------------------------------------
    def load_features(self, path: str | os.PathLike[str]) -> np.ndarray:
        """(2, n_mels, T) features of an audio file (the transcriber's input stage, then log-mel);
        AudioError naming the file if unusable."""
        from singalign.features import stack_features
        from singalign.transcribe import load_vocals_and_mix

        vocals, mix, _ = load_vocals_and_mix(path, self.features, self.separator)
        return stack_features(vocals, mix, self.features)

    def encode(self, feats: np.ndarray):
        """The encoder output of a whole song: (2, F, T) features -> torch (ceil(T/2), D)."""
        import torch

        from singalign.audio import window_batches

        o = self.options
        d = C.CTC_DOWNSAMPLE
        pieces = []
        # the same windows and kept ranges as Transcriber.run_model
        for group in window_batches(feats.shape[-1], o.window_frames, o.overlap_frames, o.batch_windows):
            x = np.stack([feats[..., w.start : w.stop] for w in group]).astype(np.float32, copy=False)
            lengths = torch.full((len(group),), x.shape[-1], device=o.device)
            with torch.no_grad(), capture_encoding(self.model, self.head.cfg.evidence) as box:
                self.model(torch.from_numpy(x).to(o.device), lengths)
            for i, w in enumerate(group):
                lo2, a2, hi2 = w.keep_lo // d, w.start // d, (w.keep_hi + 1) // d
                pieces.append(box["h"][i, lo2 - a2 : hi2 - a2])
        return torch.cat(pieces, dim=0)

    def embed_encoding(self, h) -> dict[str, np.ndarray]:
        """(T2, D) encoder output -> ``{space: (embed_dim,) float32}``."""
        import torch

        lengths = torch.tensor([h.shape[0]], device=h.device)
        with torch.no_grad():
            return {s: self.head.embed_audio(h[None], lengths, s)[0].cpu().numpy() for s in self.spaces}

    def embed_features(self, feats: np.ndarray) -> dict[str, np.ndarray]:
        """(2, F, T) features -> ``{space: (embed_dim,) float32}``."""
        return self.embed_encoding(self.encode(feats))

    def embed_file(self, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
        return self.embed_features(self.load_features(path))

    # -- text ----------------------------------------------------------------------------------
    def embed_texts(self, texts: list[str], space: str = "tags") -> np.ndarray:
        """Texts -> (N, embed_dim) float32 unit rows."""
        import torch

        if space not in self.spaces:
            raise ValueError(f"this head has no {space!r} space (it has {', '.join(self.spaces)})")
        with torch.no_grad():
            return self.head.embed_text(list(texts), space).cpu().numpy()

    def embed_tags(self, tags: list[str]) -> np.ndarray:
        """Tags -> (K, embed_dim): each the renormalized mean of its zero-shot prompts' embeddings."""
        from singalign.textsample import TextSampleConfig, zero_shot_prompts

        cfg = TextSampleConfig.from_dict(self.bundle.config["head"].get("text_sample") or {})
        prompts = [zero_shot_prompts(t, cfg) for t in tags]
        flat = [p for ps in prompts for p in ps]
        emb = self.embed_texts(flat, "tags")
        out, k = [], 0
        for ps in prompts:
            v = emb[k : k + len(ps)].mean(0)
            out.append(v / max(float(np.linalg.norm(v)), 1e-12))
            k += len(ps)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, emb.shape[1]), np.float32)

    def tag_scores(self, audio: np.ndarray, tags: list[str]) -> np.ndarray:
        """Zero-shot scores: cosine of (N, E) audio embeddings with each tag -> (N, K) in [-1, 1]."""
        return np.asarray(audio, np.float32).reshape(-1, audio.shape[-1]) @ self.embed_tags(tags).T


def parse_tag_list(tags: str | None = None, tags_file: str | os.PathLike[str] | None = None) -> list[str]:
    """Tags from "rock,jazz, sad" and/or a file (one per line or comma-separated), deduplicated."""
    from singalign.errors import SingalignError

    items: list[str] = []
    if tags:
        items += tags.split(",")
    if tags_file:
        try:
            text = Path(tags_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SingalignError(f"{tags_file}: cannot read the tags file ({exc.strerror})") from None
        items += [t for line in text.splitlines() for t in line.split(",")]
    out = list(dict.fromkeys(t.strip().lower() for t in items if t.strip()))
    if not out:
        raise SingalignError('no tags given (use --tags "rock,jazz,..." or --tags-file FILE)')
    return out
