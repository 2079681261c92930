"""Masked-prediction targets beyond k-means ids, and the window baselines they are judged by.

``RandomProjectionTarget`` follows BEST-RQ (Chiu et al. 2022, "Self-supervised learning
with random-projection quantizer"): each window, standardized with the training split's
per-bin mean and std, is projected by a frozen seeded random matrix and l2-normalized;
its target is the nearest of ``vocab_size`` frozen random unit vectors. No k-means fit.

For ``task.params.target=psd`` the model regresses the masked window itself; it is scored
by the MSE and the log-spectral distance (dB) beside three trivial predictors on the same
masks: copy the nearest visible window to the left, the per-time-step training mean, and
linear interpolation between the nearest visible windows on either side.
"""

from __future__ import annotations

import torch
import torch.nn as nn

DB_PER_LOG10 = 10.0  # features are log10 power: 10 * difference = decibels


class RandomProjectionTarget(nn.Module):
    """Frozen, seeded random projection + codebook: windows (..., F) -> code ids (...,)."""

    def __init__(
        self, n_features: int, vocab_size: int, code_dim: int, seed: int, mean: list, std: list
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        proj = (
            torch.randn(n_features, code_dim, generator=g) * (2.0 / (n_features + code_dim)) ** 0.5
        )  # Xavier
        codebook = torch.nn.functional.normalize(
            torch.randn(vocab_size, code_dim, generator=g), dim=-1
        )
        # persistent buffers: a checkpoint carries its own quantizer, no optimizer ever sees it
        self.register_buffer("projection", proj)  # (F, code_dim)
        self.register_buffer("codebook", codebook)  # (K, code_dim)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))  # (F,)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))  # (F,)

    @torch.no_grad()
    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        z = ((windows.float() - self.mean) / self.std) @ self.projection  # (..., code_dim)
        z = torch.nn.functional.normalize(z, dim=-1)
        return (z @ self.codebook.T).argmax(-1)  # (...,): nearest unit vector = largest cosine


def log_spectral_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-window RMS difference in dB over the F bins: (M, F), (M, F) -> (M,)."""
    return (DB_PER_LOG10 * (pred - target)).pow(2).mean(-1).sqrt()


def nearest_visible(visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest visible position strictly left and right of each position.

    visible (B, L) bool -> left (B, L) with -1 where none, right (B, L) with L where none.
    """
    B, L = visible.shape
    pos = torch.arange(L, device=visible.device).expand(B, L)
    last = torch.cummax(
        torch.where(visible, pos, torch.full_like(pos, -1)), 1
    ).values  # at or before
    left = torch.cat(
        [torch.full((B, 1), -1, device=visible.device, dtype=last.dtype), last[:, :-1]], 1
    )
    flipped = torch.where(visible, pos, torch.full_like(pos, L)).flip(1)
    first = torch.cummin(flipped, 1).values.flip(1)  # at or after
    right = torch.cat(
        [first[:, 1:], torch.full((B, 1), L, device=visible.device, dtype=first.dtype)], 1
    )
    return left, right


def window_baselines(
    psd: torch.Tensor,
    visible: torch.Tensor,
    sel: torch.Tensor,
    step_mean: torch.Tensor,
    t: torch.Tensor,
) -> dict:
    """Trivial predictions (M, F) of the selected windows from the visible ones.

    psd (B, L, F); visible, sel (B, L) bool; step_mean (T, F) from the training split;
    t (B, L) the time step of each position. A side without a visible window falls back to
    the other side, and with neither to the step mean.
    """
    B, L, F = psd.shape
    mean = step_mean[t.clamp(max=len(step_mean) - 1)]  # (B, L, F)
    left, right = nearest_visible(visible)
    has_l, has_r = left >= 0, right < L
    wl = psd.gather(1, left.clamp(min=0).unsqueeze(-1).expand(B, L, F))  # (B, L, F)
    wr = psd.gather(1, right.clamp(max=L - 1).unsqueeze(-1).expand(B, L, F))  # (B, L, F)
    pos = torch.arange(L, device=psd.device).expand(B, L)
    frac = ((pos - left) / (right - left).clamp(min=1)).unsqueeze(
        -1
    )  # (B, L, 1): 0 at left, 1 at right
    interp = torch.where(
        (has_l & has_r).unsqueeze(-1),
        wl + frac * (wr - wl),
        torch.where(has_l.unsqueeze(-1), wl, torch.where(has_r.unsqueeze(-1), wr, mean)),
    )
    copy_left = torch.where(has_l.unsqueeze(-1), wl, torch.where(has_r.unsqueeze(-1), wr, mean))
    return {"copy_left": copy_left[sel], "step_mean": mean[sel], "interpolation": interp[sel]}


def time_steps(spectral: torch.Tensor) -> torch.Tensor:
    """(B, L) time step of each spectral position (its rank among them).

    0 at the specials before the first.
    """
    return (spectral.long().cumsum(1) - 1).clamp(min=0)
