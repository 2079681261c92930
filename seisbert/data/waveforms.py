"""The ``waveforms`` source: ObsPy-readable files or an SDS archive plus a catalogue.

Every (event, station) pair with data near the event becomes one record, cut from
``pre_s`` before the P arrival to ``post_s`` after it at ``sampling_rate_hz``: a fixed
``(C, S)`` float32 array, NaN where there is no data. The P arrival is the catalogue
pick, else ak135 TauP from event and station coordinates. Preprocessing follows the
usual order of seisbench's dataset converters: merge (gaps reject), demean, detrend,
taper, optional response removal to velocity, FFT resampling
(``obspy.Trace.resample``), rotation to Z/R/T. A pair that cannot be used is
rejected with a ``records.Reason``; one bad file never stops the run.
See docs/your_own_data.md.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seisbert.config import check_choice, check_range
from seisbert.data.catalog import (DEFAULT_CSV_COLUMNS, DEFAULT_EVENT_TYPES, CatalogEvent,
                                   map_event_type, read_catalog)
from seisbert.data.records import CLASS_NAMES, RecordSet, Reason, empty_rejected, rejection

log = logging.getLogger(__name__)

SOURCE = "waveforms"

# Column order of the metadata table (seisbench names where they exist).
METADATA_COLUMNS = (
    "event_id", "station_id", "source_type", "label", "trace_p_arrival_sample", "trace_npts",
    "trace_start_time", "trace_sampling_rate_hz", "trace_channel", "trace_p_pick_origin",
    "source_origin_time", "source_latitude_deg", "source_longitude_deg", "source_depth_km",
    "source_magnitude", "station_latitude_deg", "station_longitude_deg",
    "path_ep_distance_km", "path_back_azimuth_deg")


class Rejected(Exception):
    """A record that cannot be used: ``reason`` is a ``records.Reason`` phrase."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class WaveformSource:
    archive: str = "files"  # files | sds
    waveform_dir: str | None = None  # folder of files, or the SDS root
    file_glob: str = "**/*"  # files under waveform_dir to read (archive=files)
    catalog: str | None = None  # QuakeML or CSV
    catalog_format: str = "auto"  # auto (by suffix) | quakeml | csv
    csv_columns: dict = field(default_factory=lambda: dict(DEFAULT_CSV_COLUMNS))
    picks_csv: str | None = None  # extra picks: event id, "NET.STA", time[, phase]
    inventory: str | None = None  # StationXML (glob ok): coordinates, orientation, response
    event_types: dict = field(default_factory=lambda: dict(DEFAULT_EVENT_TYPES))
    p_phases: list = field(default_factory=lambda: ["P", "Pg", "Pn", "Pb", "p"])
    p_from_taup: bool = True
    taup_model: str = "ak135"
    search_s: float = 300.0  # candidates: stations with data in [origin - pre_s, origin + search_s]
    max_distance_km: float | None = None
    pre_s: float = 20.0
    post_s: float = 100.0
    pad_s: float = 5.0  # read beyond both ends of the cut; the taper lives there
    sampling_rate_hz: float = 100.0
    min_sampling_rate_hz: float = 40.0  # Nyquist must reach the features' fmax_hz
    channels: str = "Z"  # Z | ZRT
    channel_codes: dict = field(default_factory=lambda: {"Z": "??Z", "N": "??[N1]", "E": "??[E2]"})
    remove_response: bool = False
    pre_filt_hz: list | None = None  # remove_response corners, e.g. [0.3, 0.5, 40, 45]
    water_level_db: float = 60.0

    def __post_init__(self):
        check_choice("data.archive", self.archive, ("files", "sds"))
        check_choice("data.catalog_format", self.catalog_format, ("auto", "quakeml", "csv"))
        check_choice("data.channels", self.channels, ("Z", "ZRT"))
        for key, value in self.event_types.items():
            check_choice(f"data.event_types.{key}", value, CLASS_NAMES)
        for key in self.csv_columns:
            check_choice("data.csv_columns key", key, DEFAULT_CSV_COLUMNS)
        self.csv_columns = {**DEFAULT_CSV_COLUMNS, **self.csv_columns}
        for comp in self._components():
            if comp not in self.channel_codes:
                raise ValueError(f"data.channel_codes lacks {comp!r}; give a pattern like '??{comp}'")
        for key, lo in (("pre_s", 0.0), ("post_s", 1.0), ("pad_s", 0.0), ("search_s", 0.0),
                        ("sampling_rate_hz", 1.0), ("min_sampling_rate_hz", 0.0)):
            check_range(f"data.{key}", getattr(self, key), lo)
        if self.pre_filt_hz is not None and len(self.pre_filt_hz) != 4:
            raise ValueError(f"data.pre_filt_hz={self.pre_filt_hz} must list four corners (Hz)")

    @property
    def n_samples(self) -> int:  # S
        return round((self.pre_s + self.post_s) * self.sampling_rate_hz)

    def _components(self) -> str:
        return "ZNE" if self.channels == "ZRT" else "Z"

    # ------------------------------------------------------------------------- load
    def load(self, progress: bool = True) -> RecordSet:
        """Read the catalogue and waveforms into a ``RecordSet``; rejects are listed, not raised."""
        for key in ("waveform_dir", "catalog"):
            if getattr(self, key) is None:
                raise ValueError(f"data.{key} must be set for data=waveforms")
        events = read_catalog(self.catalog, self.catalog_format, self.csv_columns,
                              self.picks_csv, tuple(self.p_phases))
        inventory = read_inventory(self.inventory) if self.inventory is not None else None
        if self.remove_response and inventory is None:
            raise ValueError("data.remove_response=true needs data.inventory (StationXML)")
        store = (FileStore(self.waveform_dir, self.file_glob, progress) if self.archive == "files"
                 else SdsStore(self.waveform_dir))
        coords = station_coordinates(inventory, store)
        rows, waves, rejected, n_far = [], [], list(store.rejected), 0
        for ev in tqdm(events, desc="events", disable=not progress):
            source_type = map_event_type(ev.event_type, self.event_types)
            if source_type is None:
                rejected.append(rejection(ev.event_id, SOURCE, Reason.UNKNOWN_TYPE,
                                          f"event type {ev.event_type or '(unset)'!r} is not in "
                                          "data.event_types"))
                continue
            for station_id in store.stations_near(ev, self.pre_s, self.search_s):
                try:
                    out = self._record(ev, source_type, station_id, coords, store, inventory)
                except Rejected as r:
                    rejected.append(rejection(f"{ev.event_id} {station_id}", SOURCE, r.reason, r.detail))
                    continue
                if out is None:
                    n_far += 1
                else:
                    waves.append(out[0])
                    rows.append(out[1])
        if n_far:
            log.info("waveforms: %d event-station pairs farther than data.max_distance_km=%g "
                     "left out", n_far, self.max_distance_km)
        return self._record_set(waves, rows, rejected, len(events))

    def _record_set(self, waves, rows, rejected, n_events) -> RecordSet:
        shape = (0, len(self.channels), self.n_samples)
        waveforms = np.stack(waves) if waves else np.zeros(shape, np.float32)  # (N, C, S)
        metadata = pd.DataFrame(rows, columns=list(METADATA_COLUMNS))
        rejected = pd.DataFrame(rejected) if rejected else empty_rejected()
        counts = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
        log.info("waveforms: %d records from %d events; rejected %d %s",
                 len(metadata), n_events, len(rejected), counts)
        return RecordSet(waveforms, metadata, self.sampling_rate_hz, self.channels, rejected)

    # ------------------------------------------------------------------- one record
    def _record(self, ev: CatalogEvent, source_type: str, station_id: str, coords: dict,
                store, inventory) -> tuple[np.ndarray, dict] | None:
        sta_lat, sta_lon = coords.get(station_id, (math.nan, math.nan))
        dist_km, baz = distance_baz(ev, sta_lat, sta_lon)
        if self.max_distance_km is not None and dist_km > self.max_distance_km:
            return None  # outside the user's selection, not bad input
        p_time, p_origin = self._p_arrival(ev, station_id, dist_km)
        t0, t1 = p_time - self.pre_s, p_time + self.post_s
        stream = store.read(station_id, t0 - self.pad_s, t1 + self.pad_s)
        z = self._select(stream, "Z")
        traces = {"Z": self._prepared(z, t0, t1, inventory)}
        for comp in self._components()[1:]:
            traces[comp] = self._prepared(self._select(stream, comp, like=z[0]), t0, t1, inventory)
        data, start = self._stack(traces, baz, inventory)  # (C, n), time of data[:, 0]
        wave, p_sample, npts, start = place_window(
            data, start, p_time, self.pre_s, self.n_samples, self.sampling_rate_hz)
        return wave, {
            "event_id": ev.event_id, "station_id": station_id, "source_type": source_type,
            "label": CLASS_NAMES.index(source_type), "trace_p_arrival_sample": p_sample,
            "trace_npts": npts, "trace_start_time": str(start),
            "trace_sampling_rate_hz": self.sampling_rate_hz,
            "trace_channel": traces["Z"].stats.channel[:2], "trace_p_pick_origin": p_origin,
            "source_origin_time": None if ev.origin_time is None else str(ev.origin_time),
            "source_latitude_deg": ev.latitude, "source_longitude_deg": ev.longitude,
            "source_depth_km": ev.depth_km, "source_magnitude": ev.magnitude,
            "station_latitude_deg": sta_lat, "station_longitude_deg": sta_lon,
            "path_ep_distance_km": dist_km, "path_back_azimuth_deg": baz}

    def _p_arrival(self, ev: CatalogEvent, station_id: str, dist_km: float):
        if station_id in ev.p_picks:
            return ev.p_picks[station_id], "catalog"
        if not self.p_from_taup:
            raise Rejected(Reason.MISSING_PICK, "no P pick and data.p_from_taup=false")
        if ev.origin_time is None or not math.isfinite(dist_km):
            raise Rejected(Reason.MISSING_PICK, "no P pick, and no event origin or station "
                           "coordinates for TauP (give data.inventory)")
        depth = ev.depth_km if math.isfinite(ev.depth_km) else 0.0
        return ev.origin_time + taup_p_seconds(dist_km, depth, self.taup_model), "taup"

    def _select(self, stream, comp: str, like=None) -> list:
        """One channel's traces; of several matching channels the highest rate, then first id.

        Horizontals (``like`` given) must come from the instrument that gave Z.
        """
        pattern = self.channel_codes[comp]
        traces = [tr for tr in stream if fnmatch.fnmatchcase(tr.stats.channel, pattern)]
        if like is not None:
            traces = [tr for tr in traces if tr.stats.location == like.stats.location
                      and tr.stats.channel[:2] == like.stats.channel[:2]]
        if not traces:
            raise Rejected(Reason.MISSING_CHANNEL, f"no {pattern} channel (data.channel_codes."
                           f"{comp}) among {sorted({t.id for t in stream})}")
        rate = {tr.id: 0.0 for tr in traces}
        for tr in traces:
            rate[tr.id] = max(rate[tr.id], tr.stats.sampling_rate)
        best = min(rate, key=lambda i: (-rate[i], i))
        return [tr for tr in traces if tr.id == best]

    def _prepared(self, traces: list, t0, t1, inventory):
        """One preprocessed trace at ``sampling_rate_hz`` from one channel's traces."""
        rates = sorted({tr.stats.sampling_rate for tr in traces})
        if len(rates) > 1:
            raise Rejected(Reason.MIXED_RATE, f"{traces[0].id} has rates {rates} Hz")
        if rates[0] < self.min_sampling_rate_hz:
            raise Rejected(Reason.BAD_RATE, f"{traces[0].id} at {rates[0]} Hz < "
                           f"data.min_sampling_rate_hz={self.min_sampling_rate_hz}")
        tr = merged_without_gaps(traces, t0, t1)
        tr.data = detrended_tapered(tr.data, int(self.pad_s * tr.stats.sampling_rate))
        if self.remove_response:
            try:
                tr.remove_response(inventory, output="VEL", pre_filt=self.pre_filt_hz,
                                   water_level=self.water_level_db, taper=False)
            except Exception as e:  # obspy raises many types for a bad or missing response
                raise Rejected(Reason.RESPONSE, f"{tr.id}: {e}") from None
        if tr.stats.sampling_rate != self.sampling_rate_hz:
            tr.resample(self.sampling_rate_hz)  # FFT: an ideal low-pass, so no aliasing
        return tr

    def _stack(self, traces: dict, baz: float, inventory):
        """``(C, n)`` float32 on a common time base (Z, or Z, R, T) and its start time."""
        fs = self.sampling_rate_hz
        start = max(tr.stats.starttime for tr in traces.values())
        first = {c: max(0, round((start - tr.stats.starttime) * fs)) for c, tr in traces.items()}
        n = min(tr.stats.npts - first[c] for c, tr in traces.items())
        if n <= 0:
            raise Rejected(Reason.TOO_SHORT, "the components share no time span")
        arr = {c: tr.data[first[c]:first[c] + n].astype(np.float64) for c, tr in traces.items()}
        if self.channels == "Z":
            return arr["Z"][None].astype(np.float32), start  # (1, n)
        if not math.isfinite(baz):
            raise Rejected(Reason.MISSING_CHANNEL, "cannot rotate to R/T without event and "
                           "station coordinates (give data.inventory)")
        north, east = to_north_east(traces, arr, inventory)
        from obspy.signal.rotate import rotate_ne_rt

        radial, transverse = rotate_ne_rt(north, east, baz)
        return np.stack([arr["Z"], radial, transverse]).astype(np.float32), start  # (3, n)


# ------------------------------------------------------------------ trace helpers
def merged_without_gaps(traces: list, t0, t1):
    """Merge one channel's traces; a gap or conflicting overlap inside [t0, t1] rejects it.

    ``Stream.merge(method=0, fill_value=None)`` masks gaps and overlaps whose samples
    disagree (identical overlaps merge cleanly), so the mask marks exactly the bad spans.
    """
    from obspy import Stream

    try:
        tr = traces[0] if len(traces) == 1 else Stream(traces).merge(method=0, fill_value=None)[0]
    except Exception as e:  # e.g. differing data types within one channel
        raise Rejected(Reason.MIXED_RATE, f"{traces[0].id}: {e}") from None
    mask = np.ma.getmaskarray(tr.data)
    if mask.any():
        offset_s = np.flatnonzero(mask) * tr.stats.delta + (tr.stats.starttime - t0)
        inside = (offset_s >= 0) & (offset_s <= t1 - t0)
        if inside.any():
            raise Rejected(Reason.GAP, f"{tr.id}: {mask.sum() * tr.stats.delta:.2f} s masked "
                           f"(gap or overlap) near {t0 + offset_s[inside][0]}")
        tr.trim(t0, t1)  # the bad span was in the padding only
    tr.data = np.ma.filled(tr.data, 0).astype(np.float64)
    return tr


def detrended_tapered(data: np.ndarray, taper_samples: int) -> np.ndarray:
    """Least-squares line (mean and trend) removed, Hann taper on both ends (float64).

    The same numbers as obspy's ``detrend("demean").detrend("linear").taper(0.5, type="hann",
    max_length=...)``, without its per-call plugin lookup (half the load time).
    """
    from scipy.signal import detrend
    from scipy.signal.windows import hann

    x = detrend(np.asarray(data, np.float64), type="linear")
    n, w = len(x), min(taper_samples, len(x) // 2)
    if w > 0:
        side = hann(2 * w if 2 * w == n else 2 * w + 1)
        x[:w] *= side[:w]
        x[n - w:] *= side[len(side) - w:]
    return x


def to_north_east(traces: dict, arr: dict, inventory):
    """N and E arrays; 1/2 horizontals are rotated with the inventory's orientation.

    Without an inventory, 1 is taken as N and 2 as E (the SEED convention's intent).
    """
    if inventory is None or (traces["N"].stats.channel[-1], traces["E"].stats.channel[-1]) == ("N", "E"):
        return arr["N"], arr["E"]
    from obspy.signal.rotate import rotate2zne

    try:
        orient = [inventory.get_orientation(traces[c].id, traces[c].stats.starttime) for c in "ZNE"]
    except Exception as e:
        raise Rejected(Reason.MISSING_CHANNEL, f"no orientation for 1/2 horizontals: {e}") from None
    args = [x for c, o in zip("ZNE", orient) for x in (arr[c], o["azimuth"], o["dip"])]
    _, north, east = rotate2zne(*args)
    return north, east


def place_window(data: np.ndarray, start, p_time, pre_s: float, n_samples: int,
                 fs: float) -> tuple[np.ndarray, int, int, object]:
    """Cut ``(C, n)`` data whose first sample is at ``start`` to a ``(C, n_samples)`` record.

    Sample 0 is ``p_time - pre_s``, or the first sample if the data start later; NaN
    fills the end. Returns the record, the P sample, the valid sample count
    (``trace_npts``) and the time of sample 0.
    """
    p_index = round((p_time - start) * fs)  # P in data samples
    if not 0 <= p_index < data.shape[1]:
        raise Rejected(Reason.TOO_SHORT, f"the data ({start} + {data.shape[1] / fs:.1f} s) "
                       f"do not contain the P arrival {p_time}")
    first = max(0, p_index - round(pre_s * fs))
    seg = data[:, first:first + n_samples]  # (C, npts)
    out = np.full((data.shape[0], n_samples), np.nan, np.float32)  # (C, S)
    out[:, :seg.shape[1]] = seg
    return out, p_index - first, seg.shape[1], start + first / fs


def distance_baz(ev: CatalogEvent, sta_lat: float, sta_lon: float) -> tuple[float, float]:
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

    arrivals = _taup(model).get_travel_times(source_depth_in_km=max(depth_km, 0.0),
                                             distance_in_degree=kilometers2degrees(dist_km),
                                             phase_list=["ttp"])
    if not arrivals:
        raise Rejected(Reason.MISSING_PICK, f"TauP {model} has no P at {dist_km:.0f} km")
    return min(a.time for a in arrivals)


# ------------------------------------------------------------------- waveform stores
class FileStore:
    """ObsPy-readable files indexed by their headers: which station has data when."""

    def __init__(self, root: str, pattern: str, progress: bool = True):
        import obspy

        files = sorted(p for p in Path(root).glob(pattern) if p.is_file())
        if not files:
            raise ValueError(f"data.file_glob={pattern!r} matches no files under {root}")
        self.rejected, rows, self.formats = [], [], {}
        for path in tqdm(files, desc="index files", disable=not progress):
            try:
                stream = obspy.read(str(path), headonly=True)
            except Exception as e:  # obspy raises many types for a file it cannot parse
                self.rejected.append(rejection(str(path), SOURCE, Reason.UNREADABLE,
                                               f"{path.name}: {type(e).__name__}: {e}"))
                continue
            rows += [_index_row(path, tr) for tr in stream]
            self.formats[str(path)] = stream[0].stats._format if stream else None
        self.index = pd.DataFrame(rows, columns=["path", "station_id", "start", "end", "lat", "lon"])
        log.info("indexed %d traces in %d files (%d unreadable)",
                 len(self.index), len(files), len(self.rejected))

    def stations_near(self, ev: CatalogEvent, pre_s: float, search_s: float) -> list[str]:
        """Stations with data in [origin - pre_s, origin + search_s] or a pick for the event."""
        have = set(self.index["station_id"])
        near = set()
        if ev.origin_time is not None:
            t = float(ev.origin_time.timestamp)
            hit = (self.index["start"] <= t + search_s) & (self.index["end"] >= t - pre_s)
            near = set(self.index.loc[hit, "station_id"])
        return sorted(near | (set(ev.p_picks) & have))

    def read(self, station_id: str, t0, t1):
        import obspy

        idx = self.index
        hit = (idx["station_id"] == station_id) & (idx["start"] <= float(t1.timestamp)) & \
              (idx["end"] >= float(t0.timestamp))
        stream = obspy.Stream()
        for path in dict.fromkeys(idx.loc[hit, "path"]):
            try:  # the format found while indexing: obspy.read skips its detection
                stream += obspy.read(path, format=self.formats[path], starttime=t0, endtime=t1)
            except Exception as e:
                raise Rejected(Reason.UNREADABLE, f"{Path(path).name}: {e}") from None
        stream.traces = [tr for tr in stream if _station_id(tr) == station_id]
        if not stream:
            raise Rejected(Reason.TOO_SHORT, f"no data in [{t0}, {t1}]")
        return stream


class SdsStore:
    """An SDS archive (``obspy.clients.filesystem.sds``): day files found by path."""

    def __init__(self, root: str):
        from obspy.clients.filesystem.sds import Client

        if not Path(root).is_dir():
            raise ValueError(f"data.waveform_dir={root!r} is not a folder (SDS root)")
        self.client, self.rejected = Client(root), []
        self.index = pd.DataFrame(columns=["station_id", "lat", "lon"])

    def stations_near(self, ev: CatalogEvent, pre_s: float, search_s: float) -> list[str]:
        if ev.origin_time is None:
            days = list(ev.p_picks.values())
        else:
            days = [ev.origin_time - pre_s, ev.origin_time + search_s]
        return sorted({f"{n}.{s}" for d in days for n, s, _, _ in self.client.get_all_nslc(datetime=d)})

    def read(self, station_id: str, t0, t1):
        net, sta = station_id.split(".", 1)
        try:
            stream = self.client.get_waveforms(net, sta, "*", "*", t0, t1)
        except Exception as e:
            raise Rejected(Reason.UNREADABLE, f"SDS {station_id} at {t0}: {e}") from None
        if not stream:
            raise Rejected(Reason.TOO_SHORT, f"no data in [{t0}, {t1}]")
        return stream


def _station_id(tr) -> str:
    return f"{tr.stats.network}.{tr.stats.station}"


def _index_row(path: Path, tr) -> tuple:
    sac = tr.stats.get("sac", {})  # SAC headers may carry station coordinates
    return (str(path), _station_id(tr), float(tr.stats.starttime.timestamp),
            float(tr.stats.endtime.timestamp), float(sac.get("stla", math.nan)),
            float(sac.get("stlo", math.nan)))


def station_coordinates(inventory, store) -> dict:
    """"NET.STA" -> (lat, lon): file headers first, the StationXML inventory wins."""
    known = store.index.dropna(subset=["lat", "lon"]).drop_duplicates("station_id")
    coords = {s: (la, lo) for s, la, lo in known[["station_id", "lat", "lon"]].itertuples(index=False)}
    if inventory is not None:
        for net in inventory:
            coords.update({f"{net.code}.{sta.code}": (sta.latitude, sta.longitude) for sta in net})
    return coords


def read_inventory(path: str):
    import obspy

    return obspy.read_inventory(path)
