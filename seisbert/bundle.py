"""The model bundle: one self-contained file that classifies new recordings.

Fine-tuning writes ``model.bundle.safetensors`` into its run folder. It holds the
LightningModule's weights as safetensors tensors (``module.<name>``), the tokenizer's
centroids (``tokenizer.centroids``, (K, F) float32), and one JSON document in the
safetensors header (key ``seisbert_bundle``): the module class and its
``hyper_parameters`` (encoder and head config, task params, tokenizer digest), the
tokenizer config, the feature and scaling config, class names, the training data's
digests and counts, dev/test metrics, and package versions. Loading runs no pickle:
safetensors stores raw tensors, and the module is rebuilt from plain hyperparameters
(seisbench ``WaveformModel.save`` keeps weights and the args that rebuild them too).

A bundle from another format, another seisbert minor version, or with a feature or
tokenizer config this version does not understand is refused, naming what differs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import seisbert
from seisbert.cache import versions
from seisbert.data.records import CLASS_NAMES

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1  # bump when the layout below changes; readers refuse other formats
BUNDLE_NAME = "model.bundle.safetensors"
HEADER_KEY = "seisbert_bundle"
WEIGHT_PREFIX = "module."
CENTROIDS_KEY = "tokenizer.centroids"
# Module classes a bundle may name: importing an arbitrary dotted path from a file is how
# a "no pickle" format would still run foreign code.
ALLOWED_MODULE_PREFIX = "seisbert."
# Feature keys that change speed, not values (or values by < 1e-3 in log10): never refused.
FEATURE_KEYS_IGNORED = ("chunk_records",)
INPUTS = ("tokens", "psd", "both")  # what the encoder embeds a position from (model.input)


@dataclass
class Bundle:
    """A loaded bundle: its JSON ``info``, the module's weights and the centroids (K, F)."""

    path: Path
    info: dict
    state_dict: dict
    centroids: np.ndarray

    @property
    def class_names(self) -> list[str]:
        return list(self.info["class_names"])

    @property
    def input_kind(self) -> str:  # tokens | psd | both (model.input): what the encoder reads
        return self.info["input"]

    def feature_config(self):
        from seisbert.features import FeatureConfig

        return FeatureConfig(**self.info["features"])

    def tokenizer(self):
        """The training tokenizer: nearest centroid by FAISS, as ``seisbert.tokenizer``."""
        from seisbert.tokenizer import Tokenizer, TokenizerConfig

        return Tokenizer(TokenizerConfig(**self.info["tokenizer"]["config"]), self.centroids)

    def module(self):
        """The LightningModule rebuilt from its hyperparameters, weights loaded, in eval mode."""
        import hydra.utils
        import torch

        cls = hydra.utils.get_class(self.info["module_class"])
        module = cls(**self.info["hyper_parameters"])
        state = {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
                 for k, v in self.state_dict.items()}
        module.load_state_dict(state, strict=True)
        return module.eval()


# ------------------------------------------------------------------------------ write
def write_bundle(path: str | Path, module, centroids: np.ndarray, info: dict) -> Path:
    """Write ``module``'s weights, ``centroids`` and ``info`` (JSON-ready) to one file.

    ``info`` needs ``features``, ``tokenizer`` and ``hyper_parameters``; the format,
    module class, class names and versions are added here. Written to a temporary name
    and renamed, so a killed run never leaves a half bundle.
    """
    from safetensors.torch import save_file
    import torch

    path = Path(path)
    header = {"format": BUNDLE_FORMAT, "seisbert_version": seisbert.__version__,
              "module_class": f"{type(module).__module__}.{type(module).__qualname__}",
              "class_names": list(CLASS_NAMES), "input": getattr(module.cfg, "input", "tokens"),
              "versions": versions(), **info}
    tensors = {WEIGHT_PREFIX + k: v.detach().cpu().contiguous().clone()  # clone: no shared storage
               for k, v in module.state_dict().items()}
    tensors[CENTROIDS_KEY] = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32))
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header, default=_json_default)})
    tmp.replace(path)
    log.info("wrote bundle %s (%d tensors, %.1f MB)", path, len(tensors), path.stat().st_size / 1e6)
    return path


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def run_bundle_info(cfg, module, tset, train_labels: np.ndarray, metrics: dict) -> dict:
    """Provenance of a fine-tuning run: configs, data digests and counts, metrics.

    ``train_labels`` are the labels of the labelled training records: their blast share
    is the prior the classifier learned, unless the loss was class-weighted (then 0.5).
    """
    from omegaconf import OmegaConf

    from seisbert.cache import read_artifact_record

    tok_record = read_artifact_record(tset.path)
    features = OmegaConf.to_container(cfg.features, resolve=True)
    features.pop("_target_", None)
    tok_cfg = json.loads((tset.path / "tokenizer" / "tokenizer.json").read_text())["config"]
    summary_path = Path(json.loads((tset.path / "tokens.json").read_text())["features"]) / "summary.json"
    counts = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    weighted = bool(module.hparams.get("params", {}).get("class_weights", False))
    prior = 0.5 if weighted else float(np.mean(train_labels))
    return {
        "hyper_parameters": _plain(dict(module.hparams)),
        "features": features,
        "tokenizer": {"digest": tset.tokenizer_digest, "config": tok_cfg, "vocab_size": int(tset.vocab_size)},
        "training": {"tokens_digest": tset.digest, "features_digest": Path(summary_path).parent.name,
                     "data": tok_record["config"].get("data", {}), "counts": counts,
                     "labelled_train_records": int(len(train_labels)), "train_prior_blast": prior,
                     "task": cfg.task.name, "seed": int(cfg.seed)},
        "metrics": {k: float(v) for k, v in metrics.items() if np.isscalar(v)},
    }


def _plain(value):
    """Hyperparameters as JSON types (Lightning's AttributeDict and OmegaConf nodes included)."""
    return json.loads(json.dumps(value, default=_json_default))


def write_run_bundle(cfg, module, tset, train_labels: np.ndarray, metrics: dict) -> Path | None:
    """The fine-tuning hook: ``<output_dir>/model.bundle.safetensors``, or None (logged)
    for a tokenizer that needs a pickled reducer (``umap_waveform``), which a bundle refuses."""
    info = run_bundle_info(cfg, module, tset, train_labels, metrics)
    if info["tokenizer"]["config"].get("method") != "kmeans_psd":
        log.warning("no bundle written: tokenizer.method=%s needs a pickled reducer; bundles "
                    "hold kmeans_psd tokenizers only", info["tokenizer"]["config"].get("method"))
        return None
    centroids = np.load(tset.path / "centroids.npy")
    return write_bundle(Path(cfg.paths.output_dir) / BUNDLE_NAME, module, centroids, info)


# ------------------------------------------------------------------------------- read
def read_header(path: str | Path) -> dict:
    """The bundle's JSON document, without reading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"bundle={str(path)!r} is not a file; give the model.bundle.safetensors "
                         "a fine-tuning run wrote into its run folder")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for a foreign file
        raise ValueError(f"bundle={str(path)!r} is not a safetensors file: {e}") from None
    if HEADER_KEY not in meta:
        raise ValueError(f"bundle={str(path)!r} is a safetensors file without a seisbert header "
                         f"(key {HEADER_KEY!r}); it was not written by seisbert's fine-tuning")
    return json.loads(meta[HEADER_KEY])


def load_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle; raises ValueError saying what differs if it is incompatible."""
    from safetensors.numpy import load_file

    path = Path(path)
    info = read_header(path)
    check_compatible(info, path)
    tensors = load_file(str(path))
    state = {k[len(WEIGHT_PREFIX):]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    return Bundle(path, info, state, tensors[CENTROIDS_KEY])


def check_compatible(info: dict, path: Path) -> None:
    """Refuse a bundle of another format or minor version, or with configs this version lacks."""
    problems = []
    if info.get("format") != BUNDLE_FORMAT:
        problems.append(f"bundle format {info.get('format')} (this seisbert reads format {BUNDLE_FORMAT})")
    theirs, ours = str(info.get("seisbert_version")), seisbert.__version__
    if theirs.split(".")[:2] != ours.split(".")[:2]:
        problems.append(f"written by seisbert {theirs}, this is {ours} (major.minor must agree)")
    if not str(info.get("module_class", "")).startswith(ALLOWED_MODULE_PREFIX):
        problems.append(f"module class {info.get('module_class')!r} is not a seisbert class")
    if info.get("input") not in INPUTS:
        problems.append(f"input {info.get('input')!r} (this seisbert reads {list(INPUTS)})")
    problems += _config_problems("features", info.get("features", {}), "seisbert.features.FeatureConfig")
    problems += _config_problems("tokenizer", info.get("tokenizer", {}).get("config", {}),
                                 "seisbert.tokenizer.TokenizerConfig")
    if problems:
        raise ValueError(f"bundle {path} is incompatible with this seisbert: " + "; ".join(problems)
                         + ". Use the seisbert version that wrote it, or fine-tune again")


def _config_problems(group: str, values: dict, target: str) -> list[str]:
    """Keys of a stored config this version does not know, or values it does not accept."""
    import hydra.utils

    cls = hydra.utils.get_class(target)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        return [f"its {group} config has keys {unknown} this version does not know"]
    try:
        cls(**values)
    except (ValueError, TypeError) as e:
        return [f"its {group} config is refused here: {e}"]
    return []


def feature_differences(bundle_features: dict, other: dict) -> list[str]:
    """``key: bundle value != other value`` for every feature key that changes the features."""
    keys = sorted((set(bundle_features) | set(other)) - set(FEATURE_KEYS_IGNORED) - {"_target_"})
    return [f"features.{k}: bundle {bundle_features.get(k)!r} != {other.get(k)!r}"
            for k in keys if bundle_features.get(k) != other.get(k)]


# ------------------------------------------------------------------- reuse in training
def load_tokenizer_from(path: str | Path):
    """A trained tokenizer to reuse (``tokenizer.from_path``): a bundle file or a tokens
    artifact folder. Returns the Tokenizer and the digest of the tokens it was fitted for,
    so a base model pretrained on those tokens is accepted by fine-tuning."""
    from seisbert.tokenizer import Tokenizer

    path = Path(path)
    if path.is_file():
        bundle = load_bundle(path)
        return bundle.tokenizer(), bundle.info["tokenizer"]["digest"]
    if (path / "tokenizer" / "tokenizer.json").is_file():
        return Tokenizer.load(path / "tokenizer"), path.name
    raise ValueError(f"tokenizer.from_path={str(path)!r} is neither a bundle file nor a tokens "
                     "artifact folder (cache/tokens/<hash>/ with tokenizer/ inside)")


def encoder_from_bundle(path: str | Path) -> tuple[dict, dict, str]:
    """Encoder config (dict), encoder weights and tokenizer digest of a bundle, for
    ``task.params.checkpoint=<bundle>``: fine-tuning a bundle on one's own labels."""
    import torch

    bundle = load_bundle(path)
    hp = bundle.info["hyper_parameters"]
    state = {k[len("encoder."):]: torch.from_numpy(np.array(v)) for k, v in bundle.state_dict.items()
             if k.startswith("encoder.")}
    return hp["model"], state, bundle.info["tokenizer"]["digest"]
