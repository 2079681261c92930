"""What ``train.py`` does, step by step: validate, record the run, dispatch the task."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import hydra.utils
from omegaconf import DictConfig, OmegaConf

from seisbert.config import build
from seisbert.pipeline import prepare, stage_path

log = logging.getLogger(__name__)

# Groups whose node is a config dataclass (``_target_``), checked before any work.
VALIDATED_GROUPS = ("data", "split", "features", "tokenizer", "model", "baseline")


def validate(cfg: DictConfig) -> None:
    """Instantiate every config dataclass: unknown keys and bad values fail here."""
    for group in VALIDATED_GROUPS:
        if group in cfg and cfg[group] is not None:
            build(cfg[group], group)
    if "params" in cfg.task:
        build(cfg.task.params, "task.params")
    if cfg.data.get("channels", "Z") != cfg.features.channels:
        raise ValueError(f"data.channels={cfg.data.get('channels', 'Z')!r} and features.channels="
                         f"{cfg.features.channels!r} must agree")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_run_info(cfg: DictConfig) -> None:
    """Save the resolved config, git commit and artifact hashes in the run folder."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    info = {"git_commit": git_commit(),
            "artifacts": {s: str(stage_path(cfg, s)) for s in ("records", "features", "tokens")}}
    (out / "run.json").write_text(json.dumps(info, indent=2))


def run_task(cfg: DictConfig) -> dict:
    """Build the data artifacts the task needs, then run it; returns its final metrics."""
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
