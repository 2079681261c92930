"""``seisbert predict|evaluate`` and ``python predict.py``: compose, load, score, write.

    seisbert predict bundle=PATH data=waveforms data.waveform_dir=DIR data.catalog=FILE
    seisbert evaluate bundle=PATH data=seisbench data.path=DIR

Reads as a list of steps: check the composed config, load and check the bundle, read the
source's records (no cache, no split, no tokenizer fit; waveforms streamed to a temporary
file where the source can), score them a chunk at a time, write the tables (and for
``evaluate`` the metrics and figures) into the run folder.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from seisbert.artifacts.pretrained import resolve_bundle
from seisbert.bundle import load_bundle
from seisbert.config import build, check_choice
from seisbert.inference import evaluate, predict
from seisbert.inference.quakeml import write_quakeml
from seisbert.logs import hydra_log_file, log_summary, setup_logging
from seisbert.metrics import collapse_warnings, score_line

log = logging.getLogger(__name__)

MODES = ("predict", "evaluate")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def apply_bundle(cfg: DictConfig) -> dict:
    """One predict or evaluate run; returns the evaluation metrics ({} for predict)."""
    check_choice("mode", cfg.mode, MODES)
    pcfg = build(cfg.predict, "predict")
    bundle = load_bundle(resolve_bundle(cfg.bundle))  # a path, or pretrained:<name>
    with open_dict(cfg):  # the data group may interpolate ${features.*}: the bundle's features
        cfg.features = bundle.info["features"]
        if (
            "unknown_type" in cfg.data
        ):  # predict classifies events of no known type; evaluate cannot
            if cfg.mode == "evaluate" and cfg.data.unknown_type == "keep":
                raise ValueError(
                    "data.unknown_type=keep: evaluate needs the class of every record; "
                    "leave it at reject (or use seisbert predict)"
                )
            cfg.data.unknown_type = "keep" if cfg.mode == "predict" else "reject"
    source = build(cfg.data, "data")
    predict.check_source(bundle, source)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    with tempfile.TemporaryDirectory(prefix=".records-", dir=out) as tmp:
        records = load_streamed(source, Path(tmp), pcfg.show_progress)
        scored = predict.score(bundle, records, pcfg)
        del records  # its waveform file goes with the folder
    table = predict.prediction_table(scored, bundle, pcfg)
    events = predict.event_table(table, pcfg, bundle.class_names)
    predict.write_predictions(out, table, events, scored.rejected)
    write_quakeml(out, events, pcfg.threshold, cfg.data.get("catalog"))
    metrics = {}
    if cfg.mode == "evaluate":
        metrics = evaluate.write_evaluation(
            out, table, pcfg.threshold, pcfg.reliability_bins, bundle.class_names
        )
    summarize(cfg.mode, out, table, events, scored.rejected, metrics, bundle.class_names)
    return metrics


def summarize(mode: str, out: Path, table, events, rejected, metrics: dict, names) -> None:
    """The end-of-run block: outputs, counts and scores; a warning when every record or
    event got one class (with labels: a collapse; without: worth a look)."""
    rows = {
        "outputs": f"{out} (predictions.csv, events.csv, events.xml, rejected.csv)",
        "classified": f"{len(table)} records of {len(events)} events; "
        f"{len(rejected)} records rejected (rejected.csv)",
    }
    if len(events):
        calls = events["decision"].value_counts()
        rows["events called"] = ", ".join(f"{n} {name}" for name, n in calls.items())
    warnings = []
    if metrics:
        rows["per record"] = score_line(metrics)
        rows["per event"] = (
            f"balanced accuracy {metrics['event_balanced_accuracy']:.3f}, "
            f"ROC-AUC {metrics['event_roc_auc']:.3f}"
        )
        warnings = collapse_warnings(metrics, "these records", names)
    elif len(events) > 1 and events["decision"].nunique() == 1:
        warnings = [
            f"every one of the {len(events)} events was called "
            f"'{events['decision'].iloc[0]}'; check the data and predict.threshold"
        ]
    log_summary(f"{mode} finished", rows, warnings)


def load_streamed(source, folder: Path, progress: bool):
    """The source's records; a source that can stream its waveforms to a file (as the records
    stage does) writes them under ``folder`` and they are read back a chunk at a time."""
    if "waveform_path" in inspect.signature(source.load).parameters:
        return source.load(progress=progress, waveform_path=folder / "waveforms.npy")
    return source.load(progress=progress)


def main() -> None:
    """The ``seisbert`` console script: the first argument names the command."""
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.stderr.write(
            f"usage: seisbert {{{'|'.join(MODES)}}} bundle=PATH data=... [overrides]\n"
        )
        raise SystemExit(2)
    mode = sys.argv.pop(1)
    sys.argv.append(f"mode={mode}")
    _hydra_main()


def _hydra_main() -> None:
    import hydra

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
    def entry(cfg: DictConfig) -> None:
        setup_logging(hydra_log_file())  # the same console as train.py
        metrics = apply_bundle(cfg)
        if metrics:
            log.info(
                "metrics: %s",
                json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}),
            )

    entry()
