"""The demo: synthetic data -> PSD windows -> tokens -> pretraining -> figures -> a classifier.

After pretraining it fine-tunes the base model on a few labels, prints its balanced
accuracy beside the boosted-trees baseline on the same labels, and runs ``seisbert
evaluate`` with the run's bundle on held-back synthetic events written as miniSEED +
QuakeML (the budgets: configs/demo.yaml).

    python scripts/demo.py [hydra overrides, e.g. data.n_events=500]

Everything is cached under ``cache/``; a second run reuses it. Figures go to
``reports/demo/``. Sized to finish in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from seisbert.analysis import attention_cli, token_figures
from seisbert.analysis.examples import plot_examples
from seisbert.bundle import BUNDLE_NAME
from seisbert.config import build, check_range
from seisbert.inference.cli import apply_bundle as predict_run
from seisbert.inference.files import write_records_as_files
from seisbert.logs import setup_logging
from seisbert.pipeline import FeatureSet, load_records, prepare
from seisbert.train.job import train_job, validate
from seisbert.train.schemas import register

ROOT = Path(__file__).resolve().parents[1]  # configs/, reports/ and outputs/ of this checkout

log = logging.getLogger("demo")
OUT = ROOT / "reports" / "demo"
PRETRAIN = ["experiment=demo"]  # configs/experiment/demo.yaml: the demo's pretraining budget


def config(overrides: list[str], folder: str | None = None) -> DictConfig:
    register()  # the config dataclasses' defaults, which the YAML presets extend
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(ROOT / "outputs" / "demo" / (folder or cfg.task.name))
    validate(cfg)
    return cfg


def data_figures(cfg: DictConfig, paths: dict) -> None:
    fcfg = build(cfg.features, "features")
    records = load_records(paths["records"])
    fset = FeatureSet.load(paths["features"])
    plot_examples(
        records.waveforms,
        fset.features,
        fset.metadata,
        fcfg.frequencies_hz,
        OUT / "examples.png",
        pre_s=fcfg.pre_s,
        window_s=fcfg.window_s,
        sampling_rate_hz=fcfg.sampling_rate_hz,
    )
    token_figures.main([str(paths["tokens"]), "--out", str(OUT)])


@dataclass
class DemoConfig:
    """configs/demo.yaml: the demo's classifier and held-back budgets."""

    labels: int = 200
    finetune: list = field(default_factory=list)  # overrides of the fine-tuning run
    best: list = field(default_factory=list)  # the study's best arm, from the shipped base model
    baseline: list = field(default_factory=list)  # overrides of the trees run
    held_back_events: int = 30
    held_back_seed: int = 1001

    def __post_init__(self):
        check_range("demo.labels", self.labels, 2)
        check_range("demo.held_back_events", self.held_back_events, 1)


def demo_config() -> DemoConfig:
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "demo.yaml"))
    node["_target_"] = f"{__name__}.DemoConfig"  # run as a script, the module is __main__
    return build(node, "demo")


def classifier(demo: DemoConfig, overrides: list[str]) -> Path:
    """On the same ``demo.labels`` labels: the demo's token model fine-tuned, the study's best
    arm fine-tuned from the shipped base model, and the trees. Returns the best arm's bundle."""
    labels = f"task.params.labels={demo.labels}"
    runs = {
        "token MLM (this demo's base model)": train_job(
            config([*demo.finetune, labels, *overrides])
        ),
        "PSD input, random-projection targets (shipped base model)": train_job(
            config([*demo.best, labels, *overrides], "finetune_best")
        ),
        "boosted trees": train_job(
            config([*demo.baseline, f"task.labels={demo.labels}", *overrides])
        ),
    }
    print(
        f"\nclassifiers on the same {demo.labels} labels, test balanced accuracy per record "
        "/ per event:"
    )
    for name, m in runs.items():
        print(
            f"  {name:<58} {m['test/balanced_accuracy']:.3f} / "
            f"{m['test/event_balanced_accuracy']:.3f}"
        )
    return ROOT / "outputs" / "demo" / "finetune_best" / BUNDLE_NAME


def held_back(demo: DemoConfig, bundle: Path, overrides: list[str]) -> None:
    """New synthetic events as miniSEED + QuakeML, scored by ``seisbert evaluate``."""
    from hydra import compose, initialize_config_dir

    cfg = config(
        [*overrides, f"data.n_events={demo.held_back_events}", f"data.seed={demo.held_back_seed}"]
    )
    folder = ROOT / "outputs" / "demo" / "held_back"
    catalog = write_records_as_files(build(cfg.data, "data").load(progress=False), folder)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        pcfg = compose(
            "predict",
            overrides=[
                "mode=evaluate",
                f"bundle={bundle}",
                "data=waveforms",
                f"data.waveform_dir={folder / 'waveforms'}",
                f"data.catalog={catalog}",
                "data.pre_s=10",
                "data.post_s=80",
                "data.pad_s=0",
            ],
        )
    out = ROOT / "outputs" / "demo" / "predict"
    with open_dict(pcfg):
        pcfg.paths.output_dir = str(out)
    m = predict_run(pcfg)
    print(
        f"seisbert evaluate on {m['event_n']} held-back events ({m['n']} miniSEED records): "
        f"balanced accuracy {m['balanced_accuracy']:.3f} per record, "
        f"{m['event_balanced_accuracy']:.3f} per event, ROC-AUC {m['roc_auc']:.3f}; "
        f"predictions.csv, events.csv and figures in {out}"
    )


def main(overrides: list[str]) -> None:
    setup_logging(app_loggers=[log.name])
    OUT.mkdir(parents=True, exist_ok=True)
    cfg = config(overrides)
    paths = prepare(cfg)
    data_figures(cfg, paths)
    metrics = train_job(config([*PRETRAIN, *overrides]))
    print(
        "\nmasked-token accuracy on test (80/10/10 inputs): "
        f"{metrics.get('test/mlm_acc', float('nan')):.3f}  vs. random 1/K "
        f"{metrics.get('test/baseline_random_acc', float('nan')):.3f}, per-step mode "
        f"{metrics.get('test/baseline_step_mode_acc', float('nan')):.3f}, left neighbour "
        f"{metrics.get('test/baseline_left_neighbour_acc', float('nan')):.3f}"
    )
    if metrics.get("checkpoint"):  # attention views of the demo's base model (paper Figs. 8-10)
        attention_cli.main(
            ["--checkpoint", metrics["checkpoint"], "--batch", "1", "--out", str(OUT / "attention")]
        )
    print(f"figures in {OUT}")
    demo = demo_config()
    bundle = classifier(demo, overrides)
    held_back(demo, bundle, overrides)


if __name__ == "__main__":
    main(sys.argv[1:])
