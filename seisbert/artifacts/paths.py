"""The artifacts and where they live: every stage's folder, the published base models, and
the artifacts a checkpoint belongs to. One module owns these lookups, so the data stages
(``pipeline``), the tasks, the study and the analysis views all find a folder the same way.

Stages: ``records``, ``features``, ``tokens`` (``<cache_dir>/<stage>/<hash>/``, the hash over
the stage's config and everything upstream) and the base model of a pretraining task
(``<cache_dir>/<task>/<hash>/model.ckpt`` + ``model.json``, the hash over its tokens, model,
task, budget and seed). Each is an atomic artifact with ``artifact.json``
(seisbert.artifacts.cache).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from seisbert.artifacts.cache import (
    COMPLETE_MARKER,
    QUARANTINE,
    artifact_dir,
    atomic_artifact,
    config_hash,
    is_temporary,
    verified,
)

STAGE_PARTS = {
    "records": ["data"],
    "features": ["data", "split", "features"],
    "tokens": ["data", "split", "features", "tokenizer"],
}


# --------------------------------------------------------------------------- data stages
def _node(cfg: DictConfig, key: str) -> dict:
    return OmegaConf.to_container(cfg[key], resolve=True)


def stage_config(cfg: DictConfig, stage: str) -> dict:
    """The config parts a stage's hash covers: its own and everything upstream."""
    out = {k: _node(cfg, k) for k in STAGE_PARTS[stage]}
    for key in ("progress", "num_workers"):  # how records are read, not which: same artifact
        out.get("data", {}).pop(key, None)
    if stage == "tokens" and cfg.get("unlabeled") is not None:  # the pool shapes the tokenizer
        out["unlabeled"] = _node(cfg, "unlabeled")
    return out


def stage_path(cfg: DictConfig, stage: str) -> Path:
    return artifact_dir(cfg.paths.cache_dir, stage, config_hash(stage_config(cfg, stage)))


def recorded_config(path: Path) -> dict:
    """The stage config an artifact was built from (its ``artifact.json``), {} without one."""
    marker = Path(path) / COMPLETE_MARKER
    return json.loads(marker.read_text()).get("config", {}) if marker.exists() else {}


def records_of_features(cache_dir: Path, features: Path) -> Path:
    """The records artifact a features artifact was cut from: the same hash ``stage_path`` gives."""
    data = recorded_config(features).get("data")
    return artifact_dir(cache_dir, "records", config_hash({"data": data}))


# --------------------------------------------------------------------------- base models
def model_artifact_dir(cfg: DictConfig, tokens_digest: str) -> Path:
    """Cache folder of a trained model: its tokens, model, task, trainer budget and seed."""
    parts = {
        "tokens": tokens_digest,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "task": OmegaConf.to_container(cfg.task, resolve=True),
        "seed": cfg.seed,
        "max_epochs": cfg.trainer.get("max_epochs"),
        "max_steps": cfg.trainer.get("max_steps"),
    }
    return artifact_dir(cfg.paths.cache_dir, cfg.task.name, config_hash(parts))


def publish_checkpoint(ckpt: str | Path, target: Path, info: dict, verify: str) -> Path:
    """Copy a finished checkpoint into the cache (``model.ckpt`` + ``model.json``, an
    artifact with hashes) so later runs find it by config. Written under a temporary name
    unique to this process; when two jobs publish the same model the first rename wins and
    the other's copy is dropped (``verify``: the level ``paths.verify`` judges theirs at)."""
    with atomic_artifact(
        target,
        {"model": {k: v for k, v in info.items() if k != "metrics"}},
        verify=verify,
        content_ok=checkpoint_problem,
    ) as tmp:
        shutil.copyfile(ckpt, tmp / "model.ckpt")
        (tmp / "model.json").write_text(json.dumps(info, indent=2, default=str))
    return target / "model.ckpt"


def checkpoint_problem(folder: Path) -> str | None:
    """None when ``folder`` holds a base model whose zip members pass their CRC-32, that loads
    as plain tensors (no pickle) with every weight finite, and a readable ``model.json``; else
    what is wrong. A base model's own check, for when its manifest fails: hours of pretraining
    are not thrown away over a manifest, nor trusted over a changed byte."""
    import torch

    ckpt_path = Path(folder) / "model.ckpt"
    try:
        json.loads((Path(folder) / "model.json").read_text())
        with zipfile.ZipFile(ckpt_path) as zf:  # torch.load itself skips the CRCs
            damaged = zf.testzip()
        if damaged is not None:
            return f"model.ckpt's member {damaged} fails its CRC-32"
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged zip or pickle stream raises many types
        return f"it does not load ({type(err).__name__}: {err})"
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        return "model.ckpt holds no state_dict"
    bad = [
        name
        for name, w in state.items()
        if torch.is_tensor(w) and w.is_floating_point() and not torch.isfinite(w).all()
    ]
    return f"model.ckpt has non-finite weights in {bad[:3]}" if bad else None


def published_model(target: Path, verify: str) -> Path | None:
    """``model.ckpt`` of the base model published in ``target`` if it verifies. One that fails
    is never removed: a failing manifest over sound weights is written anew, anything else is
    moved to ``<cache_dir>/quarantine/`` and reported (seisbert.artifacts.cache.verified)."""
    ok = verified(target, verify, "base model", content_ok=checkpoint_problem)
    return target / "model.ckpt" if ok else None


def newest_published(root: Path, verify: str, match: Callable[[dict], bool]) -> Path | None:
    """The newest whole published model folder under ``root`` whose ``model.json`` matches.
    A folder whose ``model.json`` is missing or unreadable is verified, so it is reported and
    kept (quarantined), never passed over in silence."""
    found = {
        p.parent for name in ("model.json", "model.ckpt") for p in Path(root).glob(f"*/{name}")
    }
    folders = [f for f in found if not is_temporary(f.name)]
    for folder in sorted(folders, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            info = json.loads((folder / "model.json").read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            published_model(folder, verify)  # unreadable: verification reports and keeps it
            continue
        if match(info) and published_model(folder, verify):
            return folder
    return None


def quarantined(cache_dir: Path, stage: str) -> list[Path]:
    """Folders of ``stage`` set aside under ``<cache_dir>/quarantine/`` by verification."""
    return sorted((Path(cache_dir) / QUARANTINE / stage).glob("*"))


def newest_checkpoint(cache_dir: Path, task: str = "mlm") -> Path:
    """The newest published ``<cache_dir>/<task>/*/model.ckpt`` (never a temporary copy)."""
    found = sorted(
        (
            p
            for p in Path(cache_dir).glob(f"{task}/*/model.ckpt")
            if not is_temporary(p.parent.name)
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise FileNotFoundError(
            f"no {cache_dir}/{task}/*/model.ckpt; pretrain one first "
            "(python train.py experiment=mlm) or pass --checkpoint"
        )
    return found[-1]


def _existing(*candidates) -> Path | None:
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), None)


def _tokens_digest(checkpoint: Path) -> str | None:
    """Tokens artifact name of a checkpoint: its published ``model.json``, else its hparams."""
    info = Path(checkpoint).parent / "model.json"
    if info.exists():
        return json.loads(info.read_text()).get("tokens")
    import torch

    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True).get(
        "hyper_parameters", {}
    )
    return hparams.get("tokenizer_digest")


def resolve_artifacts(
    checkpoint: Path,
    cache_dir: Path,
    tokens: Path | None = None,
    features: Path | None = None,
    records: Path | None = None,
) -> dict:
    """Artifact folders that belong to a checkpoint; explicit folders win.

    tokens: ``model.json["tokens"]`` beside the checkpoint (a run folder's checkpoint: its
    ``tokenizer_digest`` hparam); features: ``tokens.json["features"]``; records: the records
    artifact whose hash is that of the features' data config.
    """
    cache_dir = Path(cache_dir)
    if tokens is None:
        digest = _tokens_digest(checkpoint)
        tokens = _existing(digest and cache_dir / "tokens" / digest)
        if tokens is None:
            raise FileNotFoundError(
                f"cannot find the tokens artifact {digest!r} of {checkpoint} under "
                f"{cache_dir}/tokens; pass --tokens"
            )
    if features is None:
        named = json.loads((Path(tokens) / "tokens.json").read_text()).get("features")
        features = _existing(named, named and cache_dir / "features" / Path(named).name)
    if records is None and features is not None and recorded_config(features).get("data"):
        records = _existing(records_of_features(cache_dir, features))
    return {"tokens": Path(tokens), "features": features, "records": records}
