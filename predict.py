"""Apply a fine-tuned bundle: ``python predict.py bundle=PATH data=waveforms ...``.

``mode=evaluate`` also scores it against the source's labels. The same as the
``seisbert predict`` / ``seisbert evaluate`` console script (seisbert/inference/cli.py).
"""

import hydra
from omegaconf import DictConfig

from seisbert.inference.cli import apply_bundle
from seisbert.logs import hydra_log_file, setup_logging


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    setup_logging(hydra_log_file())  # the same console as train.py
    apply_bundle(cfg)


if __name__ == "__main__":
    main()
