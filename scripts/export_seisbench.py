"""Export a record set to SeisBench's format (metadata.csv + waveforms.hdf5).

    python scripts/export_seisbench.py OUT_DIR [hydra overrides]
    python scripts/export_seisbench.py exports/synthetic data.n_events=200
    python scripts/export_seisbench.py exports/mine data=waveforms data.waveform_dir=... \
        data.catalog=...

Any data source works (``data=synthetic`` by default). The records are those training
uses: the records cache (``cache/records/<hash>/``), built first when missing;
``--no-cache`` loads the source directly. Splits: a ``split`` column the records
already carry (``data=seisbench``), else drawn by event with ``split.fractions`` and
``split.seed`` (``seisbert.data.splits.split_by_event``, the rule training applies).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from seisbert.config import build
from seisbert.data.records import RecordSet
from seisbert.data.seisbench_format import export_seisbench
from seisbert.data.splits import split_by_event
from seisbert.logs import setup_logging
from seisbert.train.schemas import register

ROOT = Path(__file__).resolve().parents[1]  # this checkout's configs/

log = logging.getLogger("export_seisbench")


def config(overrides: list[str], config_name: str = "train") -> DictConfig:
    register()  # the config dataclasses' defaults, which the YAML presets extend
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name, overrides=overrides)


def load_records(cfg: DictConfig, use_cache: bool = True, progress: bool = True) -> RecordSet:
    """The configured source's records: from the records cache, or built directly."""
    if not use_cache:
        return build(cfg.data, "data").load(progress=progress)
    from seisbert import pipeline

    return pipeline.load_records(pipeline.records_artifact(cfg))


def record_splits(records: RecordSet, cfg: DictConfig):
    """train/dev/test per record: the records' own ``split`` column, else drawn by event."""
    meta = records.metadata
    if "split" in meta.columns and meta["split"].notna().all():
        return meta["split"].to_numpy()
    scfg = build(cfg.split, "split")
    return split_by_event(meta["event_id"], scfg.fractions, scfg.seed)


def export_from_config(
    cfg: DictConfig, out_dir: str | Path, use_cache: bool = True, progress: bool = True
) -> Path:
    records = load_records(cfg, use_cache, progress)
    split = record_splits(records, cfg)
    return export_seisbench(records, split, out_dir, progress=progress)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="folder to write metadata.csv and waveforms.hdf5 into")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=waveforms")
    parser.add_argument("--no-cache", action="store_true", help="load the source, skip the cache")
    args = parser.parse_args(argv)
    setup_logging(app_loggers=[log.name])
    out = export_from_config(config(args.overrides), args.out_dir, use_cache=not args.no_cache)
    print(f"SeisBench dataset written to {out}")


if __name__ == "__main__":
    main()
