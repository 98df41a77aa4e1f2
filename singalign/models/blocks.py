"""CRNN building blocks (paper, Fig. 2), with padding masked everywhere it matters.

Padding never changes the output for the valid frames: instance-norm statistics use valid
frames only, padded frames are zeroed after each block (so a same-padded convolution sees
exactly the zeros it would see at the end of an unpadded sequence), and the BiLSTM runs on
packed sequences. The authors' code let padding leak into all three.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


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
        m = mask[:, None, None, :].to(x.dtype)  # (B, 1, 1, T)
        count = (m.sum(dim=(2, 3), keepdim=True) * x.shape[2]).clamp(min=1.0)
        mean = (x * m).sum(dim=(2, 3), keepdim=True) / count
        var = (((x - mean) * m) ** 2).sum(dim=(2, 3), keepdim=True) / count
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None]


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
    """Layer norm -> BiLSTM (packed) -> dropout: (batch, time, in_dim) -> (batch, time, 2*hidden)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        total = x.shape[1]
        packed = pack_padded_sequence(self.norm(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=total)
        return self.dropout(out)
