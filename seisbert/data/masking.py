"""Masked-token selection and BERT's 80/10/10 replacement, vectorized over a batch.

Modes (``mask_mode``): ``random`` (``round(mask_rate * n)`` positions per sequence),
``first_half`` / ``second_half`` (every spectral position of that half of the event),
``span`` (one contiguous span of ``round(mask_rate * n)`` positions) and ``all``.
Only spectral positions can be selected; [CLS], [SEP] and [PAD] never are.
"""

from __future__ import annotations

import torch

MASK_MODES = ("random", "first_half", "second_half", "span", "all")
IGNORE = -100  # label of positions that carry no loss (torch's cross_entropy default)


def select_positions(
    maskable: torch.Tensor, mode: str, mask_rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Boolean (B, L) of positions to predict, a subset of ``maskable`` (B, L)."""
    B, L = maskable.shape
    n = maskable.sum(1, keepdim=True)  # (B, 1) spectral positions per sequence
    rank = maskable.long().cumsum(1) - 1  # (B, L): 0..n-1 along spectral positions
    if mode == "all":
        return maskable.clone()
    if mode in ("first_half", "second_half"):
        first = rank < (n // 2)
        return maskable & (first if mode == "first_half" else ~first)
    k = torch.clamp(torch.round(n.float() * mask_rate).long(), min=1)  # (B, 1)
    if mode == "random":
        score = torch.rand(B, L, generator=generator, device=maskable.device)
        score = score.masked_fill(~maskable, 2.0)  # non-maskable positions sort last
        order = score.argsort(1).argsort(1)  # (B, L): rank of each position's score
        return maskable & (order < k)
    if mode == "span":
        start = (torch.rand(B, 1, generator=generator, device=maskable.device) * (n - k + 1)).long()
        return maskable & (rank >= start) & (rank < start + k)
    raise ValueError(
        f"task.params.mask_mode={mode!r} is not allowed; choose one of {list(MASK_MODES)}"
    )


def apply_mask(
    ids: torch.Tensor,
    selected: torch.Tensor,
    vocab_size: int,
    mask_id: int,
    replace_probs=(0.8, 0.1, 0.1),
    generator: torch.Generator | None = None,
):
    """BERT's rule on ``selected`` positions: [MASK] / random spectral token / unchanged.

    Returns ``inputs`` (B, L) and ``labels`` (B, L) with ``IGNORE`` where not selected.
    """
    p_mask, p_random, _ = replace_probs
    u = torch.rand(ids.shape, generator=generator, device=ids.device)
    to_mask = selected & (u < p_mask)
    to_random = selected & (u >= p_mask) & (u < p_mask + p_random)
    random_ids = torch.randint(0, vocab_size, ids.shape, generator=generator, device=ids.device)
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, random_ids, inputs)
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE))
    return inputs, labels


def swap_random_windows(
    ids: torch.Tensor,
    psd: torch.Tensor,
    inputs: torch.Tensor,
    selected: torch.Tensor,
    vocab_size: int,
    generator: torch.Generator | None = None,
):
    """BERT's "random token" share for window inputs: a random window of the batch instead.

    ``inputs`` comes from :func:`apply_mask`; its randomly replaced positions (selected,
    spectral, id changed) take the id and the window (B, L, F) of a spectral position drawn
    uniformly from the batch, so token and window stay consistent for ``model.input=both``.
    Returns new ``inputs`` (B, L) and windows (B, L, F); ``ids`` and ``psd`` are unchanged.
    """
    swapped = selected & (inputs < vocab_size) & (inputs != ids)  # (B, L)
    pool = torch.nonzero((ids < vocab_size).flatten()).squeeze(1)  # (P,) flat spectral positions
    n = int(swapped.sum())
    if n == 0 or len(pool) == 0:
        return inputs, psd
    src = pool[torch.randint(0, len(pool), (n,), generator=generator, device=pool.device)]  # (n,)
    inputs, windows = inputs.clone(), psd.clone()
    inputs[swapped] = ids.flatten()[src]
    windows[swapped] = psd.flatten(0, 1)[src]  # (n, F)
    return inputs, windows
