"""The metric a callback monitors must be one the task's LightningModule logs while fitting.

Lightning refuses a metric nobody logs only after the first validation, once the records,
features and tokens are built and an epoch ran; ``check_monitors`` refuses it before any work.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from seisbert.config import build
from seisbert.tasks.finetune import FinetuneConfig, FinetuneModule
from seisbert.tasks.pretrain import PretrainConfig, PretrainModule

# A task's params dataclass -> the LightningModule it fits.
MODULES = {PretrainConfig: PretrainModule, FinetuneConfig: FinetuneModule}


def task_fit_metrics(cfg: DictConfig) -> tuple[str, ...] | None:
    """The metrics the task's module logs while fitting; None for a task that fits none with
    the configured callbacks (prepare, the baselines)."""
    if cfg.task.get("params") is None:
        return None
    params = build(cfg.task.params, "task.params")
    module = MODULES.get(type(params))
    return None if module is None else module.fit_metrics(params)


def check_monitors(cfg: DictConfig) -> None:
    """Each callback's ``monitor`` (model_checkpoint, early_stopping, ...) is a metric the task
    logs while fitting."""
    logged = task_fit_metrics(cfg)
    if logged is None:
        return
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig) or "monitor" not in node:
            continue
        monitor = OmegaConf.select(
            cfg, f"callbacks.{name}.monitor", throw_on_resolution_failure=False
        )
        if monitor is None or monitor in logged:
            continue
        written = OmegaConf.to_container(node)["monitor"]  # ${task.monitor} by default
        via = f" (from {written})" if OmegaConf.is_interpolation(node, "monitor") else ""
        raise ValueError(
            f"callbacks.{name}.monitor={monitor!r}{via} is not a metric task "
            f"{cfg.task.name} logs while fitting; choose one of {list(logged)}"
        )
