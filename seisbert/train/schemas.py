"""Config defaults stated once, in the dataclasses.

Each config dataclass below is registered with Hydra's ConfigStore as ``schema/<name>``: a
plain node with its ``_target_`` and every field's default. A YAML file extends it
(``defaults: [/schema/<name>@_here_, _self_]``) and lists only what it changes, so a preset
reads as its differences while ``python train.py --cfg job`` still prints every key.
``register()`` must run before Hydra composes (``train.py``, ``seisbert predict``, the study
and the tests call it); it is idempotent.
"""

from __future__ import annotations

import dataclasses

from hydra.core.config_store import ConfigStore

from seisbert.baselines.cnn import CNNConfig
from seisbert.baselines.forest import BoostingConfig, ForestConfig
from seisbert.data.splits import SplitConfig
from seisbert.data.synthetic import SyntheticSource
from seisbert.features import FeatureConfig
from seisbert.model.encoder import EncoderConfig
from seisbert.tasks.finetune import FinetuneConfig
from seisbert.tasks.pretrain import PretrainConfig
from seisbert.tokenizer import TokenizerConfig
from seisbert.vocabulary import ReportConfig

SCHEMAS = {
    "encoder": EncoderConfig,
    "pretrain": PretrainConfig,
    "finetune": FinetuneConfig,
    "features": FeatureConfig,
    "split": SplitConfig,
    "tokenizer": TokenizerConfig,
    "vocabulary_report": ReportConfig,
    "forest": ForestConfig,
    "boosting": BoostingConfig,
    "cnn": CNNConfig,
    "synthetic": SyntheticSource,
}


def defaults_node(cls) -> dict:
    """``_target_`` and the default of every init field of the dataclass ``cls``."""
    default = cls()
    values = {f.name: getattr(default, f.name) for f in dataclasses.fields(cls) if f.init}
    return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **values}


def register() -> None:
    """Store every schema under the group ``schema`` (again is harmless: the same nodes)."""
    store = ConfigStore.instance()
    for name, cls in SCHEMAS.items():
        store.store(group="schema", name=name, node=defaults_node(cls))
