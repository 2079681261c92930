"""The model bundle: one self-contained file that classifies new recordings.

Fine-tuning writes ``model.bundle.safetensors`` into its run folder. It holds the
LightningModule's weights as safetensors tensors (``module.<name>``), the tokenizer's
centroids (``tokenizer.centroids``, (K, F) float32), and one JSON document in the
safetensors header (key ``seisbert_bundle``): the module's registered name and its
``hyper_parameters`` (encoder and head config, task params, tokenizer digest), the
tokenizer config, the feature and scaling config, class names, the training data's
digests and counts, dev/test metrics, and package versions (seisbench
``WaveformModel.save`` keeps weights and the args that rebuild them too).

A bundle is data, never code: it names its module by a short name from ``MODULES``, a fixed
registry of seisbert's own classes, and its hyper-parameters are checked against that class's
signature and config dataclasses before anything is built. A SHA-256 of the header document
and every tensor (key ``seisbert_sha256``) is checked on load, and a rebuilt classifier whose
outputs on a probe input are not finite is refused. A bundle from another format, another
seisbert minor version, or with a config this version does not understand is refused too,
naming what differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import logging
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import seisbert
from seisbert.artifacts.cache import read_artifact_record, versions
from seisbert.artifacts.pretrained import resolve_bundle
from seisbert.config import _type_ok, describe
from seisbert.data.records import CLASS_NAMES
from seisbert.data.sequences import Specials
from seisbert.features import FeatureConfig
from seisbert.tokenizer import Tokenizer, TokenizerConfig

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 2  # bump when the layout below changes; readers refuse other formats
BUNDLE_NAME = "model.bundle.safetensors"
HEADER_KEY = "seisbert_bundle"
CHECKSUM_KEY = "seisbert_sha256"
WEIGHT_PREFIX = "module."
CENTROIDS_KEY = "tokenizer.centroids"


@dataclass(frozen=True)
class ModuleSpec:
    """A module class a bundle may rebuild, and the config dataclasses of its dict arguments."""

    module: str
    cls: str
    configs: tuple[tuple[str, str, str], ...]  # (argument, module, dataclass)

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.cls)

    def config_classes(self) -> dict[str, type]:
        return {arg: getattr(importlib.import_module(mod), name) for arg, mod, name in self.configs}


# The only classes a bundle can name, by key: importing a dotted path read from a file is how
# a "no pickle" format would still run foreign code.
MODULES = {
    "classifier": ModuleSpec(
        "seisbert.tasks.finetune",
        "FinetuneModule",
        (
            ("model", "seisbert.model.encoder", "EncoderConfig"),
            ("params", "seisbert.tasks.finetune", "FinetuneConfig"),
        ),
    )
}
PROBE_TOKENS = 8  # length of the probe sequence a loaded classifier must score finitely
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
        return FeatureConfig(**self.info["features"])

    def tokenizer(self):
        """The training tokenizer: nearest centroid by FAISS, as ``seisbert.tokenizer``."""
        return Tokenizer(TokenizerConfig(**self.info["tokenizer"]["config"]), self.centroids)

    def module(self):
        """The LightningModule rebuilt from its hyperparameters, weights loaded, in eval mode.
        Refused (ValueError) when its outputs on a probe input are not finite."""
        spec = MODULES[self.info["module"]]  # checked on load: a registered name
        module = spec.load()(**self.info["hyper_parameters"])
        module.load_state_dict(self.state_dict, strict=True)
        module.eval()
        probe = probe_outputs(module, self.centroids)
        if not np.isfinite(probe).all():
            raise ValueError(
                f"bundle {self.path} is refused: its classifier gives non-finite "
                f"outputs on a probe input ({probe.ravel()[:4].tolist()} ...), so its "
                "weights are broken (NaN or inf); fine-tune again"
            )
        return module


def probe_outputs(module, centroids: np.ndarray) -> np.ndarray:
    """The module's logits (2, 2) for two short probe sequences: token ids cycling through the
    vocabulary and, for PSD inputs, the centroids of those tokens as windows."""
    import torch

    sp = Specials(module.cfg.vocab_size)
    tokens = (np.arange(2 * PROBE_TOKENS) % module.cfg.vocab_size).reshape(2, PROBE_TOKENS)
    ids = np.pad(tokens, ((0, 0), (1, 1)))  # (2, T+2): [CLS] t [SEP]
    ids[:, 0], ids[:, -1] = sp.cls, sp.sep
    x = torch.from_numpy(ids)
    with torch.inference_mode():
        if getattr(module.cfg, "input", "tokens") == "tokens":
            return module(x, torch.zeros_like(x)).float().numpy()
        windows = np.pad(np.asarray(centroids, np.float32)[tokens], ((0, 0), (1, 1), (0, 0)))
        return module(x, torch.zeros_like(x), torch.from_numpy(windows)).float().numpy()


# ------------------------------------------------------------------------------ write
def write_bundle(path: str | Path, module, centroids: np.ndarray, info: dict) -> Path:
    """Write ``module``'s weights, ``centroids`` and ``info`` (JSON-ready) to one file.

    ``info`` needs ``features``, ``tokenizer`` and ``hyper_parameters``; the format,
    module class, class names and versions are added here. Written to a temporary name
    and renamed, so a killed run never leaves a half bundle.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    header = {
        "format": BUNDLE_FORMAT,
        "seisbert_version": seisbert.__version__,
        "module": module_name(module),
        "class_names": list(CLASS_NAMES),
        "input": getattr(module.cfg, "input", "tokens"),
        "versions": versions(),
        **info,
    }
    tensors = {
        WEIGHT_PREFIX + k: v.detach().cpu().contiguous().clone()  # clone: no shared storage
        for k, v in module.state_dict().items()
    }
    tensors[CENTROIDS_KEY] = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32))
    document = json.dumps(header, default=_json_default)
    tmp = path.with_name(path.name + ".tmp")
    save_file(
        tensors,
        str(tmp),
        metadata={HEADER_KEY: document, CHECKSUM_KEY: checksum(document, tensors)},
    )
    tmp.replace(path)
    log.info("wrote bundle %s (%d tensors, %.1f MB)", path, len(tensors), path.stat().st_size / 1e6)
    return path


def module_name(module) -> str:
    """The registry name of ``module``'s class; only registered classes can be bundled."""
    for name, spec in MODULES.items():
        if (type(module).__module__, type(module).__qualname__) == (spec.module, spec.cls):
            return name
    raise ValueError(
        f"{type(module).__qualname__} is not a bundle module; registered: "
        f"{sorted(MODULES)} (seisbert.bundle.MODULES)"
    )


def checksum(document: str, tensors: dict) -> str:
    """SHA-256 of the header document and every tensor's name, dtype, shape and bytes."""
    import torch

    h = hashlib.sha256(document.encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"\n{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype, bf16 included
    return h.hexdigest()


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

    tok_record = read_artifact_record(tset.path)
    features = OmegaConf.to_container(cfg.features, resolve=True)
    features.pop("_target_", None)
    tok_cfg = json.loads((tset.path / "tokenizer" / "tokenizer.json").read_text())["config"]
    summary_path = (
        Path(json.loads((tset.path / "tokens.json").read_text())["features"]) / "summary.json"
    )
    counts = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    weighted = bool(module.hparams.get("params", {}).get("class_weights", False))
    prior = 0.5 if weighted else float(np.mean(train_labels))
    return {
        "hyper_parameters": _plain(dict(module.hparams)),
        "features": features,
        "tokenizer": {
            "digest": tset.tokenizer_digest,
            "config": tok_cfg,
            "vocab_size": int(tset.vocab_size),
        },
        "training": {
            "tokens_digest": tset.digest,
            "features_digest": Path(summary_path).parent.name,
            "data": tok_record["config"].get("data", {}),
            "counts": counts,
            "labelled_train_records": int(len(train_labels)),
            "train_prior_blast": prior,
            "task": cfg.task.name,
            "seed": int(cfg.seed),
        },
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
        log.warning(
            "no bundle written: tokenizer.method=%s needs a pickled reducer; bundles "
            "hold kmeans_psd tokenizers only",
            info["tokenizer"]["config"].get("method"),
        )
        return None
    centroids = np.load(tset.path / "centroids.npy")
    return write_bundle(Path(cfg.paths.output_dir) / BUNDLE_NAME, module, centroids, info)


# ------------------------------------------------------------------------------- read
def read_metadata(path: str | Path) -> dict[str, str]:
    """The bundle's safetensors metadata (header document and checksum), no tensors read."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a file"
        raise ValueError(
            f"bundle={str(path)!r} is {what}; give the model.bundle.safetensors "
            "a fine-tuning run wrote into its run folder"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for a foreign file
        raise ValueError(f"bundle={str(path)!r} is not a safetensors file: {e}") from None
    if HEADER_KEY not in meta:
        raise ValueError(
            f"bundle={str(path)!r} is a safetensors file without a seisbert header "
            f"(key {HEADER_KEY!r}); it was not written by seisbert's fine-tuning"
        )
    return meta


def read_header(path: str | Path) -> dict:
    """The bundle's JSON document, without reading its tensors."""
    document = read_metadata(path)[HEADER_KEY]
    try:
        info = json.loads(document)
    except ValueError as e:
        raise ValueError(
            f"bundle {path} is damaged: its header document is not JSON ({e})"
        ) from None
    if not isinstance(info, dict):
        raise ValueError(f"bundle {path} is damaged: its header document is not a JSON object")
    return info


def load_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle: compatibility, registered module and hyper-parameters, then
    the checksum of header and tensors. Raises ValueError saying what is wrong."""
    from safetensors.torch import load_file

    path = Path(path)
    info = read_header(path)
    check_compatible(info, path)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # a damaged offset table or data buffer
        raise ValueError(f"bundle {path} is damaged: its tensors cannot be read ({e})") from None
    meta = read_metadata(path)
    if meta.get(CHECKSUM_KEY) != checksum(meta[HEADER_KEY], tensors):
        raise ValueError(
            f"bundle {path} is refused: its SHA-256 checksum does not match its "
            "contents (the file was changed or damaged after it was written)"
        )
    centroids = tensors.get(CENTROIDS_KEY)
    problem = centroid_problem(centroids, info)
    if problem is not None:
        raise ValueError(f"bundle {path} is refused: its tokenizer centroids {problem}")
    state = {k[len(WEIGHT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    return Bundle(path, info, state, centroids.numpy())


def centroid_problem(centroids, info: dict) -> str | None:
    """None when the centroids are a finite (K, F) table with the K of the header's tokenizer
    and encoder (and the F of a PSD-reading encoder); else what is wrong with them."""
    import torch

    if centroids is None or centroids.dim() != 2:
        return f"are missing or not a (K, F) table (key {CENTROIDS_KEY!r})"
    k, f = centroids.shape
    model = info["hyper_parameters"]["model"]
    if k != info.get("tokenizer", {}).get("vocab_size") or k != model.get("vocab_size"):
        return (
            f"number {k}, but the header's tokenizer and encoder have K="
            f"{info.get('tokenizer', {}).get('vocab_size')} and {model.get('vocab_size')}"
        )
    if model.get("input", "tokens") != "tokens" and model.get("n_features") not in (None, f):
        return f"have {f} bins, but the encoder reads windows of {model['n_features']}"
    if not torch.isfinite(centroids).all():
        return "hold non-finite values (NaN or inf)"
    return None


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a safetensors file (a bundle), by its first bytes, not its name: an
    8-byte header length, then the JSON header."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def check_compatible(info: dict, path: Path) -> None:
    """Refuse a bundle of another format or minor version, an unregistered module, or
    hyper-parameters and configs this version does not accept."""
    if info.get("format") != BUNDLE_FORMAT:
        raise ValueError(
            f"bundle {path} is incompatible with this seisbert: bundle format "
            f"{info.get('format')} (this seisbert reads format {BUNDLE_FORMAT}). Use "
            "the seisbert version that wrote it, or fine-tune again"
        )
    problems = []
    theirs, ours = str(info.get("seisbert_version")), seisbert.__version__
    if theirs.split(".")[:2] != ours.split(".")[:2]:
        problems.append(f"written by seisbert {theirs}, this is {ours} (major.minor must agree)")
    if info.get("input") not in INPUTS:
        problems.append(f"input {info.get('input')!r} (this seisbert reads {list(INPUTS)})")
    problems += _module_problems(info.get("module"), info.get("hyper_parameters"))
    problems += _config_problems("features", info.get("features", {}), FeatureConfig)
    problems += _config_problems(
        "tokenizer", info.get("tokenizer", {}).get("config", {}), TokenizerConfig
    )
    if problems:
        raise ValueError(
            f"bundle {path} is incompatible with this seisbert: "
            + "; ".join(problems)
            + ". Use the seisbert version that wrote it, or fine-tune again"
        )


def _module_problems(name, hyper_parameters) -> list[str]:
    """The registered module ``name`` and ``hyper_parameters`` that fit its signature, types and
    config dataclasses; nothing is built or called here."""
    if not isinstance(name, str) or name not in MODULES:
        return [f"module {name!r} is not one of seisbert's bundle modules {sorted(MODULES)}"]
    if not isinstance(hyper_parameters, dict):
        return ["its hyper_parameters are not a JSON object"]
    spec = MODULES[name]
    cls = spec.load()
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self", None)
    hints = typing.get_type_hints(cls.__init__)
    unknown = sorted(set(hyper_parameters) - set(params))
    missing = sorted(
        n for n, p in params.items() if p.default is p.empty and n not in hyper_parameters
    )
    if unknown or missing:
        return [
            f"its hyper_parameters {unknown or missing} are "
            f"{'not arguments' if unknown else 'missing arguments'} of module {name!r}"
        ]
    problems = [
        f"hyper_parameters.{n}={v!r} is not a {describe(hints[n])}"
        for n, v in hyper_parameters.items()
        if n in hints and not _type_ok(v, hints[n])
    ]
    for arg, config in spec.config_classes().items():
        if not problems and isinstance(hyper_parameters.get(arg), dict):
            problems += _config_problems(f"hyper_parameters.{arg}", hyper_parameters[arg], config)
    return problems


def _config_problems(group: str, values, cls: type) -> list[str]:
    """Keys of a stored config this version does not know, or values it does not accept."""
    if not isinstance(values, dict):
        return [f"its {group} config is not a JSON object"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        return [f"its {group} config has keys {unknown} this version does not know"]
    hints = typing.get_type_hints(cls)
    wrong = [
        f"{group}.{k}={v!r} is not a {describe(hints[k])}"
        for k, v in values.items()
        if not _type_ok(v, hints[k])
    ]
    if wrong:
        return [f"its {group} config has wrong types: {'; '.join(wrong)}"]
    try:
        cls(**values)
    except (ValueError, TypeError) as e:
        return [f"its {group} config is refused here: {e}"]
    return []


def feature_differences(bundle_features: dict, other: dict) -> list[str]:
    """``key: bundle value != other value`` for every feature key that changes the features."""
    keys = sorted((set(bundle_features) | set(other)) - set(FEATURE_KEYS_IGNORED) - {"_target_"})
    return [
        f"features.{k}: bundle {bundle_features.get(k)!r} != {other.get(k)!r}"
        for k in keys
        if bundle_features.get(k) != other.get(k)
    ]


# ------------------------------------------------------------------- reuse in training
def load_tokenizer_from(path: str | Path):
    """A trained tokenizer to reuse (``tokenizer.from_path``): a bundle file or a tokens
    artifact folder. Returns the Tokenizer and the digest of the tokens it was fitted for,
    so a base model pretrained on those tokens is accepted by fine-tuning."""
    path = resolve_bundle(path)  # a path, or pretrained:<name>
    if path.is_file():
        bundle = load_bundle(path)
        return bundle.tokenizer(), bundle.info["tokenizer"]["digest"]
    if (path / "tokenizer" / "tokenizer.json").is_file():
        return Tokenizer.load(path / "tokenizer"), path.name
    raise ValueError(
        f"tokenizer.from_path={str(path)!r} is neither a bundle file nor a tokens "
        "artifact folder (cache/tokens/<hash>/ with tokenizer/ inside)"
    )


def encoder_from_bundle(path: str | Path) -> tuple[dict, dict, str]:
    """Encoder config (dict), encoder weights and tokenizer digest of a bundle, for
    ``task.params.checkpoint=<bundle>``: fine-tuning a bundle on one's own labels."""
    bundle = load_bundle(path)
    hp = bundle.info["hyper_parameters"]
    state = {
        k[len("encoder.") :]: v for k, v in bundle.state_dict.items() if k.startswith("encoder.")
    }
    return hp["model"], state, bundle.info["tokenizer"]["digest"]
