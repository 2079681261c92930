"""Confusion matrices of masked-token predictions (the paper's Fig. 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seisbert.data.masking import select_positions
from seisbert.figures import pyplot, save_figure


@torch.no_grad()
def masked_confusion(module, loader, mode: str, seed: int = 0) -> np.ndarray:
    """(K, K) counts of (true, predicted) token with every selected position set to [MASK].

    ``random``/``span`` select positions at the module's own ``task.params.mask_rate``.
    """
    K, mask_rate = module.cfg.vocab_size, module.p.mask_rate
    gen = torch.Generator().manual_seed(seed)
    counts = torch.zeros(K * K, dtype=torch.long)
    for batch in loader:
        ids = batch["ids"].to(module.device)
        sel = select_positions(ids < K, mode, mask_rate, gen)
        inputs = torch.where(sel, torch.full_like(ids, module.cfg.mask_id), ids)
        psd = batch["psd"].to(module.device) if "psd" in batch else None  # window-input models
        hidden = module.encoder(inputs, batch["segments"].to(module.device), psd=psd)
        pred = module.mlm_head(hidden[sel]).argmax(-1)
        counts += torch.bincount(ids[sel] * K + pred, minlength=K * K).cpu()
    return counts.view(K, K).numpy()


def time_order(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """Token ids sorted by their mean time step in ``tokens`` (N, T): noise, P, S, coda."""
    t = np.broadcast_to(np.arange(tokens.shape[1]), tokens.shape).ravel()
    ids = np.asarray(tokens, dtype=np.int64).ravel()
    counts = np.bincount(ids, minlength=vocab_size)
    mean_t = np.bincount(ids, weights=t, minlength=vocab_size) / np.maximum(counts, 1)
    return np.argsort(np.where(counts > 0, mean_t, np.inf), kind="stable")


def plot_confusions(mats: dict, accs: dict, path: Path, order: np.ndarray | None = None) -> Path:
    """Row-normalised confusion heatmaps, one panel per masking regime.

    With ``order`` (e.g. :func:`time_order`) both axes list tokens in that order, so
    confusions between tokens of the same part of the event sit near the diagonal.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(mats), figsize=(5 * len(mats), 4.6), squeeze=False)
    for ax, (mode, m) in zip(axes[0], mats.items()):
        if order is not None:
            m = m[np.ix_(order, order)]
        rows = m / np.maximum(1, m.sum(1, keepdims=True))
        im = ax.imshow(rows, cmap="viridis", vmin=0, vmax=max(0.05, np.quantile(rows, 0.995)))
        ax.set_title(f"{mode.replace('_', ' ')} masked: acc {accs[mode]:.1%}")
        unit = "token, by mean time in event" if order is not None else "token id"
        ax.set_xlabel(f"predicted {unit}")
        ax.set_ylabel(f"true {unit}")
        fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true-token row")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
