"""Catalogue, network and path terms of the synthetic source (synthetic.md sections 2-4).

Events come from ``default_rng(seed)``; everything fixed per station, mine or
path (site terms, noise level, mine firing patterns, path fingerprints) from
``default_rng([seed, 7])``, so a station's character does not change when the
catalogue does. Candidate event-station pairs are ranked by an analytic SNR and the
best ``max_sta + extra_candidates`` per event go on to waveform synthesis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seisbert.data.synthetic import spectra as spec
from seisbert.data.synthetic.constants import NPTS, P_PICK_SAMPLE, SAMPLING_RATE_HZ

KM_PER_DEG = 111.19
EQ, BLAST, MIE = 0, 1, 2
SECONDS_PER_DAY = 86400.0


def build_catalog(cfg) -> dict:
    """Stations, per-station/mine terms and events; a dict of NumPy arrays."""
    prng = np.random.default_rng([cfg.seed, 7])
    rng = np.random.default_rng(cfg.seed)
    cat = {"stations": _stations(cfg, prng)}
    cat["mines"] = _mine_terms(cfg, prng, len(cat["stations"]["lat"]))
    ev = _events(cfg, rng)
    ev.update(_origin_times(cfg, rng, ev["kind"]))
    ev.update(spec.blast_sources(cfg, rng, ev, cat["mines"]))
    ev["fc"] = spec.brune_corner_hz(cfg, ev["m0"], ev["stress_pa"])
    ev["t_src"] = np.where(ev["kind"] == BLAST, ev["shot_dur_s"], 1.0 / ev["fc"])
    ev["fp_key"] = _fingerprint_key(cfg, ev)
    cat["events"] = ev
    return cat


def _stations(cfg, prng) -> dict:
    """A jittered grid over the region: roughly uniform, 50-70 km spacing for 60 stations."""
    (lat0, lat1), (lon0, lon1), n = cfg.lat_range_deg, cfg.lon_range_deg, cfg.n_stations
    width = (lon1 - lon0) * np.cos(np.radians(0.5 * (lat0 + lat1)))
    nx = int(np.ceil(np.sqrt(n * width / (lat1 - lat0))))
    ny = int(np.ceil(n / nx))
    cells = prng.permutation(nx * ny)[:n]
    jitter = prng.uniform(-0.35, 0.35, size=(2, n))
    lon = lon0 + (cells % nx + 0.5 + jitter[0]) / nx * (lon1 - lon0)
    lat = lat0 + (cells // nx + 0.5 + jitter[1]) / ny * (lat1 - lat0)
    resonant = prng.random(n) < cfg.p_site_res
    return {
        "lat": lat,
        "lon": lon,
        "kappa": prng.uniform(*cfg.kappa_range_s, size=n),
        "gain_log10": cfg.sig_site_log10 * prng.standard_normal(n),
        "res_f0": prng.uniform(*cfg.site_res_f0_range_hz, size=n),
        "res_gain": np.where(resonant, prng.uniform(*cfg.site_res_gain_range, size=n), 1.0),
        "noise_u": prng.beta(*cfg.noise_beta, size=n),
    }


def _mine_terms(cfg, prng, n_sta: int) -> dict:
    """Per-mine firing pattern, mine-station P/S term and path fingerprints (mines, then cells)."""
    mines = np.asarray(cfg.mines, dtype=float)
    n_mine, n_cells = len(mines), _n_cells(cfg)
    n_keys = n_mine + n_cells
    return {
        "table": mines,
        "hole_ms": prng.choice(np.asarray(cfg.hole_delays_ms, float), size=n_mine),
        "row_ms": prng.uniform(*cfg.row_delay_range_ms, size=n_mine),
        "eps_ps": cfg.sig_ps_sta_ex * prng.standard_normal((n_mine, n_sta)),
        # (keys * stations, nodes): log10 fingerprint at log-spaced nodes
        "fingerprint": cfg.sig_fingerprint
        * prng.standard_normal((n_keys * n_sta, cfg.fingerprint_nodes)),
        "n_sta": n_sta,
    }


def _n_cells(cfg) -> int:
    step = cfg.fingerprint_cell_deg
    ny = int(np.ceil((cfg.lat_range_deg[1] - cfg.lat_range_deg[0]) / step)) + 1
    nx = int(np.ceil((cfg.lon_range_deg[1] - cfg.lon_range_deg[0]) / step)) + 1
    return ny * nx


def _fingerprint_key(cfg, ev: dict) -> np.ndarray:
    """Mine index for blasts; n_mine + 0.5-degree cell index for earthquakes."""
    step, n_mine = cfg.fingerprint_cell_deg, len(cfg.mines)
    nx = int(np.ceil((cfg.lon_range_deg[1] - cfg.lon_range_deg[0]) / step)) + 1
    iy = np.floor((ev["lat"] - cfg.lat_range_deg[0]) / step).astype(int)
    ix = np.floor((ev["lon"] - cfg.lon_range_deg[0]) / step).astype(int)
    cell = np.clip(iy, 0, None) * nx + np.clip(ix, 0, nx - 1)
    return np.where(ev["kind"] == BLAST, ev["mine"], n_mine + np.minimum(cell, _n_cells(cfg) - 1))


def _events(cfg, rng) -> dict:
    """Kind, location, depth, magnitude and stress drop of every event (vectorised)."""
    n = cfg.n_events
    u = rng.random(n)
    kind = np.where(u < cfg.p_blast, BLAST, np.where(u < cfg.p_blast + cfg.p_mie, MIE, EQ))
    (lat0, lat1), (lon0, lon1) = cfg.lat_range_deg, cfg.lon_range_deg
    lat = rng.uniform(lat0, lat1, n)
    lon = np.clip(rng.normal(cfg.eq_lon_mean_deg, cfg.eq_lon_sd_deg, n), lon0, lon1)
    depth = np.clip(rng.normal(cfg.eq_depth_mean_km, cfg.eq_depth_sd_km, n), *cfg.eq_depth_range_km)
    shallow = rng.random(n) < cfg.p_shallow_eq
    depth = np.where(shallow, rng.uniform(*cfg.shallow_depth_range_km, n), depth)
    mag = _gutenberg_richter(rng, n, cfg.eq_mag_range, cfg.eq_b_value)
    stress = cfg.stress_drop_mpa * 1e6 * 10 ** (cfg.stress_drop_sd_log10 * rng.standard_normal(n))
    # blasts and mining-induced events sit at (or near) a mine
    mines = np.asarray(cfg.mines, dtype=float)
    mine = rng.choice(len(mines), size=n, p=mines[:, 2] / mines[:, 2].sum())
    mine = np.where(kind == MIE, cfg.mie_mine, mine)
    offset_km = np.where(kind == MIE, cfg.mie_offset_km, cfg.blast_offset_km)[:, None]
    dxy = rng.uniform(-1, 1, size=(n, 2)) * offset_km
    at_mine = kind != EQ
    lat = np.where(at_mine, mines[mine, 0] + dxy[:, 0] / KM_PER_DEG, lat)
    lon = np.where(
        at_mine, mines[mine, 1] + dxy[:, 1] / (KM_PER_DEG * np.cos(np.radians(lat))), lon
    )
    depth = np.where(kind == BLAST, rng.uniform(0, cfg.blast_depth_max_km, n), depth)
    depth = np.where(kind == MIE, rng.uniform(*cfg.mie_depth_range_km, n), depth)
    blast_mag = rng.normal(mines[mine, 3] + cfg.blast_m_shift, mines[mine, 4])
    mag = np.where(kind == BLAST, np.clip(blast_mag, *cfg.blast_mag_range), mag)
    label_true = (kind == BLAST).astype(np.int64)
    flipped = rng.random(n) < cfg.label_noise
    return {
        "kind": kind,
        "lat": lat,
        "lon": lon,
        "depth_km": depth,
        "mag": mag,
        "m0": 10 ** (1.5 * mag + 9.1),
        "stress_pa": stress,
        "mine": np.where(kind == BLAST, mine, -1),
        "label_true": label_true,
        "label": np.where(flipped, 1 - label_true, label_true),
        "flipped": flipped,
        "ps_event": cfg.sig_ps_event * rng.standard_normal(n),
    }


def _gutenberg_richter(rng, n: int, mag_range, b: float) -> np.ndarray:
    """Truncated Gutenberg-Richter magnitudes by inverse CDF."""
    lo, hi = mag_range
    span = 1 - 10 ** (-b * (hi - lo))
    return lo - np.log10(1 - rng.random(n) * span) / b


def _origin_times(cfg, rng, kind: np.ndarray) -> dict:
    """Seconds after ``catalog_start`` (UTC) and local hour; blasts on weekdays in day-time."""
    n, days = len(kind), cfg.catalog_days
    start_day = np.datetime64(cfg.catalog_start, "D").astype(np.int64)
    all_days = np.arange(days)
    weekdays = all_days[(start_day + all_days + 3) % 7 < 5]  # 1970-01-01 was a Thursday
    hour = np.clip(rng.normal(cfg.blast_hour_mean, cfg.blast_hour_sd, n), *cfg.blast_hour_range)
    lo, hi = cfg.blast_hour_range
    off_hour = (hi + rng.random(n) * (24 - (hi - lo))) % 24
    hour = np.where(rng.random(n) < cfg.p_blast_off_hours, off_hour, hour)
    blast_t = (rng.choice(weekdays, size=n) * 24 + hour + cfg.utc_minus_local_h) * 3600.0
    eq_t = rng.uniform(0, days * SECONDS_PER_DAY, n)
    utc_s = np.where(kind == BLAST, blast_t, eq_t)
    hour_local = (utc_s / 3600.0 - cfg.utc_minus_local_h) % 24
    day = (hour_local >= cfg.day_hours_local[0]) & (hour_local < cfg.day_hours_local[1])
    return {"utc_s": utc_s, "hour_local": hour_local, "daytime": day}


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


def candidate_pairs(cfg, cat: dict) -> dict:
    """Event-station pairs 10-200 km apart, best ``max_sta + extra_candidates`` per event.

    Pairs whose analytic SNR is below ``snr_min_db - snr_prefilter_margin_db`` are not
    synthesised (the measured SNR is 0-3 dB above the analytic one), nor are events left
    with fewer than ``min_sta`` candidates.

    Returns per-trace arrays (event-major order): indices, distances, travel times,
    path random terms and the true P onset sample ``p_idx``.
    """
    ev, st = cat["events"], cat["stations"]
    dist = haversine_km(
        ev["lat"][:, None], ev["lon"][:, None], st["lat"][None], st["lon"][None]
    )  # (E, S)
    e, s = np.nonzero((dist >= cfg.dist_range_km[0]) & (dist <= cfg.dist_range_km[1]))
    pairs = _pair_terms(cfg, cat, e, s, dist[e, s])
    snr = spec.analytic_snr_db(cfg, cat, pairs)
    # skip traces (and events) that cannot pass the SNR cut: most small earthquakes
    hopeful = snr >= cfg.snr_min_db - cfg.snr_prefilter_margin_db
    order = np.lexsort((-snr, e))  # by event, best SNR first
    rank = np.arange(len(order)) - np.searchsorted(e[order], e[order], side="left")
    best = order[(rank < cfg.max_sta + cfg.extra_candidates) & hopeful[order]]
    n_best = np.bincount(e[best], minlength=cfg.n_events)
    best = np.sort(best[n_best[e[best]] >= cfg.min_sta])
    out = {key: val[best] for key, val in pairs.items()}
    out["snr_analytic_db"] = snr[best]
    return out


def _pair_terms(cfg, cat: dict, e: np.ndarray, s: np.ndarray, r_km: np.ndarray) -> dict:
    ev = cat["events"]
    rng = np.random.default_rng([cfg.seed, 3])
    n = len(e)
    h = ev["depth_km"][e]
    R = np.hypot(r_km, h)
    u_rg = np.maximum(rng.normal(cfg.rg_vel_mean_km_s, cfg.rg_vel_sd_km_s, n), 0.5)
    eps_eq = cfg.sig_ps_sta_eq * rng.standard_normal(n)
    blast = ev["kind"][e] == BLAST
    eps = np.where(blast, cat["mines"]["eps_ps"][np.maximum(ev["mine"][e], 0), s], eps_eq)
    jitter = np.round(SAMPLING_RATE_HZ * rng.normal(0, cfg.p_pick_sd_s, n))
    p_idx = P_PICK_SAMPLE + np.clip(jitter, -cfg.p_pick_max_samples, cfg.p_pick_max_samples).astype(
        int
    )
    return {
        "event": e,
        "station": s,
        "r_km": r_km,
        "R_km": R,
        "t_p": R / cfg.vp_km_s,
        "t_s": R / cfg.vs_km_s,
        "t_rg": r_km / u_rg,
        "u_rg": u_rg,
        "q_log10": cfg.sig_q_log10 * rng.standard_normal(n),
        "eps_ps": eps,
        "rg_log10": cfg.sig_rg_log10 * rng.standard_normal(n),
        "p_idx": p_idx,
        "fp_row": ev["fp_key"][e] * cat["mines"]["n_sta"] + s,
    }


def event_batches(event: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices split into batches of about ``batch_size`` that never split an event."""
    if len(event) == 0:
        return []
    first = np.searchsorted(event, event, side="left")  # event is sorted
    batch = first // batch_size
    cuts = np.flatnonzero(np.diff(batch)) + 1
    return np.split(np.arange(len(event)), cuts)


def metadata_table(
    cfg, cat: dict, tr: dict, snr_db: np.ndarray, glitch: np.ndarray
) -> pd.DataFrame:
    """One seisbench-style row per kept record."""
    ev, st = cat["events"], cat["stations"]
    e, s = tr["event"], tr["station"]
    start = np.datetime64(cfg.catalog_start, "us")
    origin = start + np.round(ev["utc_s"][e] * 1e6).astype("timedelta64[us]")
    trace_start = origin + np.round((tr["t_p"] - tr["p_idx"] / SAMPLING_RATE_HZ) * 1e6).astype(
        "timedelta64[us]"
    )
    fs = SAMPLING_RATE_HZ
    return pd.DataFrame(
        {
            "event_id": np.char.add(cfg.event_id_prefix, np.char.zfill(e.astype(str), 6)),
            "station_id": np.char.add("SY.S", np.char.zfill(s.astype(str), 3)),
            "source_type": np.where(ev["label"][e] == 1, "blast", "earthquake"),
            "label": ev["label"][e],
            "label_true": ev["label_true"][e],
            "label_noise_flipped": ev["flipped"][e],
            "mining_induced": ev["kind"][e] == MIE,
            "source_magnitude": ev["mag"][e],
            "source_depth_km": ev["depth_km"][e],
            "source_latitude_deg": ev["lat"][e],
            "source_longitude_deg": ev["lon"][e],
            "station_latitude_deg": st["lat"][s],
            "station_longitude_deg": st["lon"][s],
            "path_ep_distance_km": tr["r_km"],
            "path_hyp_distance_km": tr["R_km"],
            "source_origin_time": np.char.add(np.datetime_as_string(origin, unit="us"), "Z"),
            "source_hour_local": ev["hour_local"][e],
            "mine_id": ev["mine"][e],
            "single_shot": ev["single_shot"][e],
            "trace_snr_db": snr_db,
            "glitch": glitch,
            "trace_start_time": np.char.add(np.datetime_as_string(trace_start, unit="us"), "Z"),
            "trace_sampling_rate_hz": fs,
            "trace_npts": NPTS,
            "trace_p_arrival_sample": P_PICK_SAMPLE,
            "trace_p_onset_sample": tr["p_idx"],
            "trace_s_arrival_sample": tr["p_idx"]
            + np.round((tr["t_s"] - tr["t_p"]) * fs).astype(int),
            "trace_rg_arrival_sample": tr["p_idx"]
            + np.round((tr["t_rg"] - tr["t_p"]) * fs).astype(int),
        }
    )
