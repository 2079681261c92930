"""The unlabeled pool (``unlabeled=synthetic``): tokenizer fit and pretraining only.

A poisoned pool (every record labelled blast) must never reach fine-tuning, selection or
test: fine-tuning reads the labelled set alone, pretraining reads the pool as training rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from seisbert.pipeline import FeatureSet, TokenSet, prepare
from seisbert.train.finetune import build_finetuning
from seisbert.train.pretrain import build_pretraining

POOL = ["unlabeled=synthetic", "unlabeled.n_events=40"]


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    from tests.conftest import compose_cfg

    tmp = tmp_path_factory.mktemp("pool")
    cfg = compose_cfg(tmp, POOL, tmp / "cache")
    plain = compose_cfg(tmp, [], tmp / "cache")
    return cfg, prepare(cfg), plain, prepare(plain)


def test_pool_is_tokenized_with_disjoint_events_and_refits_the_tokenizer(pooled):
    cfg, art, plain, plain_art = pooled
    tset, base = TokenSet.load(art["tokens"]), TokenSet.load(plain_art["tokens"])
    assert art["features"] == plain_art["features"]  # the labelled set's features do not change
    assert art["tokens"] != plain_art["tokens"]  # the pool is part of the tokens stage's hash
    assert base.pool_tokens is None and tset.pool_tokens is not None
    assert len(tset.pool_tokens) == len(tset.pool_metadata) > 50
    assert not set(tset.pool_metadata["event_id"]) & set(tset.metadata["event_id"])
    assert tset.pool_metadata["event_id"].str.startswith("pool").all()
    # the labelled rows are the same records; their tokens differ because the fit saw the pool
    assert tset.metadata["event_id"].tolist() == base.metadata["event_id"].tolist()
    assert not np.array_equal(
        np.load(art["tokens"] / "centroids.npy"), np.load(plain_art["tokens"] / "centroids.npy")
    )
    # the pool's tokens are the nearest centroids of its windows (tokenized, not copied)
    centroids = np.load(art["tokens"] / "centroids.npy")
    windows = np.asarray(np.load(art["tokens"] / "pool_features.npy", mmap_mode="r")[:5])
    d = ((windows[:, :, None, :] - centroids[None, None]) ** 2).sum(-1)
    np.testing.assert_array_equal(d.argmin(-1), np.asarray(tset.pool_tokens[:5]))


def test_poisoned_pool_never_reaches_finetuning_dev_or_test(pooled):
    cfg, art, plain, plain_art = pooled
    tset = TokenSet.load(art["tokens"])
    pool_events = set(tset.pool_metadata["event_id"])
    # pretraining: the pool joins the training rows; dev and test are the labelled set's
    pre_cfg = cfg.copy()
    from omegaconf import open_dict

    with open_dict(pre_cfg):
        pre_cfg.task = {
            "name": "mlm",
            "params": {"_target_": "seisbert.tasks.pretrain.PretrainConfig"},
        }
    _, dm = build_pretraining(pre_cfg, tset)
    events = dm.meta["event_id"].to_numpy()
    assert pool_events <= set(events[dm.rows["train"]])
    for split in ("dev", "test"):
        assert not pool_events & set(events[dm.rows[split]])
    assert (dm.meta["label"].to_numpy()[np.isin(events, list(pool_events))] == -1).all()
    # fine-tuning (scratch: no base model needed): not one pool row anywhere
    ft = cfg.copy()
    with open_dict(ft):
        ft.task = {
            "name": "finetune",
            "params": {"_target_": "seisbert.tasks.finetune.FinetuneConfig", "init": "scratch"},
        }
    _, fdm = build_finetuning(ft, tset)
    assert len(fdm.meta) == len(tset.metadata)
    assert not pool_events & set(fdm.meta["event_id"])
    # the baselines read the features artifact: the labelled set only
    assert not pool_events & set(FeatureSet.load(art["features"]).metadata["event_id"])


def test_pool_sharing_event_ids_with_the_labelled_set_is_refused(tmp_path):
    from tests.conftest import compose_cfg

    cfg = compose_cfg(
        tmp_path,
        [
            "unlabeled=synthetic",
            "unlabeled.event_id_prefix=syn",
            "unlabeled.seed=0",
            "unlabeled.n_events=80",
        ],
    )
    with pytest.raises(ValueError, match="event ids also in the labelled set"):
        prepare(cfg)
