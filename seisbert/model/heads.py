"""Task heads on top of :class:`~seisbert.model.encoder.Encoder`, as BERT's.

``MLMHead`` is BERT's ``BertLMPredictionHead`` (dense + GELU + LayerNorm, decoder tied
to the token embedding); ``SequenceHead`` is its pooler + classifier on [CLS] (or on the
mean, or an attention-weighted sum, of the spectral positions: ``model.pool``), used for
source linking and for earthquake vs. quarry-blast fine-tuning; ``PSDHead`` regresses a
masked window's scaled log-PSD (``task.params.target=psd``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from seisbert.config import check_choice, check_range
from seisbert.model.encoder import POOLS, EncoderConfig, init_weights


class MLMHead(nn.Module):
    """Logits over the K spectral tokens for masked-token prediction.

    The decoder reuses the first K rows of the token embedding (weight tying, as BERT),
    plus its own bias. Specials are never targets, so they get no logit: labels are
    spectral ids ``0..K-1`` and the softmax is over K classes, not K+4.
    """

    def __init__(self, cfg: EncoderConfig, embedding: nn.Embedding):
        super().__init__()
        self.vocab_size = cfg.vocab_size
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.embedding = embedding  # shared with the encoder, not a copy
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.dense.apply(lambda m: init_weights(m, cfg.init_std))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (..., d_model) -> logits (..., K).

        Pass only the masked positions (``hidden[mask]``, (M, d_model)) to skip the
        work on positions that carry no loss.
        """
        h = self.norm(F.gelu(self.dense(hidden)))  # (..., d)
        return F.linear(h, self.embedding.weight[: self.vocab_size], self.bias)  # (..., K)


class PSDHead(nn.Module):
    """A window's F scaled log-PSD values from its hidden state.

    Dense + GELU + LayerNorm, then linear.
    """

    def __init__(self, cfg: EncoderConfig, n_features: int):
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, n_features)
        self.apply(lambda m: init_weights(m, cfg.init_std))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (..., d_model) -> windows (..., F); pass only the masked positions."""
        return self.out(self.norm(F.gelu(self.dense(hidden))))


def pool_hidden(
    hidden: torch.Tensor, how: str, spectral: torch.Tensor | None, query: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, L, d) -> (B, d): [CLS] (position 0), or mean / ``query``-attention over ``spectral``."""
    if how == "cls":
        return hidden[:, 0]
    if spectral is None:
        raise ValueError(f"model.pool={how!r} needs the spectral-position mask")
    w = spectral.to(hidden.dtype)  # (B, L)
    if how == "attention":
        score = (hidden @ query) / hidden.shape[-1] ** 0.5  # (B, L)
        w = score.masked_fill(~spectral, float("-inf")).softmax(-1)
    return (w.unsqueeze(-1) * hidden).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-9)  # (B, d)


class SequenceHead(nn.Module):
    """Class logits from a pooled sequence: pool, pooler (dense + tanh), dropout, linear.

    ``n_classes`` is 2 for fine-tuning (earthquake / blast) and 2 or 3 for source linking.
    ``pool`` (default ``cfg.pool``): ``cls`` reads position 0, ``mean`` averages the spectral
    positions, ``attention`` weighs them by a learned query (one head).
    """

    def __init__(
        self,
        cfg: EncoderConfig,
        n_classes: int,
        dropout: float | None = None,
        pool: str | None = None,
    ):
        super().__init__()
        check_range("n_classes", n_classes, 2, None)
        self.pool = cfg.pool if pool is None else pool
        check_choice("model.pool", self.pool, POOLS)
        self.query = nn.Parameter(torch.zeros(cfg.d_model)) if self.pool == "attention" else None
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout if dropout is None else dropout)
        self.classifier = nn.Linear(cfg.d_model, n_classes, bias=cfg.bias)
        self.apply(lambda m: init_weights(m, cfg.init_std))

    def forward(self, hidden: torch.Tensor, spectral: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, L, d_model) -> logits (B, n_classes).

        ``spectral`` (B, L) bool is needed for mean/attention pooling.
        """
        pooled = torch.tanh(
            self.pooler(pool_hidden(hidden, self.pool, spectral, self.query))
        )  # (B, d)
        return self.classifier(self.drop(pooled))  # (B, n_classes)
