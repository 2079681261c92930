"""Training throughput of seisbert's encoder + MLM head beside two reference encoders.

Times forward + backward + AdamW step (tokens/s) on CPU for our ``Encoder`` +
``MLMHead``, Hugging Face ``BertForMaskedLM`` (SDPA attention) and
``nn.TransformerEncoder`` (+ embeddings + linear head), all of the same size, with
the same dropout and an MLM loss on 15% of the positions. ``ours`` computes the
logits at every position, as ``BertForMaskedLM`` does; ``ours_masked`` only at the
masked ones, as seisbert's pretraining does. Each model runs in float32 and, where
asked, under bf16 autocast (``torch.autocast("cpu", torch.bfloat16)`` around the
forward, which is what ``trainer.precision=bf16-mixed`` does on CPU).

The headline ratio is seisbert's training step as it runs (``ours_masked`` at
``ours_precision``, default bf16 where the CPU has native bf16 instructions) over
``BertForMaskedLM`` in float32; ``hf_bert:bf16`` is timed beside it so the share of
the gain that is bf16's alone stays visible. Rounds interleave the models and the best
round counts, so a burst of load from another process hurts every model alike and is
then discarded; ``clock="cpu"`` with one thread counts only this process's CPU seconds.
``scripts/bench/encoder.py`` (``make bench``, stage ``model``) is its command line.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import OmegaConf

from seisbert.config import build
from seisbert.model.encoder import Encoder, EncoderConfig
from seisbert.model.heads import MLMHead

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "model"
PRECISIONS = ("fp32", "bf16")
# model:precision pairs timed by default; the reference of every ratio is hf_bert:fp32
DEFAULT_VARIANTS = (
    "ours:fp32,ours_masked:fp32,ours_masked:bf16,hf_bert:fp32,hf_bert:bf16,torch_te:fp32"
)
REFERENCE = "hf_bert:fp32"
DEFAULT_BATCH = {"small": 64, "base": 8}  # sequences per step (base at 64: ~1 min a step)
DEFAULT_STEPS = {"small": 8, "base": 1}  # timed steps per round


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 matmuls natively (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def load_preset(name: str, vocab_size: int) -> EncoderConfig:
    """The encoder preset ``configs/model/<name>.yaml`` with ``vocab_size`` spectral tokens: its
    keys over ``EncoderConfig``'s defaults (a Hydra defaults list in the file is not read)."""
    keys = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"))
    keys.pop("defaults", None)
    keys.setdefault("_target_", f"{EncoderConfig.__module__}.{EncoderConfig.__qualname__}")
    return build({**keys, "vocab_size": vocab_size}, "model")


class Ours(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.head = MLMHead(cfg, self.encoder.tok_emb)

    def forward(self, tokens, segments, labels):
        logits = self.head(self.encoder(tokens, segments))  # (B, L, K)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


class OursMaskedHead(Ours):
    """Ours as ``PretrainModule`` trains it: the MLM head only at the masked positions."""

    def forward(self, tokens, segments, labels):
        sel = labels != -100
        logits = self.head(self.encoder(tokens, segments)[sel])  # (M, K)
        return F.cross_entropy(logits, labels[sel])


class HuggingFace(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        from transformers import BertConfig, BertForMaskedLM

        hf = BertConfig(
            vocab_size=cfg.n_tokens,
            hidden_size=cfg.d_model,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=cfg.ffn,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.attn_dropout,
            max_position_embeddings=cfg.max_len,
            type_vocab_size=cfg.n_segments,
            layer_norm_eps=cfg.norm_eps,
            pad_token_id=cfg.pad_id,
        )
        try:
            self.bert = BertForMaskedLM._from_config(hf, attn_implementation="sdpa")
        except (TypeError, ValueError):  # older transformers without the sdpa switch
            self.bert = BertForMaskedLM(hf)

    def forward(self, tokens, segments, labels):
        return self.bert(
            input_ids=tokens,
            token_type_ids=segments,
            attention_mask=torch.ones_like(tokens),
            labels=labels,
        ).loss


class TorchTransformer(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.n_tokens, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.seg_emb = nn.Embedding(cfg.n_segments, cfg.d_model)
        self.emb_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.heads,
            cfg.ffn,
            cfg.dropout,
            activation="gelu",
            layer_norm_eps=cfg.norm_eps,
            batch_first=True,
            norm_first=cfg.norm == "pre",
        )
        final = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps) if cfg.norm == "pre" else None
        self.encoder = nn.TransformerEncoder(
            layer, cfg.layers, norm=final, enable_nested_tensor=False
        )
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, tokens, segments, labels):
        L = tokens.shape[1]
        x = self.drop(
            self.emb_norm(self.tok_emb(tokens) + self.pos_emb.weight[:L] + self.seg_emb(segments))
        )
        x = self.encoder(x, src_key_padding_mask=tokens == self.cfg.pad_id)  # (B, L, d)
        return F.cross_entropy(self.head(x).flatten(0, 1), labels.flatten(), ignore_index=-100)


MODELS = {
    "ours": Ours,
    "ours_masked": OursMaskedHead,
    "hf_bert": HuggingFace,
    "torch_te": TorchTransformer,
}


def make_batch(
    cfg: EncoderConfig, batch: int, seq_len: int, mask_rate: float = 0.15, seed: int = 0
):
    """[CLS] t.. [SEP] sequences with 15% of the spectral positions set to [MASK]."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq_len), generator=g)
    tokens[:, 0], tokens[:, -1] = cfg.cls_id, cfg.sep_id
    masked = torch.rand(batch, seq_len, generator=g) < mask_rate
    masked[:, 0] = masked[:, -1] = False
    labels = torch.where(masked, tokens, torch.full_like(tokens, -100))
    tokens = torch.where(masked, torch.full_like(tokens, cfg.mask_id), tokens)
    return tokens, torch.zeros_like(tokens), labels


def autocast(precision: str):
    """bf16 autocast around the forward, as Lightning's bf16-mixed; a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_steps(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    data,
    steps: int,
    precision: str = "fp32",
    clock=time.perf_counter,
) -> float:
    """Seconds per forward + backward + AdamW step, averaged over ``steps``."""
    t0 = clock()
    for _ in range(steps):
        with autocast(precision):
            loss = model(*data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (clock() - t0) / steps


def parse_variants(spec: str) -> list[tuple[str, str]]:
    """'ours:fp32,hf_bert:bf16' -> [('ours', 'fp32'), ('hf_bert', 'bf16')], checked."""
    out = []
    for item in spec.split(","):
        name, _, precision = item.partition(":")
        precision = precision or "fp32"
        if name not in MODELS or precision not in PRECISIONS:
            raise ValueError(
                f"variants item {item!r}: the model must be one of {list(MODELS)} and "
                f"the precision one of {list(PRECISIONS)}"
            )
        out.append((name, precision))
    return out


def bench_preset(
    cfg: EncoderConfig,
    variants: list[tuple[str, str]],
    batch: int,
    seq_len: int,
    warmup: int,
    steps: int,
    rounds: int,
    clock,
) -> dict:
    """{"model:precision": (tokens/s, parameters)}, the best of ``rounds`` interleaved rounds."""
    data = make_batch(cfg, batch, seq_len)
    models, best = {}, {}
    for name, precision in variants:
        torch.manual_seed(0)
        model = MODELS[name](cfg).train()
        # fused: one kernel per step instead of ~10 per tensor, the same for every model
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
        time_steps(model, opt, data, warmup, precision)
        key = f"{name}:{precision}"
        models[key], best[key] = (model, opt, precision), float("inf")
    for _ in range(rounds):
        for key, (model, opt, precision) in models.items():
            best[key] = min(best[key], time_steps(model, opt, data, steps, precision, clock))
    return {
        key: (batch * seq_len / best[key], sum(p.numel() for p in m.parameters()))
        for key, (m, _, _) in models.items()
    }


def headline_variant(choice: str) -> tuple[str, str]:
    """seisbert's step as it trains: the masked-position head, bf16 where the CPU runs it
    natively (``auto``)."""
    if choice == "auto":
        choice = "bf16" if cpu_has_native_bf16() else "fp32"
    return "ours_masked", choice


def compare_throughput(
    presets: list[str] | tuple[str, ...] = ("small", "base"),
    batch: dict[str, int] | None = None,
    steps: dict[str, int] | None = None,
    seq_len: int = 92,
    vocab_size: int = 150,
    warmup: int = 1,
    rounds: int = 2,
    threads: int | None = None,
    clock: str = "wall",
    variants: str = DEFAULT_VARIANTS,
    ours_precision: str = "auto",
) -> list[dict]:
    """One row per preset and ``model:precision``: tokens/s and its ratio over HF fp32.

    ``batch`` and ``steps`` are per preset (8 sequences and 2 steps for a preset not named);
    ``threads`` sets torch's thread count (default: every core); ``clock`` is ``wall`` or
    ``cpu`` (this process's CPU seconds). The headline pair, seisbert's step at
    ``ours_precision`` and the HF fp32 reference, is always timed.
    """
    batch = DEFAULT_BATCH if batch is None else batch
    steps = DEFAULT_STEPS if steps is None else steps
    torch.set_num_threads(threads or os.cpu_count())
    ours = headline_variant(ours_precision)
    chosen = parse_variants(variants)
    chosen += [v for v in (ours, tuple(REFERENCE.split(":"))) if v not in chosen]
    timer = time.perf_counter if clock == "wall" else time.process_time
    rows = []
    for preset in presets:
        cfg = load_preset(preset, vocab_size)
        b = batch.get(preset, 8)
        res = bench_preset(cfg, chosen, b, seq_len, warmup, steps.get(preset, 2), rounds, timer)
        for key, (tps, n) in res.items():
            rows.append(
                {
                    "preset": preset,
                    "model": key,
                    "batch": b,
                    "params_M": n / 1e6,
                    "tokens_per_s": tps,
                    "over_hf_fp32": tps / res[REFERENCE][0],
                    "headline": key == ":".join(ours),
                }
            )
    return rows


def throughput_table(
    rows: list[dict], seq_len: int, vocab_size: int, threads: int, clock: str, rounds: int
) -> str:
    """The rows of ``compare_throughput`` as text, the headline ratio of each preset last."""
    lines = [
        f"CPU training throughput (forward + backward + AdamW), sequences of {seq_len} "
        f"tokens, K={vocab_size}, {threads} threads, {clock} clock, torch {torch.__version__}, "
        f"best of {rounds} rounds, native bf16: {cpu_has_native_bf16()}",
        f"{'preset':<7} {'model':<18} {'batch':>5} {'params':>8} {'tokens/s':>10} {'/hf_fp32':>9}",
    ]
    for r in rows:
        mark = "  <- seisbert's training step" if r["headline"] else ""
        lines.append(
            f"{r['preset']:<7} {r['model']:<18} {r['batch']:>5} {r['params_M']:>7.2f}M "
            f"{r['tokens_per_s']:>10.0f} {r['over_hf_fp32']:>9.2f}{mark}"
        )
    for r in (r for r in rows if r["headline"]):
        target = "  (target >= 1.5x)" if r["preset"] == "small" else ""
        lines.append(
            f"{r['preset']}: seisbert training step ({r['model']}) / HF BertForMaskedLM fp32 = "
            f"{r['over_hf_fp32']:.2f}x{target}"
        )
    return "\n".join(lines)
