"""PSD windows against SciPy, scaling rules, and the bad-record reasons."""

import numpy as np
import pytest
import scipy.signal

from seisbert.config import build
from seisbert.data.records import Reason
from seisbert.features import FeatureConfig, featurize_chunk, median_over_windows, window_psd

FS = 100.0


def red_noise(n, samples=9000, seed=0):
    """Brownian-ish velocity with a DC offset: a steep spectrum stresses precision."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal((n, samples)), axis=1) * 1e-8 + 5e-7
    return x.astype(np.float32)


def test_psd_equals_scipy_periodogram_per_window():
    x = red_noise(8)
    psd = window_psd(x, FeatureConfig(scaling="none", log10=False, compute_dtype="float64"))
    f, ref = scipy.signal.periodogram(
        x.astype(np.float64).reshape(8, 90, 100), fs=FS, window="hann", axis=-1
    )
    assert psd.shape == (8, 90, 20)
    np.testing.assert_allclose(f[1:21], np.arange(1, 21))
    np.testing.assert_allclose(psd, ref[..., 1:21], rtol=1e-5, atol=0)


def test_float32_compute_is_close_but_not_exact():
    x = red_noise(4)
    ref = window_psd(x, FeatureConfig(scaling="none", log10=False, compute_dtype="float64"))
    fast = window_psd(x, FeatureConfig(scaling="none", log10=False, compute_dtype="float32"))
    np.testing.assert_allclose(fast, ref, rtol=2e-2)
    assert np.abs(fast / ref - 1).max() > 1e-6  # really computed in float32


def test_default_float32_features_match_float64_after_scaling():
    """The default (float32 matmul) differs from the exact float64 path by < 0.001 in log10."""
    x = red_noise(6, seed=4)[:, None]
    picks, npts = np.full(6, 1000), np.full(6, 9000)
    fast, _ = featurize_chunk(x, picks, npts, FeatureConfig())
    exact, _ = featurize_chunk(x, picks, npts, FeatureConfig(compute_dtype="float64"))
    assert FeatureConfig().compute_dtype == "float32"
    np.testing.assert_allclose(fast, exact, atol=1e-3)


def test_two_second_windows_equal_welch_without_overlap():
    x = red_noise(3)
    cfg = FeatureConfig(scaling="none", log10=False, window_s=2.0, compute_dtype="float64")
    psd = window_psd(x, cfg)
    _, ref = scipy.signal.welch(
        x.astype(np.float64).reshape(3, 45, 200),
        fs=FS,
        window="hann",
        nperseg=100,
        noverlap=0,
        axis=-1,
    )
    assert psd.shape == (3, 45, 20) and cfg.n_windows == 45
    np.testing.assert_allclose(psd, ref[..., 1:21], rtol=1e-5)


def test_median_scaling_is_exact():
    x = red_noise(5)[:, None]
    raw = window_psd(x[:, 0], FeatureConfig(scaling="none", log10=False))
    feats, reasons = featurize_chunk(
        x, np.full(5, 1000), np.full(5, 9000), FeatureConfig(scaling="median", log10=False)
    )
    expected = raw / np.median(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(feats, expected, rtol=1e-6)
    np.testing.assert_allclose(np.median(feats, axis=1), 1.0, rtol=1e-6)
    logged, _ = featurize_chunk(x, np.full(5, 1000), np.full(5, 9000), FeatureConfig())
    np.testing.assert_allclose(logged, np.log10(expected), atol=1e-5)
    assert (reasons == "").all()


def test_median_helper_matches_numpy_for_odd_and_even_counts():
    rng = np.random.default_rng(1)
    for T in (90, 45):
        p = rng.random((7, T, 20))
        assert np.array_equal(median_over_windows(p), np.median(p, axis=1, keepdims=True))


def scipy_features(x: np.ndarray, scaling: str) -> np.ndarray:
    """(n, 9000) samples from P - 10 s -> (n, 90, 20) by scipy.signal.periodogram and the
    documented scaling rules, written out independently of seisbert.features."""
    _, pxx = scipy.signal.periodogram(
        x.astype(np.float64).reshape(len(x), 90, 100), fs=FS, window="hann", axis=-1
    )
    pxx = pxx[..., 1:21]  # 1..20 Hz
    if scaling == "none":
        return pxx
    ref = {
        "median": np.median(pxx, axis=1, keepdims=True),
        "event_whiten": pxx[:, :10].mean(axis=1, keepdims=True),  # the 10 pre-P windows
        "minmax": 1.0,
    }[scaling]
    logged = np.log10(pxx / ref)
    if scaling == "minmax":
        lo, hi = logged.min(axis=(1, 2), keepdims=True), logged.max(axis=(1, 2), keepdims=True)
        return (logged - lo) / (hi - lo)
    return logged


@pytest.mark.parametrize("scaling", ["none", "minmax", "event_whiten", "median"])
def test_every_scaling_equals_scipy_and_keeps_its_invariant(scaling):
    x = red_noise(4, seed=3)[:, None]
    feats, reasons = featurize_chunk(
        x,
        np.full(4, 1000),
        np.full(4, 9000),
        FeatureConfig(scaling=scaling, log10=scaling != "none"),
    )
    assert feats.dtype == np.float32 and (reasons == "").all()
    expected = scipy_features(x[:, 0], scaling)
    if scaling == "none":  # float32 matmul: 2% in power, < 1e-3 in log10 (tests above)
        np.testing.assert_allclose(feats, expected, rtol=2e-2)
    else:
        np.testing.assert_allclose(feats, expected, atol=1e-3)
    if scaling == "median":  # each bin's median over the record's windows is 1 (log10: 0)
        np.testing.assert_allclose(np.median(10.0**feats, axis=1), 1.0, rtol=1e-3)
    if scaling == "minmax":
        np.testing.assert_allclose(feats.min(axis=(1, 2)), 0.0, atol=1e-6)
        np.testing.assert_allclose(feats.max(axis=(1, 2)), 1.0, atol=1e-6)
    if scaling == "event_whiten":  # log of (pre-P mean)-normalised power: pre-P mean of 10**x is 1
        np.testing.assert_allclose((10.0 ** feats[:, :10]).mean(axis=1), 1.0, rtol=1e-4)
    if scaling == "none":
        assert feats.max() < 1e-9  # physical (m/s)^2/Hz, no scaling


def test_per_record_picks_are_honoured():
    x = red_noise(2, samples=12000)
    picks = np.array([1000, 2500])
    cfg = FeatureConfig(scaling="none", log10=False, compute_dtype="float64")
    feats, _ = featurize_chunk(x[:, None], picks, np.full(2, 12000), cfg)
    direct = window_psd(x[1:2, 1500:10500], cfg)
    np.testing.assert_allclose(feats[1], direct[0], rtol=1e-6)


def test_bad_records_get_their_reason_and_good_ones_survive():
    x = red_noise(6)[:, None].copy()
    x[1, 0, 500] = np.nan
    x[2] = 0.0
    x[3, 0, :5000] = 0.0  # zero for more than half the windows: every bin's median is 0
    npts = np.full(6, 9000)
    npts[4] = 8000  # data ends before P + 80 s
    picks = np.full(6, 1000)
    picks[5] = 500  # window would start before the data
    feats, reasons = featurize_chunk(x, picks, npts, FeatureConfig())
    assert list(reasons) == [
        "",
        Reason.NONFINITE,
        Reason.ALL_ZERO,
        Reason.ZERO_MEDIAN,
        Reason.TOO_SHORT,
        Reason.TOO_SHORT,
    ]
    assert np.isfinite(feats[0]).all()
    alone, _ = featurize_chunk(x[:1], picks[:1], npts[:1], FeatureConfig())
    # the bad rows beside it change nothing (float32 BLAS rounds a 6-row chunk differently)
    np.testing.assert_allclose(feats[0], alone[0], atol=2e-4)


def test_a_short_zero_gap_is_kept_and_floored_not_minus_infinity():
    x = red_noise(1)[:, None].copy()
    x[0, 0, 3000:3300] = 0.0  # a 3-s zero-filled gap, as obspy's merge leaves
    feats, reasons = featurize_chunk(x, np.array([1000]), np.array([9000]), FeatureConfig())
    assert reasons[0] == "" and np.isfinite(feats).all()
    assert feats[0, 31].max() < -4  # the gap windows sit at the floor, far below the median


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("scaling", "zscore", r"features.scaling='zscore' is not allowed"),
        ("channels", "ZNE", r"features.channels"),
        ("window_s", 4.0, r"features.pre_s\+post_s"),
        ("fmax_hz", 80.0, r"features.fmax_hz=80.0 is out of range"),
    ],
)
def test_bad_feature_config_names_the_key(key, value, match):
    node = {"_target_": "seisbert.features.FeatureConfig", key: value}
    with pytest.raises(ValueError, match=match):
        build(node, "features")


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(
        ValueError, match=r"features.scalng is not a known key \(did you mean features.scaling"
    ):
        build({"_target_": "seisbert.features.FeatureConfig", "scalng": "median"}, "features")
    with pytest.raises(ValueError, match=r"features.log10='yes' has the wrong type"):
        build({"_target_": "seisbert.features.FeatureConfig", "log10": "yes"}, "features")
