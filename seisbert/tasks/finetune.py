"""Fine-tuning: earthquake vs. quarry-blast classification from [CLS] (or ``model.pool``).

Starts from a pretrained base model (MLM or MLM+SL; refuses one trained on other
tokens) or from scratch, adds a classification head, trains all layers (optionally a
frozen encoder or layer-wise learning-rate decay), and reports per-record and
per-event metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from seisbert.config import check_choice, check_range
from seisbert.data.masking import select_positions
from seisbert.metrics import classification_metrics
from seisbert.model.encoder import EncoderConfig
from seisbert.model.heads import SequenceHead
from seisbert.model.perceiver import build_encoder
from seisbert.tasks.pretrain import cosine_schedule

log = logging.getLogger(__name__)


# The paper's masked-input evaluation, name -> (mode, mask_rate, label); the paper reports
# 66.6 / 70.3 / 86.4 % and, with all masked, every event called a blast.
MASKED_EVALS = {
    "first_half": ("first_half", 0.5, "first half masked"),
    "second_half": ("second_half", 0.5, "second half masked"),
    "random_76": ("random", 0.76, "76% random masked"),
    "all": ("all", 1.0, "all masked"),
}


@dataclass
class FinetuneConfig:
    init: str = "pretrained"  # pretrained | scratch
    pretrain_task: str = "mlm"  # which cached base model to start from (mlm | mlm_nsp)
    checkpoint: str | None = None  # explicit base-model checkpoint; overrides the cache lookup
    freeze_encoder: bool = False
    layer_decay: float = 1.0  # <1: lower layers get lr * decay^(depth from the top)
    lr: float = 1.0e-4
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1
    head_dropout: float = 0.1
    class_weights: bool = True  # inverse class frequency of the labelled training rows
    batch_size: int = 32
    num_workers: int = 0
    labels: int | None = None  # labelled training records (None = all), drawn by event, balanced
    subset_seed: int = 0
    masked_eval: bool = True  # also score test inputs with half / 76% / all of the tokens masked

    def __post_init__(self):
        check_choice("task.params.init", self.init, ("pretrained", "scratch"))
        check_range("task.params.layer_decay", self.layer_decay, 0.0, 1.0)
        check_range("task.params.lr", self.lr, 0.0, 1.0)
        if self.labels is not None:
            check_range("task.params.labels", self.labels, 2, None)


class FinetuneModule(L.LightningModule):
    # What a fit logs (val/: the scalars of ``classification_metrics``, per record and per
    # event), so a callback's monitor is checked before any work.
    FIT_METRICS = (
        "train/loss",
        *(
            f"val/{level}{name}"
            for level in ("", "event_")
            for name in ("n", "accuracy", "balanced_accuracy", "f1", "roc_auc")
        ),
    )

    @classmethod
    def fit_metrics(cls, params: FinetuneConfig) -> tuple[str, ...]:
        """The train/ and val/ metrics a fit logs, whatever ``params``."""
        return cls.FIT_METRICS

    def __init__(
        self, model: dict, params: dict, tokenizer_digest: str, class_weight: list | None = None
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = EncoderConfig(**model)
        self.p = FinetuneConfig(**params)
        self.encoder = build_encoder(self.cfg)
        self.head = SequenceHead(self.cfg, 2, self.p.head_dropout)
        self.register_buffer(
            "class_weight", torch.tensor(class_weight or [1.0, 1.0]), persistent=False
        )
        if self.p.freeze_encoder:
            self.encoder.requires_grad_(False)
        self._outputs: list = []

    def forward(self, ids, segments, psd=None):
        # positions of the event, masked or not: what mean/attention pooling summarises
        spectral = (ids < self.cfg.vocab_size) | (ids == self.cfg.mask_id)  # (B, L)
        return self.head(self.encoder(ids, segments, psd=psd), spectral)  # (B, 2)

    def training_step(self, batch, _):
        logits = self(batch["ids"], batch["segments"], batch.get("psd"))
        loss = F.cross_entropy(logits, batch["label"], weight=self.class_weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def _collect(self, batch):
        prob = self(batch["ids"], batch["segments"], batch.get("psd")).float().softmax(-1)[:, 1]
        self._outputs.append((batch["row"].cpu(), batch["label"].cpu(), prob.float().cpu()))

    def validation_step(self, batch, _):
        self._collect(batch)

    def test_step(self, batch, _):
        self._collect(batch)

    def _gathered_outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, labels and probabilities of the whole split, also under DDP.

        Each rank predicts its shard (DistributedSampler, padded to equal sizes), so the
        shards are gathered and the padding's repeated rows dropped before any metric.
        """
        rows, y, prob = (torch.cat(t) for t in zip(*self._outputs))
        self._outputs.clear()
        if self.trainer.world_size > 1:
            rows, y, prob = (
                self.all_gather(t.to(self.device)).flatten().cpu() for t in (rows, y, prob)
            )
        rows, first = np.unique(rows.numpy(), return_index=True)
        return rows, y.numpy()[first], prob.numpy()[first]

    def _epoch_metrics(self, stage: str):
        rows, y, prob = self._gathered_outputs()
        dm = self.trainer.datamodule
        events = dm.meta["event_id"].to_numpy()[rows]
        m = classification_metrics(y, prob, events)
        for k, v in m.items():
            if np.isscalar(v):  # the same on every rank (whole split): nothing to reduce
                self.log(f"{stage}/{k}", float(v), sync_dist=False)
        self.last_metrics = {stage: m, "rows": rows, "prob": prob}

    def on_validation_epoch_end(self):
        self._epoch_metrics("val")

    def on_test_epoch_end(self):
        self._epoch_metrics("test")

    def configure_optimizers(self):
        groups = layerwise_groups(self, self.p.lr, self.p.weight_decay, self.p.layer_decay)
        opt = torch.optim.AdamW(groups, lr=self.p.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.p.warmup_frac * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: cosine_schedule(s, total, warmup, self.p.min_lr_frac)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def layer_depth(name: str, n_layers: int) -> int:
    """0 for embeddings, i+1 for block i, n_layers+1 for the final norm and the head."""
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    if name.startswith("encoder.") and ("emb" in name or "psd_proj" in name):
        return 0
    return n_layers + 1


def layerwise_groups(
    module: FinetuneModule, lr: float, weight_decay: float, decay: float
) -> list[dict]:
    """AdamW groups: decay only on >=2-D tensors; lr scaled by ``decay`` per layer below the top."""
    top = module.cfg.layers + 1
    groups: dict = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        depth = layer_depth(name, module.cfg.layers)
        key = (depth, p.dim() >= 2)
        g = groups.setdefault(
            key,
            {
                "params": [],
                "weight_decay": weight_decay if p.dim() >= 2 else 0.0,
                "lr": lr * decay ** (top - depth),
            },
        )
        g["params"].append(p)
    return list(groups.values())


@torch.no_grad()
def masked_input_accuracy(
    module: FinetuneModule, loader, mode: str, mask_rate: float, seed: int = 0
) -> dict:
    """Classifier scored on inputs whose selected spectral positions are all [MASK]
    (``mode=None``: nothing masked, the plain scores).

    For window inputs the [MASK] id makes the encoder use its mask vector there, so the
    masked windows are never read.
    """
    module.eval()
    gen = torch.Generator().manual_seed(seed)
    ys, probs, rows = [], [], []
    K = module.cfg.vocab_size
    for batch in loader:
        ids = batch["ids"].to(module.device)
        sel = (
            torch.zeros_like(ids, dtype=torch.bool)
            if mode is None
            else select_positions(ids < K, mode, mask_rate, gen)
        )
        masked = torch.where(sel, torch.full_like(ids, module.cfg.mask_id), ids)
        psd = batch.get("psd")
        psd = None if psd is None else psd.to(module.device)
        probs.append(
            module(masked, batch["segments"].to(module.device), psd).float().softmax(-1)[:, 1].cpu()
        )
        ys.append(batch["label"])
        rows.append(batch["row"])
    y, prob = torch.cat(ys).numpy(), torch.cat(probs).numpy()
    return {
        "rows": torch.cat(rows).numpy(),
        "y": y,
        "prob": prob,
        "predicted_blast_fraction": float((prob >= 0.5).mean()),
    }
