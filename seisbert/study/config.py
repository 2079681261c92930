"""The schema of ``configs/study/*.yaml``: the study protocol, checked before any work.

Like every other group, the paper config names its dataclass in ``_target_`` and is
built with ``seisbert.config.build``: an unknown key or a bad value fails with the key,
the value and what is allowed. Nested blocks (``budget``, ``finetune``, its arms,
``bootstrap``) are dataclasses too, built the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from seisbert.config import build, check_range

_LOG_SPACING_TOLERANCE = 0.02  # relative spread allowed between consecutive grid ratios
MIN_GRID = 4  # the protocol: at least this many values in every tuning grid


def _present(entries: dict) -> dict:
    """A name -> spec map without the entries set to null (how a preset drops an inherited one)."""
    return {name: spec for name, spec in entries.items() if spec is not None}


def _nested(value, cls: type, key: str):
    """A nested block as its dataclass (from a dict, as the YAML gives it)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{key}={value!r} must be a mapping of {cls.__name__} keys")
    return build({"_target_": f"{cls.__module__}.{cls.__qualname__}", **value}, key)


def check_log_grid(key: str, grid: list[float]) -> float:
    """At least MIN_GRID increasing, log-spaced values; returns the step ratio."""
    if len(grid) < MIN_GRID:
        raise ValueError(
            f"{key}={list(grid)} has {len(grid)} values; the protocol needs at least {MIN_GRID}"
        )
    if any(v <= 0 for v in grid) or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"{key}={list(grid)} must be positive and strictly increasing")
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    if max(ratios) / min(ratios) > 1 + _LOG_SPACING_TOLERANCE:
        raise ValueError(
            f"{key}={list(grid)} is not log-spaced (ratios {[round(r, 3) for r in ratios]}); use a "
            "constant ratio, e.g. [1e-4, 3e-4, 1e-3, 3e-3] is not, [1e-4, 1e-3, 1e-2, 1e-1] is"
        )
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


@dataclass
class Budget:
    """The training budget of every neural arm (transformers and CNN), in epochs."""

    epochs: int = 10  # passes over the labelled subset ...
    min_steps: int = 100  # ... or more, when a small subset would give fewer optimizer steps
    batch_size: int = 32
    validations: int = 10  # dev checks per run, spread evenly over the budget
    patience: int = 4  # early stopping: dev checks without a better dev balanced accuracy
    monitor: str = "val/balanced_accuracy"  # what early stopping and checkpoint selection watch

    def __post_init__(self):
        check_range("study.budget.epochs", self.epochs, 1)
        check_range("study.budget.min_steps", self.min_steps, 0)
        check_range("study.budget.batch_size", self.batch_size, 1)
        check_range("study.budget.validations", self.validations, 1)
        check_range("study.budget.patience", self.patience, 1)

    def plan(self, n_train: int) -> dict:
        """Epochs, steps and dev-check interval for a labelled subset of ``n_train`` records."""
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        epochs = max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))
        every = max(1, round(epochs / self.validations))
        return {
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "steps": epochs * steps_per_epoch,
            "val_every_epochs": every,
        }


@dataclass
class Arm:
    """One fine-tuning arm: its experiment overrides and the base model it starts from."""

    overrides: list[str] = field(default_factory=list)  # e.g. [experiment=finetune]
    base: str | None = None  # a pretraining arm's name; the study passes its checkpoint
    masked_eval: bool = False  # also score masked test inputs (token arms, all labels)
    compare_to: str | None = None  # the arm its pretraining gain is measured against (e.g. scratch)
    labels: list | None = None  # label counts of this arm; null: the study's label_sizes


@dataclass
class Finetune:
    """Fine-tuning arms and the one learning-rate grid they share."""

    arms: dict = field(default_factory=dict)  # name -> Arm
    lr_grid: list[float] = field(default_factory=lambda: [1e-4, 3.16e-4, 1e-3, 3.16e-3])
    max_extensions: int = 2  # grid steps added while the chosen lr sits on an edge
    tune_seed: int = 0  # every arm (baselines too) chooses per label count at this seed

    def __post_init__(self):
        self.lr_step = check_log_grid("study.finetune.lr_grid", self.lr_grid)
        check_range("study.finetune.max_extensions", self.max_extensions, 0, 10)
        self.arms = {
            name: _nested(a, Arm, f"study.finetune.arms.{name}")
            for name, a in _present(self.arms).items()
        }
        if not self.arms:
            raise ValueError("study.finetune.arms is empty; give at least one arm")


def check_distinct(key: str, values: list) -> None:
    if not values or len(set(map(str, values))) != len(values):
        raise ValueError(f"{key}={values} must be a non-empty list without repeats")


@dataclass
class Gapfill:
    """Gap filling scored on the test split for base models that can fill (token or psd targets)."""

    bases: list[str] = field(default_factory=list)  # pretraining arms; every one of their seeds
    lengths: list[int] = field(default_factory=lambda: [1, 5, 10, 20])  # gap lengths in windows
    max_records: int = 400  # test records scored

    def __post_init__(self):
        check_range("study.gapfill.max_records", self.max_records, 1)
        for n in self.lengths:
            check_range("study.gapfill.lengths", n, 1)


@dataclass
class Bootstrap:
    n_boot: int = 2000  # replicates (event draws with seed draws)
    level: float = 0.95
    seed: int = 0

    def __post_init__(self):
        check_range("study.bootstrap.n_boot", self.n_boot, 100)
        check_range("study.bootstrap.level", self.level, 0.5, 0.999)


@dataclass
class Targets:
    """What the study is meant to show, each checked against its interval in results.csv."""

    gain_points: float = 10.0  # pretrained - its scratch arm, at gain_labels, interval above 0
    gain_labels: list = field(default_factory=lambda: [120, 500])
    baseline_labels_max: int = 500  # best SeisBert >= best baseline at every label count up to this
    baseline_margin_all: float = 1.0  # ... and within this many points of it with all labels
    token_vs_left: float = (
        2.0  # all-masked masked-token accuracy >= this x the left-neighbour guess
    )
    pool_labels: list = field(
        default_factory=lambda: [120]
    )  # the pool curve rises (largest - none > 0)

    def __post_init__(self):
        check_range("study.targets.token_vs_left", self.token_vs_left, 0)
        check_range("study.targets.baseline_margin_all", self.baseline_margin_all, 0)


@dataclass
class StudyConfig:
    """``configs/study/<scale>.yaml``: what the study runs, and the protocol it follows."""

    scale: str = "quick"
    out_dir: str = "reports/paper"
    run_dir: str = "outputs/paper"
    readme: str | None = "README.md"  # blocks go to the page it links that holds them; null: none
    readme_marker: str = "results"  # the block between <!-- {marker}:start/end -->
    umap: bool = True
    attention: bool = True
    base_overrides: list[str] = field(default_factory=list)
    jobs: int = (
        1  # runs trained at once, each in its own process with base_overrides' torch_threads
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])  # fine-tuning seeds
    pretrain_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # base models per arm
    pretrain_seeds_of: dict = field(
        default_factory=dict
    )  # base model -> its own seeds (an ablation's fewer)
    label_sizes: list = field(default_factory=lambda: [50, 120, 500, None])  # None = every record
    budget: Budget | dict = field(default_factory=Budget)
    pretrain: dict = field(default_factory=dict)  # name -> overrides (e.g. [experiment=mlm])
    pretrain_overrides: list[str] = field(
        default_factory=list
    )  # before each base model's own: its budget
    finetune: Finetune | dict = field(default_factory=Finetune)
    baselines: dict = field(default_factory=dict)  # name -> overrides (experiment=baseline_rf, ...)
    bootstrap: Bootstrap | dict = field(default_factory=Bootstrap)
    pool_curve: list[str] = field(
        default_factory=list
    )  # fine-tuning arms plotted against their pool size
    gapfill: Gapfill | dict = field(default_factory=Gapfill)
    targets: Targets | dict | None = None  # checked and reported when given

    def __post_init__(self):
        self.budget = _nested(self.budget, Budget, "study.budget")
        self.pretrain, self.baselines = _present(self.pretrain), _present(self.baselines)
        self.finetune = _nested(self.finetune, Finetune, "study.finetune")
        self.bootstrap = _nested(self.bootstrap, Bootstrap, "study.bootstrap")
        self.gapfill = _nested(self.gapfill, Gapfill, "study.gapfill")
        for name in self.gapfill.bases:
            if name not in self.pretrain:
                raise ValueError(
                    f"study.gapfill.bases names {name!r}, which is not a pretraining arm; "
                    f"choose from {sorted(self.pretrain)}"
                )
        if self.targets is not None:
            self.targets = _nested(self.targets, Targets, "study.targets")
        if not self.readme_marker.replace("-", "").isalnum():
            raise ValueError(
                f"study.readme_marker={self.readme_marker!r} must be letters, digits and '-'"
            )
        if self.jobs < 1:
            raise ValueError(f"study.jobs={self.jobs} must be at least 1 (runs trained at once)")
        for key in ("seeds", "pretrain_seeds", "label_sizes"):
            check_distinct(f"study.{key}", getattr(self, key))
        for name, seeds in self.pretrain_seeds_of.items():
            if name not in self.pretrain:
                raise ValueError(
                    f"study.pretrain_seeds_of names {name!r}, which is not a pretraining arm; "
                    f"choose from {sorted(self.pretrain)}"
                )
            check_distinct(f"study.pretrain_seeds_of.{name}", seeds)
        if self.finetune.tune_seed not in self.seeds:
            raise ValueError(
                f"study.finetune.tune_seed={self.finetune.tune_seed} is not one of "
                f"study.seeds={self.seeds}"
            )
        for name, arm in self.finetune.arms.items():
            if arm.base is not None and arm.base not in self.pretrain:
                raise ValueError(
                    f"study.finetune.arms.{name}.base={arm.base!r} is not a pretraining arm; "
                    f"choose one of {sorted(self.pretrain)} or null (scratch)"
                )
            if arm.compare_to is not None and arm.compare_to not in self.finetune.arms:
                raise ValueError(
                    f"study.finetune.arms.{name}.compare_to={arm.compare_to!r} is not an arm; "
                    f"choose one of {sorted(self.finetune.arms)}"
                )
            if arm.labels is not None and not set(map(str, arm.labels)) <= set(
                map(str, self.label_sizes)
            ):
                raise ValueError(
                    f"study.finetune.arms.{name}.labels={arm.labels} must be a subset of "
                    f"study.label_sizes={self.label_sizes}, so every cell has its baselines"
                )
        for name in self.pool_curve:
            if name not in self.finetune.arms or self.finetune.arms[name].base is None:
                raise ValueError(
                    f"study.pool_curve names {name!r}, which is not a pretrained fine-tuning arm; "
                    f"choose from {sorted(n for n, a in self.finetune.arms.items() if a.base)}"
                )

    def pretrain_args(self, name: str) -> list[str]:
        """Overrides of base model ``name``: the shared pretraining budget, then its own."""
        return [*self.pretrain_overrides, *self.pretrain[name]]

    def arm_labels(self, name: str) -> list:
        """The label counts fine-tuning arm ``name`` runs at."""
        own = self.finetune.arms[name].labels
        return list(self.label_sizes) if own is None else list(own)

    def base_seeds(self, name: str) -> list[int]:
        """The seeds base model ``name`` is pretrained at."""
        return list(self.pretrain_seeds_of.get(name, self.pretrain_seeds))

    def pretrain_seed(self, seed: int, name: str) -> int:
        """The seed of base model ``name`` that fine-tuning seed ``seed`` starts from (cycled in
        order)."""
        seeds = self.base_seeds(name)
        return seeds[self.seeds.index(seed) % len(seeds)]
