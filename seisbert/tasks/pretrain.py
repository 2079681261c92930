"""Self-supervised pretraining: masked-token prediction (MLM) and source linking (SL).

Follows BERT (80/10/10 masking, loss on masked positions only) and Linville's source
linking, the paper's NSP adaptation: does the second half of the sequence come from
the same event (at another station) as the first half?

``task.params.target`` chooses what a masked position predicts, for every ``model.input``:
``kmeans`` (the tokenizer's ids; HuBERT-style when the input is the PSD window),
``random_projection`` (BEST-RQ codes, :mod:`seisbert.model.targets`) or ``psd`` (the
window itself, MSE on masked windows only); ``psd_weight`` adds the regression to a
classification target.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import lightning as L
import torch
import torch.nn.functional as F

from seisbert.config import check_choice, check_range
from seisbert.data.masking import (
    IGNORE,
    MASK_MODES,
    apply_mask,
    select_positions,
    swap_random_windows,
)
from seisbert.model.encoder import EncoderConfig
from seisbert.model.heads import MLMHead, PSDHead, SequenceHead
from seisbert.model.perceiver import build_encoder
from seisbert.model.targets import (
    RandomProjectionTarget,
    log_spectral_distance,
    time_steps,
    window_baselines,
)

log = logging.getLogger(__name__)

TARGETS = ("kmeans", "random_projection", "psd")


@dataclass
class PretrainConfig:
    mask_rate: float = 0.15  # fraction of spectral positions predicted (random/span modes)
    mask_mode: str = "random"  # random | first_half | second_half | span | all
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
    target: str = "kmeans"  # kmeans | random_projection | psd: what a masked position predicts
    psd_weight: float = 0.0  # > 0 adds psd_weight * window MSE to a kmeans/random_projection target
    target_seed: int = 0  # random_projection: seed of the frozen projection and codebook
    code_dim: int = 16  # random_projection: dimension the windows are projected to (BEST-RQ: 16)

    @property
    def classifies(self) -> bool:
        return self.target != "psd"

    @property
    def regresses(self) -> bool:
        return self.target == "psd" or self.psd_weight > 0

    def __post_init__(self):
        check_range("task.params.mask_rate", self.mask_rate, 0.01, 1.0)
        check_choice("task.params.mask_mode", self.mask_mode, MASK_MODES)
        check_choice("task.params.sl_classes", self.sl_classes, (2, 3))
        if len(self.replace_probs) != 3 or abs(sum(self.replace_probs) - 1) > 1e-6:
            raise ValueError(
                f"task.params.replace_probs={list(self.replace_probs)} "
                f"must be 3 values summing to 1"
            )
        check_range("task.params.lr", self.lr, 0.0, 1.0)
        check_range("task.params.warmup_frac", self.warmup_frac, 0.0, 1.0)
        check_range("task.params.batch_size", self.batch_size, 1, None)
        check_choice("task.params.target", self.target, TARGETS)
        check_range("task.params.psd_weight", self.psd_weight, 0.0, None)
        check_range("task.params.code_dim", self.code_dim, 1, None)


def cosine_schedule(step: int, total: int, warmup: int, min_frac: float) -> float:
    """LR multiplier: linear warmup to 1, cosine decay to ``min_frac``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * progress))


class PretrainModule(L.LightningModule):
    """Encoder + MLM head (+ SL head); the network is built from plain hyperparameters.

    ``step_mode`` (T,) is the per-time-step most frequent training target (kmeans or
    random-projection codes); ``window_stats`` (train split only: per-bin mean/std, per-step
    mean) feeds the random-projection standardization and the window baselines.
    """

    # What a fit logs, by the ``PretrainConfig`` flag of the head that computes it (None:
    # always), so a callback's monitor is checked before any work.
    FIT_METRICS = {
        None: ("train/loss", "val/loss"),
        "classifies": (
            "train/mlm_loss",
            "val/mlm_loss",
            "val/mlm_acc",
            "val/mlm_top5",
            "val/mlm_acc_all_masked",
            "val/baseline_random_acc",
            "val/baseline_step_mode_acc",
            "val/baseline_left_neighbour_acc",
        ),
        "regresses": (
            "train/psd_loss",
            "val/psd_loss",
            "val/psd_mse",
            "val/psd_lsd",
            *(
                f"val/baseline_{name}_{score}"
                for name in ("copy_left", "step_mean", "interpolation")
                for score in ("mse", "lsd")
            ),
        ),
        "source_linking": ("train/sl_loss", "train/sl_acc", "val/sl_loss", "val/sl_acc"),
    }

    @classmethod
    def fit_metrics(cls, params: PretrainConfig) -> tuple[str, ...]:
        """The train/ and val/ metrics a fit with ``params`` logs."""
        return tuple(
            name
            for flag, names in cls.FIT_METRICS.items()
            if flag is None or getattr(params, flag)
            for name in names
        )

    def __init__(
        self,
        model: dict,
        params: dict,
        tokenizer_digest: str,
        step_mode: list | None = None,
        window_stats: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = EncoderConfig(**model)
        self.p = PretrainConfig(**params)
        self.encoder = build_encoder(self.cfg)
        self.mlm_head = MLMHead(self.cfg, self.encoder.tok_emb) if self.p.classifies else None
        self.sl_head = (
            SequenceHead(self.cfg, self.p.sl_classes, pool="cls") if self.p.source_linking else None
        )
        self.needs_windows = (
            self.cfg.input != "tokens" or self.p.target == "random_projection" or self.p.regresses
        )
        if self.needs_windows and (self.cfg.n_features is None or window_stats is None):
            raise ValueError(
                f"model.input={self.cfg.input!r} with task.params.target={self.p.target!r} reads "
                "PSD windows: give model.n_features and the training split's window_stats"
            )
        self.psd_head = PSDHead(self.cfg, self.cfg.n_features) if self.p.regresses else None
        self.rp_target = (
            RandomProjectionTarget(
                self.cfg.n_features,
                self.cfg.vocab_size,
                self.p.code_dim,
                self.p.target_seed,
                window_stats["mean"],
                window_stats["std"],
            )
            if self.p.target == "random_projection"
            else None
        )
        mode = torch.as_tensor(step_mode if step_mode is not None else [], dtype=torch.long)
        self.register_buffer("step_mode", mode, persistent=False)
        step_mean = torch.as_tensor(
            window_stats["step_mean"] if window_stats else [], dtype=torch.float32
        )
        self.register_buffer("step_mean", step_mean, persistent=False)
        self._val_gen = torch.Generator()
        # compiled forward for GPU runs, kept out of the module tree (object.__setattr__) so
        # checkpoints hold the plain encoder's weights only (as nanoGPT does)
        object.__setattr__(
            self, "_forward", torch.compile(self.encoder) if self.p.compile else self.encoder
        )

    # ----------------------------------------------------------------- forward
    def masked_batch(self, batch, mode: str | None = None, generator=None, replace_probs=None):
        """(inputs (B, L), labels (B, L) with IGNORE off the mask, input windows or None)."""
        ids = batch["ids"]
        maskable = ids < self.cfg.vocab_size  # spectral positions only
        selected = select_positions(maskable, mode or self.p.mask_mode, self.p.mask_rate, generator)
        inputs, labels = apply_mask(
            ids,
            selected,
            self.cfg.vocab_size,
            self.cfg.mask_id,
            replace_probs or self.p.replace_probs,
            generator,
        )
        windows = batch.get("psd")
        if self.cfg.input != "tokens":  # the 10% "random" share: a random window of the batch
            inputs, windows = swap_random_windows(
                ids, windows, inputs, selected, self.cfg.vocab_size, generator
            )
        return inputs, labels, windows

    def class_targets(self, batch) -> torch.Tensor:
        """(B, L) ids a classification target predicts: k-means tokens or random-projection
        codes."""
        if self.rp_target is None:
            return batch["ids"]
        codes = self.rp_target(batch["psd"])  # (B, L)
        return torch.where(batch["ids"] < self.cfg.vocab_size, codes, batch["ids"])

    def encode(self, batch, inputs, windows):
        return self._forward(inputs, batch["segments"], psd=windows)  # (B, L, d)

    def losses(self, batch, inputs, labels, windows=None):
        hidden = self.encode(batch, inputs, windows)  # (B, L, d)
        sel = labels != IGNORE
        out, loss = {}, 0.0
        if self.mlm_head is not None:
            targets = self.class_targets(batch)[sel]
            logits = self.mlm_head(hidden[sel])  # (M, K): only masked positions carry loss
            out.update(mlm_loss=F.cross_entropy(logits, targets), logits=logits, targets=targets)
            loss = out["mlm_loss"]
        if self.psd_head is not None:
            out["psd_pred"] = self.psd_head(hidden[sel])  # (M, F)
            out["psd_loss"] = masked_mse(out["psd_pred"], batch["psd"], sel)
            loss = loss + (
                out["psd_loss"] if self.mlm_head is None else self.p.psd_weight * out["psd_loss"]
            )
        if self.sl_head is not None:
            sl_logits = self.sl_head(hidden)  # (B, sl_classes)
            out["sl_loss"] = F.cross_entropy(sl_logits, batch["sl_label"])
            out["sl_acc"] = (sl_logits.argmax(-1) == batch["sl_label"]).float().mean()
        out["loss"] = loss + self.p.sl_weight * out.get("sl_loss", 0.0)
        return out

    # ---------------------------------------------------------------- training
    def on_train_epoch_start(self):
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "set_epoch"):
            dm.set_epoch(self.current_epoch)

    def training_step(self, batch, _):
        inputs, labels, windows = self.masked_batch(batch)
        out = self.losses(batch, inputs, labels, windows)
        B = len(inputs)
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=B)
        for key in ("mlm_loss", "psd_loss", "sl_loss", "sl_acc"):
            if key in out:
                self.log(f"train/{key}", out[key], batch_size=B)
        return out["loss"]

    # -------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self):
        self._val_gen.manual_seed(self.p.eval_mask_seed)  # the same masks every epoch

    def on_test_epoch_start(self):
        self._val_gen.manual_seed(self.p.eval_mask_seed + 1)

    def _eval_step(self, batch, stage: str):
        inputs, labels, windows = self.masked_batch(batch, generator=self._val_gen)
        out = self.losses(batch, inputs, labels, windows)
        sel = labels != IGNORE
        # The same positions with every one replaced by [MASK] (no 10% kept/10% random).
        all_masked = torch.where(sel, torch.full_like(inputs, self.cfg.mask_id), batch["ids"])
        hidden = self.encode(batch, all_masked, batch.get("psd"))
        m = {"loss": out["loss"]}
        if self.mlm_head is not None:
            m.update(self.class_metrics(batch, out, hidden, all_masked, sel))
        if self.psd_head is not None:
            m.update(self.window_metrics(batch, out, hidden, sel))
        if "sl_acc" in out:
            m["sl_acc"], m["sl_loss"] = out["sl_acc"], out["sl_loss"]
        B, n = len(inputs), sel.sum()
        for k, v in m.items():  # per masked token, except the SL figures (per sequence)
            self.log(
                f"{stage}/{k}",
                v,
                batch_size=B if k.startswith("sl") else int(n),
                sync_dist=True,
                prog_bar=k in ("mlm_acc", "psd_mse"),
            )
        return m

    def class_metrics(self, batch, out, hidden, all_masked, sel) -> dict:
        """Accuracy (80/10/10 and all masked), top-5 and the trivial baselines on the same masks."""
        K = self.cfg.vocab_size
        logits, targets = out["logits"], out["targets"]
        m = {
            "mlm_loss": out["mlm_loss"],
            "mlm_acc": (logits.argmax(-1) == targets).float().mean(),
            "mlm_top5": (logits.topk(min(5, K), -1).indices == targets[:, None])
            .any(-1)
            .float()
            .mean(),
            "mlm_acc_all_masked": (self.mlm_head(hidden[sel]).argmax(-1) == targets).float().mean(),
        }
        codes = self.class_targets(batch)  # (B, L): the targets at every position
        visible_codes = torch.where(sel, torch.full_like(codes, self.cfg.mask_id), codes)
        m.update(self.baseline_accuracies(batch["ids"], visible_codes, sel, targets))
        return m

    def window_metrics(self, batch, out, hidden, sel) -> dict:
        """MSE and log-spectral distance (dB) with every selected window masked, and baselines."""
        truth = batch["psd"][sel]  # (M, F)
        pred = self.psd_head(hidden[sel])  # (M, F): from the all-masked input
        m = {
            "psd_loss": out["psd_loss"],
            "psd_mse": (pred - truth).pow(2).mean(),
            "psd_lsd": log_spectral_distance(pred, truth).mean(),
        }
        spectral = batch["ids"] < self.cfg.vocab_size
        base = window_baselines(
            batch["psd"], spectral & ~sel, sel, self.step_mean, time_steps(spectral)
        )
        for name, guess in base.items():
            m[f"baseline_{name}_mse"] = (guess - truth).pow(2).mean()
            m[f"baseline_{name}_lsd"] = log_spectral_distance(guess, truth).mean()
        return m

    def baseline_accuracies(self, ids, masked_inputs, sel, targets) -> dict:
        """Trivial predictors on the same masks: 1/K, per-time-step mode, left neighbour.

        ``masked_inputs`` holds the targets (k-means ids or codes) with the selected
        positions set to [MASK]; the specials are never visible.
        """
        K = self.cfg.vocab_size
        out = {"baseline_random_acc": torch.tensor(1.0 / K, device=ids.device)}
        t = time_steps(ids < K)  # (B, L) time step of spectral positions
        if self.step_mode.numel():
            steps = self.step_mode[t.clamp(max=len(self.step_mode) - 1)]
            out["baseline_step_mode_acc"] = (steps[sel] == targets).float().mean()
        out["baseline_left_neighbour_acc"] = (
            (left_visible_token(masked_inputs, K, self.step_mode, t)[sel] == targets).float().mean()
        )
        return out

    def validation_step(self, batch, _):
        return self._eval_step(batch, "val")

    def test_step(self, batch, _):
        return self._eval_step(batch, "test")

    # --------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        groups = self.encoder.configure_optimizer_groups(self.p.weight_decay)
        head_params = [p for n, p in self.named_parameters() if not n.startswith("encoder.")]
        groups.append(
            {
                "params": [p for p in head_params if p.dim() >= 2],
                "weight_decay": self.p.weight_decay,
            }
        )
        groups.append({"params": [p for p in head_params if p.dim() < 2], "weight_decay": 0.0})
        fused = torch.cuda.is_available() and self.device.type == "cuda"
        opt = torch.optim.AdamW(
            groups, lr=self.p.lr, betas=tuple(self.p.betas), fused=fused or None
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.p.warmup_frac * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: cosine_schedule(s, total, warmup, self.p.min_lr_frac)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def masked_mse(pred: torch.Tensor, windows: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``pred`` (M, F) against the selected windows of ``windows`` (B, L, F).

    Only the M selected windows enter: what the unselected ones hold never changes the loss.
    """
    return F.mse_loss(pred, windows[sel].to(pred.dtype))


def left_visible_token(
    inputs: torch.Tensor, K: int, step_mode: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """For each position, the nearest spectral token to its left that is visible in ``inputs``.

    Positions with no visible spectral token to the left fall back to the per-step mode
    (or token 0 when no mode is known).
    """
    B, L = inputs.shape
    visible = inputs < K
    idx = torch.where(
        visible, torch.arange(L, device=inputs.device).expand(B, L), torch.full_like(inputs, -1)
    )
    last = torch.cummax(idx, dim=1).values  # (B, L): last visible index at or before each position
    prev = torch.cat(
        [torch.full((B, 1), -1, device=inputs.device, dtype=last.dtype), last[:, :-1]], 1
    )
    fallback = (
        step_mode[t.clamp(max=len(step_mode) - 1)]
        if step_mode.numel()
        else torch.zeros_like(inputs)
    )
    return torch.where(prev >= 0, inputs.gather(1, prev.clamp(min=0)), fallback)
