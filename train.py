"""Train SeisBert: ``python train.py experiment=mlm_nsp model.layers=12``.

Reads as a list of steps (lightning-hydra-template style): validate the composed config,
build or reuse the cached data artifacts, then run the task (prepare, pretrain,
finetune or a baseline) and return the metric a sweeper optimises.
"""

import logging

import hydra
from omegaconf import DictConfig

from seisbert.logs import hydra_log_file, setup_logging
from seisbert.train.job import train_job, validate, write_run_info
from seisbert.train.loggers import finish_wandb
from seisbert.train.schemas import register

log = logging.getLogger(__name__)


register()  # the config dataclasses' defaults, which the YAML presets extend


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    setup_logging(hydra_log_file())  # seisbert at INFO, libraries at WARNING, each line once
    validate(cfg)  # every key checked before any work
    write_run_info(cfg)  # resolved config, git commit, artifact hashes
    try:
        metrics = train_job(cfg)
    finally:
        finish_wandb()  # this job's W&B run, so the next job of a multirun opens its own
    monitor = cfg.task.get("monitor")
    return None if monitor is None else metrics.get(monitor)


if __name__ == "__main__":
    main()
