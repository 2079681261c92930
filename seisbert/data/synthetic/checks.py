"""Range checks of the ``data=synthetic`` config, run in ``SyntheticSource.__post_init__``.

Each bad value raises ValueError naming the full key (``data.label_noise``), the value
and what is allowed, before any generation work starts.
"""

from __future__ import annotations

import numpy as np

from seisbert.config import check_range

INF = None  # open upper bound

# scalar key -> (lo, hi), inclusive
SCALAR_RANGES = {
    "n_events": (1, INF),
    "batch_size": (1, INF),
    "fft_workers": (1, 64),
    "n_stations": (3, 100_000),
    "p_blast": (0.0, 1.0),
    "p_mie": (0.0, 1.0),
    "label_noise": (0.0, 0.5),
    "eq_b_value": (0.1, 3.0),
    "eq_lon_sd_deg": (0.0, INF),
    "eq_depth_sd_km": (0.0, INF),
    "p_shallow_eq": (0.0, 1.0),
    "stress_drop_mpa": (1e-3, 1e3),
    "stress_drop_sd_log10": (0.0, 2.0),
    "blast_offset_km": (0.0, 50.0),
    "mie_offset_km": (0.0, 200.0),
    "blast_depth_max_km": (0.0, 2.0),
    "catalog_days": (7, INF),
    "utc_minus_local_h": (-14.0, 14.0),
    "blast_hour_mean": (0.0, 24.0),
    "blast_hour_sd": (0.0, 24.0),
    "p_blast_off_hours": (0.0, 1.0),
    "vp_km_s": (0.5, 20.0),
    "vs_km_s": (0.3, 12.0),
    "density_kg_m3": (1000.0, 6000.0),
    "blast_corner_hz": (0.1, 100.0),
    "blast_kappa_src_max_s": (0.0, 1.0),
    "p_single_shot": (0.0, 1.0),
    "jitter_ms": (0.0, 1000.0),
    "p_late_hole": (0.0, 1.0),
    "late_hole_max_ms": (0.0, 2000.0),
    "hole_weight_sigma": (0.0, 3.0),
    "shot_max_s": (0.01, 10.0),
    "p_mine_pattern": (0.0, 1.0),
    "q0": (1.0, 1e5),
    "q_eta": (0.0, 1.5),
    "sig_q_log10": (0.0, 1.0),
    "geo_cross_km": (1.0, 1000.0),
    "ps_ratio": (1e-3, 1e3),
    "sig_ps_event": (0.0, 2.0),
    "sig_ps_sta_eq": (0.0, 2.0),
    "sig_ps_sta_ex": (0.0, 2.0),
    "dlog_ps_blast": (-3.0, 3.0),
    "ps_blast_f0_hz": (0.1, 50.0),
    "rg_level": (0.0, 1e3),
    "sig_rg_log10": (0.0, 2.0),
    "rg_vel_mean_km_s": (0.5, 6.0),
    "rg_vel_sd_km_s": (0.0, 2.0),
    "rg_depth_decay": (0.0, 10.0),
    "rg_depth_vel_km_s": (0.1, 10.0),
    "rg_ln_width": (1e-3, 100.0),
    "rg_ref_amp": (0.0, 1.0),
    "rg_ref_dist_km": (0.1, 1000.0),
    "rg_q0": (1.0, 1e5),
    "env_eps": (0.01, 0.99),
    "env_eta": (1e-4, 0.99),
    "env_teta_factor": (0.1, 20.0),
    "dur_p_per_km": (0.0, 1.0),
    "dur_p_s": (0.0, 60.0),
    "dur_s_per_km": (0.0, 1.0),
    "dur_s_s": (0.0, 60.0),
    "dur_rg_s": (0.0, 60.0),
    "coda_s_level": (0.0, 10.0),
    "coda_p_level": (0.0, 10.0),
    "qc0": (1.0, 1e5),
    "qc_eta": (0.0, 1.5),
    "coda_p_freq_hz": (0.1, 50.0),
    "sig_site_log10": (0.0, 2.0),
    "p_site_res": (0.0, 1.0),
    "site_res_width_oct": (0.01, 5.0),
    "sig_fingerprint": (0.0, 2.0),
    "fingerprint_nodes": (2, 100),
    "fingerprint_cell_deg": (0.01, 10.0),
    "p_pick_sd_s": (0.0, 5.0),
    "p_pick_max_samples": (0, 999),
    "day_noise_db": (-30.0, 30.0),
    "day_noise_min_hz": (0.0, 50.0),
    "noise_highpass_hz": (0.0, 1.0),
    "snr_min_db": (-30.0, 80.0),
    "snr_post_s_s": (0.0, 80.0),
    "snr_freqs": (4, 1000),
    "snr_prefilter_margin_db": (0.0, 100.0),
    "max_sta": (1, 1000),
    "min_sta": (1, 1000),
    "extra_candidates": (0, 1000),
    "p_gap": (0.0, 1.0),
    "p_spike": (0.0, 1.0),
    "spike_sigma": (0.0, 1e4),
    "p_clip": (0.0, 1.0),
    "clip_fraction": (0.01, 1.0),
    "p_dc_step": (0.0, 1.0),
    "dc_step_sigma": (0.0, 1e4),
}

# [lo, hi] key -> bounds on both ends
PAIR_RANGES = {
    "lat_range_deg": (-90.0, 90.0),
    "lon_range_deg": (-180.0, 180.0),
    "dist_range_km": (0.0, 2000.0),
    "eq_mag_range": (-2.0, 9.0),
    "eq_depth_range_km": (0.0, 700.0),
    "shallow_depth_range_km": (0.0, 50.0),
    "mie_depth_range_km": (0.0, 50.0),
    "blast_mag_range": (-2.0, 9.0),
    "blast_hour_range": (0.0, 24.0),
    "ml_band_hz": (0.05, 50.0),
    "row_delay_range_ms": (0.0, 2000.0),
    "rows_range": (1, 50),
    "holes_range": (1, 1000),
    "kappa_range_s": (0.0, 1.0),
    "site_res_f0_range_hz": (0.05, 50.0),
    "site_res_gain_range": (0.0, 100.0),
    "fingerprint_band_hz": (0.01, 50.0),
    "noise_beta": (0.01, 100.0),
    "day_hours_local": (0.0, 24.0),
    "snr_band_hz": (0.1, 50.0),
    "gap_range_s": (0.0, 90.0),
    "rg_disp_vel_km_s": (0.1, 10.0),
}


def validate(cfg, key: str = "data") -> None:
    """Raise ValueError naming ``key.field`` for the first out-of-range value."""
    for name, (lo, hi) in SCALAR_RANGES.items():
        check_range(f"{key}.{name}", getattr(cfg, name), lo, hi)
    for name, (lo, hi) in PAIR_RANGES.items():
        _check_pair(f"{key}.{name}", getattr(cfg, name), lo, hi)
    _check_lists(cfg, key)
    _check_consistency(cfg, key)


def _check_pair(full: str, value, lo, hi) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{full}={list(value)!r} must be [lo, hi] with lo <= hi")
    for v in value:
        check_range(full, v, lo, hi)


def _check_lists(cfg, key: str) -> None:
    mines = np.asarray(cfg.mines, dtype=float)
    if mines.ndim != 2 or mines.shape[1] != 5 or len(mines) == 0:
        raise ValueError(
            f"{key}.mines must be a non-empty list of [lat, lon, weight, mean_M, sd_M]; "
            f"got {cfg.mines!r}"
        )
    if (mines[:, 2] <= 0).any() or (mines[:, 4] < 0).any():
        raise ValueError(
            f"{key}.mines weights must be > 0 and magnitude sds >= 0; got {cfg.mines!r}"
        )
    check_range(f"{key}.mie_mine", cfg.mie_mine, 0, len(mines) - 1)
    delays = np.asarray(cfg.hole_delays_ms, dtype=float)
    if delays.size == 0 or (delays <= 0).any():
        raise ValueError(
            f"{key}.hole_delays_ms={cfg.hole_delays_ms!r} must be a non-empty list of "
            "positive delays"
        )
    edges = list(cfg.coda_band_edges_hz)
    if edges != sorted(edges) or len(cfg.coda_band_centers_hz) != len(edges) + 1:
        raise ValueError(
            f"{key}.coda_band_centers_hz needs one centre per band: len(coda_band_edges_hz)+1 "
            f"= {len(edges) + 1} values; got {cfg.coda_band_centers_hz!r}"
        )
    try:
        np.datetime64(cfg.catalog_start, "s")
    except ValueError as err:
        raise ValueError(f"{key}.catalog_start={cfg.catalog_start!r} is not an ISO date") from err


def _check_consistency(cfg, key: str) -> None:
    if cfg.p_blast + cfg.p_mie > 1:
        raise ValueError(f"{key}.p_blast + {key}.p_mie = {cfg.p_blast + cfg.p_mie} exceeds 1")
    if cfg.min_sta > cfg.max_sta:
        raise ValueError(f"{key}.min_sta={cfg.min_sta} exceeds {key}.max_sta={cfg.max_sta}")
    glitch = cfg.p_gap + cfg.p_spike + cfg.p_clip + cfg.p_dc_step
    if glitch > 1:
        raise ValueError(f"{key}.p_gap + p_spike + p_clip + p_dc_step = {glitch} exceeds 1")
    if cfg.gap_range_s[1] >= 90.0:
        raise ValueError(f"{key}.gap_range_s={cfg.gap_range_s!r} must stay below the 90 s trace")
