"""The embedded synthetic source: determinism, structure, physics and config checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.signal
from omegaconf import OmegaConf

from seisbert.config import build
from seisbert.data.records import RecordSet
from seisbert.data.synthetic import NPTS, SyntheticSource
from seisbert.data.synthetic import catalog as cat
from seisbert.data.synthetic import spectra as spec
from seisbert.data.synthetic import waveforms as wav

YAML = "configs/data/synthetic.yaml"


@pytest.fixture(scope="module")
def small() -> RecordSet:
    return SyntheticSource(n_events=60, seed=1).load(progress=False)


@pytest.fixture(scope="module")
def medium() -> RecordSet:
    """Enough events (~100 blasts) for class statistics; about 5 s on 2 cores."""
    return SyntheticSource(n_events=400, seed=2).load(progress=False)


# ---------------------------------------------------------------- determinism


def test_same_seed_same_records(small):
    again = SyntheticSource(n_events=60, seed=1).load(progress=False)
    np.testing.assert_array_equal(again.waveforms, small.waveforms)
    assert again.metadata.equals(small.metadata)


def test_other_seed_other_records(small):
    other = SyntheticSource(n_events=60, seed=2).load(progress=False)
    assert not other.metadata["source_magnitude"].equals(small.metadata["source_magnitude"])
    n = min(len(other), len(small))
    assert not np.array_equal(other.waveforms[:n], small.waveforms[:n])


def test_batch_size_does_not_change_traces(small):
    tiny_batches = SyntheticSource(n_events=60, seed=1, batch_size=7).load(progress=False)
    np.testing.assert_array_equal(tiny_batches.waveforms, small.waveforms)
    assert tiny_batches.metadata.equals(small.metadata)


# ---------------------------------------------------------------- structure


def test_record_layout(small):
    meta = small.metadata
    assert small.waveforms.shape == (len(meta), 1, NPTS) and small.waveforms.dtype == np.float32
    assert small.sampling_rate_hz == 100.0 and small.channels == "Z"
    assert np.isfinite(small.waveforms).all()
    assert (meta["trace_p_arrival_sample"] == 1000).all() and (meta["trace_npts"] == NPTS).all()
    assert (meta["trace_p_onset_sample"] - 1000).abs().max() <= 50
    assert (meta["trace_s_arrival_sample"] > meta["trace_p_onset_sample"]).all()
    assert meta["event_id"].str.fullmatch(r"syn\d{6}").all()
    assert meta["station_id"].str.fullmatch(r"SY\.S\d{3}").all()
    assert meta["source_origin_time"].str.endswith("Z").all()
    assert set(meta["glitch"]) <= {"none", *wav.GLITCHES}


def test_labels_and_types_agree(small):
    meta = small.metadata
    assert ((meta["label"] == 1) == (meta["source_type"] == "blast")).all()
    assert ((meta["label"] != meta["label_true"]) == meta["label_noise_flipped"]).all()
    blast = meta["label_true"] == 1
    assert (meta.loc[~blast, "mine_id"] == -1).all() and (meta.loc[blast, "mine_id"] >= 0).all()
    assert not meta.loc[~blast, "single_shot"].any()
    assert (meta.loc[blast, "source_depth_km"] < 0.1).all()
    assert (meta.loc[~blast, "source_depth_km"] >= 0.3).all()


def test_station_selection(small):
    cfg = SyntheticSource()
    per_event = small.metadata.groupby("event_id").size()
    assert per_event.min() >= cfg.min_sta and per_event.max() <= cfg.max_sta
    assert (small.metadata["trace_snr_db"] >= cfg.snr_min_db).all()
    assert small.metadata.groupby("event_id")["station_id"].nunique().equals(per_event)
    dist = small.metadata["path_ep_distance_km"]
    assert dist.min() >= 10 and dist.max() <= 200


def test_select_stations_rules():
    cfg = SyntheticSource(max_sta=2, min_sta=2, snr_min_db=3.0)
    event = np.array([0, 0, 0, 1, 1, 2, 2])
    snr = np.array([10.0, 20.0, 5.0, 30.0, 1.0, 4.0, 8.0])
    keep = wav.select_stations(cfg, event, snr)
    # event 0: best two; event 1: only one passes -> dropped; event 2: both
    np.testing.assert_array_equal(keep, [True, True, False, False, False, True, True])


# ---------------------------------------------------------------- catalogue statistics


def test_catalogue_rates():
    cfg = SyntheticSource(n_events=20000, seed=3)
    ev = cat.build_catalog(cfg)["events"]
    blast = ev["kind"] == cat.BLAST
    assert blast.mean() == pytest.approx(cfg.p_blast, abs=0.01)
    assert ev["flipped"].mean() == pytest.approx(cfg.label_noise, abs=0.004)
    day = (ev["hour_local"] >= 7) & (ev["hour_local"] < 19)
    assert day[blast].mean() == pytest.approx(1 - cfg.p_blast_off_hours, abs=0.015)
    assert day[~blast].mean() == pytest.approx(0.5, abs=0.02)
    local = pd.Timestamp(cfg.catalog_start) + pd.to_timedelta(
        ev["utc_s"] / 3600 - cfg.utc_minus_local_h, "h"
    )
    assert (local[blast].dayofweek < 5).all()
    assert (local[~blast].dayofweek >= 5).mean() == pytest.approx(2 / 7, abs=0.02)
    eq_mag = ev["mag"][ev["kind"] == cat.EQ]
    # Gutenberg-Richter b = 1: 10x fewer events per magnitude unit
    assert np.mean(eq_mag >= 1.5) / np.mean(eq_mag >= 0.5) == pytest.approx(0.1, rel=0.15)
    assert (ev["depth_km"][blast] <= cfg.blast_depth_max_km).all()


def test_mining_induced_events_are_shallow_earthquakes():
    ev = cat.build_catalog(SyntheticSource(n_events=2000, p_mie=0.2))["events"]
    mie = ev["kind"] == cat.MIE
    assert mie.mean() == pytest.approx(0.2, abs=0.03)
    assert (ev["label_true"][mie] == 0).all()
    assert (ev["depth_km"][mie] >= 0.3).all() and (ev["depth_km"][mie] <= 1.0).all()


def test_blasts_are_daytime_in_records(medium):
    meta = medium.metadata
    hour = meta.loc[meta["label_true"] == 1, "source_hour_local"]
    assert ((hour >= 7) & (hour < 19)).mean() > 0.85


def test_class_balance_and_snr_spread(medium):
    meta = medium.metadata
    assert 0.35 < meta["label_true"].mean() < 0.65  # 45-55 % at default size: see test_defaults
    p10, p50, p90 = np.percentile(meta["trace_snr_db"], [10, 50, 90])
    assert 4 < p10 < 10 and 12 < p50 < 24 and 28 < p90 < 45


# ---------------------------------------------------------------- physics seen in the waveforms


def _band_power(x: np.ndarray, start: np.ndarray, n: int, band: tuple[float, float]) -> np.ndarray:
    """Mean periodogram power in ``band`` (Hz) of ``x[i, start_i:start_i+n]`` (Hann window)."""
    idx = np.clip(start[:, None] + np.arange(n)[None], 0, NPTS - 1)
    seg = np.take_along_axis(x, idx, axis=1) * np.hanning(n)
    f = np.fft.rfftfreq(n, 0.01)
    keep = (f >= band[0]) & (f <= band[1])
    return np.mean(np.abs(np.fft.rfft(seg, axis=1)[:, keep]) ** 2, axis=1)


def test_blasts_have_higher_high_frequency_p_to_s(medium):
    meta, x = medium.metadata, medium.waveforms[:, 0].astype(np.float64)
    p0 = meta["trace_p_onset_sample"].to_numpy()
    s0 = meta["trace_s_arrival_sample"].to_numpy()
    ok = (
        (meta["glitch"] == "none").to_numpy()
        & (meta["trace_snr_db"] > 10).to_numpy()
        & (s0 + 128 < NPTS)
    )
    ratio = np.log10(
        _band_power(x[ok], p0[ok], 128, (8, 20)) / _band_power(x[ok], s0[ok], 128, (8, 20))
    )
    blast = meta["label_true"].to_numpy()[ok] == 1
    eq_mean, blast_mean = ratio[~blast].mean(), ratio[blast].mean()
    assert blast_mean - eq_mean > 0.2  # log10 power; the spec adds up to 0.6 above 6 Hz


def test_rg_only_from_shallow_sources():
    """Switching Rg off lowers 0.5-2.5 Hz power at the Rg arrival of blasts, not of deep events."""
    power = {}
    for level in (3.0, 0.0):
        rec = SyntheticSource(n_events=120, seed=4, rg_level=level, p_gap=0.0, p_spike=0.0).load(
            progress=False
        )
        start = np.minimum(rec.metadata["trace_rg_arrival_sample"].to_numpy(), NPTS - 800)
        lf = _band_power(rec.waveforms[:, 0].astype(np.float64), start, 800, (0.5, 2.5))
        power[level] = rec.metadata.assign(lf=lf).set_index(["event_id", "station_id"])
    both = power[3.0].join(power[0.0][["lf"]], rsuffix="_off", how="inner")
    gain = np.log10(both["lf"] / both["lf_off"])
    near_blast = (both["label_true"] == 1) & (both["path_ep_distance_km"] < 100)
    assert gain[near_blast].median() > 0.3
    assert gain[both["source_depth_km"] > 5].abs().max() < 0.01


def test_ripple_fire_comb_properties():
    """|C| is 1 at low frequency and falls towards N^-1/2 above 1/duration."""
    ev = cat.build_catalog(SyntheticSource(n_events=300, p_single_shot=0.0))["events"]
    comb = np.abs(ev["comb"])  # (n_ripple, F)
    f = spec.trace_freqs()
    assert np.allclose(comb[:, 0], 1.0, atol=1e-5)
    assert np.median(comb[:, (f > 8) & (f < 20)]) < 0.4
    assert (ev["shot_dur_s"] < 2.0 + 1e-9).all()


# ---------------------------------------------------------------- noise


@pytest.mark.parametrize("freq", [1.0, 5.0, 10.0])
def test_peterson_tables_match_obspy(freq):
    from obspy.signal.spectral_estimation import get_nhnm, get_nlnm

    for table, (periods, db) in ((spec.NLNM, get_nlnm()), (spec.NHNM, get_nhnm())):
        order = np.argsort(periods)
        ref = np.interp(np.log10(1 / freq), np.log10(periods[order]), db[order])
        assert spec.peterson_db(np.array([freq]), table)[0] == pytest.approx(ref, abs=0.5)
    expected = {1.0: (-166.4, -116.9), 5.0: (-166.7, -96.7), 10.0: (-168.0, -91.5)}[freq]
    assert spec.peterson_db(np.array([freq]), spec.NLNM)[0] == pytest.approx(expected[0], abs=0.15)
    assert spec.peterson_db(np.array([freq]), spec.NHNM)[0] == pytest.approx(expected[1], abs=0.15)


def test_pre_event_noise_between_peterson_models(medium):
    meta, x = medium.metadata, medium.waveforms[:, 0].astype(np.float64)
    clean = (meta["glitch"] == "none").to_numpy()
    f, pv = scipy.signal.welch(x[clean, 50:900], fs=100.0, nperseg=256, axis=1)
    sel = (f >= 1) & (f <= 20)
    acc_db = 10 * np.log10(pv[:, sel] * (2 * np.pi * f[sel]) ** 2)  # velocity -> acceleration PSD
    low, high = spec.peterson_db(f[sel], spec.NLNM), spec.peterson_db(f[sel], spec.NHNM)
    lo_pct, hi_pct = np.percentile(acc_db, [2, 98], axis=0)
    assert (lo_pct > low - 3).all() and (
        hi_pct < high + 6
    ).all()  # +3 dB day-time boost, estimator scatter
    assert (np.median(acc_db, axis=0) > low + 5).all()


# ---------------------------------------------------------------- glitches


def test_glitches_corrupt_but_keep_records():
    cfg = SyntheticSource(p_gap=0.25, p_spike=0.25, p_clip=0.25, p_dc_step=0.25)
    rng = np.random.default_rng(0)
    waves = rng.standard_normal((200, NPTS)).astype(np.float32)
    clean = waves.copy()
    kinds = wav.add_glitches(cfg, waves)
    assert set(kinds) == set(wav.GLITCHES)
    for i in np.flatnonzero(kinds == "gap"):
        zero = waves[i] == 0
        assert 50 <= zero.sum() <= 1000 and not zero.all()
        run = np.flatnonzero(zero)
        assert run[-1] - run[0] + 1 == zero.sum()  # one contiguous gap
    for i in np.flatnonzero(kinds == "spike"):
        big = np.flatnonzero(np.abs(waves[i]) > 40)
        assert len(big) == 2 and big[1] == big[0] + 1
    for i in np.flatnonzero(kinds == "clip"):
        assert np.abs(waves[i]).max() < np.abs(clean[i]).max()
    for i in np.flatnonzero(kinds == "dc_step"):
        step = np.unique(np.round(waves[i] - clean[i], 3))
        assert (
            len(step) == 2 and 0.0 in step and np.abs(step).max() > 15
        )  # 0 before, 20 sigma after


def test_no_glitches_when_disabled():
    waves = np.ones((50, NPTS), np.float32)
    kinds = wav.add_glitches(SyntheticSource(p_gap=0, p_spike=0, p_clip=0, p_dc_step=0), waves)
    assert (kinds == "none").all() and (waves == 1).all()


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"label_noise": 1.5}, r"data\.label_noise=1\.5 is out of range"),
        ({"p_blast": -0.1}, r"data\.p_blast=-0\.1 is out of range"),
        ({"min_sta": 7}, r"data\.min_sta=7 exceeds data\.max_sta=6"),
        ({"eq_mag_range": [3.0, 1.0]}, r"data\.eq_mag_range=\[3\.0, 1\.0\] must be \[lo, hi\]"),
        ({"mines": [[40.0, -112.0, 1.0]]}, r"data\.mines must be"),
        ({"mie_mine": 9}, r"data\.mie_mine=9 is out of range"),
        ({"catalog_start": "yesterday"}, r"data\.catalog_start='yesterday' is not an ISO date"),
        ({"p_gap": 0.6, "p_spike": 0.6}, r"data\.p_gap \+ p_spike"),
        (
            {"coda_band_centers_hz": [1.0, 2.0]},
            r"data\.coda_band_centers_hz needs one centre per band",
        ),
    ],
)
def test_bad_values_name_the_key(override, match):
    with pytest.raises(ValueError, match=match):
        SyntheticSource(**override)


def test_the_composed_config_builds_the_dataclass_defaults():
    from hydra import compose, initialize_config_dir

    configs = Path(YAML).resolve().parents[1]
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        node = compose("train").data
    assert build(node, "data") == SyntheticSource()  # the YAML extends the defaults
    with pytest.raises(ValueError, match=r"data\.jitter is not a known key.*jitter_ms"):
        build({**OmegaConf.to_container(node), "jitter": 5.0}, "data")


# ---------------------------------------------------------------- default size (slow)


@pytest.mark.slow
def test_defaults():
    records = SyntheticSource().load(progress=False)
    meta = records.metadata
    assert 6000 <= len(meta) <= 9000
    assert 0.45 <= meta["label_true"].mean() <= 0.55
    glitched = (meta["glitch"] != "none").mean()
    assert 0.01 < glitched < 0.04
    flipped = meta.groupby("event_id")["label_noise_flipped"].first().mean()
    assert flipped == pytest.approx(0.02, abs=0.01)


def test_event_id_prefix_gives_disjoint_ids():
    """A second draw (the unlabeled pool) takes another prefix: its ids never meet the first's."""
    a = SyntheticSource(n_events=20, seed=0).load(progress=False).metadata
    b = SyntheticSource(n_events=20, seed=1, event_id_prefix="pool").load(progress=False).metadata
    assert a["event_id"].str.startswith("syn").all() and b["event_id"].str.startswith("pool").all()
    assert not set(a["event_id"]) & set(b["event_id"])
