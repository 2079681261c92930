"""Attention views: probabilities, summaries, rollout, TauP arrivals, figures, bertviz, script."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seisbert.analysis import attention as A
from seisbert.analysis import attention_plots as plots
from seisbert.artifacts import paths as artifacts
from seisbert.artifacts.cache import COMPLETE_MARKER, config_hash
from seisbert.data.synthetic import SyntheticSource
from seisbert.tasks.pretrain import PretrainModule

K, LAYERS, HEADS, T = 16, 2, 2, 90
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    model = dict(vocab_size=K, layers=LAYERS, heads=HEADS, d_model=32, ffn=64, max_len=96)
    return PretrainModule(model=model, params={}, tokenizer_digest="x")


@pytest.fixture(scope="module")
def records():
    return SyntheticSource(n_events=40).load(progress=False)


@pytest.fixture(scope="module")
def art(records):
    """Stand-in artifacts: random tokens and PSD windows beside the synthetic waveforms."""
    rng = np.random.default_rng(0)
    meta = records.metadata.reset_index(drop=True).copy()
    meta["record_index"] = np.arange(len(meta))
    meta["split"] = np.where(np.arange(len(meta)) % 2, "test", "train")
    tokens = rng.integers(0, K, size=(len(meta), T)).astype(np.int16)
    psd = rng.normal(size=(len(meta), T, 20)).astype(np.float32)
    return A.Artifacts(
        tokens,
        meta,
        psd,
        np.arange(1.0, 21.0),
        records.waveforms,
        records.metadata,
        records.sampling_rate_hz,
        vocab_size=K,
    )


@pytest.fixture(scope="module")
def view(module, art):
    return A.record_view(module.encoder, art, 3)


# ------------------------------------------------------------------------ probabilities
def test_attention_rows_sum_to_one(module, art):
    att = A.attention_maps(module.encoder, art.tokens[0])
    assert att.shape == (LAYERS, HEADS, T + 2, T + 2)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    spec = A.spectral_attention(att)
    assert spec.shape == (LAYERS, HEADS, T, T)
    np.testing.assert_allclose(spec.sum(-1), 1.0, atol=1e-5)


def test_attention_maps_use_the_record_layout(module, art):
    from seisbert.data.sequences import Specials, record_input

    ids, seg = record_input(np.asarray(art.tokens[2]), Specials(K))
    module.encoder.eval()
    with torch.no_grad():
        _, att = module.encoder(
            torch.from_numpy(ids)[None], torch.from_numpy(seg)[None], return_attention=True
        )
    np.testing.assert_allclose(
        A.attention_maps(module.encoder, art.tokens[2]),
        torch.stack([a[0] for a in att]).numpy(),
        atol=1e-6,
    )


def test_attention_maps_switch_dropout_off(module, art):
    module.train()
    first = A.attention_maps(module.encoder, art.tokens[1])
    np.testing.assert_array_equal(first, A.attention_maps(module.encoder, art.tokens[1]))
    assert not module.encoder.training


def test_spectral_attention_renormalises_and_special_share():
    att = np.array(
        [
            [0.5, 0.25, 0.25, 0.0],  # [CLS]
            [0.2, 0.3, 0.1, 0.4],  # t1: 0.6 on specials
            [0.0, 0.5, 0.5, 0.0],  # t2: none on specials
            [0.25, 0.25, 0.25, 0.25],
        ]
    )  # [SEP]
    np.testing.assert_allclose(A.spectral_attention(att), [[0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_allclose(A.special_share(att), [0.6, 0.0])


def test_summed_attention_shape_and_total(view):
    spec = view.spectral
    one = A.summed_attention(spec, query=12)
    assert one.shape == (T,)
    np.testing.assert_allclose(one.sum(), LAYERS * HEADS, rtol=1e-5)
    np.testing.assert_allclose(one, spec[:, :, 12].sum((0, 1)), rtol=1e-6)
    np.testing.assert_allclose(A.summed_attention(spec)[12], one, rtol=1e-6)


def test_rollout_rows_sum_to_one_and_matches_hand_product(view):
    roll = A.attention_rollout(view.attention)
    assert roll.shape == (T + 2, T + 2)
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(view.rollout().sum(-1), 1.0, atol=1e-6)
    rng = np.random.default_rng(1)
    att = rng.random((2, 3, 4, 4))
    att /= att.sum(-1, keepdims=True)
    a1, a2 = (0.5 * att[i].mean(0) + 0.5 * np.eye(4) for i in range(2))
    np.testing.assert_allclose(A.attention_rollout(att), a2 @ a1)
    np.testing.assert_allclose(
        A.attention_rollout(att, residual=0.0)[..., :], att[1].mean(0) @ att[0].mean(0)
    )


def test_labels_and_time_steps(view):
    labels = view.labels()
    assert len(labels) == T + 2 and labels[0] == "[CLS]" and labels[-1] == "[SEP]"
    assert labels[1] == f"t{view.tokens[0]:02d}:s-10"
    assert labels[23] == f"t{view.tokens[22]:02d}:s12"  # window 23 starts 12 s after P
    assert view.step_of(0.0) == 10 and view.step_of(12.5) == 22 and view.step_of(500) == T - 1


# ---------------------------------------------------------------------------- arrivals
def test_taup_matches_generator_arrivals(records):
    """TauP ak135 vs the generator's constant-velocity crust (vp 6.1, vs 3.55 km/s).

    ak135's crust is 5.8/3.46 km/s over 6.5/3.85 km/s with an 8.04 km/s mantle, so Pg is
    slower and Pn (beyond ~150 km) faster than the generator: first P and first S travel
    times must agree within 10%, and TauP's S placed at the P pick within 1.5 s of the
    generator's S (0.5 s of pick jitter plus the model difference). Measured on this set:
    at most 5.2% (1.3 s, P) and 2.7% (1.2 s, S); 0.7 s on the S line.
    """
    meta = records.metadata.sort_values("path_ep_distance_km").iloc[::3]
    origin = pd.to_datetime(meta["source_origin_time"])
    start = pd.to_datetime(meta["trace_start_time"])
    t0 = (start - origin).dt.total_seconds().to_numpy()  # (n,) trace start after origin
    fs = records.sampling_rate_hz
    gen_p = t0 + meta["trace_p_onset_sample"].to_numpy() / fs
    gen_s = t0 + meta["trace_s_arrival_sample"].to_numpy() / fs
    taup = [
        A.taup_arrivals(d, x) for d, x in zip(meta["source_depth_km"], meta["path_ep_distance_km"])
    ]
    p, s = np.array([A.first_arrivals(t) for t in taup], dtype=float).T
    assert meta["path_ep_distance_km"].max() > 150  # the Pn range is covered
    np.testing.assert_array_less(np.abs(p - gen_p) / gen_p, 0.10)
    np.testing.assert_array_less(np.abs(s - gen_s) / gen_s, 0.10)
    s_line = np.array(
        [min(v for k, v in A.arrivals_after_p(t).items() if k[0] in "sS") for t in taup]
    )
    truth_s = (meta["trace_s_arrival_sample"] - meta["trace_p_arrival_sample"]).to_numpy() / fs
    np.testing.assert_array_less(np.abs(s_line - truth_s), 1.5)


def test_arrivals_after_p_merges_coincident_phases():
    merged = A.arrivals_after_p({"Pn": 20.0, "P": 20.0, "Pg": 21.0, "S": 35.0})
    assert merged == {"Pn/P": 0.0, "Pg": 1.0, "S": 15.0}
    assert A.arrivals_after_p({"S": 3.0}) == {}


def test_record_view_carries_arrivals_and_truth(view):
    assert view.arrivals and min(view.arrivals.values()) == 0.0
    assert set(view.truth) == {"P onset", "S", "Rg"}
    assert view.waveform.shape == (9000,) and view.psd.shape == (T, 20)


def test_vocab_mismatch_is_named(module, art):
    other = A.Artifacts(art.tokens, art.metadata, vocab_size=K + 4)
    with pytest.raises(ValueError, match=f"model.vocab_size={K}"):
        A.record_view(module.encoder, other, 0)


# ----------------------------------------------------------------------------- figures
def test_animation_has_one_frame_per_time_step(view, tmp_path):
    from PIL import Image

    path = plots.animate_bulk_attention(view, tmp_path / "bulk.gif", dpi=30, max_points=400)
    with Image.open(path) as gif:
        assert gif.n_frames == T


def test_record_views_and_index(view, tmp_path):
    files = plots.write_record_views(
        view, tmp_path / "rec", layer=1, query=10, animate=False, bertviz=False
    )
    assert {"bulk", "heads", "matrices"} <= set(files)
    assert all(p.stat().st_size > 10_000 for p in files.values())
    info = json.loads((tmp_path / "rec" / "view.json").read_text())
    assert info["taup_after_p_s"] == pytest.approx(view.arrivals)
    page = plots.write_index([(view, files)], tmp_path).read_text()
    assert "rec/bulk_t11.png" in page and str(view.meta["event_id"]) in page


def test_display_trace_thinning_keeps_envelope(view):
    t, y = plots.display_trace(view)
    tt, yy = plots.display_trace(view, max_points=500)
    assert len(tt) <= 500 and t.min() >= -10 and t.max() < 80
    assert yy.max() == pytest.approx(y.max(), rel=0.02) and np.abs(y).max() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- bertviz
def _bertviz_params(page: str) -> dict:
    start = re.search(r"const params = ", page).end()
    return json.JSONDecoder().raw_decode(page, start)[0]


def test_bertviz_html_contains_every_layer(view, tmp_path):
    pytest.importorskip("bertviz", reason="bertviz is an optional extra: pip install bertviz")
    head, model = plots.export_bertviz(view, tmp_path)
    for path in (head, model):
        params = _bertviz_params(path.read_text())
        assert params["include_layers"] == list(range(LAYERS))
        attn = params["attention"][0]["attn"]
        assert len(attn) == LAYERS and len(attn[0]) == HEADS and len(attn[0][0]) == T + 2
        assert params["attention"][0]["left_text"] == view.labels()


def test_bertviz_missing_names_the_install(view, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bertviz", None)  # import bertviz -> ImportError
    with pytest.raises(ImportError, match=r"pip install bertviz"):
        plots.export_bertviz(view, tmp_path)


# --------------------------------------------------------------- selection and loading
def test_select_row_and_errors(art):
    meta = art.metadata
    ev, st = meta["event_id"].iloc[5], meta["station_id"].iloc[5]
    assert A.select_row(meta, event_id=ev, station_id=st) == 5
    assert A.select_row(meta, row=7) == 7
    with pytest.raises(ValueError, match=r"row=99999 is out of range"):
        A.select_row(meta, row=99999)
    with pytest.raises(ValueError, match="no record with event_id='nope'"):
        A.select_row(meta, event_id="nope")


def test_pick_rows_per_class_from_split(art):
    rows = A.pick_rows(art.metadata, 2, "test", seed=3)
    picked = art.metadata.iloc[rows]
    assert (picked["split"] == "test").all()
    assert picked["label"].value_counts().to_dict() == {0: 2, 1: 2}
    assert rows == A.pick_rows(art.metadata, 2, "test", seed=3)


def _write_cache(cache: Path, module, art, records) -> Path:
    """A cache with records, features, tokens and a published mlm checkpoint."""
    data = {"_target_": "seisbert.data.synthetic.SyntheticSource", "n_events": 40}
    rec = cache / "records" / config_hash({"data": data})
    feat, tok, mlm = cache / "features" / "f1", cache / "tokens" / "k1", cache / "mlm" / "m1"
    for d in (rec, feat, tok, mlm):
        d.mkdir(parents=True)
    np.save(rec / "waveforms.npy", records.waveforms)
    records.metadata.to_parquet(rec / "metadata.parquet")
    records.rejected.to_csv(rec / "rejected.csv", index=False)
    (rec / "records.json").write_text(json.dumps({"sampling_rate_hz": 100.0, "channels": "Z"}))
    np.save(feat / "features.npy", art.psd)
    np.save(feat / "frequencies_hz.npy", art.frequencies_hz)
    (feat / COMPLETE_MARKER).write_text(
        json.dumps({"config": {"data": data, "features": {"window_s": 1.0, "pre_s": 10.0}}})
    )
    np.save(tok / "tokens.npy", art.tokens)
    art.metadata.to_parquet(tok / "metadata.parquet")
    (tok / "tokens.json").write_text(
        json.dumps({"vocab_size": K, "features": "elsewhere/features/f1"})
    )
    torch.save(
        {"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()},
        mlm / "model.ckpt",
    )
    (mlm / "model.json").write_text(json.dumps({"tokens": "k1"}))
    return mlm / "model.ckpt"


def test_resolve_artifacts_and_load_encoder(module, art, records, tmp_path):
    ckpt = _write_cache(tmp_path / "cache", module, art, records)
    assert artifacts.newest_checkpoint(tmp_path / "cache") == ckpt
    paths = artifacts.resolve_artifacts(ckpt, tmp_path / "cache")
    assert paths["tokens"].name == "k1" and paths["features"].name == "f1"
    assert paths["records"].parent.name == "records"
    encoder = A.load_encoder(ckpt)
    np.testing.assert_allclose(
        A.attention_maps(encoder, art.tokens[0]),
        A.attention_maps(module.encoder, art.tokens[0]),
        atol=1e-6,
    )
    with pytest.raises(FileNotFoundError, match="python train.py experiment=mlm"):
        artifacts.newest_checkpoint(tmp_path / "empty")
    (ckpt.parent / "model.json").unlink()  # a run folder's checkpoint: the tokenizer_digest hparam
    with pytest.raises(FileNotFoundError, match="cannot find the tokens artifact 'x'"):
        artifacts.resolve_artifacts(ckpt, tmp_path / "cache")


def test_script_batch_writes_index(module, art, records, tmp_path):
    _write_cache(tmp_path / "cache", module, art, records)
    spec = importlib.util.spec_from_file_location(
        "attention_script", ROOT / "scripts" / "attention.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (index,) = script.main(
        [
            "--cache-dir",
            str(tmp_path / "cache"),
            "--batch",
            "1",
            "--no-animation",
            "--no-bertviz",
            "--layer",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    page = index.read_text()
    assert page.count("<tr>") == 3  # header + one record per class
    assert len(list((tmp_path / "out").glob("*/heads_l1_t11.png"))) == 2
