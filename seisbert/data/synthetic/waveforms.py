"""Time series of the synthetic source: Boore's stochastic method, SNR selection, glitches.

Each phase is Gaussian noise times a Saragoni-Hart envelope (Boore 2003, PAGEOPH 160,
eq. 2-4), Fourier transformed, normalised to unit mean power and multiplied by its
amplitude spectrum; the sum goes through one inverse FFT (synthetic.md section 6).
Random numbers are drawn per trace from an SFC64 generator seeded ``[seed, 11, event, station]``,
so a trace does not depend on the batch it was synthesised in.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from seisbert.data.synthetic import spectra as spec
from seisbert.data.synthetic.constants import NPTS, SAMPLING_RATE_HZ

ENV_STEP = (
    5  # envelopes on a 20 Hz grid, repeated to 100 Hz: exp/pow at full rate dominated the cost
)
GLITCHES = ("gap", "spike", "clip", "dc_step")


def synthesize(cfg, cat: dict, tr: dict) -> tuple[np.ndarray, np.ndarray]:
    """Waveforms ``(B, NPTS)`` float32 (m/s) and measured SNR ``(B,)`` (dB) of the traces ``tr``."""
    f = spec.trace_freqs()
    w1, w2, z = _trace_noise(cfg, tr)
    a_p, a_s, a_r = spec.phase_spectra(cfg, cat, tr, f, np.arange(len(f)))
    env = _envelopes(cfg, cat, tr)
    signal_spec = _phase_sum(cfg, f, w1, w2, env, a_p, a_s, a_r)  # (B, F)
    band = (f >= cfg.snr_band_hz[0]) & (f <= cfg.snr_band_hz[1])
    psd = spec.noise_psd_velocity(cfg, cat, tr, f).astype(np.float32)
    noise_spec = z * np.sqrt(psd * np.float32(SAMPLING_RATE_HZ * NPTS / 2))  # (B, F) complex64
    rfft_inv = lambda x: sfft.irfft(x, n=NPTS, axis=1, workers=cfg.fft_workers)  # noqa: E731
    signal_band = rfft_inv(signal_spec * band)
    noise_power = 2 * np.sum(np.abs(noise_spec[:, band]) ** 2, axis=1) / NPTS**2
    snr_db = 10 * np.log10(_window_power(cfg, tr, signal_band) / noise_power)
    snr_db = np.round(
        snr_db, 6
    )  # SIMD sums differ in the last bit with batch layout; keep batch invariance
    waves = rfft_inv(signal_spec + noise_spec)
    return waves.astype(np.float32, copy=False), snr_db


def _trace_noise(cfg, tr: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two white series ``(B, NPTS)`` and a unit complex-Gaussian spectrum ``(B, F)`` per trace.

    Uniform white noise of unit variance, which Boore (2003) allows beside Gaussian; it is
    5x cheaper to draw, and its Fourier coefficients are Gaussian anyway (central limit).
    """
    draws = np.empty((len(tr["event"]), 3 * NPTS), np.float32)
    for i, (e, s) in enumerate(zip(tr["event"], tr["station"])):
        draws[i] = np.random.Generator(np.random.SFC64([cfg.seed, 11, e, s])).random(
            3 * NPTS, np.float32
        )
    draws -= 0.5
    draws *= np.sqrt(12.0, dtype=np.float32)
    w1, w2 = draws[:, :NPTS], draws[:, NPTS : 2 * NPTS]
    z = sfft.rfft(draws[:, 2 * NPTS :], axis=1, workers=cfg.fft_workers) / np.float32(np.sqrt(NPTS))
    return w1, w2, z


def _saragoni_hart(cfg, dt: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """Boore (2003) window: 1 at eps * t_eta, eta at t_eta = env_teta_factor * dur.

    0 before the onset.
    """
    eps, eta = cfg.env_eps, cfg.env_eta
    b = -eps * np.log(eta) / (1 + eps * (np.log(eps) - 1))
    c, ln_a = b / eps, b * (1 - np.log(eps))
    x = np.maximum(dt / (cfg.env_teta_factor * dur[:, None]), 1e-9)
    return np.where(dt > 0, np.exp(ln_a + b * np.log(x) - c * x), 0.0)


def _coda(cfg, tau, t_arr, dur, level: float, freq: float) -> np.ndarray:
    """level (t_arr / t) exp(-pi f (t - t_arr) / Qc(f)), ramped in over the direct phase's rise."""
    qc = cfg.qc0 * freq**cfg.qc_eta
    dt = tau - t_arr[:, None]
    ramp = np.clip(dt / (cfg.env_eps * cfg.env_teta_factor * dur[:, None]), 0, 1)
    return level * ramp * t_arr[:, None] / tau * np.exp(-np.pi * freq * np.maximum(dt, 0) / qc)


def _envelopes(cfg, cat: dict, tr: dict) -> dict:
    """Envelopes ``(B, G)`` on the 20 Hz grid: P+P coda, S, S coda per band, Rg."""
    t_src = cat["events"]["t_src"][tr["event"]]
    grid = np.arange(ENV_STEP // 2, NPTS, ENV_STEP)  # (G,) sample at each step's centre
    tau = (
        tr["t_p"][:, None] + (grid[None] - tr["p_idx"][:, None]) / SAMPLING_RATE_HZ
    )  # s after origin
    tau = np.maximum(tau, 1e-3)
    dur_p = t_src + cfg.dur_p_per_km * tr["R_km"] + cfg.dur_p_s
    dur_s = t_src + cfg.dur_s_per_km * tr["R_km"] + cfg.dur_s_s
    v_slow, v_fast = cfg.rg_disp_vel_km_s
    dur_rg = t_src + tr["r_km"] * (1 / v_slow - 1 / v_fast) + cfg.dur_rg_s
    p = _saragoni_hart(cfg, tau - tr["t_p"][:, None], dur_p)
    s = _saragoni_hart(cfg, tau - tr["t_s"][:, None], dur_s)
    return {
        "p": p,
        "s": s,
        "rg": _saragoni_hart(cfg, tau - tr["t_rg"][:, None], dur_rg),
        "p_coda": _coda(cfg, tau, tr["t_p"], dur_p, cfg.coda_p_level, cfg.coda_p_freq_hz),
        "s_coda": [
            _coda(cfg, tau, tr["t_s"], dur_s, cfg.coda_s_level, fb)
            for fb in cfg.coda_band_centers_hz
        ],
    }


def _phase_sum(cfg, f, w1, w2, env: dict, a_p, a_s, a_r) -> np.ndarray:
    """X = sum over phases of rfft(w env) A fs / sqrt(N mean env^2), ``(B, F)`` complex64.

    Codas share their direct phase's normalisation, so coda levels are relative to its peak.
    """

    def fwd(w, e):  # rfft of noise times the envelope repeated to 100 Hz
        return sfft.rfft(
            w * np.repeat(e.astype(np.float32), ENV_STEP, axis=1), axis=1, workers=cfg.fft_workers
        )

    def gain(e):  # fs / sqrt(N mean env^2): unit mean power, Fourier amplitude in physical units
        return (SAMPLING_RATE_HZ / np.sqrt(NPTS * np.mean(e**2, axis=1)))[:, None].astype(
            np.float32
        )

    w1_rev, w2_rev = w1[:, ::-1], w2[:, ::-1]  # reversed noise is a cheap independent-looking draw
    x = fwd(w1, env["p"] + env["p_coda"]) * (a_p * gain(env["p"]))
    g_s = gain(env["s"])
    x += fwd(w1_rev, env["s"]) * (a_s * g_s)
    edges = np.concatenate([[-np.inf], cfg.coda_band_edges_hz, [np.inf]])
    for b, coda in enumerate(env["s_coda"]):
        in_band = (f >= edges[b]) & (f < edges[b + 1])
        x[:, in_band] += fwd(w2, coda)[:, in_band] * (a_s[:, in_band] * g_s)
    x += fwd(w2_rev, env["rg"]) * (a_r * gain(env["rg"]))
    return x


def _window_power(cfg, tr: dict, x: np.ndarray) -> np.ndarray:
    """Mean square of ``x`` over [P onset, S + snr_post_s_s], per trace."""
    start = tr["p_idx"]
    stop = start + np.round((tr["t_s"] - tr["t_p"] + cfg.snr_post_s_s) * SAMPLING_RATE_HZ).astype(
        int
    )
    stop = np.clip(stop, start + 1, NPTS)
    idx = np.arange(NPTS)[None]
    inside = (idx >= start[:, None]) & (idx < stop[:, None])
    return np.einsum("bn,bn->b", x * inside, x, dtype=np.float64) / (stop - start)


def select_stations(cfg, event: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
    """Boolean mask: SNR >= snr_min_db, best max_sta per event, events with >= min_sta kept."""
    ok = snr_db >= cfg.snr_min_db
    order = np.lexsort((-snr_db, ~ok, event))  # by event, passing first, best first
    ev_sorted = event[order]
    rank = np.arange(len(order)) - np.searchsorted(ev_sorted, ev_sorted, side="left")
    keep = np.zeros(len(event), bool)
    keep[order] = ok[order] & (rank < cfg.max_sta)
    _, inverse, counts = np.unique(event, return_inverse=True, return_counts=True)
    n_kept = np.bincount(inverse, weights=keep, minlength=len(counts))
    return keep & (n_kept[inverse] >= cfg.min_sta)


def add_glitches(cfg, waves: np.ndarray) -> np.ndarray:
    """Corrupt a share of records in place (gaps, spikes, clipping, DC steps).

    Returns the glitch names.
    """
    rng = np.random.default_rng([cfg.seed, 13])
    n = len(waves)
    probs = np.array([cfg.p_gap, cfg.p_spike, cfg.p_clip, cfg.p_dc_step])
    kind = np.searchsorted(np.cumsum(probs), rng.random(n), side="right")  # 4 = none
    where = rng.random(n)  # position of the glitch within the trace
    size = rng.random(n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    idx = np.arange(NPTS)[None]
    sigma = waves.std(axis=1)
    gap = np.flatnonzero(kind == 0)
    length = np.round(
        (cfg.gap_range_s[0] + size[gap] * np.diff(cfg.gap_range_s)) * SAMPLING_RATE_HZ
    )
    start = np.floor(where[gap] * (NPTS - length))
    waves[gap] *= ~(
        (idx >= start[:, None]) & (idx < (start + length)[:, None])
    )  # obspy merge fills zeros
    spike = np.flatnonzero(kind == 1)
    pos = np.floor(where[spike] * (NPTS - 1)).astype(int)
    for offset in (0, 1):
        waves[spike, pos + offset] = sign[spike] * cfg.spike_sigma * sigma[spike]
    clip = np.flatnonzero(kind == 2)
    level = cfg.clip_fraction * np.abs(waves[clip]).max(axis=1, keepdims=True)
    waves[clip] = np.clip(waves[clip], -level, level)
    step = np.flatnonzero(kind == 3)
    at = np.floor(where[step] * NPTS)[:, None]
    waves[step] += (idx >= at) * (sign[step] * cfg.dc_step_sigma * sigma[step])[:, None]
    return np.array([*GLITCHES, "none"], dtype=object)[kind]
