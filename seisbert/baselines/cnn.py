"""A small 2-D CNN on PSD windows: the strong supervised reference (paper: 96-98%).

Linville's case study compares the transformer with a CNN trained on the PSD windows
directly. Here: input ``(B, 1, T, F)`` standardised per frequency bin with the labelled
subset's statistics, three blocks of conv -> batch norm -> GELU -> 2x2 max pool, a mean
over the remaining time-frequency cells, dropout and one linear logit (blast).

Training is budgeted in optimizer steps (``max_steps``), capped at ``max_epochs`` passes
so a 50-record subset is not drilled 1500 times. The dev split is scored every
``val_every_steps`` steps and the best-scoring weights are kept (in memory, no checkpoint
files); a run too short to reach the first check keeps its final weights. The
learning rate is chosen on dev by ``seisbert.baselines.fit_baseline``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from dataclasses import dataclass, field

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seisbert.baselines.forest import SELECTION_METRICS, check_grid, check_n_jobs
from seisbert.config import check_choice, check_range
from seisbert.metrics import classification_metrics

log = logging.getLogger(__name__)


@dataclass
class CNNConfig:
    """CNN on PSD windows (``configs/baseline/cnn.yaml``)."""

    channels: list[int] = field(default_factory=lambda: [8, 16, 32])  # one conv block each
    kernel_size: int = 3
    dropout: float = 0.1
    lr_grid: list[float] = field(default_factory=lambda: [3e-4, 1e-3, 3e-3, 1e-2])
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_steps: int = 1500  # optimizer steps (~40 s on one core for 6k records) ...
    max_epochs: int = 100  # caps small subsets: 50 records are one batch, so 100 steps
    val_every_steps: int = 50  # dev is scored this often; the best-scoring weights are kept
    # early stopping: dev checks without a better score (null: train the full budget)
    patience: int | None = (
        None  # stop after this many dev checks without a better score; None: never
    )
    class_weight: str | None = "balanced"  # balanced | null
    accelerator: str = "cpu"  # cpu | gpu | auto
    deterministic: bool = True  # torch deterministic algorithms (cheap for this net)
    n_jobs: int = 1  # torch CPU threads during training; -1 leaves torch's default
    selection_metric: str = "balanced_accuracy"  # balanced_accuracy | accuracy | f1 | roc_auc

    def __post_init__(self):
        check_n_jobs(self.n_jobs)
        check_grid("baseline.channels", self.channels, 1, 1024)
        check_range("baseline.kernel_size", self.kernel_size, 1, 15)
        check_range("baseline.dropout", self.dropout, 0.0, 0.9)
        check_grid("baseline.lr_grid", self.lr_grid, 1e-6, 1.0)
        check_range("baseline.weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("baseline.batch_size", self.batch_size, 1, 65_536)
        check_range("baseline.max_steps", self.max_steps, 1)
        check_range("baseline.max_epochs", self.max_epochs, 1)
        check_range("baseline.val_every_steps", self.val_every_steps, 1, self.max_steps)
        if self.patience is not None:
            check_range("baseline.patience", self.patience, 1)
        check_choice("baseline.class_weight", self.class_weight, ("balanced", None))
        check_choice("baseline.accelerator", self.accelerator, ("cpu", "gpu", "auto"))
        check_choice("baseline.selection_metric", self.selection_metric, SELECTION_METRICS)

    def grid(self) -> list[dict]:
        return [{"lr": float(lr)} for lr in self.lr_grid]

    @staticmethod
    def inputs(
        cfg: CNNConfig, features: np.ndarray | None, tokens: np.ndarray | None
    ) -> np.ndarray:
        if features is None:
            raise ValueError(
                "baseline cnn needs PSD features (N, T, F); run the features stage first"
            )
        return np.asarray(
            features, dtype=np.float32
        )  # (N, T, F); the channel axis is added per batch

    @staticmethod
    def fit(cfg: CNNConfig, params: dict, x_train, y_train, x_dev, y_dev, seed: int) -> PSDConvNet:
        return train_cnn(cfg, params["lr"], x_train, y_train, x_dev, y_dev, seed)

    @staticmethod
    def predict_proba(model: PSDConvNet, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)


class PSDConvNet(pl.LightningModule):
    """Conv blocks over (time, frequency) -> mean pool -> linear blast logit."""

    def __init__(
        self,
        n_freq: int = 20,
        channels: tuple[int, ...] = (16, 32, 64),
        kernel_size: int = 3,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        class_weights: tuple[float, float] = (1.0, 1.0),
        selection_metric: str = "balanced_accuracy",
        patience: int | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        blocks, c_in = [], 1
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm2d(c_out),
                nn.GELU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]  # ceil: F=20 survives 3+ halvings
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, 1))
        # Per-frequency standardisation, set from the labelled subset by set_input_scaling.
        self.register_buffer("input_mean", torch.zeros(n_freq))
        self.register_buffer("input_std", torch.ones(n_freq))
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        self.best_score, self.best_state, self._dev_probs = -np.inf, None, []
        self.checks_since_best = 0

    def set_input_scaling(self, x_train: np.ndarray) -> None:
        self.input_mean.copy_(torch.from_numpy(x_train.mean(axis=(0, 1))))
        self.input_std.copy_(torch.from_numpy(x_train.std(axis=(0, 1)) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - self.input_mean) / self.input_std).unsqueeze(1)  # (B, 1, T, F)
        x = self.blocks(x)  # (B, C, T', F')
        # A plain mean, not AdaptiveAvgPool2d: its CUDA backward refuses deterministic mode.
        return self.head(x.mean(dim=(2, 3))).squeeze(-1)  # (B,)

    def training_step(self, batch, batch_idx):
        x, y = batch
        weights = self.class_weights[y.long()]
        loss = (
            weights * F.binary_cross_entropy_with_logits(self(x), y, reduction="none")
        ).sum() / weights.sum()
        self.log("train/loss", loss, prog_bar=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._dev_probs.append((torch.sigmoid(self(x)).cpu(), y.cpu()))

    def on_validation_epoch_end(self):
        probs, labels = (torch.cat(t).numpy() for t in zip(*self._dev_probs))
        self._dev_probs = []
        score = classification_metrics(labels, probs)[self.hparams.selection_metric]
        self.log(f"val/{self.hparams.selection_metric}", float(score))
        if score > self.best_score:  # keep the best weights seen on dev (NaN never wins)
            self.best_score, self.checks_since_best = score, 0
            self.best_state = copy.deepcopy(self.state_dict())
        else:
            self.checks_since_best += 1
        if self.hparams.patience is not None and self.checks_since_best >= self.hparams.patience:
            self.trainer.should_stop = (
                True  # early stopping; the best weights are restored after fit
            )

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """P(blast) for ``(N, T, F)`` windows, in eval mode."""
        was_training = self.training
        self.eval()
        probs = [
            torch.sigmoid(
                self(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(self.device))
            )
            for i in range(0, len(x), batch_size)
        ]
        self.train(was_training)
        return torch.cat(probs).cpu().numpy()


def train_cnn(cfg: CNNConfig, lr: float, x_train, y_train, x_dev, y_dev, seed: int) -> PSDConvNet:
    """Train one CNN (``max_steps`` or ``max_epochs``, whichever ends first); return it with
    its best dev weights loaded."""
    pl.seed_everything(seed, workers=True, verbose=False)
    model = PSDConvNet(
        x_train.shape[-1],
        tuple(cfg.channels),
        cfg.kernel_size,
        cfg.dropout,
        lr,
        cfg.weight_decay,
        _class_weights(y_train, cfg.class_weight),
        cfg.selection_metric,
        cfg.patience,
    )
    model.set_input_scaling(x_train)
    with _quiet_lightning(), _torch_threads(cfg.n_jobs):
        # check_val_every_n_epoch=None: validate every val_every_steps batches across epochs.
        trainer = pl.Trainer(
            accelerator=cfg.accelerator,
            devices=1,
            max_steps=cfg.max_steps,
            max_epochs=cfg.max_epochs,
            val_check_interval=cfg.val_every_steps,
            check_val_every_n_epoch=None,
            deterministic=cfg.deterministic,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(
            model,
            _loader(x_train, y_train, cfg.batch_size, shuffle=True),
            _loader(x_dev, y_dev, 1024, shuffle=False),
        )
    if model.best_state is not None:
        model.load_state_dict(model.best_state)
    return model


def _class_weights(y: np.ndarray, mode: str | None) -> tuple[float, float]:
    """'balanced': n / (2 n_c) as scikit-learn does; a missing class gets weight 1."""
    counts = np.bincount(y.astype(int), minlength=2)
    if mode is None:
        return (1.0, 1.0)
    return tuple(float(len(y) / (2 * c)) if c > 0 else 1.0 for c in counts)


def _loader(
    x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool
) -> torch.utils.data.DataLoader:
    data = torch.utils.data.TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.float32))
    )
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle)


@contextlib.contextmanager
def _torch_threads(n_jobs: int):
    """Cap torch's intra-op threads for one fit (oversubscribed cores slow it several-fold)."""
    previous = torch.get_num_threads()
    if n_jobs != -1:
        torch.set_num_threads(n_jobs)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's per-fit banners (device info, worker hints) for a grid of fits."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning 2.6 on torch 2.13
        try:
            yield
        finally:
            logger.setLevel(level)
