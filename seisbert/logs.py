"""One logging setup for ``train.py`` and every script: a console a user can read.

seisbert's loggers (and the calling script's) speak at INFO; every library stays at
WARNING, so FAISS's loader fallbacks and Lightning's banners are gone. Lightning installs a
handler of its own on the ``lightning`` logger besides the root's, which printed each of its
messages twice: it is removed here, so every record goes through the root's handlers once.
Progress bars are drawn only on a terminal: in a file their carriage returns make one
unreadable line per bar. There, :class:`EpochLog` logs one line of metrics per epoch instead.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Iterable

# imported before the handlers are set up: lightning adds its own handler at import, which
# setup_logging removes; imported later, it would bring the duplicates back
import lightning as L

APP_LOGGERS = ("seisbert", "__main__")  # INFO; everything else inherits the root's WARNING
# loggers that set their own level or handler at import (so the root's level is not enough)
LIBRARY_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "pytorch_lightning",
    "lightning_fabric",
)
CONSOLE_FORMAT = "%(asctime)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# library warnings about their own internals, nothing a user can act on: Lightning's deprecation
# against torch, UMAP's note that a seeded (reproducible) fit runs on one thread
IGNORED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r"n_jobs value .* overridden to 1 by setting random_state",
    # a study or demo reruns into its own run folder on purpose (best/last are rewritten)
    r"Checkpoint directory .* exists and is not empty",
    # tiny label subsets have fewer batches than log_every_n_steps: nothing to fix
    r"The number of training batches .* is smaller than the logging interval",
)


def on_terminal(stream=None) -> bool:
    """Whether ``stream`` (default stderr, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def process_rank() -> int:
    """Global rank from the launcher's environment (0 outside distributed runs)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def setup_logging(log_file: str | Path | None = None, app_loggers: Iterable[str] = ()) -> None:
    """Configure logging for a run or a script: the root's handlers (console on stdout, and
    ``log_file``) at WARNING, seisbert's and ``app_loggers`` (a script's own) at INFO on rank 0,
    Python warnings as log lines, no progress bars off a terminal. Idempotent."""
    _root_handlers(log_file)
    for name in LIBRARY_LOGGERS:  # their own handler goes: records reach the root's once
        lib = logging.getLogger(name)
        for handler in list(lib.handlers):
            lib.removeHandler(handler)
        lib.setLevel(logging.WARNING)
        lib.propagate = True
    level = logging.INFO if process_rank() == 0 else logging.WARNING  # DDP: one rank talks
    for name in (*APP_LOGGERS, *app_loggers):
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)  # Python warnings reach the log file too, in one format
    py_warnings = logging.getLogger("py.warnings")
    if not any(isinstance(f, _OneLine) for f in py_warnings.filters):
        py_warnings.addFilter(_OneLine())
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    if not on_terminal():
        quiet_progress_bars()


def _root_handlers(log_file: str | Path | None) -> None:
    """Replace the root's handlers (Hydra's, an earlier call's) with ours; root at WARNING."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if isinstance(handler, logging.FileHandler):  # Hydra's log file: ours reopens it
            handler.close()
    console = _Stdout()
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(console)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(log_file)
        file.setFormatter(logging.Formatter(FILE_FORMAT))
        root.addHandler(file)
    root.setLevel(logging.WARNING)


class _Stdout(logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is at each record (a redirect, a test's capture), not
    to the stream that was current when the handler was made."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; stdout is read live
        pass


class _OneLine(logging.Filter):
    """A captured warning is ``file:line: Category: message``, then the source line and a
    newline (``warnings.formatwarning``): keep the first part, no quoted code, no blank line."""

    def filter(self, record: logging.LogRecord) -> bool:
        lines = record.getMessage().rstrip().split("\n")
        if len(lines) > 1 and lines[-1].startswith("  "):
            lines = lines[:-1]  # the quoted source line
        record.msg, record.args = "\n".join(lines), ()
        return True


def quiet_progress_bars() -> None:
    """Disable every tqdm bar (seisbert's and libraries'), even one asked for explicitly.

    Callers pass ``disable=not progress``; off a terminal, that request is overridden here
    rather than in each of them, so no bar writes carriage returns to a file.
    """
    from tqdm import std

    if getattr(std.tqdm.__init__, "_seisbert_quiet", False):
        return
    init = std.tqdm.__init__

    def quiet_init(self, *args, **kwargs):
        kwargs["disable"] = True
        init(self, *args, **kwargs)

    quiet_init._seisbert_quiet = True
    std.tqdm.__init__ = quiet_init


class EpochLog(L.Callback):
    """One log line per training epoch: epoch, optimizer steps so far, the train/* metrics of
    the epoch's last logged step (what a progress bar shows) and the val/* metrics of the
    validation since the previous line. Only off a terminal (a file or a pipe), where no
    progress bar shows them. Also logs the module's parameter count once per fit."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = not on_terminal(sys.stdout) if enabled is None else enabled
        self._val: dict[str, float] = {}

    def on_fit_start(self, trainer, pl_module) -> None:
        n = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        if trainer.is_global_zero:
            logging.getLogger("seisbert.train").info(
                "%s: %.2fM parameters (%.2fM trainable)",
                type(pl_module).__name__,
                n / 1e6,
                trainable / 1e6,
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        # after the module's own on_validation_epoch_end, where fine-tuning logs its val/* scores
        if not trainer.sanity_checking:
            self._val = _scalars(trainer.callback_metrics, "val/")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        metrics = {**_scalars(trainer.callback_metrics, "train/"), **self._val}
        self._val = {}
        logging.getLogger("seisbert.train").info(
            "%s: %s",
            progress_of(trainer),
            "  ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())) or "no metrics",
        )


def progress_of(trainer) -> str:
    """``epoch 3/20 step 150`` or, when a step budget ends the run, ``epoch 3 step 150/1500``."""
    epoch, step = trainer.current_epoch + 1, trainer.global_step
    if trainer.max_steps is not None and trainer.max_steps > 0:
        return f"epoch {epoch} step {step}/{trainer.max_steps}"
    total = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else "?"
    return f"epoch {epoch}/{total} step {step}"


def log_summary(title: str, rows: dict[str, str], warnings: list[str] = ()) -> None:
    """The end-of-run block: where the outputs are and the scores, then any warnings."""
    logger = logging.getLogger("seisbert.summary")
    width = max(map(len, rows), default=0)
    lines = [f"== {title} =="] + [f"  {k:<{width}}  {v}" for k, v in rows.items()]
    logger.info("\n".join(lines))
    for text in warnings:
        logger.warning("%s", text)


def _scalars(metrics: dict, prefix: str) -> dict[str, float]:
    """The scalar metrics whose names start with ``prefix`` (``_step``/``_epoch`` twins dropped)."""
    out = {}
    for key, value in metrics.items():
        if (
            key.startswith(prefix)
            and not key.endswith("_step")
            and getattr(value, "numel", lambda: 1)() == 1
        ):
            out[key.removesuffix("_epoch")] = float(value)
    return out


def hydra_log_file() -> Path | None:
    """The log file Hydra's job logging names for this run (``hydra.job_logging``), if any."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    file = (HydraConfig.get().job_logging.get("handlers") or {}).get("file")
    return None if file is None else Path(file.filename)


def terminal_progress_only(cfg) -> None:
    """Off a terminal, no Lightning progress bar: ``trainer.enable_progress_bar`` is switched
    off and progress-bar callbacks are dropped from ``cfg`` (EpochLog logs each epoch instead)."""
    if on_terminal(sys.stdout):
        return
    import hydra.utils
    from lightning.pytorch.callbacks import ProgressBar
    from omegaconf import open_dict

    callbacks = cfg.get("callbacks") or {}
    bars = [
        name
        for name, node in callbacks.items()
        if node is not None
        and "_target_" in node
        and issubclass(hydra.utils.get_class(node._target_), ProgressBar)
    ]
    with open_dict(cfg):
        cfg.trainer.enable_progress_bar = False
        for name in bars:
            del cfg.callbacks[name]
