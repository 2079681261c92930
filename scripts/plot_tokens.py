"""Draw the token views (occurrence heatmap, kinds, UMAP map, centroid spectra) as PNGs.

    python scripts/plot_tokens.py ARTIFACT_DIR --out reports/tokens
    python scripts/plot_tokens.py --demo --out reports/tokens_demo

The body lives in ``seisbert.analysis.token_figures`` (``--help`` lists the options).
"""

from seisbert.analysis.token_figures import main
from seisbert.logs import setup_logging

if __name__ == "__main__":
    setup_logging()
    main()
