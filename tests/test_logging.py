"""Loggers read back: a tiny run's offline W&B history, config, images and artifacts, and the
TensorBoard event file (not just the folders they leave)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from seisbert.train.job import train_job, write_run_info
from seisbert.train.loggers import read_offline_run, wandb_offline

EPOCHS = 2
LOG_EVERY_STEP = ["trainer.log_every_n_steps=1", f"trainer.max_epochs={EPOCHS}"]


def read_wandb_run(run_dir: Path) -> dict:
    return read_offline_run(run_dir)


def series(history: list[dict], key: str) -> list[float]:
    return [row[key] for row in history if key in row]


def best_checkpoint_score(run_dir: Path, monitor: str) -> float:
    """The score the run's ModelCheckpoint kept: the best of the validations it saw."""
    import torch

    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    (state,) = [v for k, v in ckpt["callbacks"].items() if f"'monitor': '{monitor}'" in k]
    return float(state["best_model_score"])


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Offline W&B writing only under tmp (its cache, staging and settings folders too)."""
    for var in (
        "WANDB_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_DATA_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_ARTIFACT_DIR",
    ):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_wandb_offline_run_holds_metrics_config_images_and_artifacts(tiny_cfg, wandb_env):
    import wandb

    cfg = tiny_cfg("experiment=mlm", "model=tiny", "logger=wandb", *LOG_EVERY_STEP)
    write_run_info(cfg)
    metrics = train_job(cfg)
    wandb.finish()  # flush the transaction log
    run = read_wandb_run(Path(cfg.paths.output_dir))
    history, K = run["history"], cfg.tokenizer.vocab_size

    val_acc, train_loss = series(history, "val/mlm_acc"), series(history, "train/loss")
    assert len(val_acc) == EPOCHS
    assert max(val_acc) == pytest.approx(
        best_checkpoint_score(Path(cfg.paths.output_dir), "val/mlm_acc")
    )
    assert [row["epoch"] for row in history if "val/mlm_acc" in row] == list(range(EPOCHS))
    assert len(train_loss) >= EPOCHS and all(math.isfinite(v) for v in train_loss)
    assert abs(train_loss[0] - math.log(K)) < 1.0  # untrained: close to uniform over K tokens
    assert series(history, "test/mlm_acc") == [pytest.approx(metrics["test/mlm_acc"])]
    assert series(history, "test/baseline_random_acc") == [pytest.approx(1 / K)]
    steps = series(history, "trainer/global_step")
    assert steps == sorted(steps)

    # the composed config, every group (not only the module's hyperparameters)
    config = run["config"]
    assert (
        config["data"]["n_events"] == cfg.data.n_events and config["tokenizer"]["vocab_size"] == K
    )
    assert config["model"]["layers"] == cfg.model.layers and config["task"]["name"] == "mlm"
    assert config["trainer"]["max_epochs"] == EPOCHS

    (image_row,) = [row for row in history if "test/mlm_confusion/_type" in row]
    assert image_row["test/mlm_confusion/_type"] == "images/separated"
    (png,) = image_row["test/mlm_confusion/filenames"]
    assert png in run["files"] and (run["dir"] / "files" / png).read_bytes()[:4] == b"\x89PNG"

    assert run["artifacts"]["mlm-model"] == ("model", {"model.ckpt", "model.json", "artifact.json"})
    kind, files = run["artifacts"]["tokenizer"]
    assert kind == "tokenizer" and files


def test_tensorboard_gets_scalars_and_the_confusion_image(tiny_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_cfg(
        "experiment=mlm", "model=tiny", "logger=tensorboard", "test_after_fit=true", *LOG_EVERY_STEP
    )
    metrics = train_job(cfg)
    acc = EventAccumulator(
        str(Path(cfg.paths.output_dir) / "tensorboard" / "version_0"),
        size_guidance={"images": 0, "scalars": 0},
    )
    acc.Reload()
    val = [e.value for e in acc.Scalars("val/mlm_acc")]
    assert len(val) == EPOCHS  # the validations the checkpoint chose from, as TensorBoard has them
    assert max(val) == pytest.approx(
        best_checkpoint_score(Path(cfg.paths.output_dir), "val/mlm_acc")
    )
    test_acc = [e.value for e in acc.Scalars("test/mlm_acc")]
    assert test_acc == [pytest.approx(metrics["test/mlm_acc"])]
    assert "test/mlm_confusion" in acc.Tags()["images"]


def test_wandb_is_offline_unless_the_user_opts_in(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_offline()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert not wandb_offline()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_offline()
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY")
    assert not wandb_offline()


# ------------------------------------------------------------------- the console and the log file
def run_train(tmp_path: Path, cache: Path, *overrides: str) -> tuple[str, Path]:
    """A real ``python train.py`` whose output is a pipe (no terminal), as under nohup or SLURM."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "train.py",
        "experiment=mlm",
        "data.n_events=80",
        "tokenizer.vocab_size=16",
        "model=tiny",
        "logger=csv",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "torch_threads=1",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr, run_dir


def test_a_run_off_a_terminal_logs_each_line_once_and_one_line_per_epoch(tmp_path, shared_cache):
    import re

    import pandas as pd

    out, run_dir = run_train(tmp_path, shared_cache)
    assert "\r" not in out  # no progress bar (tqdm or Rich) off a terminal
    assert "faiss.loader" not in out and "INFO: " not in out and "GPU available" not in out
    messages = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in out.splitlines() if line.strip()]
    repeated = {m for m in messages if messages.count(m) > 1}
    assert not repeated, f"printed more than once: {repeated}"
    assert len([m for m in messages if "parameters" in m]) == 1

    epochs = [m for m in messages if m.startswith("seisbert.train: epoch ")]
    assert [m.split(":")[1].split()[1] for m in epochs] == ["1/2", "2/2"]
    metrics = pd.read_csv(next(run_dir.glob("csv/version_*/metrics.csv")))
    val = metrics.dropna(subset=["val/mlm_acc"]).sort_values("epoch")
    train = metrics.dropna(subset=["train/loss"]).groupby("epoch").last()  # the epoch's last step
    assert len(val) == len(epochs) == 2
    for line, (_, row) in zip(epochs, val.iterrows()):  # the line says what the logger stored
        logged = dict(re.findall(r"(\S+/\S+) (\S+)", line))
        assert float(logged["val/mlm_acc"]) == pytest.approx(row["val/mlm_acc"], rel=1e-3)
        assert float(logged["train/loss"]) == pytest.approx(
            train.loc[row["epoch"], "train/loss"], rel=1e-3
        )
        assert (
            f"step {int(row['step']) + 1}:" in line
        )  # optimizer steps done (Lightning logs at step - 1)

    log_file = (run_dir / "train.log").read_text()
    assert "\r" not in log_file and log_file.count("seisbert.train: epoch ") == 2
    assert "faiss.loader" not in log_file
    print(f"{len(out.splitlines())} lines of output")  # measured: docs/usage.md's console note


@pytest.fixture
def logging_state():
    """setup_logging changes process-wide state: put the root's and lightning's back after."""
    import logging

    from tqdm import std

    names = ("", "lightning", "lightning.pytorch", "seisbert", "py.warnings")
    saved = {
        n: (
            logging.getLogger(n).level,
            list(logging.getLogger(n).handlers),
            logging.getLogger(n).propagate,
        )
        for n in names
    }
    init = std.tqdm.__init__
    yield
    std.tqdm.__init__ = init
    logging.captureWarnings(False)
    for n, (level, handlers, propagate) in saved.items():
        lg = logging.getLogger(n)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def test_setup_logging_levels_handlers_and_a_second_call(logging_state, tmp_path):
    import logging

    from tqdm import std

    from seisbert.logs import setup_logging

    setup_logging(tmp_path / "a.log")
    setup_logging(
        tmp_path / "b.log", app_loggers=["my_script"]
    )  # a script after train: still one set
    root = logging.getLogger()
    assert [type(h).__name__ for h in root.handlers] == ["_Stdout", "FileHandler"]
    assert root.handlers[1].baseFilename == str(tmp_path / "b.log")
    assert (
        logging.getLogger("lightning").handlers == [] and logging.getLogger("lightning").propagate
    )
    assert logging.getLogger("seisbert.pipeline").isEnabledFor(logging.INFO)
    assert logging.getLogger("my_script").isEnabledFor(logging.INFO)
    for library in (
        "faiss.loader",
        "lightning.pytorch.utilities.rank_zero",
        "matplotlib.font_manager",
    ):
        assert not logging.getLogger(library).isEnabledFor(logging.INFO), library
        assert logging.getLogger(library).isEnabledFor(logging.WARNING), library
    logging.getLogger("seisbert.x").info("one line")
    logging.getLogger("lightning.pytorch").warning("lightning says")
    text = (tmp_path / "b.log").read_text()
    assert text.count("one line") == 1 and text.count("lightning says") == 1
    bar = std.tqdm(
        range(3), disable=False
    )  # off a terminal (pytest's capture) even an explicit bar is off
    assert bar.disable


def test_a_python_warning_is_one_log_line(logging_state, tmp_path):
    import warnings

    from seisbert.logs import setup_logging

    setup_logging(tmp_path / "w.log")
    warnings.warn("careful with that", UserWarning)
    lines = (tmp_path / "w.log").read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("UserWarning: careful with that"), lines


def test_a_multirun_logs_one_wandb_run_per_job_with_its_own_config(tmp_path, wandb_env):
    """Four jobs of ``train.py -m`` in one process: four offline runs, each named from its
    overrides, grouped by the sweep, with its own config and its own history."""
    import os
    import subprocess
    import sys

    from conftest import TINY

    repo = Path(__file__).resolve().parents[1]
    tiny = [o for o in TINY if not o.startswith(("logger=", "trainer.max_epochs"))]
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "experiment=mlm",
        *tiny,
        "logger=wandb",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1",
        "trainer.log_every_n_steps=1",
        "model.heads=1,2",
        "model.layers=1,2",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    done = subprocess.run(
        cmd,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=540,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [read_offline_run(tmp_path / "sweep" / str(n)) for n in range(4)]
    names = [r["name"] for r in runs]
    assert len(set(names)) == 4 and all(":" in n and "model.heads=" in n for n in names), names
    assert {r["group"] for r in runs} == {"sweep"}
    seen = {(r["config"]["model"]["heads"], r["config"]["model"]["layers"]) for r in runs}
    assert seen == {(1, 1), (1, 2), (2, 1), (2, 2)}  # each run holds its own job's config
    for r in runs:
        model = r["config"]["model"]
        assert f"model.heads={model['heads']}" in r["name"]
        assert f"model.layers={model['layers']}" in r["name"]
        assert series(r["history"], "train/loss")  # its own job's metrics
