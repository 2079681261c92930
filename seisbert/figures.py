"""Figures: the one place the plotting backend is chosen, and figure saving. The bottom layer
every stage may use (analysis sits on top of the stages)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def pyplot():
    """``matplotlib.pyplot``, with the file-only Agg backend unless a backend was chosen first
    (``MPLBACKEND``, or a notebook that imported pyplot): figures are written, never shown."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` (folders made as needed), close it, and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    log.debug("wrote %s", path)  # callers name the folder once
    return path
