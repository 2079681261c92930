"""Masking rules: which positions are selected, and BERT's 80/10/10 replacement."""

import numpy as np
import pytest
import torch

from seisbert.data.masking import IGNORE, apply_mask, select_positions
from seisbert.data.sequences import Specials, pair_input, record_input

K = 16
SP = Specials(K)


def batch_of_records(n=512, T=90, seed=0):
    rng = np.random.default_rng(seed)
    ids = [record_input(rng.integers(0, K, T), SP)[0] for _ in range(n)]
    return torch.as_tensor(np.stack(ids))


def test_random_mode_selects_exactly_the_rate_of_spectral_positions_only():
    ids = batch_of_records(64)
    sel = select_positions(ids < K, "random", 0.15, torch.Generator().manual_seed(0))
    assert (sel.sum(1) == round(90 * 0.15)).all()
    assert not sel[:, 0].any() and not sel[:, -1].any()  # [CLS] and [SEP] never


def test_half_modes_split_the_event_in_time():
    ids = batch_of_records(4)
    first = select_positions(ids < K, "first_half", 0.15)
    second = select_positions(ids < K, "second_half", 0.15)
    assert first[:, 1:46].all() and not first[:, 46:].any()
    assert second[:, 46:91].all() and not second[:, :46].any() and not second[:, 91].any()


def test_span_mode_is_one_contiguous_block():
    ids = batch_of_records(128)
    sel = select_positions(ids < K, "span", 0.2, torch.Generator().manual_seed(1))
    assert (sel.sum(1) == 18).all()
    starts = sel.int().diff(dim=1).eq(1).sum(1)
    assert (starts <= 1).all()  # one rising edge at most (0 when the span starts at position 1)
    assert len(set(sel.float().argmax(1).tolist())) > 10  # spans start in many places


def test_pair_layout_masks_around_separators():
    a, b = np.arange(45) % K, np.arange(45, 90) % K
    ids, seg = pair_input(a, b, SP)
    assert ids[0] == SP.cls and ids[46] == SP.sep and ids[-1] == SP.sep and len(ids) == 93
    assert seg[:47].sum() == 0 and (seg[47:] == 1).all()
    sel = select_positions(torch.as_tensor(ids)[None] < K, "all", 0.15)
    assert sel.sum() == 90 and not sel[0, [0, 46, 92]].any()


def test_80_10_10_rule_proportions_and_labels():
    ids = batch_of_records(2000)
    gen = torch.Generator().manual_seed(0)
    sel = select_positions(ids < K, "random", 0.15, gen)
    inputs, labels = apply_mask(ids, sel, K, SP.mask, (0.8, 0.1, 0.1), gen)
    n = sel.sum().item()
    masked = (inputs[sel] == SP.mask).float().mean().item()
    changed = ((inputs[sel] != ids[sel]) & (inputs[sel] != SP.mask)).float().mean().item()
    kept = (inputs[sel] == ids[sel]).float().mean().item()
    assert n == 2000 * 14
    assert masked == pytest.approx(0.8, abs=0.01)
    # a random replacement equals the original 1/K of the time, so "kept" gets 0.1 + 0.1/K
    assert changed == pytest.approx(0.1 * (1 - 1 / K), abs=0.01)
    assert kept == pytest.approx(0.1 + 0.1 / K, abs=0.01)
    assert (labels[~sel] == IGNORE).all() and (labels[sel] == ids[sel]).all()
    assert (inputs[~sel] == ids[~sel]).all()
    assert inputs.max() <= SP.mask and inputs[sel & (inputs != SP.mask)].max() < K


def test_masking_is_seeded():
    ids = batch_of_records(8)
    a = select_positions(ids < K, "random", 0.15, torch.Generator().manual_seed(5))
    b = select_positions(ids < K, "random", 0.15, torch.Generator().manual_seed(5))
    c = select_positions(ids < K, "random", 0.15, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_mode_names_the_key():
    with pytest.raises(ValueError, match="task.params.mask_mode='middle'"):
        select_positions(torch.ones(1, 5, dtype=torch.bool), "middle", 0.15)
