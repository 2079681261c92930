"""Task heads on top of :class:`~seisbert.model.encoder.Encoder`, as BERT's.

``MLMHead`` is BERT's ``BertLMPredictionHead`` (dense + GELU + LayerNorm, decoder tied
to the token embedding); ``SequenceHead`` is its pooler + classifier on [CLS], used
for source linking and for earthquake vs. quarry-blast fine-tuning.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from seisbert.config import check_range
from seisbert.model.encoder import EncoderConfig, init_weights


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


class SequenceHead(nn.Module):
    """Class logits from the [CLS] position: pooler (dense + tanh), dropout, linear.

    ``n_classes`` is 2 for fine-tuning (earthquake / blast) and 2 or 3 for source linking.
    """

    def __init__(self, cfg: EncoderConfig, n_classes: int, dropout: float | None = None):
        super().__init__()
        check_range("n_classes", n_classes, 2, None)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout if dropout is None else dropout)
        self.classifier = nn.Linear(cfg.d_model, n_classes, bias=cfg.bias)
        self.apply(lambda m: init_weights(m, cfg.init_std))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, L, d_model) -> logits (B, n_classes), from position 0 ([CLS])."""
        pooled = torch.tanh(self.pooler(hidden[:, 0]))  # (B, d)
        return self.classifier(self.drop(pooled))  # (B, n_classes)
