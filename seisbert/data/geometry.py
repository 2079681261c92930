"""Event-station geometry and the TauP P arrival for the ``waveforms`` source.

TauP (``obspy.taup``, ak135 by default) costs 25-40 ms per call, so a catalogue without
picks would spend most of its load there, and events rarely share a depth. ``gridded_p_seconds``
runs TauP only at the nodes of a (distance, depth) grid of ``data.taup_grid_km`` spacing, each
node once, and interpolates bilinearly: P travel time is smooth in both, so a 1 km grid stays
within 10 ms of TauP (one sample at 100 Hz; tested near the source and at the Pg/Pn crossover,
where it bends most), and a regional catalogue (0-400 km, 0-30 km deep) needs at most ~12,000
nodes whatever its size.
"""

from __future__ import annotations

import functools
import math

from seisbert.data.records import Reason, Rejected


def distance_baz(ev, sta_lat: float, sta_lon: float) -> tuple[float, float]:
    """Epicentral distance (km) and back azimuth (deg) on the WGS84 ellipsoid, NaN if unknown."""
    values = (ev.latitude, ev.longitude, sta_lat, sta_lon)
    if not all(math.isfinite(v) for v in values):
        return math.nan, math.nan
    from obspy.geodetics import gps2dist_azimuth

    dist_m, _, baz = gps2dist_azimuth(*values)
    return dist_m / 1000.0, baz


@functools.lru_cache(maxsize=4)
def _taup(model: str):
    from obspy.taup import TauPyModel

    return TauPyModel(model)


def taup_p_seconds(dist_km: float, depth_km: float, model: str = "ak135") -> float:
    """First P-type travel time (s) from TauP; sources above the datum count as depth 0."""
    from obspy.geodetics import kilometers2degrees

    arrivals = _taup(model).get_travel_times(
        source_depth_in_km=max(depth_km, 0.0),
        distance_in_degree=kilometers2degrees(dist_km),
        phase_list=["ttp"],
    )
    if not arrivals:
        raise Rejected(Reason.MISSING_PICK, f"TauP {model} has no P at {dist_km:.0f} km")
    return min(a.time for a in arrivals)


def gridded_p_seconds(dist_km: float, depth_km: float, model: str, grid_km: float | None) -> float:
    """``taup_p_seconds`` interpolated bilinearly between grid nodes; ``grid_km`` None: exact."""
    if grid_km is None:
        return taup_p_seconds(dist_km, depth_km, model)
    x, z = dist_km / grid_km, max(depth_km, 0.0) / grid_km
    i, j = math.floor(x), math.floor(z)
    fx, fz = x - i, z - j

    def node(a: int, b: int) -> float:
        return _p_at_node(a, b, grid_km, model)

    return (1 - fx) * ((1 - fz) * node(i, j) + fz * node(i, j + 1)) + fx * (
        (1 - fz) * node(i + 1, j) + fz * node(i + 1, j + 1)
    )


@functools.lru_cache(maxsize=None)
def _p_at_node(i_dist: int, i_depth: int, grid_km: float, model: str) -> float:
    return taup_p_seconds(i_dist * grid_km, i_depth * grid_km, model)
