"""A real small training run on CPU: where an epoch's time goes, float32 vs. bf16.

Composes ``train.yaml`` (``experiment=mlm model=small`` plus your overrides; ``--experiment
scratch`` fine-tunes instead), builds or reuses the tokens, then for each precision trains the
real LightningModule on the real ``TokenDataModule`` under the Lightning Trainer, from the
same seed, and reports per epoch: training seconds, validation seconds (for MLM the dev pass
runs 80/10/10 and all-masked forwards and the baselines), validation's share of the epoch,
training tokens/s, and the dev metrics after the last epoch. It also times one pass over
the training DataLoader alone (collation without the model): what DataLoader workers could
save at most.

    python scripts/bench/training.py                          # about 3-5 CPU-minutes
    python scripts/bench/training.py --epochs 5 model=small data.n_events=2500
    python scripts/bench/training.py --experiment scratch model=small data.n_events=1000 \
        task.params.masked_eval=false

Seconds are this process's CPU seconds with one torch thread (``--threads``), so the other
jobs on a shared machine do not count; the numbers are comparable within one run.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from seisbert.pipeline import TokenSet, prepare
from seisbert.train.finetune import build_finetuning
from seisbert.train.pretrain import build_pretraining
from seisbert.train.schemas import register

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
PRECISIONS = ("32-true", "bf16-mixed")
# experiment -> (builder, the dev metrics reported after the last epoch)
TASKS = {
    "mlm": (build_pretraining, ("val/mlm_acc", "val/mlm_acc_all_masked")),
    "scratch": (build_finetuning, ("val/balanced_accuracy", "val/roc_auc")),
}
log = logging.getLogger("bench_training")


class PhaseTimer(L.Callback):
    """CPU seconds of each training epoch, split into training and validation."""

    def __init__(self):
        self.train_s: list[float] = []
        self.val_s: list[float] = []
        self._epoch = self._val = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch = time.process_time()

    def on_validation_epoch_start(self, trainer, pl_module):
        self._val = time.process_time()

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val_s.append(time.process_time() - self._val)

    def on_train_epoch_end(self, trainer, pl_module):
        # Lightning validates before this hook, inside the epoch: subtract that pass
        self.train_s.append(time.process_time() - self._epoch - self.val_s[-1])


def loader_seconds(dm) -> float:
    """CPU seconds of one pass over the training DataLoader, no model."""
    t0 = time.process_time()
    for _ in dm.train_dataloader():
        pass
    return time.process_time() - t0


def run_precision(cfg, tset: TokenSet, precision: str, epochs: int, experiment: str) -> dict:
    build, keys = TASKS[experiment]
    L.seed_everything(cfg.seed, workers=True)
    module, dm = build(cfg, tset)
    timer = PhaseTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        precision=precision,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        callbacks=[timer],
    )
    trainer.fit(module, dm)
    tokens = len(dm.rows["train"]) * (tset.tokens.shape[1] + 2)  # [CLS] t1..tT [SEP]
    return {
        "precision": precision,
        "train_s": timer.train_s,
        "val_s": timer.val_s,
        "tokens_per_s": tokens / min(timer.train_s),
        "loader_s": loader_seconds(dm),
        "dev": {k: float(trainer.callback_metrics[k]) for k in keys},
        "train_rows": len(dm.rows["train"]),
        "dev_rows": len(dm.rows["dev"]),
    }


def print_report(rows: list[dict], args) -> None:
    r0, keys = rows[0], list(rows[0]["dev"])
    print(
        f"Real training (experiment={args.experiment} {' '.join(args.overrides)}), "
        f"{r0['train_rows']} train / {r0['dev_rows']} dev records, {args.epochs} epochs, "
        f"{args.threads} thread(s), CPU seconds, torch {torch.__version__}"
    )
    print(
        f"{'precision':<11} {'train s/ep':>10} {'val s/ep':>9} {'val share':>9} {'tokens/s':>9} "
        f"{'loader s':>8} " + " ".join(f"{k:>22}" for k in keys)
    )
    for r in rows:
        train, val = min(r["train_s"]), min(r["val_s"])
        print(
            f"{r['precision']:<11} {train:>10.1f} {val:>9.1f} {val / (train + val):>9.0%} "
            f"{r['tokens_per_s']:>9.0f} {r['loader_s']:>8.2f} "
            + " ".join(f"{r['dev'][k]:>22.4f}" for k in keys)
        )
    if len(rows) > 1:
        print(
            f"{rows[1]['precision']} / {r0['precision']}: training tokens/s x"
            f"{rows[1]['tokens_per_s'] / r0['tokens_per_s']:.2f}, {keys[0]} "
            f"{100 * (rows[1]['dev'][keys[0]] - r0['dev'][keys[0]]):+.2f} points"
        )


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument(
        "--experiment",
        choices=list(TASKS),
        default="mlm",
        help="mlm: pretraining; scratch: fine-tuning from random initialisation",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument(
        "overrides",
        nargs="*",
        default=["model=small", "data.n_events=1000"],
        help="Hydra overrides on top of experiment=<--experiment>",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    register()  # the config dataclasses' defaults, which the YAML presets extend
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"experiment={args.experiment}",
                "logger=none",
                "paths.output_dir=.",
                *args.overrides,
            ],
        )
    tset = TokenSet.load(prepare(cfg)["tokens"])
    rows = [
        run_precision(cfg, tset, precision, args.epochs, args.experiment)
        for precision in args.precisions
    ]
    print_report(rows, args)
    return rows


if __name__ == "__main__":
    main()
