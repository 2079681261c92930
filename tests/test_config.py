"""Every key checked before any work: root keys, the task node, trainer/callbacks/logger
arguments, cross-group windows; debug presets that do what they say; the phase layout of the
vocabulary report derived from the features config."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from seisbert.artifacts.paths import stage_path
from seisbert.config import build
from seisbert.features import FeatureConfig
from seisbert.pipeline import prepare
from seisbert.tokenizer import TokenizerConfig, fit_tokenizer, standin_features
from seisbert.train.common import build_callbacks, build_loggers
from seisbert.train.job import validate
from seisbert.vocabulary import ReportConfig, phase_bins, phase_layout, vocabulary_report

ROOT = Path(__file__).resolve().parents[1]


def compose_in(tmp_path: Path, overrides=(), extra_configs: dict[str, str] | None = None):
    """train.yaml with ``overrides``; ``extra_configs`` (relative path -> YAML text) are
    written to a second config folder on Hydra's search path, as a user's own files."""
    search = []
    if extra_configs:
        extra = tmp_path / "user_configs"
        for rel, text in extra_configs.items():
            (extra / rel).parent.mkdir(parents=True, exist_ok=True)
            (extra / rel).write_text(text)
        search = [f"hydra.searchpath=[file://{extra}]"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*search, *overrides])
    with open_dict(cfg):
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.output_dir = str(tmp_path / "out")
    return cfg


REFUSED = [
    # (overrides, user config files, message)
    (
        ["task=untill"],
        {"task/untill.yaml": "defaults:\n  - prepare\nuntill: features\n"},
        r"task\.untill is not a known key \(did you mean task\.until\?\)",
    ),
    (
        ["experiment=seeed"],
        {"experiment/seeed.yaml": "# @package _global_\nseeed: 5\n"},
        r"^seeed is not a known key \(did you mean seed\?\)",
    ),
    (
        ["+trainer.max_epoch=3"],
        None,
        r"trainer\.max_epoch is not an argument of lightning\.pytorch\.Trainer; did you mean "
        r"trainer\.max_epochs\?",
    ),
    (
        ["trainer.max_epochs=abc"],
        None,
        r"trainer\.max_epochs='abc' is not allowed by lightning\.pytorch\.Trainer; expected int "
        r"\| None",
    ),
    (["trainer.precision=31"], None, r"trainer\.precision=31 is not allowed .* '32-true'"),
    (["seed=abc"], None, r"^seed='abc' has the wrong type; expected int"),
    (
        ["+callbacks.model_checkpoint.save_top_kk=2"],
        None,
        r"callbacks\.model_checkpoint\.save_top_kk is not an argument of .*ModelCheckpoint; did "
        r"you mean "
        r"callbacks\.model_checkpoint\.save_top_k\?",
    ),
    (
        ["callbacks.lr_monitor.logging_interval=stepp"],
        None,
        r"callbacks\.lr_monitor\.logging_interval='stepp' is not allowed .* expected 'step' \| "
        r"'epoch' \| None",
    ),
    (
        ["+logger.wandb.projct=x"],
        None,  # through wandb_logger's **kwargs to WandbLogger and wandb.init
        r"logger\.wandb\.projct is not an argument of .*; did you mean logger\.wandb\.project\?",
    ),
    (
        ["logger=csv", "+logger.csv.flush_logs_every=5"],
        None,
        r"logger\.csv\.flush_logs_every is not an argument of "
        r"lightning\.pytorch\.loggers\.CSVLogger",
    ),
    (["+trainer.logger=false"], None, r"trainer\.logger cannot be set here"),
    (["task=mlm", "task.until=token"], None, r"task\.until='token' is not allowed; choose one of"),
    (
        ["task=mlm", "task.runner=seisbert.train.pretrain.runn"],
        None,
        r"task\.runner=.*cannot be imported",
    ),
    (
        [
            "data=waveforms",
            "data.waveform_dir=/nowhere",
            "data.catalog=/nowhere.csv",
            "data.post_s=60",
        ],
        None,
        r"data\.post_s=60 is shorter than features\.post_s=80\.0",
    ),
    (
        [
            "data=waveforms",
            "data.waveform_dir=/nowhere",
            "data.catalog=/nowhere.csv",
            "data.pre_s=5.0",
        ],
        None,
        r"data\.pre_s=5\.0 is shorter than features\.pre_s=10\.0",
    ),
]


@pytest.mark.parametrize("overrides, files, match", REFUSED, ids=[" ".join(r[0]) for r in REFUSED])
def test_a_bad_key_or_value_is_refused_by_name_before_any_work(tmp_path, overrides, files, match):
    cfg = compose_in(tmp_path, overrides, files)
    with pytest.raises(ValueError, match=match):
        validate(cfg)
    assert not (tmp_path / "cache").exists()


def test_the_shipped_configs_and_presets_validate(tmp_path):
    for overrides in (
        [],
        ["trainer=ddp"],
        ["trainer=gpu"],
        ["logger=csv"],
        ["logger=tensorboard"],
        ["experiment=mlm", "debug=fdr"],
        ["experiment=finetune", "debug=overfit"],
        ["experiment=mlm", "debug=profiler"],
        ["callbacks=none", "logger=none"],
    ):
        validate(compose_in(tmp_path, overrides))


def test_train_py_refuses_a_trainer_typo_before_any_artifact(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=mlm",
            "+trainer.max_epoch=3",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert (
        "trainer.max_epoch is not an argument of lightning.pytorch.Trainer; did you mean "
        "trainer.max_epochs?" in proc.stdout + proc.stderr
    )
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "run" / "config.yaml").exists()  # not even the run record


# ------------------------------------------------------------------------------ debug presets
def test_debug_fdr_builds_no_logger_and_no_callback(tmp_path):
    cfg = compose_in(tmp_path, ["experiment=mlm", "debug=fdr"])  # mlm sets W&B tags: a leftover
    assert cfg.trainer.fast_dev_run is True
    assert build_loggers(cfg) == [] and build_callbacks(cfg) == []
    # a group the user names on the command line still wins over the preset
    csv = compose_in(tmp_path, ["debug=fdr", "logger=csv"])
    assert [type(lg).__name__ for lg in build_loggers(csv)] == ["CSVLogger"]


@pytest.mark.parametrize("preset", ["overfit", "profiler"])
def test_debug_presets_start_no_wandb_run(tmp_path, preset):
    cfg = compose_in(tmp_path, ["experiment=mlm", f"debug={preset}"])
    assert build_loggers(cfg) == []
    assert "model_checkpoint" in cfg.callbacks  # these keep the real run's callbacks


def test_debug_wins_over_a_machines_local_file(tmp_path):
    local = {
        "local/default.yaml": "# @package _global_\ntrainer:\n"
        "  fast_dev_run: false\n  max_epochs: 100\n"
    }
    cfg = compose_in(tmp_path, ["debug=fdr"], local)
    assert (
        cfg.trainer.fast_dev_run is True and cfg.trainer.max_epochs == 100
    )  # local applied, debug last
    assert compose_in(tmp_path, [], local).trainer.fast_dev_run is False


# --------------------------------------------------------------- phase layout from features
def test_phase_layout_follows_the_features_window_grid():
    one, two = (
        phase_layout(features=FeatureConfig()),
        phase_layout(features=FeatureConfig(window_s=2.0)),
    )
    assert (one.n_windows, one.p_window, one.p_windows, one.s_start_window, one.s_end_window) == (
        90,
        10,
        5,
        15,
        30,
    )
    # P at 10 s: window 5 of 2 s; the P bin's 5 s need 3 windows; the fixed S bin 5-20 s after P
    assert (two.n_windows, two.p_window, two.p_windows, two.s_start_window, two.s_end_window) == (
        45,
        5,
        3,
        7,
        15,
    )
    late_p = phase_layout(features=FeatureConfig(pre_s=20.0, post_s=70.0))
    assert late_p.p_window == 20 and late_p.s_start_window == 25


def test_phase_bins_on_two_second_windows_put_s_in_its_window():
    meta = pd.DataFrame(
        {"trace_p_arrival_sample": [1000, 1000], "trace_s_arrival_sample": [1000 + 1700, np.nan]}
    )
    bins = phase_bins(meta, 45, ReportConfig(), FeatureConfig(window_s=2.0))
    assert (bins[:, :5] == 0).all() and (bins[:, 5] == 1).all()
    # S 17 s after P = 27 s into the record: window 13; 15 s of S = 8 windows
    np.testing.assert_array_equal(bins[0, 5:23], [1] * 3 + [3] * 5 + [2] * 8 + [3] * 2)
    np.testing.assert_array_equal(
        bins[1, 5:16], [1] * 2 + [2] * 8 + [3]
    )  # fixed S bin: windows 7-14
    with pytest.raises(
        ValueError, match=r"the tokens have T=45 windows but the features config gives T=90"
    ):
        phase_bins(meta, 45, ReportConfig())  # 2-s tokens read on the default 1-s grid


def test_standin_features_follow_the_features_config():
    features, meta = standin_features(
        30, seed=0, features=FeatureConfig(window_s=2.0, fmax_hz=10.0)
    )
    assert features.shape == (30, 45, 10)
    assert (meta["trace_p_arrival_sample"] == 1000).all()
    one, _ = standin_features(30, seed=0)
    assert one.shape == (30, 90, 20)


def test_two_second_windows_report_on_their_own_windows(tiny_cfg):
    cfg = tiny_cfg("features.window_s=2")
    prepare(cfg)
    report = json.loads((stage_path(cfg, "tokens") / "vocabulary_report.json").read_text())
    lay = phase_layout(
        build(cfg.tokenizer.report, "tokenizer.report"), build(cfg.features, "features")
    )
    assert report["n_windows"] == report["n_records"] * 45
    assert report["phase_fractions"]["pre-event"] == pytest.approx(
        lay.p_window / 45
    )  # 5/45, not 10/45


def test_vocabulary_report_reads_train_rows_only():
    features, meta = standin_features(300, seed=2)
    tok, tokens = fit_tokenizer(
        features, meta, TokenizerConfig(vocab_size=12, init_sample_windows=2000, seed=0)
    )
    report = vocabulary_report(
        features, tokens, tok.centroids, meta, ReportConfig(sample_windows=2000)
    )
    held_out = (meta["split"] != "train").to_numpy()
    assert report["n_records"] == int((~held_out).sum()) and report["rows"] == "train"
    relabelled = meta.assign(label=np.where(held_out, 1 - meta["label"], meta["label"]))
    same = vocabulary_report(
        features, tokens, tok.centroids, relabelled, ReportConfig(sample_windows=2000)
    )
    assert (
        same["class_pnmi"] == report["class_pnmi"]
        and same["class_purity"] == report["class_purity"]
    )
    some_train = ~held_out & (np.arange(len(meta)) % 2 == 0)
    flipped = meta.assign(label=np.where(some_train, 1 - meta["label"], meta["label"]))
    changed = vocabulary_report(
        features, tokens, tok.centroids, flipped, ReportConfig(sample_windows=2000)
    )
    assert changed["class_pnmi"] != report["class_pnmi"]  # train labels do count


# ----------------------------------------------------------------------------- packaging
CONDA_TO_PYPI = {"pytorch": "torch"}  # conda-forge names that differ from pyproject's


def requirement(spec: str) -> tuple[str, str]:
    """``'name>=1.2  # comment'`` -> ``('name', '>=1.2')``, the name normalised as pip does."""
    import re

    spec = spec.split("#")[0].strip()
    name, bound = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
    name = name.lower().replace("_", "-")
    return CONDA_TO_PYPI.get(name, name), bound.replace(" ", "")


def test_environment_yml_lists_pyprojects_dependencies_with_the_same_bounds():
    import tomllib

    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(requirement(d) for d in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert "-e ." in pip  # the package itself, on top of its requirements
    listed = [requirement(d) for d in conda + pip if not d.startswith(("python=", "pip", "-e"))]
    names = [n for n, _ in listed]
    assert len(names) == len(set(names)), "a package is listed twice"
    assert dict(listed) == wanted  # same packages, same lower bounds
    assert any(d.startswith("python=3.11") for d in conda)


# ------------------------------------------------------------------ defaults stated once
SCHEMA_FILES = {  # YAML preset -> [(schema, key path inside the file)]
    "model/tiny.yaml": [("encoder", ())],
    "model/small.yaml": [("encoder", ())],
    "model/base.yaml": [("encoder", ())],
    "features/psd.yaml": [("features", ())],
    "split/event.yaml": [("split", ())],
    "tokenizer/kmeans.yaml": [("tokenizer", ()), ("vocabulary_report", ("report",))],
    "baseline/rf.yaml": [("forest", ())],
    "baseline/hgb.yaml": [("boosting", ())],
    "baseline/cnn.yaml": [("cnn", ())],
    "task/mlm.yaml": [("pretrain", ("params",))],
    "task/finetune.yaml": [("finetune", ("params",))],
    "data/synthetic.yaml": [("synthetic", ())],
}


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_a_preset_states_only_what_it_changes_from_its_dataclass(name):
    import yaml

    from seisbert.train.schemas import SCHEMAS, defaults_node

    node = yaml.safe_load((Path(CONFIG_DIR) / name).read_text()) or {}
    for schema, where in SCHEMA_FILES[name]:
        assert f"/schema/{schema}@{where[0] if where else '_here_'}" in node["defaults"]
        values = node
        for key in where:
            values = values.get(key) or {}
        defaults = defaults_node(SCHEMAS[schema])
        repeated = sorted(k for k, v in values.items() if k in defaults and v == defaults[k])
        assert not repeated, f"{name} restates the defaults of {sorted(repeated)}"


def test_cfg_job_still_prints_every_key_of_every_dataclass(tmp_path):
    import subprocess
    import sys

    import yaml

    from seisbert.features import FeatureConfig
    from seisbert.model.encoder import EncoderConfig
    from seisbert.tasks.finetune import FinetuneConfig
    from seisbert.tokenizer import TokenizerConfig

    repo = Path(CONFIG_DIR).parent
    out = subprocess.run(
        [sys.executable, "train.py", "experiment=finetune", "model=tiny", "--cfg", "job"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    cfg = yaml.safe_load(out)
    for node, cls in (
        (cfg["model"], EncoderConfig),
        (cfg["task"]["params"], FinetuneConfig),
        (cfg["features"], FeatureConfig),
        (cfg["tokenizer"], TokenizerConfig),
    ):
        assert set(dataclasses.fields(cls)) and {f.name for f in dataclasses.fields(cls)} <= set(
            node
        )
    assert (cfg["model"]["layers"], cfg["model"]["d_model"], cfg["model"]["latents"]) == (2, 32, 32)
    assert cfg["task"]["params"]["lr"] == FinetuneConfig().lr
    assert cfg["tokenizer"]["report"]["p_bin_s"] == 5.0
