"""Weights shipped with the package, loaded offline: ``seisbert/pretrained/<name>.*``.

Each name has a classifier bundle (``<name>.bundle.safetensors``), its pretrained base model
(``<name>.base.ckpt``: encoder weights and the args that rebuild them, no optimizer state,
read with ``weights_only``) and a model card (``<name>.json``: data, command, scores, what it
was not trained on). ``scripts/pretrained.py`` writes them. Nothing here contacts a server.
"""

from __future__ import annotations

import json
from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"  # seisbert/pretrained/
PREFIX = "pretrained:"  # bundle=pretrained:<name>


def list_pretrained() -> list[str]:
    """Names of the shipped classifiers."""
    return sorted(
        p.name.removesuffix(".bundle.safetensors")
        for p in PRETRAINED_DIR.glob("*.bundle.safetensors")
    )


def pretrained_path(name: str, kind: str = "bundle") -> Path:
    """The shipped file of ``name``: ``bundle`` (classifier), ``base`` (base model) or ``card``."""
    suffix = {"bundle": ".bundle.safetensors", "base": ".base.ckpt", "card": ".json"}[kind]
    path = PRETRAINED_DIR / f"{name}{suffix}"
    if not path.is_file():
        raise ValueError(
            f"no pretrained model {name!r} ({path.name}); shipped: {list_pretrained() or 'none'}"
        )
    return path


def resolve_bundle(value: str | Path) -> Path:
    """``pretrained:<name>`` -> the shipped bundle's path; any other value as a path."""
    text = str(value)
    return pretrained_path(text[len(PREFIX) :]) if text.startswith(PREFIX) else Path(text)


def model_card(name: str) -> dict:
    return json.loads(pretrained_path(name, "card").read_text())


# ------------------------------------------------------------------------------- writing
def write_base(checkpoint: Path, path: Path) -> Path:
    """A pretraining checkpoint stripped to its encoder weights and hyper-parameters."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    torch.save({"state_dict": state, "hyper_parameters": ckpt["hyper_parameters"]}, path)
    return path


def _wall_s(folder: Path) -> float:
    """A run's wall time: from its resolved config (written first) to its metrics (last)."""
    return (folder / "metrics.json").stat().st_mtime - (folder / "config.yaml").stat().st_mtime


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        ln.split(":", 1)[1].strip()
        for ln in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else ())
        if ln.startswith("model name")
    ]
    return f"{names[0] if names else 'unknown CPU'}, {len(names)} cores"


def write_card(
    path: Path, name: str, base_run: Path, fine_run: Path, evaluated: Path, commands: dict
) -> Path:
    """The model card, from the runs' own files: config, metrics and the evaluation."""
    import yaml

    def metrics(folder: Path) -> dict:
        return json.loads((folder / "metrics.json").read_text())

    fine_cfg = yaml.safe_load((fine_run / "config.yaml").read_text())
    held = metrics(evaluated)
    fine = metrics(fine_run)
    card = {
        "name": name,
        "task": "earthquake (0) vs. quarry blast (1), per record; events by mean probability",
        "model": fine_cfg["model"],
        "data": {
            "source": "the embedded synthetic generator (data=synthetic, docs/synthetic.md)",
            "config": fine_cfg["data"],
            "features": fine_cfg["features"],
            "train_records": fine.get("train_records"),
        },
        "commands": commands,
        "wall_minutes": {
            name: round(_wall_s(folder) / 60, 1)
            for name, folder in (("pretrain", base_run), ("finetune", fine_run))
        },
        "machine": _cpu_model(),
        "scores": {
            "test split (same draw)": {
                k: fine[f"test/{k}"]
                for k in ("balanced_accuracy", "event_balanced_accuracy", "roc_auc")
            },
            "held-out synthetic draw": {
                k: held[k]
                for k in ("n", "balanced_accuracy", "event_balanced_accuracy", "roc_auc", "event_n")
            },
        },
        "not_trained_on": [
            "real recordings of any network",
            "regions other than the synthetic Utah-like one",
            "three-component input",
            "sampling rates other than 100 Hz after resampling",
            "event types other than earthquake and "
            "quarry blast (mining-induced events, explosions of other kinds)",
        ],
    }
    path.write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path
