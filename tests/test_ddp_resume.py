"""Beyond one process: DDP on two CPU ranks (gloo) and resuming a SIGKILLed run.

The runs are real ``python train.py`` processes at tiny size. The callbacks below are
injected into them from the command line (``+callbacks.x._target_=tests.test_ddp_resume.X``).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from seisbert.data.sequences import EpochSampler, TokenDataModule

ROOT = Path(__file__).resolve().parents[1]
# One thread per process: two cores are shared, and oversubscribed BLAS threads crawl.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
TINY = [
    "model=tiny",
    "data.n_events=60",
    "tokenizer.vocab_size=16",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train(*overrides, check: bool = True, wait: bool = True):
    cmd = [sys.executable, "train.py", *TINY, *overrides]
    # each run its own rendezvous port: two DDP tests on two xdist workers must not collide
    env = {**ENV, "MASTER_PORT": str(free_port())}
    if not wait:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def split_rows(cache: Path, split: str) -> set[int]:
    (meta,) = cache.glob("tokens/*/metadata.parquet")
    return set(np.flatnonzero(pd.read_parquet(meta)["split"].to_numpy() == split).tolist())


# ------------------------------------------------------------------- callbacks for the runs
class RecordRows(L.Callback):
    """Writes, per rank, the rows each epoch trained and validated on and the logged val metric."""

    def __init__(self, metric: str = "val/mlm_acc"):
        self.metric, self.seen = (
            metric,
            {"train": {}, "val": {}, "val_metric": {}, "val_rows_scored": {}},
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen["train"].setdefault(trainer.current_epoch, []).extend(batch["row"].tolist())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self.seen["val"].setdefault(trainer.current_epoch, []).extend(batch["row"].tolist())

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self.seen["val_metric"][trainer.current_epoch] = float(
            trainer.callback_metrics[self.metric]
        )
        if hasattr(pl_module, "last_metrics"):  # fine-tuning: rows its epoch metrics covered
            self.seen["val_rows_scored"][trainer.current_epoch] = len(
                pl_module.last_metrics["rows"]
            )

    def on_fit_start(self, trainer, pl_module):
        self.start = [p.detach().clone() for p in pl_module.parameters()]

    def on_fit_end(self, trainer, pl_module):
        now = [p.detach() for p in pl_module.parameters()]
        info = {
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            # the weights each rank ends with: a digest, and how far training moved them
            "weights": hashlib.sha256(b"".join(p.numpy().tobytes() for p in now)).hexdigest(),
            "moved": float(sum((a - b).pow(2).sum() for a, b in zip(now, self.start)) ** 0.5),
            **self.seen,
        }
        path = Path(trainer.default_root_dir) / f"rows_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(info))


class KillAt(L.Callback):
    """SIGKILLs its own process at a training batch: a crash with no clean-up at all, at a
    point the test chooses (an outside kill would land wherever the machine's load puts it)."""

    def __init__(self, epoch: int, batch: int = 1):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


def load_rank_files(run: Path) -> list[dict]:
    files = sorted(run.glob("rows_rank*.json"))
    return [json.loads(f.read_text()) for f in files]


# ------------------------------------------------------------------------ the sampler alone
def toy_tokens(n_events=30, stations=3, K=12):
    meta = pd.DataFrame(
        {
            "event_id": np.repeat([f"e{i}" for i in range(n_events)], stations),
            "station_id": np.tile([f"S{j}" for j in range(stations)], n_events),
        }
    )
    meta["label"] = np.arange(len(meta)) % 2
    event = np.arange(len(meta)) // stations
    meta["split"] = np.select(
        [event < 0.7 * n_events, event < 0.85 * n_events], ["train", "dev"], "test"
    )
    tokens = np.random.default_rng(0).integers(0, K, (len(meta), 90)).astype(np.int16)
    return tokens, meta, K


def test_epoch_sampler_shards_every_record_once_and_replays_an_epoch():
    n = 91  # odd: one rank gets one padded repeat

    def order(sampler, epoch):
        sampler.set_epoch(epoch)  # what Lightning does before each epoch
        return list(sampler)

    ranks = [EpochSampler(range(n), 2, rank, seed=0) for rank in (0, 1)]
    seen = {epoch: [order(s, epoch) for s in ranks] for epoch in (0, 1, 2)}
    for epoch, (a, b) in seen.items():
        assert len(a) == len(b) == 46
        assert sorted(set(a) | set(b)) == list(range(n))
        assert len(a) + len(b) - n == 1  # the only repeat is the padding
    assert seen[0][0] != seen[1][0] != seen[2][0]  # a new order every epoch
    # a fresh process (a resumed run) at epoch 2 serves what the long-lived sampler served
    assert order(EpochSampler(range(n), 2, 0, seed=0), 2) == seen[2][0]
    assert order(EpochSampler(range(n), 2, 0, seed=1), 2) != seen[2][0]


def test_datamodule_trains_on_one_shard_per_rank_and_workers_see_the_epoch():
    tokens, meta, K = toy_tokens()
    dm = TokenDataModule(tokens, meta, K, batch_size=16, pairs=True, num_workers=2)

    class FakeTrainer:  # what the datamodule reads from Lightning's trainer
        world_size, global_rank = 2, 1

    dm.trainer = FakeTrainer()
    loader = dm.train_dataloader()
    n_train = len(dm.rows["train"])
    assert isinstance(loader.sampler, EpochSampler) and len(loader.sampler) == -(-n_train // 2)
    partners = {}
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)  # what Lightning does before each epoch
        batches = list(loader)  # persistent worker processes hold their own dataset copy
        rows = torch.cat([b["row"] for b in batches]).tolist()
        partners[epoch] = torch.cat([b["partner_row"] for b in batches]).tolist()
        ds = dm.datasets["train"]  # the main process's own pairing for this epoch
        assert partners[epoch] == [int(ds[(r, epoch)]["partner_row"]) for r in rows]
    assert partners[0] != partners[1]  # source-linking pairs change per epoch in workers too


# --------------------------------------------------------------------------------- real DDP
def test_ddp_two_cpu_ranks_shard_training_and_sync_validation(tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    train(
        "experiment=mlm",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=2",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run}",
        "+callbacks.rows._target_=tests.test_ddp_resume.RecordRows",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    # 4 optimizer steps from init: still near-uniform over K=16 (a metric summed over the two
    # ranks instead of averaged would read 2 x log 16 here, and 2/16 for the constant below)
    assert metrics["test/mlm_loss"] == pytest.approx(np.log(16), abs=0.15)  # measured 2.71
    assert metrics["test/baseline_random_acc"] == pytest.approx(1 / 16)

    ranks = load_rank_files(run)
    assert [(r["world_size"], r["strategy"]) for r in ranks] == [(2, "DDPStrategy")] * 2
    # gradients are averaged across ranks: both end with the same weights, though each trained
    # on its own shard (unsynchronized ranks would diverge from the first step)
    assert ranks[0]["moved"] > 0 and ranks[0]["weights"] == ranks[1]["weights"]
    train_rows, dev_rows = split_rows(cache, "train"), split_rows(cache, "dev")
    for epoch in ("0", "1"):
        served = [r["train"][epoch] for r in ranks]
        assert len(served[0]) == len(served[1]) == -(-len(train_rows) // 2)
        assert set(served[0]) | set(served[1]) == train_rows  # every record, once (padding aside)
        assert len(served[0]) + len(served[1]) - len(train_rows) == len(train_rows) % 2
        assert set(ranks[0]["val"][epoch]) | set(ranks[1]["val"][epoch]) == dev_rows
        assert not set(ranks[0]["val"][epoch]) >= dev_rows  # each rank validated a shard only...
        assert (
            ranks[0]["val_metric"][epoch] == ranks[1]["val_metric"][epoch]
        )  # ...yet logs the same value
    assert ranks[0]["train"]["0"] != ranks[0]["train"]["1"]


def test_ddp_finetuning_scores_the_whole_split_on_every_rank(tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    train(
        "experiment=scratch",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run}",
        "+callbacks.rows._target_=tests.test_ddp_resume.RecordRows",
        "+callbacks.rows.metric=val/balanced_accuracy",
    )
    ranks = load_rank_files(run)
    n_dev = len(split_rows(cache, "dev"))
    for r in ranks:  # each rank predicted half, but its metrics cover the gathered whole
        assert len(set(r["val"]["0"])) < n_dev and r["val_rows_scored"]["0"] == n_dev
    assert ranks[0]["val_metric"]["0"] == ranks[1]["val_metric"]["0"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(map(sum, metrics["test/confusion_matrix"])) == len(split_rows(cache, "test"))


# ------------------------------------------------------------------------------ resume
def last_val(run: Path) -> pd.DataFrame:
    """Validation rows of the newest CSV log version (the resumed run writes a new one)."""
    newest = max(run.glob("csv/version_*"), key=lambda p: int(p.name.split("_")[1]))
    df = pd.read_csv(newest / "metrics.csv")
    return df.dropna(subset=["val/mlm_acc"]).set_index("epoch")


def test_resume_after_sigkill_replays_an_uninterrupted_run(tmp_path):
    cache, killed, whole = tmp_path / "cache", tmp_path / "killed", tmp_path / "whole"
    common = ["experiment=mlm", "trainer.max_epochs=4", f"paths.cache_dir={cache}"]

    crash = train(
        *common,
        f"hydra.run.dir={killed}",
        "+callbacks.kill._target_=tests.test_ddp_resume.KillAt",
        "+callbacks.kill.epoch=2",
        check=False,
    )
    assert crash.returncode == -signal.SIGKILL
    assert not (killed / "metrics.json").exists()
    ckpt = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1 and "ResumableRNG" in ckpt["callbacks"]  # epochs 0 and 1 were saved

    uninterrupted = train(
        *common, f"hydra.run.dir={whole}", wait=False
    )  # in parallel with the resume
    train(*common, f"hydra.run.dir={killed}", "ckpt_path=last")
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stdout.read()[-3000:]

    resumed_val, whole_val = last_val(killed), last_val(whole)
    assert resumed_val.index.tolist() == [2, 3]  # finished epochs were not run again
    assert whole_val.index.tolist() == [0, 1, 2, 3]
    assert resumed_val["step"].tolist() == whole_val.loc[[2, 3], "step"].tolist()
    # The same computation replayed: weights, masks, dropout and data order all restored, one
    # thread each, so the numbers agree to float rounding (1e-6), not merely "roughly".
    for col in ("val/mlm_acc", "val/loss", "val/mlm_top5"):
        np.testing.assert_allclose(
            resumed_val[col], whole_val.loc[[2, 3], col], atol=1e-6, err_msg=col
        )
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (killed, whole))
    assert a["test/mlm_acc"] == pytest.approx(b["test/mlm_acc"], abs=1e-6)

    end_a, end_b = (
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True) for run in (killed, whole)
    )
    assert end_a["global_step"] == end_b["global_step"] and end_a["epoch"] == end_b["epoch"] == 3
    for name, w in end_b["state_dict"].items():
        torch.testing.assert_close(end_a["state_dict"][name], w, atol=1e-6, rtol=0, msg=name)
    (sched_a,), (sched_b,) = end_a["lr_schedulers"], end_b["lr_schedulers"]
    assert sched_a["last_epoch"] == sched_b["last_epoch"] == end_b["global_step"]
    opt_a, opt_b = end_a["optimizer_states"][0], end_b["optimizer_states"][0]
    assert [g["lr"] for g in opt_a["param_groups"]] == pytest.approx(
        [g["lr"] for g in opt_b["param_groups"]]
    )
    for k, state in opt_b["state"].items():
        torch.testing.assert_close(
            opt_a["state"][k]["exp_avg_sq"], state["exp_avg_sq"], atol=1e-8, rtol=1e-5
        )
