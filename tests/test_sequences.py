"""Source-linking pairs and the token DataModule."""

import numpy as np
import pandas as pd
import pytest
import torch

from seisbert.data.sequences import PairDataset, Specials, TokenDataModule
from seisbert.tasks.pretrain import left_visible_token

K = 12


def toy_metadata(n_events=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_events):
        n_sta = 1 if e % 5 == 0 else rng.integers(2, 6)  # every fifth event seen at one station
        for s in rng.choice(30, n_sta, replace=False):
            rows.append({"event_id": f"ev{e:03d}", "station_id": f"SY.S{s:02d}", "label": e % 2})
    meta = pd.DataFrame(rows)
    meta["split"] = "train"
    tokens = np.random.default_rng(seed).integers(0, K, (len(meta), 90)).astype(np.int16)
    return tokens, meta


@pytest.mark.parametrize("n_classes", [2, 3])
def test_pairs_are_labelled_by_their_true_origin(n_classes):
    tokens, meta = toy_metadata()
    ds = PairDataset(
        tokens,
        meta.event_id.to_numpy(),
        meta.station_id.to_numpy(),
        np.arange(len(meta)),
        Specials(K),
        n_classes,
        seed=0,
    )
    labels = {2: ("same_event", "other_event"), 3: ("same_record", "same_event", "other_event")}[
        n_classes
    ]
    seen = set()
    for epoch in range(3):
        ds.epoch = epoch
        for i in range(len(ds)):
            item = ds[i]
            r, p = int(item["row"]), int(item["partner_row"])
            kind = labels[int(item["sl_label"])]
            seen.add(kind)
            same_event = meta.event_id[r] == meta.event_id[p]
            if kind == "same_record":
                assert r == p
            elif kind == "same_event":  # a positive: same event, never the same station
                assert same_event and meta.station_id[r] != meta.station_id[p]
            else:
                assert not same_event
            ids = item["ids"].numpy()
            assert np.array_equal(ids[1:46], tokens[r, :45]) and np.array_equal(
                ids[47:92], tokens[p, 45:]
            )
    assert seen == set(labels)


def test_pair_labels_are_balanced_and_single_station_events_are_negatives():
    tokens, meta = toy_metadata(200)
    ds = PairDataset(
        tokens,
        meta.event_id.to_numpy(),
        meta.station_id.to_numpy(),
        np.arange(len(meta)),
        Specials(K),
        2,
        seed=1,
    )
    lab = np.array([int(ds[i]["sl_label"]) for i in range(len(ds))])
    single = meta.groupby("event_id").station_id.transform("count").to_numpy() == 1
    assert (lab[single] == 1).all()
    assert abs(lab[~single].mean() - 0.5) < 0.06


def test_validation_pairs_are_fixed_and_training_pairs_change_by_epoch():
    tokens, meta = toy_metadata()
    args = (
        tokens,
        meta.event_id.to_numpy(),
        meta.station_id.to_numpy(),
        np.arange(len(meta)),
        Specials(K),
    )
    fixed = PairDataset(*args, fixed=True)
    train = PairDataset(*args)
    a = [int(fixed[i]["partner_row"]) for i in range(50)]
    fixed.epoch = 3
    assert a == [int(fixed[i]["partner_row"]) for i in range(50)]
    b = [int(train[i]["partner_row"]) for i in range(50)]
    train.epoch = 1
    assert b != [int(train[i]["partner_row"]) for i in range(50)]


def test_datamodule_rejects_labelled_rows_outside_train():
    tokens, meta = toy_metadata()
    meta.loc[meta.index[-10:], "split"] = "test"
    with pytest.raises(ValueError, match="train split only"):
        TokenDataModule(tokens, meta, K, train_rows=np.array([len(meta) - 1]))


def test_step_mode_is_the_most_frequent_training_token_per_step():
    tokens, meta = toy_metadata()
    tokens[:, 7] = 3
    dm = TokenDataModule(tokens, meta, K)
    mode = dm.step_mode()
    assert mode.shape == (90,) and mode[7] == 3
    assert mode[20] == np.bincount(tokens[:, 20]).argmax()


def test_left_neighbour_baseline_skips_masked_positions():
    M = K + 3
    inputs = torch.tensor([[K + 1, 4, M, M, 7, M, K + 2]])
    t = torch.tensor([[0, 0, 1, 2, 3, 4, 5]])
    pred = left_visible_token(inputs, K, torch.tensor([9] * 6), t)
    assert pred[0, 2:4].tolist() == [4, 4] and pred[0, 5].item() == 7 and pred[0, 1].item() == 9


def test_windows_are_aligned_with_ids_and_zero_at_specials():
    tokens, meta = toy_metadata()
    feats = np.random.default_rng(1).normal(size=(len(meta), 90, 5)).astype(np.float32)
    item = TokenDataModule(tokens, meta, K, features=feats).datasets["train"][3]
    row = int(item["row"])
    assert item["psd"].shape == (92, 5) and item["psd"][[0, -1]].abs().max() == 0
    np.testing.assert_array_equal(item["psd"][1:-1].numpy(), feats[row])
    assert "psd" not in TokenDataModule(tokens, meta, K).datasets["train"][3]


def test_pair_windows_follow_the_pair_layout():
    tokens, meta = toy_metadata()
    feats = np.random.default_rng(1).normal(size=(len(meta), 90, 5)).astype(np.float32)
    ds = PairDataset(
        tokens,
        meta.event_id.to_numpy(),
        meta.station_id.to_numpy(),
        np.arange(len(meta)),
        Specials(K),
        features=feats,
    )
    item = ds[5]
    r, p = int(item["row"]), int(item["partner_row"])
    assert (
        item["psd"].shape == (93, 5) and item["psd"][[0, 46, 92]].abs().max() == 0
    )  # [CLS], [SEP], [SEP]
    np.testing.assert_array_equal(item["psd"][1:46].numpy(), feats[r, :45])
    np.testing.assert_array_equal(item["psd"][47:92].numpy(), feats[p, 45:])
    assert (item["ids"][1:46].numpy() == tokens[r, :45]).all()


def test_windows_must_match_the_tokens_row_for_row():
    tokens, meta = toy_metadata()
    with pytest.raises(ValueError, match=r"features \(5, 90, 3\) do not match tokens"):
        TokenDataModule(tokens, meta, K, features=np.zeros((5, 90, 3), np.float32))
