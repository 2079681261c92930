"""Analysis of what the model learned: vocabulary quality, token views, attention.

Modules import heavy dependencies (scikit-learn, matplotlib, umap) inside functions,
so importing the package is cheap and does no work.
"""

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def save_figure(fig, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` (folders made as needed), close it, and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    log.info("wrote %s", path)
    return path
