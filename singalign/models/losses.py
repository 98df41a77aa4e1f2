"""The joint loss (Section 3.1.3): pitch cross-entropy + onset binary cross-entropy + CTC.

Padding is masked in every term (the authors' code let it in): padded frames contribute nothing,
so changing the padded values changes no loss. Items without note annotations (speech) get no
pitch/onset loss; items without text get no CTC loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as Fn

from singalign import constants as C
from singalign.models.blocks import time_mask


@dataclass(frozen=True)
class LossConfig:
    """Weights of the joint loss. Defaults follow the authors' code (weights 1, 1, 1; onset
    ``pos_weight`` 20; pitched classes weighted 2 against no-pitch 1)."""

    pitch_weight: float = 1.0
    onset_weight: float = 1.0
    ctc_weight: float = 1.0
    onset_pos_weight: float = 20.0
    pitched_class_weight: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossConfig:
        return cls(**d)


def joint_loss(
    out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: LossConfig
) -> dict[str, torch.Tensor]:
    """Compute the loss terms for one batch.

    Args:
        out: the model's outputs (see ``SingAlignModel.forward``).
        batch: ``lengths`` (B,), ``pitch`` (B, T) long, ``onset`` (B, T) float, ``has_notes`` (B,) bool,
            ``targets`` (B, S) long padded with 0, ``target_lengths`` (B,), ``has_text`` (B,) bool.
        cfg: loss weights.

    Returns:
        dict with ``loss`` (the weighted sum, a scalar to back-propagate) and the unweighted terms
        ``pitch``, ``onset``, ``ctc`` (scalars; 0 when the term has no valid frames or is absent).
    """
    lengths = batch["lengths"]
    zero = lengths.new_zeros((), dtype=torch.float32)
    terms = {"pitch": zero, "onset": zero, "ctc": zero}
    if "pitch_logits" in out:
        t = out["pitch_logits"].shape[1]
        valid = time_mask(lengths, t) & batch["has_notes"][:, None]
        pitch_t, onset_t = batch["pitch"][:, :t], batch["onset"][:, :t]
        class_w = torch.full(
            (out["pitch_logits"].shape[-1],), cfg.pitched_class_weight, device=lengths.device
        )
        class_w[C.NO_PITCH] = 1.0
        ce = Fn.cross_entropy(
            out["pitch_logits"].float().transpose(1, 2),
            pitch_t.clamp(0, C.NO_PITCH),
            weight=class_w,
            reduction="none",
        )
        w = class_w[pitch_t.clamp(0, C.NO_PITCH)] * valid
        terms["pitch"] = (ce * valid).sum() / w.sum().clamp(min=1e-8)
        bce = Fn.binary_cross_entropy_with_logits(
            out["onset_logits"].float(),
            onset_t.float(),
            pos_weight=torch.tensor(cfg.onset_pos_weight, device=lengths.device),
            reduction="none",
        )
        terms["onset"] = (bce * valid).sum() / valid.sum().clamp(min=1)
    if "char_logits" in out:
        log_probs = out["char_logits"].float().log_softmax(-1).transpose(0, 1)  # (T2, B, V)
        ctc = Fn.ctc_loss(
            log_probs,
            batch["targets"],
            out["ctc_lengths"],
            batch["target_lengths"],
            blank=C.BLANK_INDEX,
            reduction="none",
            zero_infinity=True,
        )
        has_text = batch["has_text"].float()
        per_item = ctc / batch["target_lengths"].clamp(min=1).float()
        terms["ctc"] = (per_item * has_text).sum() / has_text.sum().clamp(min=1)
    terms["loss"] = (
        cfg.pitch_weight * terms["pitch"] + cfg.onset_weight * terms["onset"] + cfg.ctc_weight * terms["ctc"]
    )
    return terms
