"""Sweep presets: the paper's grid, a real multirun sharing cached artifacts, its summary,
and the optional Optuna / SLURM plugin configs."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from seisbert.analysis.sweeps import summarize_sweep
from seisbert.config import build

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(ROOT / "configs")
# One thread per process: two cores are shared, and oversubscribed BLAS threads crawl.
SUBPROCESS_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "WANDB_MODE": "offline",
    "MPLBACKEND": "Agg",
}
QUIET = ["trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


def hydra_cfg(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def sweep_values(cfg) -> dict[str, list[int]]:
    return {k: [int(v) for v in str(s).split(",")] for k, s in cfg.hydra.sweeper.params.items()}


def has_plugin(name: str) -> bool:
    try:  # find_spec raises when the namespace package hydra_plugins itself is absent
        return importlib.util.find_spec(f"hydra_plugins.{name}") is not None
    except ModuleNotFoundError:
        return False


def test_grid_is_the_papers_grid_and_every_run_validates():
    cfg = hydra_cfg("experiment=mlm", "sweep=grid")
    grid = sweep_values(cfg)
    assert grid == {
        "model.heads": [2, 4, 8],
        "model.layers": [2, 4, 8, 12],
        "tokenizer.vocab_size": [8, 16, 32, 64, 150],
    }
    for heads, layers, vocab in itertools.product(*grid.values()):  # 60 runs, none rejected
        with open_dict(cfg):
            cfg.model.heads, cfg.model.layers, cfg.tokenizer.vocab_size = heads, layers, vocab
        model = build(cfg.model, "model")
        assert (model.heads, model.layers, model.vocab_size) == (heads, layers, vocab)
        build(cfg.tokenizer, "tokenizer")


def test_grid_heads_must_divide_the_width():
    cfg = hydra_cfg("experiment=mlm", "sweep=grid", "model.heads=3")
    with pytest.raises(ValueError, match="model.heads"):
        build(cfg.model, "model")


# --------------------------------------------------------------------------- a real multirun
@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    """``train.py -m sweep=quick`` at tiny size: 2 layer counts x 2 vocabularies = 4 models."""
    tmp = tmp_path_factory.mktemp("sweep")
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "experiment=mlm",
        "sweep=quick",
        "model=tiny",
        "data.n_events=60",
        "trainer.max_epochs=1",
        "logger=csv",
        f"paths.cache_dir={tmp / 'cache'}",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        *QUIET,
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc.stdout + proc.stderr


def test_sweep_featurizes_once_and_tokenizes_once_per_vocabulary(multirun):
    tmp, log = multirun
    cache = tmp / "cache"
    dirs = {
        stage: sorted(p.name for p in (cache / stage).iterdir())
        for stage in ("records", "features", "tokens")
    }
    assert len(dirs["records"]) == 1 and len(dirs["features"]) == 1, dirs
    assert len(dirs["tokens"]) == 2, dirs  # vocab_size 16 and 32
    assert len(list((cache / "mlm").iterdir())) == 4  # one base model per job
    # built once, reused by the three other jobs (a rebuild would log "wrote" again)
    assert len(re.findall(r"wrote \S+/features/", log)) == 1
    assert len(re.findall(r"wrote \S+/tokens/", log)) == 2
    runs = [json.loads((tmp / "multirun" / str(j) / "run.json").read_text()) for j in range(4)]
    assert len({r["artifacts"]["features"] for r in runs}) == 1
    assert len({r["artifacts"]["tokens"] for r in runs}) == 2


def test_each_job_reports_its_best_dev_epoch_and_publishes_that_model(multirun):
    """What a sweeper ranks on (metrics.json's monitor) is the best logged dev score, and the
    base model each job publishes to the cache is that epoch's checkpoint."""
    import pandas as pd
    import torch

    tmp, _ = multirun
    for job in range(4):
        folder = tmp / "multirun" / str(job)
        metrics = json.loads((folder / "metrics.json").read_text())
        logged = pd.read_csv(next((folder / "csv").rglob("metrics.csv")))["val/mlm_acc"].dropna()
        assert metrics["val/mlm_acc"] == pytest.approx(logged.max())
        published = torch.load(metrics["checkpoint"], weights_only=True)["state_dict"]
        best = torch.load(folder / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
        assert published.keys() == best.keys() and all(
            torch.equal(published[k], best[k]) for k in best
        )


def test_summary_tables_and_plots_every_job(multirun, tmp_path, capsys):
    import matplotlib.image

    tmp, _ = multirun
    # a copy of the multirun in which job 3 never finished
    copy = tmp_path / "multirun"
    shutil.copytree(tmp / "multirun", copy, ignore=shutil.ignore_patterns("*.ckpt", "csv", "*.png"))
    (copy / "3" / "metrics.json").unlink()
    table = summarize_sweep(copy)

    assert list(table.columns[:5]) == [
        "job",
        "status",
        "model.heads",
        "model.layers",
        "tokenizer.vocab_size",
    ]
    assert sorted(zip(table.job, table["model.layers"], table["tokenizer.vocab_size"])) == [
        ("0", 2, 16),
        ("1", 2, 32),
        ("2", 4, 16),
        ("3", 4, 32),
    ]
    assert table.status.tolist()[-1] == "missing" and (table.status == "done").sum() == 3
    done = table[table.status == "done"]
    for job, acc in zip(done.job, done["val/mlm_acc"]):
        assert acc == pytest.approx(
            json.loads((copy / job / "metrics.json").read_text())["val/mlm_acc"]
        )
    assert done[
        "val/mlm_acc"
    ].is_monotonic_decreasing  # best first on dev (monitor_mode max), never test
    dev = {
        j: json.loads((copy / j / "metrics.json").read_text())["val/mlm_acc"]
        for j in ("0", "1", "2")
    }
    assert table.job[0] == max(dev, key=dev.get)  # the job the summary picks is the best on dev
    printed = capsys.readouterr().out
    assert printed.startswith(
        "| job | status | model.heads | model.layers | tokenizer.vocab_size | val/mlm_acc |"
    )
    assert (copy / "summary.csv").read_text().count("\n") == 5
    image = matplotlib.image.imread(copy / "summary.png")
    assert image.ndim == 3 and image.shape[1] > 3 * image.shape[0] / 2  # three panels side by side


def test_summary_refuses_a_folder_without_jobs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no job folder with config.yaml"):
        summarize_sweep(tmp_path)


# ---------------------------------------------------------------------------- optional plugins
@pytest.mark.skipif(
    not has_plugin("hydra_optuna_sweeper"),
    reason="hydra-optuna-sweeper not installed (pip install -e .[sweep])",
)
def test_optuna_preset_searches_lr_mask_rate_and_width():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    cfg = hydra_cfg("experiment=mlm", "sweep=optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert cfg.task.monitor_mode == "max"
    parser = OverridesParser.create()
    space = {
        k: create_optuna_distribution_from_override(parser.parse_override(f"{k}={v}"))
        for k, v in sweeper.params.items()
    }
    lr, mask, width = (
        space["task.params.lr"],
        space["task.params.mask_rate"],
        space["model.d_model"],
    )
    assert (lr.low, lr.high, type(lr).__name__) == (1e-4, 3e-3, "LogUniformDistribution")
    assert (mask.low, mask.high) == (0.10, 0.40)
    assert all(d % cfg.model.heads == 0 for d in width.choices)


@pytest.mark.slow
@pytest.mark.skipif(
    not has_plugin("hydra_optuna_sweeper"),
    reason="hydra-optuna-sweeper not installed (pip install -e .[sweep])",
)
def test_optuna_study_runs_two_trials(tmp_path):
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "experiment=mlm",
        "sweep=optuna",
        "hydra.sweeper.n_trials=2",
        "model=tiny",
        "model.d_model=choice(32,64)",
        "data.n_events=60",
        "trainer.max_epochs=1",
        "tokenizer.vocab_size=16",
        "logger=csv",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        *QUIET,
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = OmegaConf.load(tmp_path / "multirun" / "optimization_results.yaml")
    trials = {}
    for metrics_file in (tmp_path / "multirun").glob("*/metrics.json"):
        cfg = OmegaConf.load(metrics_file.parent / "config.yaml")
        trials[(cfg.task.params.lr, cfg.model.d_model)] = json.loads(metrics_file.read_text())[
            "val/mlm_acc"
        ]
    assert len(trials) == 2  # Optuna's best is the trial with the best dev score, with its settings
    assert best.best_value == pytest.approx(max(trials.values()))
    assert (best.best_params["task.params.lr"], best.best_params["model.d_model"]) == pytest.approx(
        max(trials, key=trials.get)
    )


@pytest.mark.skipif(
    not has_plugin("hydra_submitit_launcher"),
    reason="hydra-submitit-launcher not installed (pip install -e .[sweep])",
)
def test_slurm_preset_becomes_an_sbatch_script(tmp_path, monkeypatch):
    """The preset's keys, mapped as the launcher maps them, give the sbatch options we expect."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    monkeypatch.setattr(
        submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1)
    )  # no srun here

    cfg = hydra_cfg(
        "experiment=mlm",
        "sweep=[grid,slurm]",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=720",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert sweep_values(cfg)["model.layers"] == [2, 4, 8, 12]  # the grid rides along
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("SlurmLauncher")
    executor = submitit.AutoExecutor(
        folder=params.pop("submitit_folder"),
        cluster="slurm",
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python train.py", "uid")
    for option in (
        "--partition=gpu",
        "--time=720",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=64GB",
    ):
        assert f"#SBATCH {option}" in script, option
