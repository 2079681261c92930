"""Config validation: every group is a dataclass named by its ``_target_``.

Hydra composes YAML; ``build(node, key)`` instantiates the dataclass the node names.
Unknown keys, wrong types and out-of-range values fail here, before any work, with
a message naming the full key (``tokenizer.vocab_size``) and what is allowed.
Range checks live in each dataclass's ``__post_init__`` next to the code they guard.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from omegaconf import DictConfig, OmegaConf


def check_choice(key: str, value: Any, allowed: typing.Iterable) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is not allowed; choose one of {list(allowed)}")


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ValueError(f"{key}={value!r} is out of range; allowed {span}")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any or value is None and (origin is typing.Union and type(None) in typing.get_args(hint)):
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def build(node: DictConfig | dict, key: str) -> Any:
    """Instantiate the dataclass named by ``node._target_``, checking keys and types."""
    import hydra.utils

    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    target = data.pop("_target_", None)
    if target is None:
        raise ValueError(f"{key} has no _target_; it must name a config dataclass")
    cls = hydra.utils.get_class(target)
    if not dataclasses.is_dataclass(cls):
        return hydra.utils.instantiate(node)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {key}.{close[0]}?)" if close else ""
            raise ValueError(f"{key}.{name} is not a known key{hint}; known keys: {sorted(fields)}")
        if not _type_ok(value, hints[name]):
            raise ValueError(f"{key}.{name}={value!r} has the wrong type; expected {hints[name]}")
    return cls(**data)
