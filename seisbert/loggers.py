"""Logger factories: W&B offline unless the user has opted in to online sync."""

from __future__ import annotations

import os


def wandb_offline() -> bool:
    """Offline unless WANDB_MODE says online or an API key is configured."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return True
    return not (mode == "online" or os.environ.get("WANDB_API_KEY"))


def wandb_logger(**kwargs):
    from lightning.pytorch.loggers import WandbLogger

    os.makedirs(kwargs.get("save_dir", "."), exist_ok=True)
    return WandbLogger(offline=wandb_offline(), **kwargs)
