"""A small Perceiver over the window sequence (``model.arch=perceiver``).

Follows Jaegle et al. 2021 ("Perceiver: General Perception with Iterative Attention") and
its IO decoder (Jaegle et al. 2022), as the tokenless trial of Linville's case study: a
learned latent array of ``model.latents`` vectors cross-attends once to the embedded
sequence, ``model.layers`` self-attention blocks process the latents, and every input
position then queries the latents, so the output has one state per input position and
the same MLM, source-linking and classification heads apply. The embeddings (tokens, PSD
windows or both, positions, segments) are the encoder's; hand-written like it, so the
attention stays inspectable and no package is needed for ~100 lines.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from seisbert.model.encoder import MLP, Encoder, EncoderConfig


class CrossAttention(nn.Module):
    """Queries from one sequence attend to keys/values of another (pre-norm, residual outside)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.heads = cfg.heads
        self.ln_q = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.ln_kv = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.attn_dropout = cfg.attn_dropout
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None):
        """x (B, N, C) queries, ctx (B, M, C) keys/values, mask (B, 1, 1, M) True = real key."""
        B, N, C = x.shape
        M, H = ctx.shape[1], self.heads
        q = self.q(self.ln_q(x)).view(B, N, H, C // H).transpose(1, 2)  # (B, H, N, D)
        k, v = (
            self.kv(self.ln_kv(ctx)).view(B, M, 2, H, C // H).permute(2, 0, 3, 1, 4)
        )  # 2 x (B, H, M, D)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, N, D)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, N, C)))  # (B, N, C)


class CrossBlock(nn.Module):
    """Cross-attention + MLP, each with a residual on the query stream."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.attn = CrossAttention(cfg)
        self.ln = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, ctx, mask=None):
        x = x + self.attn(x, ctx, mask)
        return x + self.mlp(self.ln(x))


class Perceiver(Encoder):
    """Encoder embeddings -> latents read the sequence -> latent blocks -> positions read latents.

    ``forward`` has the encoder's signature and returns (B, L, d_model) for any L up to
    ``max_len``; attention maps (with ``return_attention``) are the latent blocks' (B, H, N, N).
    """

    def __init__(self, cfg: EncoderConfig):
        if cfg.norm != "pre":
            raise ValueError(
                f"model.arch=perceiver uses pre-norm blocks; model.norm={cfg.norm!r} is not allowed"
            )
        super().__init__(
            cfg
        )  # embeddings, `layers` self-attention blocks (on the latents), final norm
        self.latents = nn.Parameter(torch.randn(cfg.latents, cfg.d_model) * cfg.init_std)  # (N, d)
        self.read = CrossBlock(cfg)  # latents <- sequence
        self.write = CrossBlock(cfg)  # positions <- latents
        for block in (self.read, self.write):
            block.apply(self._init_weights)
            std = cfg.init_std / math.sqrt(2 * cfg.layers)
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=std)
            nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=std)

    def forward(self, tokens, segments=None, pad_mask=None, return_attention=False, psd=None):
        B, L = tokens.shape
        if pad_mask is None:
            pad_mask = tokens != self.cfg.pad_id
        x = self.embed(tokens, segments, psd)  # (B, L, d)
        z = self.read(self.latents.expand(B, -1, -1), x, pad_mask.view(B, 1, 1, L))  # (B, N, d)
        everything = torch.ones(B, 1, 1, z.shape[1], dtype=torch.bool, device=z.device)
        attentions = []
        for block in self.blocks:
            z, att = block(z, everything, return_attention)
            if return_attention:
                attentions.append(att)
        x = self.norm_f(self.write(x, z))  # (B, L, d): one state per input position
        return (x, attentions) if return_attention else x


def build_encoder(cfg: EncoderConfig) -> Encoder:
    """The network ``model.arch`` names: the BERT-style encoder or the Perceiver."""
    return Perceiver(cfg) if cfg.arch == "perceiver" else Encoder(cfg)
