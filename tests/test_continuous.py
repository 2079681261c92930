"""SeisBert on continuous PSD windows: inputs, targets, pooling, Perceiver, refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seisbert.analysis.gapfill_commands import fill_trace
from seisbert.data.masking import IGNORE, apply_mask, select_positions, swap_random_windows
from seisbert.data.sequences import window_stats
from seisbert.model.encoder import EncoderConfig
from seisbert.model.perceiver import Perceiver, build_encoder
from seisbert.model.targets import RandomProjectionTarget, nearest_visible, window_baselines
from seisbert.pipeline import TokenSet, prepare
from seisbert.tasks.pretrain import PretrainModule, masked_mse
from seisbert.train.job import train_job, validate

K, F, T = 16, 20, 12
FDR = [
    "++trainer.fast_dev_run=true",
    "logger=none",
]  # one batch each; debug=fdr's group swap is tested elsewhere


def batch(n: int = 3, seed: int = 0) -> dict:
    """[CLS] t1..tT [SEP] ids with their windows (zeros at the specials)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.cat(
        [
            torch.full((n, 1), K + 1),
            torch.randint(0, K, (n, T), generator=g),
            torch.full((n, 1), K + 2),
        ],
        1,
    )
    psd = torch.randn(n, T + 2, F, generator=g)
    psd[:, [0, -1]] = 0
    return {"ids": ids, "segments": torch.zeros_like(ids), "psd": psd}


def stats() -> dict:
    return {"mean": [0.0] * F, "std": [1.0] * F, "step_mean": [[0.0] * F] * T}


def module(input="psd", target="psd", **params) -> PretrainModule:
    model = dict(
        vocab_size=K,
        layers=1,
        heads=2,
        d_model=16,
        ffn=32,
        dropout=0.0,
        attn_dropout=0.0,
        input=input,
        n_features=F,
    )
    torch.manual_seed(0)
    return PretrainModule(model, {"target": target, **params}, "x", [0] * T, stats()).eval()


def test_masked_mse_ignores_unmasked_windows():
    b = batch()
    sel = select_positions(b["ids"] < K, "random", 0.3, torch.Generator().manual_seed(1))
    pred = torch.randn(int(sel.sum()), F)
    changed = b["psd"].clone()
    changed[~sel] = 1e3  # every unselected window, specials included
    assert masked_mse(pred, changed, sel) == masked_mse(pred, b["psd"], sel)
    changed[sel] += 1.0  # a selected window does count
    assert masked_mse(pred, changed, sel) != masked_mse(pred, b["psd"], sel)


@pytest.mark.parametrize("input", ["psd", "both"])
def test_regression_loss_never_reads_a_masked_window(input):
    m, b = module(input), batch()
    sel = select_positions(b["ids"] < K, "random", 0.3, torch.Generator().manual_seed(1))
    inputs, labels = apply_mask(
        b["ids"], sel, K, K + 3, (1.0, 0.0, 0.0)
    )  # every selected one [MASK]
    leaked = b["psd"].clone()
    leaked[sel] = 99.0  # what sits behind a [MASK] must not matter
    with torch.no_grad():
        a = m.losses(b, inputs, labels, b["psd"])
        c = m.losses(b, inputs, labels, leaked)
        target_changed = dict(
            b, psd=torch.where(sel[..., None], b["psd"], torch.full_like(b["psd"], -7.0))
        )
        d = m.losses(target_changed, inputs, labels, b["psd"])  # truth changed off the mask only
    torch.testing.assert_close(a["psd_pred"], c["psd_pred"], rtol=0, atol=0)
    assert a["psd_loss"] == d["psd_loss"] and torch.isfinite(a["loss"])


def test_random_projection_targets_are_deterministic_by_seed():
    x = torch.randn(50, F)
    a = RandomProjectionTarget(F, K, 16, seed=3, mean=[0.0] * F, std=[1.0] * F)
    b = RandomProjectionTarget(F, K, 16, seed=3, mean=[0.0] * F, std=[1.0] * F)
    c = RandomProjectionTarget(F, K, 16, seed=4, mean=[0.0] * F, std=[1.0] * F)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    assert a(x).min() >= 0 and a(x).max() < K and len(torch.unique(a(x))) > 3
    torch.testing.assert_close(a.codebook.norm(dim=-1), torch.ones(K))


def test_window_stats_come_from_the_training_rows_only():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(10, T, F)).astype(np.float32)
    train = np.array([0, 2, 3, 7])
    s = window_stats(feats, train)
    feats[[1, 4, 5, 6, 8, 9]] = 1e6  # dev/test windows: never seen
    assert window_stats(feats, train) == s
    np.testing.assert_allclose(s["mean"], feats[train].reshape(-1, F).mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.array(s["step_mean"]), feats[train].mean(0), rtol=1e-5)


def test_swap_random_windows_keeps_token_and_window_together():
    b = batch(4)
    sel = select_positions(b["ids"] < K, "all", 1.0)
    inputs, _ = apply_mask(
        b["ids"], sel, K, K + 3, (0.0, 1.0, 0.0), torch.Generator().manual_seed(0)
    )
    new_ids, windows = swap_random_windows(
        b["ids"], b["psd"], inputs, sel, K, torch.Generator().manual_seed(0)
    )
    swapped = sel & (inputs != b["ids"])
    assert swapped.sum() > 10 and torch.equal(windows[~swapped], b["psd"][~swapped])
    spectral = b["ids"] < K
    pool_ids, pool_psd = b["ids"][spectral], b["psd"][spectral]
    for i, w in zip(new_ids[swapped], windows[swapped]):
        src = (pool_psd == w).all(-1).nonzero().squeeze(1)
        assert len(src) >= 1 and (pool_ids[src] == i).any()  # the window's own token


def test_window_baselines_on_a_linear_ramp():
    ramp = (
        torch.arange(T + 2, dtype=torch.float32)[None, :, None].expand(1, T + 2, F).clone()
    )  # (1, L, F)
    ids = batch(1)["ids"]
    spectral = ids < K
    sel = torch.zeros_like(spectral)
    sel[0, 4:7] = True  # a 3-window gap
    visible = spectral & ~sel
    left, right = nearest_visible(visible)
    assert left[0, 5] == 3 and right[0, 5] == 7 and left[0, 1] == -1 and right[0, T] == T + 2
    step_mean = torch.full((T, F), -5.0)
    t = (spectral.long().cumsum(1) - 1).clamp(min=0)
    base = window_baselines(ramp, visible, sel, step_mean, t)
    torch.testing.assert_close(base["interpolation"], ramp[sel])  # exact on a straight line
    assert (base["copy_left"] == 3.0).all() and (base["step_mean"] == -5.0).all()


@pytest.mark.parametrize("length", [5, 40, 92])
def test_perceiver_output_follows_input_length(length):
    cfg = EncoderConfig(
        vocab_size=K,
        layers=2,
        heads=2,
        d_model=16,
        ffn=32,
        input="psd",
        n_features=F,
        arch="perceiver",
        latents=8,
        dropout=0.0,
        attn_dropout=0.0,
    )
    net = build_encoder(cfg).eval()
    assert isinstance(net, Perceiver)
    ids = torch.randint(0, K, (2, length))
    psd = torch.randn(2, length, F)
    with torch.no_grad():
        out = net(ids, psd=psd)
        padded = net(
            torch.cat([ids, torch.full((2, 3), K)], 1),
            psd=torch.cat([psd, torch.zeros(2, 3, F)], 1),
        )
    assert out.shape == (2, length, 16)
    torch.testing.assert_close(padded[:, :length], out, atol=1e-5, rtol=0)  # padding is never read


def test_each_input_kind_reads_what_it_names():
    b, other = batch(), batch(seed=5)  # other: different token ids and windows
    for kind in ("tokens", "psd", "both"):
        cfg = EncoderConfig(
            vocab_size=K,
            layers=1,
            heads=2,
            d_model=16,
            ffn=32,
            input=kind,
            n_features=F,
            dropout=0.0,
            attn_dropout=0.0,
        )
        torch.manual_seed(0)
        enc = build_encoder(cfg).eval()
        with torch.no_grad():
            base = enc(b["ids"], psd=b["psd"])
            new_ids = enc(other["ids"], psd=b["psd"])
            new_psd = enc(b["ids"], psd=other["psd"])
        assert torch.equal(base, new_psd) == (kind == "tokens")  # only psd/both read the windows
        assert torch.equal(base, new_ids) == (
            kind == "psd"
        )  # only tokens/both read the spectral ids


def test_psd_input_needs_its_window_size():
    with pytest.raises(ValueError, match=r"model.input='psd' needs model.n_features"):
        build_encoder(EncoderConfig(vocab_size=K, input="psd"))
    with pytest.raises(
        ValueError,
        match=r"model.input='pixels' is not allowed; choose one of \['tokens', 'psd', 'both'\]",
    ):
        EncoderConfig(vocab_size=K, input="pixels")


PRETRAIN = [
    (i, t) for i in ("tokens", "psd", "both") for t in ("kmeans", "random_projection", "psd")
]


@pytest.mark.parametrize("input,target", PRETRAIN)
def test_pretraining_fast_dev_run_for_every_input_and_target(tiny_cfg, input, target):
    cfg = tiny_cfg(
        "experiment=mlm",
        *FDR,
        f"model.input={input}",
        f"task.params.target={target}",
        *(["task.monitor=val/psd_mse", "task.monitor_mode=min"] if target == "psd" else []),
    )
    validate(cfg)
    m = train_job(cfg)
    assert ("test/baseline_interpolation_lsd" in m) == (target == "psd")
    if target == "psd":  # LSD is the per-window RMS in dB of the log10 errors MSE averages
        for who in ("psd", "baseline_interpolation", "baseline_step_mean", "baseline_copy_left"):
            rms_db = 10 * np.sqrt(m[f"test/{who}_mse"])  # Jensen: the mean RMS is at most this
            assert 0.8 * rms_db < m[f"test/{who}_lsd"] <= rms_db + 1e-4, who  # measured 0.89-0.97
    else:  # one step from init: near-uniform logits over the K spectral tokens (not K + 4)
        assert m["test/mlm_loss"] == pytest.approx(np.log(K), abs=0.1)  # measured 2.73-2.78


@pytest.mark.parametrize("input,target", PRETRAIN)
def test_every_input_and_target_overfits_a_fixed_batch(input, target):
    """60 Adam steps on one batch with fixed masks: a model whose loss, targets or gradients
    are wired wrong cannot memorize 16 masked positions (measured: to 0.3-3% of its start
    loss in 0.15 s)."""
    m, b = module(input, target).train(), batch(8)
    inputs, labels, windows = m.masked_batch(b, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        out = m.losses(b, inputs, labels, windows)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]
    with torch.no_grad():
        out = m.eval().losses(b, inputs, labels, windows)
    if target == "psd":
        assert losses[0] > 0.9  # the windows are N(0, 1): a near-zero start misses by ~1
    else:
        assert losses[0] == pytest.approx(np.log(K), abs=0.1)  # starts near-uniform over K
        acc = (out["logits"].argmax(-1) == out["targets"]).float().mean()
        assert acc == 1.0  # every masked target memorized; chance is 1/K


@pytest.mark.parametrize(
    "extra",
    [
        ["experiment=mlm_both", "task.params.psd_weight=0.5"],
        [
            "experiment=mlm_perceiver",
            "task.params.source_linking=true",
            "task.params.mask_mode=span",
        ],
        ["experiment=mlm_psd_rp", "task.params.mask_mode=second_half"],
    ],
)
def test_pretraining_fast_dev_run_for_mixed_losses_and_modes(tiny_cfg, extra):
    cfg = tiny_cfg(*extra, *FDR, "model=tiny")
    m = train_job(cfg)
    # each loss the variant switches on reports its own figure
    wanted = [
        "test/mlm_acc_all_masked",
        *(["test/psd_mse"] if "task.params.psd_weight=0.5" in extra else []),
        *(["test/sl_acc"] if "task.params.source_linking=true" in extra else []),
    ]
    assert set(wanted) <= set(m), sorted(m)
    assert ("test/sl_acc" in m) == ("task.params.source_linking=true" in extra)
    assert ("test/psd_mse" in m) == ("task.params.psd_weight=0.5" in extra)
    # one step from init: near-uniform over K tokens, and over the 2 source-linking classes
    assert m["test/mlm_loss"] == pytest.approx(np.log(K), abs=0.1)
    if "test/sl_loss" in m:
        assert m["test/sl_loss"] == pytest.approx(np.log(2), abs=0.05)
    # the total is the configured weighted sum of the losses each variant switches on
    p = cfg.task.params
    total = (
        m["test/mlm_loss"]
        + p.psd_weight * m.get("test/psd_loss", 0.0)
        + p.sl_weight * m.get("test/sl_loss", 0.0)
    )
    assert m["test/loss"] == pytest.approx(total, rel=1e-4)


@pytest.mark.parametrize("input", ["tokens", "psd", "both"])
@pytest.mark.parametrize("pool", ["cls", "mean", "attention"])
def test_scratch_fast_dev_run_for_every_input_and_pool(tiny_cfg, input, pool):
    cfg = tiny_cfg(
        "experiment=scratch", *FDR, "model=tiny", f"model.input={input}", f"model.pool={pool}"
    )
    m = train_job(cfg)
    cm = np.asarray(m["test/confusion_matrix"], float)  # rows: true class
    recall = np.diag(cm) / np.maximum(cm.sum(1), 1)
    assert m["test/balanced_accuracy"] == pytest.approx(recall[cm.sum(1) > 0].mean())
    assert "masked_all/predicted_blast_fraction" in m


def test_zrt_sized_windows_train_through_lightning():
    """ZRT stacks Z, R and T bins: F=60. (The synthetic source is vertical-only, so the
    windows here are random; the real ZRT path is the features test's.)"""
    import lightning as L

    from seisbert.data.sequences import TokenDataModule

    rng = np.random.default_rng(0)
    meta = pd.DataFrame(
        {
            "event_id": [f"e{i // 2}" for i in range(24)],
            "station_id": [f"S{i % 2}" for i in range(24)],
            "label": [i // 2 % 2 for i in range(24)],
            "split": ["train"] * 16 + ["dev"] * 4 + ["test"] * 4,
        }
    )
    tokens = rng.integers(0, K, (24, 90)).astype(np.int16)
    feats = rng.normal(size=(24, 90, 60)).astype(np.float32)
    dm = TokenDataModule(tokens, meta, K, batch_size=8, features=feats)
    assert next(iter(dm.val_dataloader()))["psd"].shape == (4, 92, 60)
    model = dict(vocab_size=K, layers=1, heads=2, d_model=16, ffn=32, input="psd", n_features=60)
    mod = PretrainModule(
        model, {"target": "random_projection", "psd_weight": 1.0}, "x", [0] * 90, dm.window_stats()
    )
    trainer = L.Trainer(
        fast_dev_run=True, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(mod, dm)
    m = trainer.test(mod, dm, verbose=False)[0]
    # one step from init on i.i.d. N(0, 1) windows of all 60 bins: near-uniform logits over K;
    # a near-zero regression (MSE ~ 1); copying the left window doubles the variance (2);
    # averaging the two neighbours gives 1 + 1/2; LSD is 10 dB x the RMS error
    assert m["test/mlm_loss"] == pytest.approx(np.log(K), abs=0.1)
    assert m["test/psd_mse"] == pytest.approx(1.0, abs=0.15)  # measured 1.00
    assert m["test/baseline_copy_left_mse"] == pytest.approx(2.0, abs=0.25)  # 2.03
    assert m["test/baseline_interpolation_mse"] == pytest.approx(1.5, abs=0.2)  # 1.53
    assert m["test/psd_lsd"] == pytest.approx(10 * np.sqrt(m["test/psd_mse"]), abs=0.3)


def test_finetune_loads_a_psd_base_model_and_refuses_other_kinds(tiny_cfg):
    from seisbert.train.finetune import build_finetuning, refuse_other_kind

    pre = tiny_cfg("experiment=mlm_psd", "model=tiny", "trainer.max_epochs=1")
    ckpt = Path(train_job(pre)["checkpoint"])
    ft = tiny_cfg("experiment=finetune_psd", "model=tiny", "model.pool=mean")
    tset = TokenSet.load(prepare(ft)["tokens"])
    mod, _ = build_finetuning(ft, tset)
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    assert "psd_proj.weight" in mod.encoder.state_dict() and mod.head.pool == "mean"
    for name, tensor in mod.encoder.state_dict().items():
        assert torch.equal(tensor, saved[f"encoder.{name}"]), name

    tokens_run = tiny_cfg("experiment=finetune", "model=tiny", f"task.params.checkpoint={ckpt}")
    with pytest.raises(
        ValueError, match=r"pretrained with model.input=psd but this run has model.input=tokens"
    ):
        build_finetuning(tokens_run, tset)
    perceiver = tiny_cfg(
        "experiment=finetune_perceiver", "model=tiny", f"task.params.checkpoint={ckpt}"
    )
    with pytest.raises(
        ValueError, match=r"model.arch=encoder but this run has model.arch=perceiver"
    ):
        build_finetuning(perceiver, tset)
    base = EncoderConfig(vocab_size=K, input="psd", n_features=20)
    with pytest.raises(
        ValueError, match=r"reads PSD windows of n_features=20 bins but this run's features have 60"
    ):
        refuse_other_kind(ckpt, base, dataclasses.replace(base, n_features=60))


def test_finetune_psd_finds_the_psd_base_model_not_the_newest_token_one(tiny_cfg):
    from seisbert.config import build
    from seisbert.train.finetune import find_base_checkpoint, run_model

    cfg = tiny_cfg("experiment=finetune_psd", "model=tiny", "task.params.pretrain_task=mlm")
    tset = TokenSet.load(prepare(cfg)["tokens"])
    train_job(
        tiny_cfg("experiment=mlm", "model=tiny", "trainer.max_epochs=1")
    )  # a token model, newest
    model, _ = run_model(cfg, tset)
    with pytest.raises(FileNotFoundError, match=r"no pretrained 'mlm' model with model.input=psd"):
        find_base_checkpoint(cfg, build(cfg.task.params, "task.params"), tset, model)


def test_unmasked_labels_are_ignored_by_every_classification_target():
    m, b = module("psd", "random_projection"), batch()
    sel = select_positions(b["ids"] < K, "random", 0.3, torch.Generator().manual_seed(2))
    inputs, labels = apply_mask(b["ids"], sel, K, K + 3, (1.0, 0.0, 0.0))
    with torch.no_grad():
        out = m.losses(b, inputs, labels, b["psd"])
    assert len(out["targets"]) == int((labels != IGNORE).sum()) == int(sel.sum())
    assert torch.equal(out["targets"], m.rp_target(b["psd"])[sel])


# ------------------------------------------------------------------------------ gap filling
@pytest.mark.parametrize("target", ["psd", "kmeans"])
def test_gap_filling_never_alters_windows_outside_the_gap(target):
    from seisbert.analysis.gapfill import fill_windows, gap_mask

    m, b = module("psd", target), batch(4)
    gap = gap_mask(b["ids"], torch.tensor([0, 3, 5, T - 4]), 4, K)
    assert gap.sum() == 16 and not gap[:, [0, -1]].any()
    centroids = torch.randn(K, F)
    filled = fill_windows(m, b["ids"], b["psd"], gap, centroids)
    assert torch.equal(filled[~gap], b["psd"][~gap])  # bit for bit
    assert not torch.isclose(filled[gap], b["psd"][gap]).all()
    leaked = b["psd"].clone()
    leaked[gap] = 50.0  # what the gap held is never read
    torch.testing.assert_close(
        fill_windows(m, b["ids"], leaked, gap, centroids)[gap], filled[gap], rtol=0, atol=0
    )
    with pytest.raises(ValueError, match="target='random_projection'"):
        fill_windows(module("psd", "random_projection"), b["ids"], b["psd"], gap)


def test_gap_positions_start_at_the_named_phase():
    from seisbert.analysis.gapfill import gap_starts

    meta = pd.DataFrame(
        {
            "trace_sampling_rate_hz": [100.0, 100.0],
            "trace_p_arrival_sample": [1000, 1000],
            "trace_s_arrival_sample": [2237, 9500],
        }
    )
    starts = {
        p: gap_starts(meta, p, 5, 10.0, 1.0, 90).tolist() for p in ("pre_p", "p", "s", "coda")
    }
    assert starts == {
        "pre_p": [0, 0],
        "p": [10, 10],
        "s": [22, 85],
        "coda": [50, 50],
    }  # S clipped to fit
    with pytest.raises(ValueError, match="gap position 'late' is not allowed"):
        gap_starts(meta, "late", 5, 10.0, 1.0, 90)


def gappy_trace(tmp_path: Path) -> Path:
    """100 s of noise at 100 Hz with a real 5-s gap (40-45 s), written as miniSEED."""
    import obspy

    rng = np.random.default_rng(0)
    t0 = obspy.UTCDateTime("2020-01-01T00:00:00")
    data = rng.normal(size=10000).astype(np.float32) * np.r_[
        np.ones(2000), 8 * np.ones(8000)
    ].astype(np.float32)
    a = obspy.Trace(
        data[:4000],
        header={"sampling_rate": 100.0, "starttime": t0, "station": "GAP", "channel": "HHZ"},
    )
    b = obspy.Trace(
        data[4500:],
        header={"sampling_rate": 100.0, "starttime": t0 + 45, "station": "GAP", "channel": "HHZ"},
    )
    path = tmp_path / "gappy.mseed"
    obspy.Stream([a, b]).write(str(path), format="MSEED")
    return path


def test_trace_windows_find_a_real_gap(tmp_path):
    from seisbert.analysis.gapfill import trace_windows

    fcfg = {"_target_": "seisbert.features.FeatureConfig"}
    feats, in_gap = trace_windows(gappy_trace(tmp_path), fcfg, p_time="2020-01-01T00:00:20")
    assert feats.shape == (90, 20) and np.isfinite(feats).all()
    assert np.flatnonzero(in_gap).tolist() == [30, 31, 32, 33, 34]  # 40-45 s, cut from 10 s
    with pytest.raises(
        ValueError, match="sampling rate 100.0 Hz but features.sampling_rate_hz=50.0"
    ):
        trace_windows(gappy_trace(tmp_path), {**fcfg, "sampling_rate_hz": 50.0})


def test_fill_gaps_fills_an_obspy_trace(tiny_cfg, tmp_path, shared_cache):
    pre = tiny_cfg("experiment=mlm_psd_regress", "model=tiny", "trainer.max_epochs=1")
    ckpt = train_job(pre)["checkpoint"]
    fill_trace(
        gappy_trace(tmp_path),
        ckpt,
        shared_cache,
        tmp_path / "out",
        p_time="2020-01-01T00:00:20",
    )
    out = np.load(tmp_path / "out" / "gappy_filled.npz")
    gap = out["gap"]
    assert gap.sum() == 5 and np.array_equal(out["filled"][~gap], out["features"][~gap])
    assert not np.allclose(out["filled"][gap], out["features"][gap])
    assert (tmp_path / "out" / "gappy_filled.png").is_file()
