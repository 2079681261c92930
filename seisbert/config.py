"""Config validation: every group is a dataclass named by its ``_target_``.

Hydra composes YAML; ``build(node, key)`` instantiates the dataclass the node names.
Unknown keys, wrong types and out-of-range values fail here, before any work, with
a message naming the full key (``tokenizer.vocab_size``) and what is allowed.
Range checks live in each dataclass's ``__post_init__`` next to the code they guard.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


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
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(hint))
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


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def build(node: DictConfig | dict, key: str) -> Any:
    """Instantiate the dataclass named by ``node._target_``, checking keys and types.
    ``key`` is the node's place in the config (``tokenizer``; ``""`` for the root)."""
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
            hint = f" (did you mean {_join(key, close[0])}?)" if close else ""
            raise ValueError(f"{_join(key, name)} is not a known key{hint}; known keys: {sorted(fields)}")
        if not _type_ok(value, hints[name]):
            raise ValueError(f"{_join(key, name)}={value!r} has the wrong type; expected {describe(hints[name])}")
    return cls(**data)


# Targets that pass their ``**kwargs`` on: unknown keys are checked against the receiver too.
KWARGS_FORWARDED_TO = {"seisbert.loggers.wandb_logger": "lightning.pytorch.loggers.WandbLogger",
                       "lightning.pytorch.loggers.WandbLogger": "wandb.init",
                       "lightning.pytorch.loggers.wandb.WandbLogger": "wandb.init"}


def describe(hint: Any) -> str:
    """A type hint as a user reads it: ``int | None``, or the allowed values of a Literal."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if typing.get_origin(hint) is typing.Union or str(typing.get_origin(hint)) == "<class 'types.UnionType'>":
        return " | ".join(describe(a) for a in args)
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _hints(fn) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that names a type the module imports lazily: no type checks
        return {}


def _parameters(target: str) -> tuple[dict, dict, bool]:
    """Named parameters, their type hints and whether the chain of ``target`` ends in **kwargs."""
    import hydra.utils

    params, hints, open_kwargs = {}, {}, False
    while target is not None:
        obj = hydra.utils.get_object(target)
        fn = obj.__init__ if isinstance(obj, type) else obj
        sig = inspect.signature(obj)
        params.update({n: p for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)})
        hints.update({k: v for k, v in _hints(fn).items() if k not in hints})
        open_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        target = KWARGS_FORWARDED_TO.get(target) if open_kwargs else None
    return params, hints, open_kwargs


def check_arguments(node: DictConfig, key: str, target: str | None = None, exclude: tuple = ()) -> None:
    """Check a node's keys and literal values against the signature of the class or function
    it is passed to (``target``, default its ``_target_``), without calling it."""
    target = target or node.get("_target_")
    if target is None:
        raise ValueError(f"{key} has no _target_; it must name the class it configures")
    try:
        params, hints, open_kwargs = _parameters(target)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"{key}._target_={target!r} cannot be imported: {err}") from None
    for name in node:
        if name == "_target_" or name.startswith("_"):
            continue
        if name in exclude:
            raise ValueError(f"{key}.{name} cannot be set here; it is built from its own config group")
        if name not in params:
            if open_kwargs:
                continue  # passed on to a receiver whose keys are unknown until it runs
            close = difflib.get_close_matches(name, params, n=1)
            hint = f"did you mean {key}.{close[0]}?" if close else f"known: {sorted(params)}"
            raise ValueError(f"{key}.{name} is not an argument of {target}; {hint}")
        if OmegaConf.is_interpolation(node, name) or name not in hints:
            continue  # resolved when the run starts
        value = node[name]
        value = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        if not _type_ok(value, hints[name]):
            raise ValueError(f"{key}.{name}={value!r} is not allowed by {target}; expected {describe(hints[name])}")
