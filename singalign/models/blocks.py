"""CRNN building blocks (paper, Fig. 2), with padding masked everywhere it matters.

Padding never changes the output for the valid frames: instance-norm statistics use valid
frames only, padded frames are zeroed after each block (so a same-padded convolution sees
exactly the zeros it would see at the end of an unpadded sequence), and each direction of the
BiLSTM sees only its own sequence's frames. The authors' code let padding leak into all three.
"""

from __future__ import annotations

import torch
from torch import nn


def time_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean mask (batch, max_len): True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class MaskedInstanceNorm2d(nn.Module):
    """Instance norm over (freq, time) of valid frames, with a learnable affine per channel.

    Input (batch, channels, freq, time); mask (batch, time).
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Reduce over frequency first (80x smaller), then mask over time; then one fused
        # scale-and-shift pass. Full-size temporaries were half the cost of a training step.
        m = mask[:, None, :].to(x.dtype)  # (B, 1, T)
        count = (m.sum(dim=-1) * x.shape[2]).clamp(min=1.0)  # (B, 1)
        mean = (x.sum(dim=2) * m).sum(dim=-1) / count  # (B, C)
        sq = ((x * x).sum(dim=2) * m).sum(dim=-1) / count
        var = (sq - mean * mean).clamp(min=0.0)
        scale = self.weight[None, :] * torch.rsqrt(var + self.eps)
        shift = self.bias[None, :] - mean * scale
        return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])


class ResidualBlock(nn.Module):
    """Instance norm -> ReLU -> same-padded conv, plus a skip (1x1 conv when channels change).

    Input (batch, in_ch, freq, time) -> output (batch, out_ch, freq, time); padded frames are zero.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ValueError(f"kernel must be odd for same padding, got {kernel}")
        self.norm = MaskedInstanceNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, None, None, :].to(x.dtype)
        h = torch.relu(self.norm(x, mask)) * m
        return (self.conv(h) + self.skip(x)) * m


class ResidualCNN(nn.Module):
    """A stack of residual blocks: (batch, in_ch, freq, time) -> (batch, channels[-1], freq, time)."""

    def __init__(self, in_ch: int, channels: tuple[int, ...], kernels: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        if len(channels) != len(kernels):
            raise ValueError("channels and kernels must have the same length")
        chans = (in_ch, *channels)
        self.blocks = nn.ModuleList(ResidualBlock(chans[i], chans[i + 1], k) for i, k in enumerate(kernels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask[:, None, None, :].to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return x


class RNNBlock(nn.Module):
    """Layer norm -> BiLSTM -> dropout: (batch, time, in_dim) -> (batch, time, 2*hidden).

    Padding never reaches a valid frame. With unequal lengths, the forward direction runs over the
    padded batch (padding comes after the valid frames, so they never see it) and the backward
    direction over each sequence reversed within its own length (valid frames first). Both use
    the fused LSTM kernel; a PackedSequence would do the same work in a per-step loop that is
    several times slower on the CPU. Padded outputs are zero, as ``pad_packed_sequence`` gives.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        b, t, _ = x.shape
        lengths = lengths.to(x.device)
        if bool((lengths == t).all()):
            out, _ = self.lstm(x)
            return self.dropout(out)
        steps = torch.arange(t, device=x.device)[None, :].expand(b, t)
        rev = lengths[:, None] - 1 - steps
        rev = torch.where(rev >= 0, rev, steps)  # reverse the valid frames; padding stays in place
        weights = self.lstm._flat_weights
        h0 = x.new_zeros(1, b, self.lstm.hidden_size)
        state = (h0, h0)
        fwd = torch._VF.lstm(x, state, weights[:4], True, 1, 0.0, self.training, False, True)[0]
        x_rev = x.gather(1, rev[..., None].expand_as(x))
        bwd = torch._VF.lstm(x_rev, state, weights[4:], True, 1, 0.0, self.training, False, True)[0]
        bwd = bwd.gather(1, rev[..., None].expand_as(bwd))
        out = torch.cat([fwd, bwd], dim=-1) * (steps < lengths[:, None])[..., None].to(x.dtype)
        return self.dropout(out)


_LSTM_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _embed_columns(new: torch.Tensor, old: torch.Tensor, h_new: int, h_old: int) -> None:
    """Copy ``old``'s last axis into ``new``'s in place: directly when the sizes agree, else as two
    directions (forward units then backward units) of ``h_old`` into ``h_new`` each."""
    if old.shape[-1] == new.shape[-1]:
        new[..., :] = old
    else:
        for d in range(2):
            new[..., d * h_new : d * h_new + h_old] = old[..., d * h_old : (d + 1) * h_old]


def widen_rnn_state(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Trained weights of narrower RNN blocks embedded in wider ones (Net2Net-style widening).

    For every :class:`RNNBlock` present in both state dicts whose hidden size grew (``old`` is a
    trained model's, ``new`` the freshly initialized wider model's), the old units become the first
    units of each gate and direction: their input, recurrent and bias weights are the old ones and
    the weights from any new input or hidden unit into them are zero, so they compute what they
    computed before as long as their inputs are the same. The new units keep ``new``'s random
    initialization. That holds exactly for a first block whose input (the CNN features) did not
    change; a later block's input is the wider block before it, whose layer norm now also sees the
    new units, so it starts close to, not at, the old function. When the stack kept its depth, the
    linear layer after its last block (``<net>.fc``) gets the old output weights for the old units
    and zeros for the new ones. A deeper stack's new blocks and its output layer, and blocks that
    changed otherwise, keep their initialization.

    Returns only the tensors it widened (copies of ``new``'s, filled in).
    """
    out: dict[str, torch.Tensor] = {}
    widened: dict[str, tuple[int, int]] = {}  # network prefix -> (h_old, h_new) of its last widened block
    for key in sorted(new):
        if not key.endswith("lstm.weight_hh_l0") or key not in old:
            continue
        p = key[: -len("lstm.weight_hh_l0")]
        h_old, h_new = old[key].shape[1], new[key].shape[1]
        in_old, in_new = old[p + "lstm.weight_ih_l0"].shape[1], new[p + "lstm.weight_ih_l0"].shape[1]
        if h_old >= h_new or not (in_old == in_new or (in_old, in_new) == (2 * h_old, 2 * h_new)):
            continue
        for suffix in ("", "_reverse"):
            for name in _LSTM_KEYS:
                k = f"{p}lstm.{name}{suffix}"
                w_old, w = old[k], new[k].clone()
                w4, o4 = w.view(4, h_new, *w.shape[1:]), w_old.view(4, h_old, *w_old.shape[1:])
                if name.startswith("bias"):
                    w4[:, :h_old] = o4
                else:
                    w4[:, :h_old] = 0.0
                    _embed_columns(w4[:, :h_old], o4, h_new, h_old)
                out[k] = w
        for name in ("norm.weight", "norm.bias"):
            w = new[p + name].clone()
            _embed_columns(w, old[p + name], h_new, h_old)
            out[p + name] = w
        net = p.split(".")[0] + "."
        widened[net] = (h_old, h_new)
    for net, (h_old, h_new) in widened.items():
        k = net + "fc.weight"
        deeper = any(n.startswith(net) and n.endswith("lstm.weight_hh_l0") and n not in old for n in new)
        fits = k in old and k in new and (old[k].shape[1], new[k].shape[1]) == (2 * h_old, 2 * h_new)
        if fits and not deeper:
            w = torch.zeros_like(new[k])
            _embed_columns(w, old[k], h_new, h_old)
            out[k] = w
            out[net + "fc.bias"] = old[net + "fc.bias"].clone()
    return out
