"""The demo: embedded synthetic data -> PSD windows -> tokens -> pretraining -> figures.

    python scripts/demo.py [hydra overrides, e.g. data.n_events=500]

Everything is cached under ``cache/``; a second run reuses it. Figures go to
``reports/demo/``. Sized to finish in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seisbert.analysis.examples import plot_examples  # noqa: E402
from seisbert.config import build  # noqa: E402
from seisbert.logs import setup_logging  # noqa: E402
from seisbert.pipeline import FeatureSet, load_records, prepare  # noqa: E402
from seisbert.run import run_task, validate  # noqa: E402

log = logging.getLogger("demo")
OUT = ROOT / "reports" / "demo"
PRETRAIN = ["experiment=demo"]  # configs/experiment/demo.yaml: the demo's pretraining budget


def config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(ROOT / "outputs" / "demo" / cfg.task.name)
    validate(cfg)
    return cfg


def data_figures(cfg: DictConfig, paths: dict) -> None:
    fcfg = build(cfg.features, "features")
    records = load_records(paths["records"])
    fset = FeatureSet.load(paths["features"])
    summary = json.loads((paths["features"] / "summary.json").read_text())
    print("\nrecords per split and class:")
    for split, counts in summary["per_split_and_class"].items():
        print(f"  {split:5s} " + "  ".join(f"{c}={n}" for c, n in counts.items()))
    print(f"rejected: {summary['rejected'] or 'none'}\n")
    plot_examples(records.waveforms, fset.features, fset.metadata, fcfg.frequencies_hz,
                  OUT / "examples.png", pre_s=fcfg.pre_s, window_s=fcfg.window_s,
                  sampling_rate_hz=fcfg.sampling_rate_hz)
    plot_tokens = runpy.run_path(str(ROOT / "scripts" / "plot_tokens.py"))
    plot_tokens["main"]([str(paths["tokens"]), "--out", str(OUT)])

def main(overrides: list[str]) -> None:
    setup_logging(app_loggers=[log.name])
    OUT.mkdir(parents=True, exist_ok=True)
    cfg = config(overrides)
    paths = prepare(cfg)
    data_figures(cfg, paths)
    metrics = run_task(config([*PRETRAIN, *overrides]))
    print("\nmasked-token accuracy on test (80/10/10 inputs): "
          f"{metrics.get('test/mlm_acc', float('nan')):.3f}  vs. random 1/K "
          f"{metrics.get('test/baseline_random_acc', float('nan')):.3f}, per-step mode "
          f"{metrics.get('test/baseline_step_mode_acc', float('nan')):.3f}, left neighbour "
          f"{metrics.get('test/baseline_left_neighbour_acc', float('nan')):.3f}")
    if metrics.get("checkpoint"):  # attention views of the demo's base model (paper Figs. 8-10)
        attention = runpy.run_path(str(ROOT / "scripts" / "attention.py"))["main"]
        attention(["--checkpoint", metrics["checkpoint"], "--batch", "1", "--out", str(OUT / "attention")])
    print(f"figures in {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
