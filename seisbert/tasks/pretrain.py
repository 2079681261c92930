"""Self-supervised pretraining: masked-token prediction (MLM) and source linking (SL).

Follows BERT (80/10/10 masking, loss on masked positions only) and Linville's source
linking, the paper's NSP adaptation: does the second half of the sequence come from
the same event (at another station) as the first half?
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import lightning as L
import torch
import torch.nn.functional as F

from seisbert.config import check_choice, check_range
from seisbert.data.masking import IGNORE, MASK_MODES, apply_mask, select_positions
from seisbert.model.encoder import Encoder, EncoderConfig
from seisbert.model.heads import MLMHead, SequenceHead

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    mask_rate: float = 0.15  # fraction of spectral positions predicted (random/span modes)
    mask_mode: str = "random"
    replace_probs: list = field(default_factory=lambda: [0.8, 0.1, 0.1])  # [MASK], random, keep
    source_linking: bool = False
    sl_classes: int = 2  # 2: same event / other event; 3: adds same record
    sl_weight: float = 1.0  # total loss = MLM + sl_weight * SL
    lr: float = 5.0e-4
    weight_decay: float = 0.01
    betas: list = field(default_factory=lambda: [0.9, 0.98])
    warmup_frac: float = 0.05  # linear warmup over this fraction of the steps, then cosine
    min_lr_frac: float = 0.1
    batch_size: int = 64
    num_workers: int = 0
    compile: bool = False  # torch.compile the encoder (GPU runs)
    eval_mask_seed: int = 1234  # dev masks (test: +1): the same every epoch, so curves compare

    def __post_init__(self):
        check_range("task.params.mask_rate", self.mask_rate, 0.01, 1.0)
        check_choice("task.params.mask_mode", self.mask_mode, MASK_MODES)
        check_choice("task.params.sl_classes", self.sl_classes, (2, 3))
        if len(self.replace_probs) != 3 or abs(sum(self.replace_probs) - 1) > 1e-6:
            raise ValueError(f"task.params.replace_probs={list(self.replace_probs)} must be 3 values summing to 1")
        check_range("task.params.lr", self.lr, 0.0, 1.0)
        check_range("task.params.warmup_frac", self.warmup_frac, 0.0, 1.0)
        check_range("task.params.batch_size", self.batch_size, 1, None)


def cosine_schedule(step: int, total: int, warmup: int, min_frac: float) -> float:
    """LR multiplier: linear warmup to 1, cosine decay to ``min_frac``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * progress))


class PretrainModule(L.LightningModule):
    """Encoder + MLM head (+ SL head); the network is built from plain hyperparameters."""

    def __init__(self, model: dict, params: dict, tokenizer_digest: str, step_mode: list | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = EncoderConfig(**model)
        self.p = PretrainConfig(**params)
        self.encoder = Encoder(self.cfg)
        self.mlm_head = MLMHead(self.cfg, self.encoder.tok_emb)
        self.sl_head = SequenceHead(self.cfg, self.p.sl_classes) if self.p.source_linking else None
        mode = torch.as_tensor(step_mode if step_mode is not None else [], dtype=torch.long)
        self.register_buffer("step_mode", mode, persistent=False)
        self._val_gen = torch.Generator()
        # compiled forward for GPU runs, kept out of the module tree (object.__setattr__) so
        # checkpoints hold the plain encoder's weights only (nanoGPT issue #325)
        object.__setattr__(self, "_forward", torch.compile(self.encoder) if self.p.compile else self.encoder)

    # ----------------------------------------------------------------- forward
    def masked_batch(self, batch, mode: str | None = None, generator=None, replace_probs=None):
        ids = batch["ids"]
        maskable = ids < self.cfg.vocab_size  # spectral positions only
        selected = select_positions(maskable, mode or self.p.mask_mode, self.p.mask_rate, generator)
        return apply_mask(ids, selected, self.cfg.vocab_size, self.cfg.mask_id,
                          replace_probs or self.p.replace_probs, generator)

    def losses(self, batch, inputs, labels):
        hidden = self._forward(inputs, batch["segments"])  # (B, L, d)
        sel = labels != IGNORE
        logits = self.mlm_head(hidden[sel])  # (M, K): only masked positions carry loss
        out = {"mlm_loss": F.cross_entropy(logits, labels[sel]), "logits": logits, "targets": labels[sel]}
        if self.sl_head is not None:
            sl_logits = self.sl_head(hidden)  # (B, sl_classes)
            out["sl_loss"] = F.cross_entropy(sl_logits, batch["sl_label"])
            out["sl_acc"] = (sl_logits.argmax(-1) == batch["sl_label"]).float().mean()
        out["loss"] = out["mlm_loss"] + self.p.sl_weight * out.get("sl_loss", 0.0)
        return out

    # ---------------------------------------------------------------- training
    def on_train_epoch_start(self):
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "set_epoch"):
            dm.set_epoch(self.current_epoch)

    def training_step(self, batch, _):
        inputs, labels = self.masked_batch(batch)
        out = self.losses(batch, inputs, labels)
        B = len(inputs)
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=B)
        self.log("train/mlm_loss", out["mlm_loss"], batch_size=B)
        if "sl_loss" in out:
            self.log("train/sl_loss", out["sl_loss"], batch_size=B)
            self.log("train/sl_acc", out["sl_acc"], batch_size=B)
        return out["loss"]

    # -------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self):
        self._val_gen.manual_seed(self.p.eval_mask_seed)  # the same masks every epoch

    def on_test_epoch_start(self):
        self._val_gen.manual_seed(self.p.eval_mask_seed + 1)

    def _eval_step(self, batch, stage: str):
        inputs, labels = self.masked_batch(batch, generator=self._val_gen)
        out = self.losses(batch, inputs, labels)
        sel = labels != IGNORE
        B, K = len(inputs), self.cfg.vocab_size
        logits, targets = out["logits"], out["targets"]
        m = {"loss": out["loss"], "mlm_loss": out["mlm_loss"],
             "mlm_acc": (logits.argmax(-1) == targets).float().mean(),
             "mlm_top5": (logits.topk(min(5, K), -1).indices == targets[:, None]).any(-1).float().mean()}
        # The same positions with every one replaced by [MASK] (no 10% kept/10% random).
        all_masked = torch.where(sel, torch.full_like(inputs, self.cfg.mask_id), inputs)
        hidden = self._forward(all_masked, batch["segments"])
        m["mlm_acc_all_masked"] = (self.mlm_head(hidden[sel]).argmax(-1) == targets).float().mean()
        m.update(self.baseline_accuracies(batch["ids"], all_masked, sel, targets))
        if "sl_acc" in out:
            m["sl_acc"], m["sl_loss"] = out["sl_acc"], out["sl_loss"]
        n = sel.sum()
        for k, v in m.items():  # per masked token, except the SL figures (per sequence)
            self.log(f"{stage}/{k}", v, batch_size=B if k.startswith("sl") else int(n),
                     sync_dist=True, prog_bar=k == "mlm_acc")
        return m

    def baseline_accuracies(self, ids, masked_inputs, sel, targets) -> dict:
        """Trivial predictors on the same masks: 1/K, per-time-step mode, left neighbour."""
        K = self.cfg.vocab_size
        out = {"baseline_random_acc": torch.tensor(1.0 / K, device=ids.device)}
        t = ((ids < K).long().cumsum(1) - 1).clamp(min=0)  # (B, L) time step of spectral positions
        if self.step_mode.numel():
            steps = self.step_mode[t.clamp(max=len(self.step_mode) - 1)]
            out["baseline_step_mode_acc"] = (steps[sel] == targets).float().mean()
        out["baseline_left_neighbour_acc"] = (left_visible_token(masked_inputs, K, self.step_mode, t)[sel]
                                              == targets).float().mean()
        return out

    def validation_step(self, batch, _):
        return self._eval_step(batch, "val")

    def test_step(self, batch, _):
        return self._eval_step(batch, "test")

    # --------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        groups = self.encoder.configure_optimizer_groups(self.p.weight_decay)
        head_params = [p for n, p in self.named_parameters() if not n.startswith("encoder.")]
        groups.append({"params": [p for p in head_params if p.dim() >= 2], "weight_decay": self.p.weight_decay})
        groups.append({"params": [p for p in head_params if p.dim() < 2], "weight_decay": 0.0})
        fused = torch.cuda.is_available() and self.device.type == "cuda"
        opt = torch.optim.AdamW(groups, lr=self.p.lr, betas=tuple(self.p.betas), fused=fused or None)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.p.warmup_frac * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: cosine_schedule(s, total, warmup, self.p.min_lr_frac))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def left_visible_token(inputs: torch.Tensor, K: int, step_mode: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """For each position, the nearest spectral token to its left that is visible in ``inputs``.

    Positions with no visible spectral token to the left fall back to the per-step mode
    (or token 0 when no mode is known).
    """
    B, L = inputs.shape
    visible = inputs < K
    idx = torch.where(visible, torch.arange(L, device=inputs.device).expand(B, L), torch.full_like(inputs, -1))
    last = torch.cummax(idx, dim=1).values  # (B, L): last visible index at or before each position
    prev = torch.cat([torch.full((B, 1), -1, device=inputs.device, dtype=last.dtype), last[:, :-1]], 1)
    fallback = step_mode[t.clamp(max=len(step_mode) - 1)] if step_mode.numel() else torch.zeros_like(inputs)
    return torch.where(prev >= 0, inputs.gather(1, prev.clamp(min=0)), fallback)
