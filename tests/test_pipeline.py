"""The cached stages end to end on the tiny synthetic set: records -> features -> tokens."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.signal
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir

from seisbert.artifacts.cache import is_complete
from seisbert.artifacts.paths import stage_path
from seisbert.pipeline import FeatureSet, TokenSet, load_records, prepare
from seisbert.train.job import validate


def test_prepare_builds_features_and_tokens_with_splits_and_manifest(tiny_cfg):
    cfg = tiny_cfg()
    paths = prepare(cfg)
    fset = FeatureSet.load(paths["features"])
    tset = TokenSet.load(paths["tokens"])
    n = len(fset.metadata)
    assert fset.features.shape == (n, 90, 20) and fset.features.dtype == np.float32
    assert tset.tokens.shape == (n, 90) and tset.tokens.dtype == np.int16
    assert tset.tokens.max() < 16 and tset.vocab_size == 16
    assert np.isfinite(fset.features).all()  # bad records were rejected, not kept as NaN
    # a few records recomputed from the records stage with SciPy: the P - 10 s .. P + 80 s cut,
    # 1-s Hann periodograms, 1-20 Hz, each bin over its median across windows, log10
    records = load_records(paths["records"])
    centroids = np.load(paths["tokens"] / "centroids.npy").astype(np.float64)
    for i in (0, n // 2, n - 1):
        meta = fset.metadata.iloc[i]
        p = int(meta.trace_p_arrival_sample)
        cut = np.asarray(records.waveforms[int(meta.record_index), 0, p - 1000 : p + 8000])
        _, pxx = scipy.signal.periodogram(
            cut.astype(np.float64).reshape(90, 100), fs=100.0, window="hann", axis=-1
        )
        pxx = pxx[:, 1:21]
        np.testing.assert_allclose(
            fset.features[i], np.log10(pxx / np.median(pxx, axis=0)), atol=1e-3
        )
        d2 = ((fset.features[i][:, None, :] - centroids[None]) ** 2).sum(-1)  # (90, K)
        assert (d2[np.arange(90), tset.tokens[i]] <= d2.min(1) + 1e-4).all()  # nearest centroid
    per_event = fset.metadata.groupby("event_id")["split"].nunique()
    assert (per_event == 1).all() and set(fset.metadata.split) == {"train", "dev", "test"}
    summary = json.loads((paths["features"] / "summary.json").read_text())
    assert summary["records"] == n
    rejected = pd.read_csv(paths["features"] / "rejected.csv")
    assert list(rejected.columns) == ["record", "source", "reason", "detail"]


def test_stages_are_reused_and_hashes_follow_the_right_configs(tiny_cfg):
    base = tiny_cfg()
    prepare(base)
    stamp = (stage_path(base, "features") / "features.npy").stat().st_mtime_ns
    bigger_model = tiny_cfg("model.layers=3")
    other_vocab = tiny_cfg("tokenizer.vocab_size=8")
    for stage in ("records", "features", "tokens"):
        assert stage_path(bigger_model, stage) == stage_path(base, stage)
    assert stage_path(other_vocab, "features") == stage_path(base, "features")
    assert stage_path(other_vocab, "tokens") != stage_path(base, "tokens")
    prepare(other_vocab)
    assert (
        stage_path(base, "features") / "features.npy"
    ).stat().st_mtime_ns == stamp  # not rebuilt
    assert is_complete(stage_path(other_vocab, "tokens"))
    tokens_stamp = (stage_path(other_vocab, "tokens") / "tokens.npy").stat().st_mtime_ns
    prepare(tiny_cfg("tokenizer.vocab_size=8", "model.layers=4"))  # a model sweep never refits
    assert (stage_path(other_vocab, "tokens") / "tokens.npy").stat().st_mtime_ns == tokens_stamp


def test_every_experiment_composes_and_validates(tmp_path):
    from pathlib import Path

    names = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
    assert {"mlm", "mlm_nsp", "finetune", "scratch"} <= set(names)
    for name in names:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"experiment={name}", f"paths.output_dir={tmp_path}"])
        validate(cfg)


@pytest.mark.parametrize(
    "override, match",
    [
        ("tokenizer.vocab_size=200", r"tokenizer.vocab_size=200 is out of range"),
        ("model.heads=3", r"model.heads"),
        ("+features.windw_s=2", r"features.windw_s is not a known key"),
        ("task=mlm task.params.mask_mode=middle", r"task.params.mask_mode='middle' is not allowed"),
    ],
)
def test_config_errors_name_the_key_before_any_work(tmp_path, override, match):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *override.split(),
                f"paths.cache_dir={tmp_path}/c",
                f"paths.output_dir={tmp_path}",
            ],
        )
    with pytest.raises(ValueError, match=match):
        validate(cfg)
    assert not (tmp_path / "c").exists()
