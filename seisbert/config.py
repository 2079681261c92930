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


def check_range(
    key: str, value: float, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> None:
    """``lo <= value <= hi`` (``lo < value`` with ``lo_open``, e.g. a learning rate)."""
    below = lo is not None and (value <= lo if lo_open else value < lo)
    if below or (hi is not None and value > hi):
        low, high = "-inf" if lo is None else lo, "inf" if hi is None else hi
        span = f"{'(' if lo_open else '['}{low}, {high}]"
        raise ValueError(f"{key}={value!r} is out of range; allowed {span}")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if (
        hint is Any
        or value is None
        and (origin is typing.Union and type(None) in typing.get_args(hint))
    ):
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

    data = (
        OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    )
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
            raise ValueError(
                f"{_join(key, name)} is not a known key{hint}; known keys: {sorted(fields)}"
            )
        if not _type_ok(value, hints[name]):
            raise ValueError(
                f"{_join(key, name)}={value!r} has the wrong type; expected {describe(hints[name])}"
            )
    return cls(**data)


# Targets that pass their ``**kwargs`` on: unknown keys are checked against the receiver too.
KWARGS_FORWARDED_TO = {
    "seisbert.train.loggers.wandb_logger": "lightning.pytorch.loggers.WandbLogger",
    "lightning.pytorch.loggers.WandbLogger": "wandb.init",
    "lightning.pytorch.loggers.wandb.WandbLogger": "wandb.init",
}


def describe(hint: Any) -> str:
    """A type hint as a user reads it: ``int | None``, or the allowed values of a Literal."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if (
        typing.get_origin(hint) is typing.Union
        or str(typing.get_origin(hint)) == "<class 'types.UnionType'>"
    ):
        return " | ".join(describe(a) for a in args)
    return (
        "None"
        if hint is type(None)
        else getattr(hint, "__name__", str(hint).replace("typing.", ""))
    )


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
        params.update(
            {
                n: p
                for n, p in sig.parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            }
        )
        hints.update({k: v for k, v in _hints(fn).items() if k not in hints})
        open_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        target = KWARGS_FORWARDED_TO.get(target) if open_kwargs else None
    return params, hints, open_kwargs


def check_arguments(
    node: DictConfig, key: str, target: str | None = None, exclude: tuple = ()
) -> None:
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
            raise ValueError(
                f"{key}.{name} cannot be set here; it is built from its own config group"
            )
        if name not in params:
            if open_kwargs:
                continue  # passed on to a receiver whose keys are unknown until it runs
            close = difflib.get_close_matches(name, params, n=1)
            hint = f"did you mean {key}.{close[0]}?" if close else f"known: {sorted(params)}"
            raise ValueError(f"{key}.{name} is not an argument of {target}; {hint}")
        if OmegaConf.is_interpolation(node, name) or name not in hints:
            continue  # resolved when the run starts
        value = node[name]
        value = (
            OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        )
        if not _type_ok(value, hints[name]):
            raise ValueError(
                f"{key}.{name}={value!r} is not allowed by {target}; "
                f"expected {describe(hints[name])}"
            )
    check_late_values(node, key, target)


# ------------------------------------------------------------ values Lightning checks late
# Lightning checks these arguments only when it builds the Trainer or callback, after the data
# stages have run; here they fail before any work. The allowed values are read from Lightning
# where it lists them (registries, enums, its batch-limit rule); the ranges are the ones its
# own error messages state, or, for counts it divides by, >= 1. A value Lightning takes and
# then ignores (a negative gradient_clip_val turns clipping off) is refused too.


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def at_least(lo: float):
    """A check of numbers ``>= lo``; None and other types are left to the type check."""

    def check(key: str, value: Any, args: dict) -> None:
        if _number(value):
            check_range(key, value, lo)

    return check


def _accelerator(key: str, value: Any, args: dict) -> None:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    names = sorted(AcceleratorRegistry.available_accelerators())
    if isinstance(value, str):  # "gpu" is an alias Lightning resolves itself
        check_choice(key, value, ("auto", "gpu", *names))


def _strategy(key: str, value: Any, args: dict) -> None:
    from lightning.pytorch.strategies import StrategyRegistry

    allowed = ("auto", *StrategyRegistry.available_strategies())
    if isinstance(value, str) and value.lower() not in allowed:  # Lightning lower-cases the name
        check_choice(key, value, allowed)


def _devices(key: str, value: Any, args: dict) -> None:
    """Lightning refuses 0 and [] on every accelerator; -1 (every device) needs one that counts
    its devices, so a CPU run needs a count >= 1."""
    if value == []:
        raise ValueError(
            f"{key}=[] is not allowed; give a count >= 1, a list of device ids or 'auto'"
        )
    count = int(value) if isinstance(value, str) and value.strip().lstrip("-").isdigit() else value
    if _number(count) and not (count == -1 and args.get("accelerator") != "cpu"):
        check_range(key, count, 1)


def _gradient_clip_algorithm(key: str, value: Any, args: dict) -> None:
    from lightning.pytorch.utilities import GradClipAlgorithmType

    if isinstance(value, str):
        check_choice(key, value.lower(), GradClipAlgorithmType.supported_types())


def _batch_limit(key: str, value: Any, args: dict) -> None:
    """Lightning's own rule (``_determine_batch_limits``): a fraction or a whole count."""
    from lightning.pytorch.trainer.setup import _determine_batch_limits

    if not _number(value) or value == 1:
        return  # a duration (val_check_interval) Lightning parses itself; 1 it logs, and allows
    try:
        _determine_batch_limits(value, key.rsplit(".", 1)[-1])
    except Exception:
        raise ValueError(
            f"{key}={value!r} is not allowed; choose a fraction in [0.0, 1.0] "
            f"or a whole number of batches"
        ) from None


def _val_check_interval(key: str, value: Any, args: dict) -> None:
    _batch_limit(key, value, args)
    if _number(value) and value == 0:  # Lightning takes an int 0, then divides by it
        raise ValueError(
            f"{key}={value!r} is not allowed; choose a fraction in (0.0, 1.0] "
            f"or a whole number of batches >= 1"
        )


def _monitor_mode(key: str, value: Any, args: dict) -> None:
    from lightning.pytorch.callbacks import EarlyStopping

    # ModelCheckpoint keeps the same two modes in a local dict; EarlyStopping exposes them
    check_choice(key, value, EarlyStopping.mode_dict)


def late_checks() -> list[tuple[type, dict]]:
    """(Lightning class, {argument: check}); a subclass gets its base's checks."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    limits = {f"limit_{s}_batches": _batch_limit for s in ("train", "val", "test", "predict")}
    trainer = {
        "accelerator": _accelerator,
        "strategy": _strategy,
        "devices": _devices,
        "num_nodes": at_least(1),
        "max_epochs": at_least(-1),
        "max_steps": at_least(-1),
        "check_val_every_n_epoch": at_least(1),
        "accumulate_grad_batches": at_least(1),
        "val_check_interval": _val_check_interval,
        "overfit_batches": _batch_limit,
        **limits,
        "gradient_clip_val": at_least(0.0),
        "gradient_clip_algorithm": _gradient_clip_algorithm,
    }
    checkpoint = {
        "mode": _monitor_mode,
        "save_top_k": at_least(-1),
        "every_n_epochs": at_least(0),
        "every_n_train_steps": at_least(0),
    }
    stopping = {"mode": _monitor_mode}
    return [(Trainer, trainer), (ModelCheckpoint, checkpoint), (EarlyStopping, stopping)]


_UNRESOLVED = object()


def _resolved(node: DictConfig, name: str) -> Any:
    try:
        value = node[name]
    except Exception:  # an interpolation only the running app resolves (${hydra:...})
        return _UNRESOLVED
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_late_values(node: DictConfig, key: str, target: str) -> None:
    """The values of ``node`` that Lightning would refuse only when it builds ``target``."""
    import hydra.utils

    cls = hydra.utils.get_object(target)
    if not isinstance(cls, type):
        return
    for base, checks in late_checks():
        if not issubclass(cls, base):
            continue
        args = {name: _resolved(node, name) for name in checks if name in node}
        for name, value in args.items():
            if value is not _UNRESOLVED:
                checks[name](f"{key}.{name}", value, args)
