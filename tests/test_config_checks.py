"""Trainer, callback and task values that Lightning or a task refuses only once it is built are
refused by train.py's first step, before any records, features or tokens exist."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import compose_cfg

from seisbert.tasks.monitors import check_monitors, task_fit_metrics
from seisbert.train.job import STAGES, train_job, validate

# (experiment, override, the message's key, value and what is allowed)
REFUSED = [
    (
        "finetune",
        "trainer.accelerator=gpux",
        r"trainer\.accelerator='gpux' is not allowed; choose one of \['auto', 'gpu', .*'cpu'",
    ),
    (
        "finetune",
        "trainer.max_epochs=-5",
        r"trainer\.max_epochs=-5 is out of range; allowed \[-1, inf\]",
    ),
    (
        "finetune",
        "callbacks.model_checkpoint.mode=maximum",
        r"callbacks\.model_checkpoint\.mode='maximum' is not allowed; choose one of \['min', "
        r"'max'\]",
    ),
    (
        "finetune",
        "task.params.batch_size=0",
        r"task\.params\.batch_size=0 is out of range; allowed \[1, inf\]",
    ),
    (
        "mlm",
        "task.params.batch_size=0",
        r"task\.params\.batch_size=0 is out of range; allowed \[1, inf\]",
    ),
    ("finetune", "trainer.devices=0", r"trainer\.devices=0 is out of range; allowed \[1, inf\]"),
    (
        "finetune",
        "trainer.devices=-1",  # every device: not on a CPU
        r"trainer\.devices=-1 is out of range; allowed \[1, inf\]",
    ),
    (
        "finetune",
        "trainer.max_steps=-3",
        r"trainer\.max_steps=-3 is out of range; allowed \[-1, inf\]",
    ),
    (
        "finetune",
        "trainer.precision=bf17",
        r"trainer\.precision='bf17' is not allowed by .*'bf16-mixed'",
    ),
    (
        "finetune",
        "trainer.val_check_interval=1.5",
        r"trainer\.val_check_interval=1\.5 is not allowed; choose a fraction in \[0\.0, 1\.0\] or",
    ),
    (
        "finetune",
        "trainer.val_check_interval=0",
        r"trainer\.val_check_interval=0 is not allowed; choose a fraction in \(0\.0, 1\.0\]",
    ),
    (
        "finetune",
        "++trainer.limit_train_batches=-1",
        r"trainer\.limit_train_batches=-1 is not allowed",
    ),
    (
        "finetune",
        "trainer.check_val_every_n_epoch=0",
        r"trainer\.check_val_every_n_epoch=0 is out of range; allowed \[1, inf\]",
    ),
    (
        "finetune",
        "++trainer.strategy=ddpx",
        r"trainer\.strategy='ddpx' is not allowed; choose one of \['auto', 'ddp'",
    ),
    (
        "finetune",
        "++trainer.num_nodes=0",
        r"trainer\.num_nodes=0 is out of range; allowed \[1, inf\]",
    ),
    (
        "finetune",
        "++trainer.accumulate_grad_batches=0",
        r"trainer\.accumulate_grad_batches=0 is out of range; allowed \[1, inf\]",
    ),
    (
        "finetune",
        "++trainer.gradient_clip_algorithm=clip",
        r"trainer\.gradient_clip_algorithm='clip' is not allowed; choose one of \['value', "
        r"'norm'\]",
    ),
    (
        "finetune",
        "trainer.gradient_clip_val=-1",  # Lightning would turn clipping off without a word
        r"trainer\.gradient_clip_val=-1 is out of range; allowed \[0\.0, inf\]",
    ),
    (
        "finetune",
        "callbacks.model_checkpoint.save_top_k=-2",
        r"callbacks\.model_checkpoint\.save_top_k=-2 is out of range; allowed \[-1, inf\]",
    ),
    (
        "finetune",
        "+callbacks.early_stopping={_target_:lightning.pytorch.callbacks.EarlyStopping,"
        "monitor:val/loss,mode:lowest}",
        r"callbacks\.early_stopping\.mode='lowest' is not allowed; choose one of \['min', 'max'\]",
    ),
    ("finetune", "task.params.lr=0", r"task\.params\.lr=0 is out of range; allowed \(0\.0, inf\]"),
    ("mlm", "task.params.lr=0", r"task\.params\.lr=0 is out of range; allowed \(0\.0, inf\]"),
    (
        "finetune",
        "task.params.warmup_frac=1.5",
        r"task\.params\.warmup_frac=1\.5 is out of range; allowed \[0\.0, 1\.0\]",
    ),
    (
        "mlm",
        "task.params.num_workers=-1",
        r"task\.params\.num_workers=-1 is out of range; allowed \[0, inf\]",
    ),
]


def train(cfg) -> None:
    """What train.py does after composing: validate, then run the task."""
    validate(cfg)
    train_job(cfg)


@pytest.mark.parametrize(
    "experiment, override, message", REFUSED, ids=[f"{r[0]}:{r[1][:60]}" for r in REFUSED]
)
def test_a_bad_value_is_refused_before_any_data_stage(tmp_path, experiment, override, message):
    cache = tmp_path / "cache"
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}", override], cache)
    with pytest.raises(ValueError, match=message):
        train(cfg)
    assert not [s for s in STAGES if (cache / s).exists()], "a data stage ran before the refusal"


@pytest.mark.parametrize(
    "overrides",
    [
        [
            "trainer.max_epochs=-1",
            "trainer.max_steps=1500",
            "trainer.val_check_interval=300",
            "trainer.check_val_every_n_epoch=null",
        ],  # the paper's step-budgeted pretraining
        [
            "trainer.max_epochs=0",
            "trainer.val_check_interval=0.25",
            "++trainer.limit_val_batches=0",
        ],
        ["trainer=gpu", "trainer.devices=-1"],  # -1: every GPU
        ["trainer=ddp", "trainer.strategy=DDP"],  # Lightning lower-cases the strategy
        [
            "trainer.devices=auto",
            "callbacks.model_checkpoint.mode=min",
            "callbacks.model_checkpoint.save_top_k=-1",
        ],
        ["++trainer.gradient_clip_algorithm=NORM", "task.params.lr=1e-6"],
        ["trainer.gradient_clip_val=0"],  # no clipping, said plainly
    ],
)
def test_values_lightning_accepts_pass(tmp_path, overrides):
    validate(compose_cfg(tmp_path, ["experiment=mlm", *overrides]))


def test_an_accelerator_lightning_registers_is_accepted(tmp_path, monkeypatch):
    """The allowed accelerators are Lightning's registry, not a copy of it."""
    from lightning.pytorch.accelerators import AcceleratorRegistry, CPUAccelerator

    cfg = compose_cfg(tmp_path, ["experiment=mlm", "trainer.accelerator=abacus"])
    with pytest.raises(ValueError, match="trainer.accelerator='abacus' is not allowed"):
        validate(cfg)
    monkeypatch.setitem(
        AcceleratorRegistry,
        "abacus",
        {"accelerator": CPUAccelerator, "description": "", "init_params": {}},
    )
    validate(cfg)


# (experiment, override, the message's key, value and the metrics the task logs)
UNLOGGED_MONITORS = [
    (
        "finetune",
        "callbacks.model_checkpoint.monitor=val/acc",
        r"callbacks\.model_checkpoint\.monitor='val/acc' is not a metric task finetune logs "
        r"while fitting; choose one of \['train/loss', 'val/n', 'val/accuracy', "
        r"'val/balanced_accuracy',",
    ),
    (
        "mlm",
        "task.monitor=val/acc",
        r"callbacks\.model_checkpoint\.monitor='val/acc' \(from \$\{task\.monitor\}\) is not "
        r"a metric task mlm logs while fitting; choose one of \[.*'val/mlm_acc'",
    ),
    (
        "mlm",
        "task.params.target=psd",  # no MLM head: nothing logs the default val/mlm_acc
        r"callbacks\.model_checkpoint\.monitor='val/mlm_acc' \(from \$\{task\.monitor\}\) .* "
        r"choose one of \[.*'val/psd_mse'",
    ),
    (
        "finetune",
        "+callbacks.early_stopping={_target_:lightning.pytorch.callbacks.EarlyStopping,"
        "monitor:val/loss}",
        r"callbacks\.early_stopping\.monitor='val/loss' is not a metric task finetune logs",
    ),
]


@pytest.mark.parametrize(
    "experiment, override, message",
    UNLOGGED_MONITORS,
    ids=[f"{r[0]}:{r[1][:60]}" for r in UNLOGGED_MONITORS],
)
def test_a_monitor_the_task_never_logs_is_refused(tmp_path, experiment, override, message):
    with pytest.raises(ValueError, match=message):
        check_monitors(compose_cfg(tmp_path, [f"experiment={experiment}", override]))


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=mlm"],
        ["experiment=mlm_nsp", "task.monitor=val/sl_acc"],
        ["experiment=mlm_psd_regress"],
        ["experiment=finetune", "task.monitor=val/event_balanced_accuracy"],
        ["experiment=finetune", "callbacks.model_checkpoint.monitor=train/loss"],
        ["experiment=mlm", "task=prepare"],  # fits nothing
        ["experiment=finetune", "task=baseline", "baseline=rf"],  # builds its own trainer
    ],
)
def test_a_monitor_the_task_logs_passes(tmp_path, overrides):
    check_monitors(compose_cfg(tmp_path, overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=scratch"],
        ["experiment=mlm_nsp", "task.params.psd_weight=0.5"],  # every head of pretraining
    ],
)
def test_the_metrics_a_task_declares_are_those_its_fit_logs(tiny_cfg, overrides):
    cfg = tiny_cfg(
        *overrides,
        "logger=csv",
        "trainer.max_epochs=1",
        "++trainer.log_every_n_steps=1",  # fewer batches than the default 10 log no train/ row
        "test_after_fit=false",
    )
    train_job(cfg)
    csv = next((Path(cfg.paths.output_dir) / "csv").rglob("metrics.csv"))
    logged = {c for c in pd.read_csv(csv).columns if c.startswith(("train/", "val/"))}
    assert logged == set(task_fit_metrics(cfg))
