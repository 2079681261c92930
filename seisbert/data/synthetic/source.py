"""The embedded source ``data=synthetic``: Utah-like earthquakes and ripple-fired quarry blasts.

Follows Boore's stochastic method (Boore 1983, BSSA 73; Boore 2003, PAGEOPH 160) as
specified in ``synthetic.md``: each phase (Pg, Sg/Lg, Rg, P and S coda) is windowed
Gaussian noise whose spectrum is replaced by a physical amplitude spectrum (Brune
source or ripple-fire comb, geometric spreading, Q(f), kappa, site and path terms),
plus Peterson-model ambient noise. This module holds the config and the driver;
``catalog`` draws events, stations and path terms, ``spectra``
the amplitude spectra, ``waveforms`` the time series, SNR and glitches.

Output convention: 90 s of vertical velocity (m/s) at 100 Hz; sample 0 is 10 s
before the catalogue P pick, so ``trace_p_arrival_sample`` is 1000 for every record
and the true onset ``trace_p_onset_sample`` is jittered around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from seisbert.data.records import RecordSet
from seisbert.data.synthetic import catalog as cat
from seisbert.data.synthetic import waveforms as wav
from seisbert.data.synthetic.checks import validate
from seisbert.data.synthetic.constants import NPTS, SAMPLING_RATE_HZ

log = logging.getLogger(__name__)


def _pair(lo, hi):
    return field(default_factory=lambda: [lo, hi])


def _default_mines() -> list:
    # (lat, lon, weight, mean M, sd M); only Bingham Canyon is the real site.
    return [
        [40.52, -112.15, 0.35, 1.9, 0.35],  # Bingham Canyon
        [40.47, -111.92, 0.20, 1.2, 0.30],  # Wasatch-Front quarry
        [40.62, -112.55, 0.15, 1.3, 0.30],  # Tooele
        [40.58, -109.50, 0.15, 1.7, 0.40],  # Vernal phosphate
        [39.45, -111.10, 0.15, 1.5, 0.35],  # coal region
    ]


@dataclass
class SyntheticSource:
    """Config of the synthetic generator; ``load()`` returns a :class:`RecordSet`.

    Every field is a key of ``configs/data/synthetic.yaml``; ``*_range`` fields are
    ``[lo, hi]``. Section numbers refer to ``synthetic.md``.
    """

    # size, reproducibility, speed
    n_events: int = 2500  # generated events; ~55% survive the SNR cut with >= min_sta stations
    seed: int = 0
    # event ids are <prefix><6 digits>; another draw (unlabeled pool) takes another
    event_id_prefix: str = (
        "syn"  # a second draw (an unlabeled pool) takes another prefix: disjoint ids
    )
    batch_size: int = 500  # candidate traces synthesised per FFT batch
    fft_workers: int = 2
    # region and network (section 2)
    lat_range_deg: list[float] = _pair(36.75, 42.5)
    lon_range_deg: list[float] = _pair(-114.25, -108.75)
    n_stations: int = 60
    dist_range_km: list[float] = _pair(10.0, 200.0)
    # catalogue mix and labels
    p_blast: float = 0.28  # synthetic.md says 0.25; 0.28 gives the intended ~49% blast traces here
    p_mie: float = 0.0  # mining-induced events: labelled earthquake, shallow, in mie_mine's region
    label_noise: float = 0.02  # per-event catalogue label flip probability
    # earthquakes
    eq_mag_range: list[float] = _pair(0.5, 3.5)
    eq_b_value: float = 1.0
    eq_lon_mean_deg: float = -111.9
    eq_lon_sd_deg: float = 0.8
    eq_depth_mean_km: float = 7.0
    eq_depth_sd_km: float = 4.0
    eq_depth_range_km: list[float] = _pair(2.0, 20.0)
    p_shallow_eq: float = 0.10
    shallow_depth_range_km: list[float] = _pair(0.3, 2.0)
    stress_drop_mpa: float = 3.0  # median Brune stress drop
    stress_drop_sd_log10: float = 0.3
    mie_mine: int = 4  # index into mines: the coal region
    mie_offset_km: float = 15.0
    mie_depth_range_km: list[float] = _pair(0.3, 1.0)
    # blasts
    mines: list[list[float]] = field(default_factory=_default_mines)
    blast_m_shift: float = 0.0  # added to every mine's mean magnitude
    blast_mag_range: list[float] = _pair(0.5, 3.2)
    blast_offset_km: float = 1.0
    blast_depth_max_km: float = 0.05
    # origin times; UTC = local + utc_minus_local_h
    catalog_start: str = "2012-01-01"
    catalog_days: int = 3652  # origin times spread over this many days
    utc_minus_local_h: float = 7.0
    blast_hour_mean: float = 13.0
    blast_hour_sd: float = 2.0
    blast_hour_range: list[float] = _pair(7.0, 19.0)
    p_blast_off_hours: float = 0.07
    # source spectra (section 3)
    vp_km_s: float = 6.1
    vs_km_s: float = 3.55
    density_kg_m3: float = 2800.0
    blast_corner_hz: float = 25.0
    blast_kappa_src_max_s: float = 0.02
    ml_band_hz: list[float] = _pair(2.0, 5.0)
    # ripple-fire comb
    p_single_shot: float = 0.25  # blasts without a comb (C = 1): the main ceiling lever
    hole_delays_ms: list[float] = field(default_factory=lambda: [17.0, 25.0, 35.0, 42.0])
    row_delay_range_ms: list[float] = _pair(65.0, 200.0)
    rows_range: list[int] = _pair(1, 4)
    holes_range: list[int] = _pair(8, 40)
    jitter_ms: float = 3.0  # sd of firing-time scatter: how visible the banding is
    p_late_hole: float = 0.1
    late_hole_max_ms: float = 100.0
    hole_weight_sigma: float = 0.4
    shot_max_s: float = 2.0
    p_mine_pattern: float = 0.8
    # path and phases (section 4)
    q0: float = 235.0  # Q = q0 f^q_eta (Basin and Range Lg)
    q_eta: float = 0.56
    sig_q_log10: float = 0.08
    geo_cross_km: float = 50.0
    ps_ratio: float = 0.3  # Pg/Sg spectral level (log10 0.3 + terms below)
    sig_ps_event: float = 0.15  # log10 scatter of P/S per event
    sig_ps_sta_eq: float = 0.20  # per earthquake trace (radiation pattern)
    sig_ps_sta_ex: float = 0.12  # fixed per blast mine-station path
    dlog_ps_blast: float = 0.30  # blast P/S excess (log10) reached at 2 x ps_blast_f0_hz
    ps_blast_f0_hz: float = 3.0
    rg_level: float = 3.0  # Rg strength (0 switches Rg off): the depth cue
    sig_rg_log10: float = 0.25
    rg_vel_mean_km_s: float = 2.6
    rg_vel_sd_km_s: float = 0.2
    rg_depth_decay: float = 0.85
    rg_depth_vel_km_s: float = 2.8
    rg_ln_width: float = 0.5
    rg_ref_amp: float = 1e-4
    rg_ref_dist_km: float = 10.0
    rg_q0: float = 80.0
    # envelopes and coda
    env_eps: float = 0.2
    env_eta: float = 0.05
    env_teta_factor: float = 2.0
    dur_p_per_km: float = 0.02
    dur_p_s: float = 0.3
    dur_s_per_km: float = 0.05
    dur_s_s: float = 0.5
    dur_rg_s: float = 1.0
    rg_disp_vel_km_s: list[float] = _pair(  # Rg dispersion: duration grows as r (1/v0 - 1/v1)
        2.0, 3.2
    )  # Rg dispersion: duration grows as r (1/v0 - 1/v1)
    coda_s_level: float = 0.45
    coda_p_level: float = 0.35
    qc0: float = 150.0
    qc_eta: float = 0.6
    coda_band_edges_hz: list[float] = _pair(2.5, 7.0)
    coda_band_centers_hz: list[float] = field(default_factory=lambda: [1.5, 4.0, 11.0])
    coda_p_freq_hz: float = 5.0
    # site and path fingerprint
    kappa_range_s: list[float] = _pair(0.01, 0.04)
    sig_site_log10: float = 0.15
    p_site_res: float = 0.4  # share of stations with a resonance (spurious banding)
    site_res_f0_range_hz: list[float] = _pair(1.5, 10.0)
    site_res_gain_range: list[float] = _pair(2.0, 4.0)
    site_res_width_oct: float = 0.35
    sig_fingerprint: float = 0.15  # log10 sd of the smooth per-(mine or cell)-station path factor
    fingerprint_nodes: int = 9
    fingerprint_band_hz: list[float] = _pair(0.7, 25.0)
    fingerprint_cell_deg: float = 0.5
    p_pick_sd_s: float = 0.15
    p_pick_max_samples: int = 50
    # noise (section 5)
    # station noise = NLNM + u (NHNM - NLNM), u ~ Beta(a, b)
    noise_beta: list[float] = _pair(2.0, 4.0)
    day_noise_db: float = 3.0
    day_noise_min_hz: float = 2.0
    day_hours_local: list[float] = _pair(7.0, 19.0)
    noise_highpass_hz: float = 0.2
    # SNR and station selection
    snr_min_db: float = 3.0  # keep traces with SNR >= this (1-20 Hz, P to S + snr_post_s_s)
    snr_band_hz: list[float] = _pair(1.0, 20.0)
    snr_post_s_s: float = 10.0
    snr_freqs: int = 24
    # synthesise only pairs with analytic SNR >= snr_min_db - this
    snr_prefilter_margin_db: float = (
        3.0  # synthesise only pairs with analytic SNR >= snr_min_db - this
    )
    max_sta: int = 6  # at most this many stations per event ...
    min_sta: int = 3  # ... and events with fewer kept stations are dropped
    extra_candidates: int = 2  # synthesise the best max_sta + this per event (by analytic SNR)
    # glitches (share of kept records; at most one glitch per record)
    p_gap: float = 0.01
    gap_range_s: list[float] = _pair(0.5, 10.0)
    p_spike: float = 0.01
    spike_sigma: float = 50.0
    p_clip: float = 0.0015
    clip_fraction: float = 0.3
    p_dc_step: float = 0.0015
    dc_step_sigma: float = 20.0

    def __post_init__(self):
        validate(self, key="data")

    def load(self, progress: bool = True) -> RecordSet:
        """Generate the record set: ``(N, 1, 9000)`` float32 vertical velocity in m/s."""
        catalog = cat.build_catalog(self)
        pairs = cat.candidate_pairs(self, catalog)
        batches = cat.event_batches(pairs["event"], self.batch_size)
        kept_wave, kept_rows, kept_snr = (
            [np.zeros((0, NPTS), np.float32)],
            [np.zeros(0, int)],
            [np.zeros(0)],
        )
        for rows in tqdm(batches, desc="synthetic", unit="batch", disable=not progress):
            sub = {k: v[rows] for k, v in pairs.items()}
            waves, snr_db = wav.synthesize(self, catalog, sub)
            keep = wav.select_stations(self, sub["event"], snr_db)
            kept_wave.append(waves[keep])
            kept_rows.append(rows[keep])
            kept_snr.append(snr_db[keep])
        waves, rows, snr_db = (np.concatenate(x) for x in (kept_wave, kept_rows, kept_snr))
        glitch = wav.add_glitches(self, waves)
        meta = cat.metadata_table(
            self, catalog, {k: v[rows] for k, v in pairs.items()}, snr_db, glitch
        )
        _log_summary(self, len(pairs["event"]), meta)
        return RecordSet(
            waveforms=waves[:, None, :],
            metadata=meta,
            sampling_rate_hz=SAMPLING_RATE_HZ,
            channels="Z",
        )


def _log_summary(cfg, n_candidates: int, meta) -> None:
    """What was generated and what survived, with why: data.n_events counts generated
    events, and only those seen above the SNR cut at enough stations are kept."""
    n_events = meta["event_id"].nunique()
    log.info(
        "synthetic: %d generated events -> %d kept (the others had fewer than data.min_sta=%d "
        "stations above the SNR cut); %d candidate traces -> %d records (%.1f%% blast traces, "
        "%d glitched, median SNR %.1f dB)",
        cfg.n_events,
        n_events,
        cfg.min_sta,
        n_candidates,
        len(meta),
        100 * meta["label_true"].mean() if len(meta) else 0.0,
        int((meta["glitch"] != "none").sum()),
        meta["trace_snr_db"].median() if len(meta) else 0.0,
    )
