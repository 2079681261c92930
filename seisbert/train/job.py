"""What ``train.py`` does, step by step: validate, record the run, dispatch the task."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import hydra.utils
from omegaconf import DictConfig, OmegaConf

from seisbert.artifacts.cache import check_verify_mode
from seisbert.artifacts.paths import stage_path
from seisbert.config import build, check_arguments, check_choice, check_range
from seisbert.logs import terminal_progress_only
from seisbert.pipeline import prepare
from seisbert.tasks.monitors import check_monitors

log = logging.getLogger(__name__)

# Groups whose node is a config dataclass (``_target_``), checked before any work.
VALIDATED_GROUPS = ("data", "unlabeled", "split", "features", "tokenizer", "model", "baseline")
# Root keys that are config groups; the other root keys are RunConfig's fields.
ROOT_GROUPS = (*VALIDATED_GROUPS, "task", "trainer", "logger", "callbacks", "paths")
STAGES = ("records", "features", "tokens")


@dataclass
class RunConfig:
    """The root keys of ``configs/train.yaml`` besides its groups."""

    seed: int = 0  # training seed; data, split and tokenizer have their own
    torch_threads: int | None = None  # CPU threads for torch (None: torch's default)
    ckpt_path: str | None = None  # "last" resumes this run folder's last checkpoint, or a path
    test_after_fit: bool = True

    def __post_init__(self):
        if self.torch_threads is not None:
            check_range("torch_threads", self.torch_threads, 1)


@dataclass
class TaskConfig:
    """The task node (``configs/task/``); ``params`` is the task's own dataclass."""

    name: str
    until: str = "tokens"  # last data stage the task needs: records | features | tokens
    runner: str | None = None  # function (cfg, artifacts) -> metrics; None: prepare only
    monitor: str | None = None  # metric a checkpoint and a sweeper optimise
    monitor_mode: str = "max"
    params: dict | None = None
    baseline: str | None = None  # baseline tasks: rf | hgb | cnn
    labels: int | None = None  # baseline tasks: labelled training records; None = all
    subset_seed: int = 0

    def __post_init__(self):
        check_choice("task.until", self.until, STAGES)
        check_choice("task.monitor_mode", self.monitor_mode, ("min", "max"))
        if self.runner is not None:
            try:
                hydra.utils.get_method(self.runner)
            except Exception as err:
                raise ValueError(f"task.runner={self.runner!r} cannot be imported: {err}") from None


def validate(cfg: DictConfig) -> None:
    """Check every key and value before any work: root keys, every config dataclass, the
    task node, the trainer/callbacks/logger arguments (against the classes' signatures,
    nothing built) and the keys that two groups must agree on."""
    build(
        {"_target_": f"{__name__}.RunConfig", **{k: cfg[k] for k in cfg if k not in ROOT_GROUPS}},
        "",
    )
    check_data_window(cfg)  # before the sources are built: they may look for files
    for group in VALIDATED_GROUPS:
        if group in cfg and cfg[group] is not None:
            built = build(cfg[group], group)
            if hasattr(built, "check_paths"):  # a source's folders and files, before any work
                built.check_paths()
    check_verify_mode(cfg.paths.verify)
    task = OmegaConf.to_container(cfg.task, resolve=True)
    build({"_target_": f"{__name__}.TaskConfig", **task}, "task")
    if "params" in cfg.task:
        check_shared_params(build(cfg.task.params, "task.params"))
    check_arguments(cfg.trainer, "trainer", exclude=("callbacks", "logger"))
    for group in ("callbacks", "logger"):
        for name, node in (cfg.get(group) or {}).items():
            if (
                node is not None and "_target_" in node
            ):  # a leftover (W&B tags with logger=csv) builds nothing
                check_arguments(node, f"{group}.{name}")
    check_monitors(cfg)  # a monitor nothing logs fails only after an epoch otherwise


# Knobs the training tasks' params share, checked whatever dataclass holds them:
# name -> (low, high, low excluded).
SHARED_PARAMS = {
    "batch_size": (1, None, False),
    "lr": (0.0, None, True),
    "weight_decay": (0.0, None, False),
    "num_workers": (0, None, False),
    "warmup_frac": (0.0, 1.0, False),
    "min_lr_frac": (0.0, 1.0, False),
}


def check_shared_params(params) -> None:
    """batch size, learning rate, ... in range for any task's params (they fail late otherwise)."""
    for name, (lo, hi, lo_open) in SHARED_PARAMS.items():
        value = getattr(params, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check_range(f"task.params.{name}", value, lo, hi, lo_open)


def check_data_window(cfg: DictConfig) -> None:
    """The records a data source cuts must hold the feature window, and their channels agree."""
    if cfg.data.get("unknown_type") == "keep":
        raise ValueError(
            "data.unknown_type=keep keeps records of no class; training needs a class for "
            "every record (seisbert predict keeps them by itself): leave data.unknown_type=reject, "
            "and pretrain on records of unknown type as an unlabeled pool "
            "(unlabeled=waveforms|file_list|seisbench)"
        )
    if cfg.data.get("channels", "Z") != cfg.features.channels:
        raise ValueError(
            f"data.channels={cfg.data.get('channels', 'Z')!r} and features.channels="
            f"{cfg.features.channels!r} must agree"
        )
    for side in ("pre_s", "post_s"):
        data_s, features_s = cfg.data.get(side), cfg.features.get(side)
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (data_s, features_s)
        )
        if numbers and data_s < features_s:  # other types: the groups' dataclasses name them
            raise ValueError(
                f"data.{side}={data_s} is shorter than features.{side}={features_s}: "
                f"the records cannot hold the feature window; set data.{side} >= {features_s}"
            )


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_run_info(cfg: DictConfig) -> None:
    """Save the resolved config, git commit and artifact hashes in the run folder."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    info = {
        "git_commit": git_commit(),
        "artifacts": {s: str(stage_path(cfg, s)) for s in ("records", "features", "tokens")},
    }
    (out / "run.json").write_text(json.dumps(info, indent=2))


def train_job(cfg: DictConfig) -> dict:
    """Build the data artifacts the task needs, then run it; returns its final metrics."""
    terminal_progress_only(cfg)
    if cfg.get("torch_threads") is not None:
        import torch

        torch.set_num_threads(int(cfg.torch_threads))
    until = cfg.task.get("until", "tokens")
    artifacts = prepare(cfg, until)
    runner = cfg.task.get("runner")
    if runner is None:
        log.info("artifacts ready: %s", {k: str(v) for k, v in artifacts.items()})
        return {}
    return hydra.utils.get_method(runner)(cfg, artifacts)
