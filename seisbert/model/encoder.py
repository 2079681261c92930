"""A hand-written BERT-style encoder over spectral tokens.

Follows karpathy/nanoGPT ``model.py`` (config dataclass, Attention, MLP, Block, model;
``scaled_dot_product_attention``; scaled residual init; decay only on matrices; an
MFU estimate) with BERT's bidirectional attention, segment embeddings and
key-padding mask (Devlin et al. 2019), as used by Linville's "Exploring Foundation
Models for Seismic Event Processing".

Token ids ``0..K-1`` are spectral tokens; the specials follow:
``[PAD]=K, [CLS]=K+1, [SEP]=K+2, [MASK]=K+3``.

``model.input`` chooses how a spectral position is embedded: ``tokens`` (its k-means id,
the paper's), ``psd`` (a learned linear projection of its scaled log-PSD window, as
HuBERT reads continuous features) or ``both`` (the two summed). The specials keep their
learned rows of the token table in every kind, so [CLS], [SEP] and the [MASK] vector are
learned vectors and a masked window is never seen by the encoder.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from seisbert.config import check_choice, check_range
from seisbert.data.vocab import MAX_VOCAB, MIN_VOCAB, Specials

log = logging.getLogger(__name__)

INPUTS = ("tokens", "psd", "both")
POOLS = ("cls", "mean", "attention")
ARCHS = ("encoder", "perceiver")


@dataclass
class EncoderConfig:
    vocab_size: int = 150  # spectral tokens K; the YAML reads it from tokenizer.vocab_size
    max_len: int = 96  # position table size; inputs are 92 ([CLS] 90 [SEP]) or 93 tokens
    layers: int = 4
    heads: int = 4  # must divide d_model
    d_model: int = 128
    ffn: int = 512  # hidden width of each block's MLP
    dropout: float = 0.1  # on embeddings and residual branches
    attn_dropout: float = 0.1  # on attention probabilities
    norm: str = "pre"  # "pre": LayerNorm before each sublayer; "post": original BERT
    n_segments: int = 2
    bias: bool = True  # biases in Linear and LayerNorm
    init_std: float = 0.02
    norm_eps: float = 1e-5
    input: str = "tokens"  # tokens | psd | both: what a spectral position is embedded from
    n_features: int | None = None  # F of a PSD window; null: read from the features artifact
    pool: str = "cls"  # cls | mean | attention: the classification head's summary of a sequence
    arch: str = "encoder"  # encoder | perceiver (latent array, seisbert.model.perceiver)
    latents: int = 32  # perceiver: size of the latent array

    def __post_init__(self) -> None:
        check_range("model.vocab_size", self.vocab_size, MIN_VOCAB, MAX_VOCAB)
        check_range("model.max_len", self.max_len, 3, None)
        for key in ("layers", "heads", "d_model", "ffn", "n_segments"):
            check_range(f"model.{key}", getattr(self, key), 1, None)
        check_range("model.dropout", self.dropout, 0.0, 1.0)
        check_range("model.attn_dropout", self.attn_dropout, 0.0, 1.0)
        check_range("model.init_std", self.init_std, 0.0, None)
        check_range("model.norm_eps", self.norm_eps, 0.0, None)
        check_choice("model.norm", self.norm, ("pre", "post"))
        check_choice("model.input", self.input, INPUTS)
        check_choice("model.pool", self.pool, POOLS)
        check_choice("model.arch", self.arch, ARCHS)
        check_range("model.latents", self.latents, 1, None)
        if self.n_features is not None:
            check_range("model.n_features", self.n_features, 1, None)
        if self.d_model % self.heads != 0:
            raise ValueError(
                f"model.heads={self.heads} does not divide model.d_model={self.d_model}; "
                f"choose model.heads among "
                f"{[h for h in range(1, self.d_model + 1) if self.d_model % h == 0]}"
            )

    @property
    def pad_id(self) -> int:
        return Specials(self.vocab_size).pad

    @property
    def cls_id(self) -> int:
        return Specials(self.vocab_size).cls

    @property
    def sep_id(self) -> int:
        return Specials(self.vocab_size).sep

    @property
    def mask_id(self) -> int:
        return Specials(self.vocab_size).mask

    @property
    def n_tokens(self) -> int:
        """Rows of the token embedding: K spectral tokens plus the specials."""
        return Specials(self.vocab_size).n_ids


class Attention(nn.Module):
    """Bidirectional multi-head self-attention with one fused q/k/v projection."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.attn_dropout = cfg.attn_dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, L, C); mask (B, 1, 1, L) bool, True where the key is a real token."""
        B, L, C = x.shape
        # (B, L, 3, H, D) -> (3, B, H, L, D): one permute, views for q, k, v
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        p_drop = self.attn_dropout if self.training else 0.0
        if return_attention:
            # The plain path exists only to expose the probabilities; it must match SDPA.
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, H, L, L)
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # (B, H, L, L)
            y = F.dropout(att, p_drop, self.training) @ v  # (B, H, L, D)
        else:
            att = None
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p_drop
            )  # (B, H, L, D)
        y = y.transpose(1, 2).reshape(B, L, C)  # (B, L, H*D)
        return self.resid_drop(self.proj(y)), att


class MLP(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.ffn, bias=cfg.bias)
        self.proj = nn.Linear(cfg.ffn, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))  # exact (erf) GELU, as BERT


class Block(nn.Module):
    """Attention + MLP with residuals; LayerNorm before (pre) or after (post) each."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.pre_norm = cfg.norm == "pre"
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            a, att = self.attn(self.ln1(x), mask, return_attention)
            x = x + a
            return x + self.mlp(self.ln2(x)), att
        a, att = self.attn(x, mask, return_attention)
        x = self.ln1(x + a)
        return self.ln2(x + self.mlp(x)), att


def init_weights(module: nn.Module, std: float) -> None:
    """BERT/nanoGPT init: normal(0, std) matrices and embeddings, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def optimizer_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices and embeddings (>= 2-D), not biases or norms.

    Tied parameters appear once (``Module.parameters`` removes duplicates), so pass
    the whole model, heads included.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


class Encoder(nn.Module):
    """Token + position + segment embeddings, ``layers`` blocks, hidden states out."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.n_tokens, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.seg_emb = nn.Embedding(cfg.n_segments, cfg.d_model)
        self.emb_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.emb_drop = nn.Dropout(cfg.dropout)
        if cfg.input != "tokens":
            if cfg.n_features is None:
                raise ValueError(
                    f"model.input={cfg.input!r} needs model.n_features (F of a PSD window); "
                    "it is set from the features artifact when left null in a run"
                )
            self.psd_proj = nn.Linear(cfg.n_features, cfg.d_model, bias=cfg.bias)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        # Pre-norm leaves the residual stream unnormalized; post-norm ends on a LayerNorm.
        self.norm_f = (
            nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
            if cfg.norm == "pre"
            else nn.Identity()
        )
        self.apply(self._init_weights)
        self._scale_residual_init()
        # debug: built again on every checkpoint load; a run logs the count once (logs.EpochLog)
        log.debug("encoder: %.2fM parameters", self.num_parameters() / 1e6)

    def _init_weights(self, module: nn.Module) -> None:
        init_weights(module, self.cfg.init_std)

    def _scale_residual_init(self) -> None:
        # GPT-2's scaled init: each block adds two residual branches, so shrink their
        # output projections to keep the residual stream's variance independent of depth.
        std = self.cfg.init_std / math.sqrt(2 * self.cfg.layers)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=std)
            nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=std)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameter count; ``exclude_embeddings`` drops the lookup tables (no FLOPs)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= sum(e.weight.numel() for e in (self.tok_emb, self.pos_emb, self.seg_emb))
        return n

    def configure_optimizer_groups(self, weight_decay: float) -> list[dict]:
        return optimizer_groups(self, weight_decay)

    def estimate_flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs (forward + backward) per token, as nanoGPT / PaLM appendix B.

        6 per matmul parameter plus attention's 12 * layers * heads * head_dim * seq_len.
        Heads on top add 6 * their matmul parameters.
        """
        c = self.cfg
        n = self.num_parameters(exclude_embeddings=True)
        return 6 * n + 12 * c.layers * c.heads * (c.d_model // c.heads) * seq_len

    def estimate_mfu(self, tokens_per_s: float, peak_flops: float, seq_len: int) -> float:
        """Model FLOPs utilisation: achieved training FLOP/s over ``peak_flops``."""
        return self.estimate_flops_per_token(seq_len) * tokens_per_s / peak_flops

    def embed(
        self,
        tokens: torch.Tensor,
        segments: torch.Tensor | None = None,
        psd: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Input embeddings (B, L, d) after LayerNorm and dropout.

        With ``model.input`` psd/both, ``psd`` (B, L, F) holds each position's window; it is
        read only where ``tokens`` is a spectral id, so [MASK]ed windows never leak in.
        """
        L = tokens.shape[1]
        if L > self.cfg.max_len:
            raise ValueError(f"sequence length {L} exceeds model.max_len={self.cfg.max_len}")
        seg = (
            self.seg_emb.weight[0] if segments is None else self.seg_emb(segments)
        )  # (d,) or (B, L, d)
        x = self.tok_emb(tokens)  # (B, L, d): specials, and spectral tokens for input=tokens|both
        if self.cfg.input != "tokens":
            if psd is None:
                raise ValueError(
                    f"model.input={self.cfg.input!r} needs the PSD windows (batch['psd'])"
                )
            spectral = (tokens < self.cfg.vocab_size).unsqueeze(-1)  # (B, L, 1)
            proj = self.psd_proj(psd.to(x.dtype))  # (B, L, d)
            x = torch.where(spectral, proj + (x if self.cfg.input == "both" else 0.0), x)
        x = x + self.pos_emb.weight[:L] + seg  # (B, L, d)
        return self.emb_drop(self.emb_norm(x))

    def forward(
        self,
        tokens: torch.Tensor,
        segments: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        return_attention: bool = False,
        psd: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Hidden states (B, L, d_model) for tokens (B, L).

        segments (B, L) long, default all 0; pad_mask (B, L) bool, True for real tokens,
        default ``tokens != pad_id``; psd (B, L, F) the windows (``model.input`` psd/both).
        With ``return_attention`` also returns each layer's attention probabilities, a
        list of ``layers`` tensors (B, heads, L, L).
        """
        B, L = tokens.shape
        if pad_mask is None:
            pad_mask = tokens != self.cfg.pad_id
        x = self.embed(tokens, segments, psd)  # (B, L, d)
        mask = pad_mask.view(B, 1, 1, L)  # (B, 1, 1, L): broadcast over heads and queries
        attentions = []
        for block in self.blocks:
            x, att = block(x, mask, return_attention)
            if return_attention:
                attentions.append(att)
        x = self.norm_f(x)
        return (x, attentions) if return_attention else x
