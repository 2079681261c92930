"""Fetch an FDSN dataset into the ``data=waveforms`` layout (seisbert/data/fdsn.py).

    python scripts/build_fdsn_dataset.py out=/data/utah provider=IRIS networks=UU \\
        start=2012-01-01 end=2013-01-01 region='[36.75,42.5,-114.25,-108.75]'

Keys and defaults: configs/fdsn.yaml. Run it again to resume: finished events are skipped.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from seisbert.config import build
from seisbert.data.fdsn import FdsnBuilder

ROOT = Path(__file__).resolve().parents[1]  # this checkout's configs/

log = logging.getLogger("build_fdsn_dataset")


def main(overrides: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = build(compose("fdsn", overrides=overrides), "fdsn")
    counts = FdsnBuilder(cfg).run()
    log.info(
        "train or predict on it: data=waveforms data.waveform_dir=%s/waveforms "
        "data.catalog=%s/catalog.xml data.inventory=%s/stations.xml",
        cfg.out,
        cfg.out,
        cfg.out,
    )
    return counts


if __name__ == "__main__":
    main(sys.argv[1:])
