"""The paper's two CRNNs and the model that joins them in one of four modes.

Shapes (B batch, T feature frames, F mel bins, K=129 pitch classes, V=34 symbols):
    input features x: (B, 2, F, T), lengths: (B,)
    pitch logits: (B, T, K), onset logits: (B, T)
    CTC log-probabilities: (B, ceil(T/2), V), CTC lengths: (B,) = ceil(lengths/2)
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn
from torch import nn

from singalign.models.blocks import ResidualCNN, RNNBlock, time_mask
from singalign.models.config import ModelConfig


class PitchOnsetCRNN(nn.Module):
    """CRNN-1 (Section 3.1.1): residual CNN -> 1 RNN block -> FC to K pitch logits + 1 onset logit."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cnn = ResidualCNN(cfg.in_channels, cfg.po_channels, cfg.po_kernels)
        self.rnn = RNNBlock(cfg.po_channels[-1] * cfg.n_mels, cfg.po_rnn_hidden, dropout=0.0)
        self.fc = nn.Linear(2 * cfg.po_rnn_hidden, cfg.n_pitch + 1)
        self.n_pitch = cfg.n_pitch

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = time_mask(lengths, x.shape[-1])
        z = self.cnn(x, mask)  # (B, C', F, T)
        b, c, f, t = z.shape
        z = z.permute(0, 3, 1, 2).reshape(b, t, c * f)
        y = self.fc(self.rnn(z, lengths))  # (B, T, K + 1)
        return y[..., : self.n_pitch], y[..., self.n_pitch]


def _pool_time_masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max-pool (kernel 3, stride 2, padding 1) over the last axis with padded frames as -inf.

    x: (..., T) with mask (B, T) broadcast over the middle axes -> (..., ceil(T/2)).
    """
    shape = (mask.shape[0],) + (1,) * (x.ndim - 2) + (mask.shape[1],)
    x = x.masked_fill(~mask.view(shape), float("-inf"))
    if x.ndim == 4:
        return Fn.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    return Fn.max_pool1d(x, kernel_size=3, stride=2, padding=1)


class LyricsCRNN(nn.Module):
    """CRNN-2 (Section 3.1.2): residual CNN -> 2-D max-pool to (F/2, T/2) -> stack with pitch/onset
    probabilities pooled to T/2 -> RNN blocks -> FC to V symbols."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cnn = ResidualCNN(cfg.in_channels, cfg.ly_channels, cfg.ly_kernels)
        in_dim = cfg.ly_channels[-1] * (cfg.n_mels // 2) + cfg.n_pitch + 1
        dims = [in_dim] + [2 * cfg.ly_rnn_hidden] * cfg.ly_rnn_layers
        self.rnns = nn.ModuleList(
            RNNBlock(dims[i], cfg.ly_rnn_hidden, dropout=cfg.dropout) for i in range(cfg.ly_rnn_layers)
        )
        self.fc = nn.Linear(2 * cfg.ly_rnn_hidden, cfg.n_vocab)
        self.out_dim = 2 * cfg.ly_rnn_hidden

    def encode(
        self, x: torch.Tensor, lengths: torch.Tensor, po_probs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared audio encoding: the last RNN block's output.

        Args:
            x: (B, C, F, T) features; lengths: (B,) valid frames.
            po_probs: (B, T, K + 1) pitch and onset probabilities (zeros for the baseline).

        Returns:
            (B, ceil(T/2), 2 * hidden) encodings and their lengths (B,).
        """
        mask = time_mask(lengths, x.shape[-1])
        z = _pool_time_masked(self.cnn(x, mask), mask)  # (B, C', F/2, T2)
        p = _pool_time_masked(po_probs.transpose(1, 2), mask)  # (B, K+1, T2)
        lengths2 = (lengths + 1) // 2
        mask2 = time_mask(lengths2, z.shape[-1])
        b, c, f, t2 = z.shape
        h = torch.cat([z.permute(0, 3, 1, 2).reshape(b, t2, c * f), p.transpose(1, 2)], dim=-1)
        h = torch.where(mask2[..., None], h, torch.zeros((), dtype=h.dtype, device=h.device))
        for rnn in self.rnns:
            h = rnn(h, lengths2)
        return h, lengths2

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, po_probs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, lengths2 = self.encode(x, lengths, po_probs)
        return self.fc(h), lengths2


class SingAlignModel(nn.Module):
    """CRNN-1 and/or CRNN-2 joined as the mode says.

    Modes: ``baseline`` (zeros as pitch/onset input), ``oracle`` (ground-truth pitch one-hot and
    onsets as input), ``multitask`` (CRNN-1's probabilities as input, trained jointly, gradients
    flow through them), ``pitch_onset_only`` (CRNN-1 alone).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pitch_onset = PitchOnsetCRNN(cfg) if cfg.has_pitch_onset else None
        self.lyrics = LyricsCRNN(cfg) if cfg.has_lyrics else None

    def _po_input(self, out, x, lengths, pitch_target, onset_target, po_gate) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1]
        k = self.cfg.n_pitch
        if self.cfg.mode == "baseline":
            po = x.new_zeros(b, t, k + 1)
        elif self.cfg.mode == "oracle":
            if pitch_target is None or onset_target is None:
                raise ValueError("oracle mode needs the ground-truth pitch and onset targets")
            pitch = Fn.one_hot(pitch_target.clamp(0, k - 1), k).to(x.dtype)
            po = torch.cat([pitch, onset_target.to(x.dtype)[..., None]], dim=-1)
        else:
            po = torch.cat(
                [out["pitch_logits"].softmax(-1), torch.sigmoid(out["onset_logits"])[..., None]], -1
            )
        po = po * time_mask(lengths, t)[..., None].to(po.dtype)
        if po_gate is not None:  # zero input for items without pitch information (speech)
            po = po * po_gate.to(po.dtype)[:, None, None]
        return po

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        pitch_target: torch.Tensor | None = None,
        onset_target: torch.Tensor | None = None,
        po_gate: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the model.

        Args:
            x: (B, 2, F, T) log-mel features; lengths: (B,) valid frames per item.
            pitch_target: (B, T) int pitch classes (oracle mode only).
            onset_target: (B, T) float onsets (oracle mode only).
            po_gate: (B,) 1 to feed pitch/onset to the lyrics CRNN, 0 to feed zeros (speech).

        Returns:
            dict with ``pitch_logits`` (B, T, K) and ``onset_logits`` (B, T) when the model has
            CRNN-1, and ``char_logits`` (B, T2, V), ``ctc_lengths`` (B,) when it has CRNN-2.
        """
        out: dict[str, torch.Tensor] = {}
        if self.pitch_onset is not None:
            out["pitch_logits"], out["onset_logits"] = self.pitch_onset(x, lengths)
        if self.lyrics is not None:
            po = self._po_input(out, x, lengths, pitch_target, onset_target, po_gate)
            out["char_logits"], out["ctc_lengths"] = self.lyrics(x, lengths, po)
        return out


def compile_cnns(model: nn.Module) -> int:
    """Compile every residual CNN in ``model`` in place with ``torch.compile`` (inductor).

    The CNNs run at the full frame rate and their instance norms, ReLUs and padding masks are
    elementwise passes over (batch, channels, 80, frames) tensors, which dominate an eager CPU
    step; inductor fuses them around the convolutions (``small`` training steps on 2 CPU cores
    2.4x faster in float32, 3.1x with bfloat16 autocast: bench/bench_train_step.py). The time axis
    is compiled as dynamic, so batches of any length share one graph after the first compile (tens
    of seconds, plus one more for eval mode).
    Parameter names do not change, so checkpoints and bundles stay interchangeable with an eager
    model. Needs a C++ compiler. Returns the number of CNNs compiled.
    """
    cnns = [m for m in model.modules() if isinstance(m, ResidualCNN)]
    for cnn in cnns:
        cnn.compile(dynamic=True)
    return len(cnns)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
