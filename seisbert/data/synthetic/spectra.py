"""Amplitude spectra of the synthetic source: Brune and ripple-fire sources, path, site, noise.

Boore (2003, PAGEOPH 160) stochastic-method spectra for Pg, Sg/Lg and Rg
(synthetic.md sections 3-4), Peterson (1993, USGS OFR 93-322) noise models
(section 5). Spectra are Fourier amplitudes of ground velocity (m/s * s = m) on any
frequency grid ``f`` of shape ``(F,)``; per-trace inputs are arrays of shape ``(B,)``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from seisbert.data.synthetic.constants import NPTS, SAMPLING_RATE_HZ

COMB_RATE_HZ = 1000.0  # ripple-fire impulse trains at 1 kHz ...
COMB_NPTS = 90000  # ... over 90 s, so the first NPTS // 2 + 1 rfft bins are the trace grid
N_BINS = NPTS // 2 + 1
DF = SAMPLING_RATE_HZ / NPTS

# Peterson (1993) rows (T_min s, A, B): dB = A + B log10 T, acceleration (m/s^2)^2/Hz.
NLNM = np.array(
    [
        [0.10, -162.36, 5.64],
        [0.17, -166.7, 0.0],
        [0.40, -170.0, -8.30],
        [0.80, -166.4, 28.90],
        [1.24, -168.6, 52.48],
        [2.40, -159.98, 29.81],
        [4.30, -141.10, 0.0],
        [5.00, -71.36, -99.77],
        [6.00, -97.26, -66.49],
        [10.0, -132.18, -31.57],
    ]
)
NHNM = np.array(
    [
        [0.10, -108.73, -17.23],
        [0.22, -150.34, -80.50],
        [0.32, -122.31, -23.87],
        [0.80, -116.85, 32.51],
        [3.80, -108.48, 18.08],
        [4.60, -74.66, -32.95],
        [6.30, 0.66, -127.18],
        [7.90, -93.37, -22.42],
    ]
)


def trace_freqs() -> np.ndarray:
    return np.fft.rfftfreq(NPTS, 1.0 / SAMPLING_RATE_HZ)  # (F,) = (4501,)


def brune_corner_hz(cfg, m0: np.ndarray, stress_pa: np.ndarray) -> np.ndarray:
    """Brune corner fc = 0.4906 beta (dsigma / M0)^(1/3), SI units."""
    return 0.4906 * cfg.vs_km_s * 1e3 * np.cbrt(stress_pa / m0)


def blast_sources(cfg, rng, ev: dict, mines: dict) -> dict:
    """Single-shot flag, source kappa, ripple-fire comb, shot duration and ML scale per event."""
    n = len(ev["kind"])
    blast = ev["kind"] == 1
    single = blast & (rng.random(n) < cfg.p_single_shot)
    kappa_src = rng.uniform(0, cfg.blast_kappa_src_max_s, n)
    times_ms, weights = _hole_times(cfg, rng, ev["mine"], mines)
    ripple = np.flatnonzero(blast & ~single)
    comb_idx = np.full(n, -1)
    comb_idx[ripple] = np.arange(len(ripple))
    comb = _comb_spectra(cfg, times_ms[ripple], weights[ripple])  # (n_ripple, F)
    valid_t = np.where(weights > 0, times_ms, 0.0)
    shot_dur = np.where(single | ~blast, 0.0, valid_t.max(axis=1) / 1e3)
    shot_dur = np.maximum(shot_dur, 1.0 / cfg.blast_corner_hz)
    out = {
        "single_shot": single,
        "kappa_src": kappa_src,
        "comb_idx": comb_idx,
        "comb": comb,
        "shot_dur_s": shot_dur,
    }
    out["src_scale"] = _ml_scale(cfg, {**ev, **out})
    return out


def _hole_times(cfg, rng, mine: np.ndarray, mines: dict) -> tuple[np.ndarray, np.ndarray]:
    """Firing times (ms, from 0) and charge weights, ``(n, rows_max * holes_max)``.

    A weight of 0 marks no hole.
    """
    n = len(mine)
    rows = rng.integers(cfg.rows_range[0], cfg.rows_range[1] + 1, n)
    holes = rng.integers(cfg.holes_range[0], cfg.holes_range[1] + 1, n)
    own = rng.random(n) < cfg.p_mine_pattern  # most blasts of a mine share its delays
    m = np.maximum(mine, 0)
    d_h = np.where(own, mines["hole_ms"][m], rng.choice(np.asarray(cfg.hole_delays_ms, float), n))
    d_r = np.where(own, mines["row_ms"][m], rng.uniform(*cfg.row_delay_range_ms, n))
    # keep the whole shot under shot_max_s, late holes and scatter included
    budget = max(cfg.shot_max_s * 1e3 - cfg.late_hole_max_ms - 3 * cfg.jitter_ms, 0.0)
    rows = np.clip(rows, 1, np.floor(budget / d_r).astype(int) + 1)
    holes = np.clip(holes, 1, np.floor((budget - (rows - 1) * d_r) / d_h).astype(int) + 1)
    k = np.arange(cfg.rows_range[1] * cfg.holes_range[1])[None]  # (1, K)
    row, hole = k // holes[:, None], k % holes[:, None]
    valid = k < (rows * holes)[:, None]
    shape = (n, k.shape[1])
    late = (rng.random(shape) < cfg.p_late_hole) * rng.uniform(0, cfg.late_hole_max_ms, shape)
    t = row * d_r[:, None] + hole * d_h[:, None] + cfg.jitter_ms * rng.standard_normal(shape) + late
    w = rng.lognormal(0.0, cfg.hole_weight_sigma, shape) * valid
    t = t - np.where(valid, t, np.inf).min(axis=1, keepdims=True)
    return np.where(valid, t, 0.0), w


def _comb_spectra(cfg, times_ms: np.ndarray, weights: np.ndarray, chunk: int = 64) -> np.ndarray:
    """C(f) = sum w_k exp(-2 pi i f t_k) / sum w_k on the trace grid, via 1 kHz impulse trains."""
    n = len(times_ms)
    out = np.empty((n, N_BINS), np.complex64)
    idx = np.clip(np.round(times_ms * COMB_RATE_HZ / 1e3).astype(np.int64), 0, COMB_NPTS - 1)
    for i in range(0, n, chunk):
        w, j = weights[i : i + chunk], idx[i : i + chunk]
        flat = (np.arange(len(w))[:, None] * COMB_NPTS + j).ravel()
        train = np.bincount(flat, w.ravel(), minlength=len(w) * COMB_NPTS).reshape(
            len(w), COMB_NPTS
        )
        spec = sfft.rfft(train.astype(np.float32), axis=1, workers=cfg.fft_workers)[:, :N_BINS]
        out[i : i + chunk] = spec / w.sum(axis=1, keepdims=True)
    return out


def _ml_scale(cfg, ev: dict) -> np.ndarray:
    """Blast amplitude factor: RMS|S| over ml_band_hz equals that of a same-M earthquake."""
    f = trace_freqs()
    bins = np.flatnonzero((f >= cfg.ml_band_hz[0]) & (f <= cfg.ml_band_hz[1]))
    ref_fc = brune_corner_hz(cfg, ev["m0"], cfg.stress_drop_mpa * 1e6)
    eq = 1.0 / (1.0 + (f[bins][None] / ref_fc[:, None]) ** 2)
    blast = np.abs(_blast_shape(cfg, ev, np.arange(len(ev["kind"])), f[bins], bins))
    rms = lambda x: np.sqrt(np.mean(x**2, axis=1))  # noqa: E731
    return np.where(ev["kind"] == 1, rms(eq) / rms(blast), 1.0)


def _blast_shape(cfg, ev: dict, e: np.ndarray, f: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """C(f) e^(-pi kappa_src f) / (1 + (f/25)^2), ``(B, F)`` complex; C = 1 for single shots."""
    ci = ev["comb_idx"][e]
    comb = np.ones((len(e), len(f)), np.complex64)
    has = ci >= 0
    comb[has] = ev["comb"][ci[has]][:, bins]
    kappa = ev["kappa_src"][e][:, None].astype(np.float32)
    return comb * (np.exp(-np.pi * kappa * f) / (1 + (f / cfg.blast_corner_hz) ** 2))


def source_spectrum(cfg, ev: dict, e: np.ndarray, f: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Source shape S(f) (1 at low f for earthquakes), ``(B, F)``; blasts complex via the comb."""
    fc = ev["fc"][e][:, None].astype(np.float32)
    out = (1.0 / (1.0 + (f[None] / fc) ** 2)).astype(np.complex64)
    blast = ev["kind"][e] == 1
    if blast.any():
        scale = ev["src_scale"][e[blast]][:, None].astype(np.float32)
        out[blast] = _blast_shape(cfg, ev, e[blast], f, bins) * scale
    return out


def _ln_site(cfg, st: dict, s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """ln of station gain x an optional log-Gaussian resonance x e^(-pi kappa f), ``(B, F)``."""
    octaves = (
        np.log2(f[None] / st["res_f0"][s][:, None].astype(np.float32)) / cfg.site_res_width_oct
    )
    bump = (st["res_gain"][s][:, None] - 1.0).astype(np.float32) * np.exp(-0.5 * octaves**2)
    return (
        np.log1p(bump)
        + np.float32(np.log(10)) * st["gain_log10"][s][:, None].astype(np.float32)
        - np.float32(np.pi) * st["kappa"][s][:, None].astype(np.float32) * f[None]
    )


def _ln_fingerprint(cfg, table: np.ndarray, rows: np.ndarray, f: np.ndarray) -> np.ndarray:
    """ln of the smooth per-path factor: log10 nodes at log-spaced frequencies, linear in log f."""
    lo, hi = np.log(cfg.fingerprint_band_hz)
    pos = np.clip(
        (np.log(f) - lo) / (hi - lo) * (cfg.fingerprint_nodes - 1), 0, cfg.fingerprint_nodes - 1
    )
    i0 = np.minimum(pos.astype(int), cfg.fingerprint_nodes - 2)
    w = (pos - i0).astype(np.float32)
    nodes = np.log(10) * table[rows].astype(np.float32)  # (B, nodes)
    return nodes[:, i0] * (1 - w) + nodes[:, i0 + 1] * w


def _ln_spreading(R_km: np.ndarray, cross_km: float) -> np.ndarray:
    """ln G_S: 1/R to ``cross_km``, then R^-1/2 (R in metres)."""
    R, cross = R_km * 1e3, cross_km * 1e3
    return np.where(R < cross, -np.log(R), 0.5 * np.log(cross / R) - np.log(cross))


def phase_spectra(cfg, cat: dict, tr: dict, f: np.ndarray, bins: np.ndarray):
    """Velocity Fourier amplitudes (m) of Pg, Sg and Rg, each ``(B, F)`` complex64.

    ``tr`` holds per-trace arrays (event, station, R_km, ...); ``bins`` are the trace-grid
    indices of ``f`` (the ripple-fire comb lives on that grid). Real factors are summed
    as logarithms in float32 and exponentiated once per phase.
    """
    ev, st, e, s = cat["events"], cat["stations"], tr["event"], tr["station"]
    f = np.maximum(f, 1e-3).astype(np.float32)  # f = 0 carries no energy anyway
    col = lambda x: np.asarray(x, np.float32)[:, None]  # noqa: E731
    c0 = 0.55 * 2 * 0.5 / (4 * np.pi * cfg.density_kg_m3 * (cfg.vs_km_s * 1e3) ** 3)
    src = source_spectrum(cfg, ev, e, f, bins)  # (B, F)
    ln_base = col(np.log(c0 * ev["m0"][e])) + _ln_site(cfg, st, s, f)
    ln_body = (
        ln_base
        + _ln_fingerprint(cfg, cat["mines"]["fingerprint"], tr["fp_row"], f)
        + np.log(2 * np.pi * f)
    )
    q_path = (
        np.pi * f ** (1 - cfg.q_eta) / cfg.q0 * col(tr["R_km"] / 10 ** tr["q_log10"])
    )  # pi f R / Q
    ln_s = ln_body + col(_ln_spreading(tr["R_km"], cfg.geo_cross_km)) - q_path / cfg.vs_km_s
    blast = col(ev["kind"][e] == 1)
    ell = (
        np.log10(cfg.ps_ratio)
        + col(ev["ps_event"][e] + tr["eps_ps"])
        + blast * cfg.dlog_ps_blast * np.clip(np.log2(f / cfg.ps_blast_f0_hz), 0, 1)
    )
    ln_p = (
        ln_body
        + col(-np.log(tr["R_km"] * 1e3))
        - q_path / cfg.vp_km_s
        + np.float32(np.log(10)) * ell
    )
    # 2 pi f: like Pg and Sg, Rg is a velocity spectrum (synthetic.md's A_R is displacement)
    a_r = src * np.exp(ln_base + np.log(2 * np.pi * f) + _ln_rg(cfg, cat, tr, f))
    return src * np.exp(ln_p), src * np.exp(ln_s), a_r


def _ln_rg(cfg, cat: dict, tr: dict, f: np.ndarray) -> np.ndarray:
    """ln of the Rg factor: strong for shallow sources (depth decay), centred near 1 Hz, low Q."""
    col = lambda x: np.asarray(x, np.float32)[:, None]  # noqa: E731
    h = cat["events"]["depth_km"][tr["event"]]
    amp = max(cfg.rg_level * cfg.rg_ref_amp, 1e-30)  # rg_level = 0 switches Rg off
    ln_amp = np.log(amp * np.sqrt(cfg.rg_ref_dist_km / tr["r_km"])) + np.log(10) * tr["rg_log10"]
    depth = col(cfg.rg_depth_decay * 2 * np.pi * h / cfg.rg_depth_vel_km_s) * f
    q = (
        np.pi * np.sqrt(f) / cfg.rg_q0 * col(tr["r_km"] / tr["u_rg"])
    )  # pi f r / (Q U), Q = q0 sqrt(f)
    return col(ln_amp) - depth - np.log(f) ** 2 / cfg.rg_ln_width - q


def peterson_db(f: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Peterson model in dB re 1 (m/s^2)^2/Hz at frequencies ``f`` (> 0).

    Rows beyond 10 Hz extrapolate.
    """
    period = 1.0 / np.asarray(f, float)
    row = np.clip(np.searchsorted(table[:, 0], period, side="right") - 1, 0, len(table) - 1)
    return table[row, 1] + table[row, 2] * np.log10(period)


def noise_psd_velocity(cfg, cat: dict, tr: dict, f: np.ndarray) -> np.ndarray:
    """One-sided velocity PSD (m/s)^2/Hz per trace, ``(B, F)``; zero below ``noise_highpass_hz``."""
    fs = np.maximum(f, 1e-3)
    low, high = peterson_db(fs, NLNM), peterson_db(fs, NHNM)
    u = cat["stations"]["noise_u"][tr["station"]][:, None]
    day = cat["events"]["daytime"][tr["event"]][:, None] & (fs >= cfg.day_noise_min_hz)[None]
    db = low + u * (high - low) + cfg.day_noise_db * day
    psd = 10 ** (db / 10) / (2 * np.pi * fs) ** 2
    return np.where(f >= cfg.noise_highpass_hz, psd, 0.0)


def analytic_snr_db(cfg, cat: dict, tr: dict) -> np.ndarray:
    """Parseval SNR of Pg+Sg against Peterson-model noise on a coarse log-frequency grid."""
    f = np.geomspace(*cfg.snr_band_hz, cfg.snr_freqs)
    bins = np.clip(np.round(f / DF).astype(int), 0, N_BINS - 1)
    a_p, a_s, _ = phase_spectra(cfg, cat, tr, f, bins)
    energy = 2 * np.trapezoid(np.abs(a_p) ** 2 + np.abs(a_s) ** 2, f, axis=1)
    noise = np.trapezoid(noise_psd_velocity(cfg, cat, tr, f), f, axis=1)
    window_s = tr["t_s"] - tr["t_p"] + cfg.snr_post_s_s
    return 10 * np.log10(energy / window_s / noise)
