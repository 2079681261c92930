"""The ``waveforms`` source: ObsPy-readable files or an SDS archive plus a catalogue.

Every (event, station) pair with data near the event becomes one record, cut from
``pre_s`` before the P arrival to ``post_s`` after it at ``sampling_rate_hz``: a fixed
``(C, S)`` float32 array, NaN where there is no data. The P arrival is the catalogue
pick, else ak135 TauP from event and station coordinates. Preprocessing follows the
usual order of seisbench's dataset converters: merge (gaps reject), demean, detrend,
taper, optional response removal to velocity, polyphase resampling
(``seisbert.data.traces``), rotation to Z/R/T.

Nothing is dropped silently: a bad file, catalogue row, event or pair is rejected with
a ``records.Reason`` and the rest go on; files no event reached are listed too. Zero
usable records is an error listing the reasons' counts, raised before anything is
cached. See docs/your_own_data.md.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import time
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import numpy as np
import pandas as pd

from seisbert.artifacts.arrays import RowSink
from seisbert.config import check_choice, check_range
from seisbert.data.catalog import (
    DEFAULT_CSV_COLUMNS,
    DEFAULT_EVENT_TYPES,
    CatalogEvent,
    load_catalog,
    map_event_type,
)
from seisbert.data.geometry import distance_baz, gridded_p_seconds, taup_p_seconds
from seisbert.data.parallel import map_chunks
from seisbert.data.records import (
    CLASS_NAMES,
    Reason,
    RecordSet,
    Rejected,
    empty_rejected,
    reason_counts,
    rejection,
    rejection_summary,
)
from seisbert.data.stores import FileStore, SdsStore, chunked, read_inventory, station_coordinates
from seisbert.data.traces import (
    check_clipped,
    check_finite,
    detrended_tapered,
    merged_without_gaps,
    nyquist_problem,
    place_window,
    resampled,
    to_north_east,
)

log = logging.getLogger(__name__)

SOURCE = "waveforms"
__all__ = [
    "WaveformSource",
    "Rejected",
    "place_window",
    "taup_p_seconds",
    "distance_baz",
    "check_fits_features",
]

# Column order of the metadata table (seisbench names where they exist).
METADATA_COLUMNS = (
    "event_id",
    "event_uri",
    "station_id",
    "source_type",
    "label",
    "trace_p_arrival_sample",
    "trace_npts",
    "trace_start_time",
    "trace_sampling_rate_hz",
    "trace_channel",
    "trace_p_pick_origin",
    "source_origin_time",
    "source_latitude_deg",
    "source_longitude_deg",
    "source_depth_km",
    "source_magnitude",
    "station_latitude_deg",
    "station_longitude_deg",
    "path_ep_distance_km",
    "path_back_azimuth_deg",
)

UNSET = (None, "", "???")  # "???" is Hydra's mark of a required value nobody gave
UNKNOWN_CLASS = "unknown"  # source_type of a kept event whose type maps to no class (label -1)


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
    # pick phases (or associated arrival phases) that count as P
    p_phases: list = field(default_factory=lambda: ["P", "Pg", "Pn", "Pb", "p"])
    p_from_taup: bool = True  # no pick: first P from TauP with event + station coordinates
    taup_model: str = "ak135"
    # TauP at the nodes of a 1 km distance x depth grid, bilinear between (< 10 ms off); null: per
    # pair
    taup_grid_km: float | None = (
        1.0  # TauP at the nodes of a distance x depth grid, interpolated; None: per pair
    )
    search_s: float = 300.0  # candidates: stations with data in [origin - pre_s, origin + search_s]
    max_distance_km: float | None = None  # skip event-station pairs farther than this
    pre_s: float = 20.0  # record = [P - pre_s, P + post_s)
    post_s: float = 100.0
    pad_s: float = 5.0  # read beyond both ends of the cut; the taper lives there
    sampling_rate_hz: float = 100.0  # records are resampled (polyphase, anti-aliased) to this rate
    min_sampling_rate_hz: float = 40.0  # lower input rates are rejected
    fmax_hz: float | None = None  # the YAML sets ${features.fmax_hz}; None: no Nyquist check
    min_power_at_fmax: float = 0.9  # resampling must keep this fraction of the PSD at fmax_hz
    channels: str = "Z"  # Z | ZRT
    channel_codes: dict = field(default_factory=lambda: {"Z": "??Z", "N": "??[N1]", "E": "??[E2]"})
    remove_response: bool = False  # true: velocity (m/s) via data.inventory
    pre_filt_hz: list | None = None  # remove_response corners, e.g. [0.3, 0.5, 40, 45]
    water_level_db: float = 60.0
    num_workers: int = 0  # worker processes reading events (0: this process); same records
    # an event type data.event_types does not map: reject (counted) | keep (seisbert predict sets
    # keep)
    unknown_type: str = (
        "reject"  # reject | keep: an event whose type maps to no class (predict keeps it)
    )

    def __post_init__(self):
        check_choice("data.archive", self.archive, ("files", "sds"))
        check_choice("data.unknown_type", self.unknown_type, ("reject", "keep"))
        check_choice("data.catalog_format", self.catalog_format, ("auto", "quakeml", "csv"))
        check_choice("data.channels", self.channels, ("Z", "ZRT"))
        for key, value in self.event_types.items():
            check_choice(f"data.event_types.{key}", value, CLASS_NAMES)
        for key in self.csv_columns:
            check_choice("data.csv_columns key", key, DEFAULT_CSV_COLUMNS)
        self.csv_columns = {**DEFAULT_CSV_COLUMNS, **self.csv_columns}
        for comp in self._components():
            if comp not in self.channel_codes:
                raise ValueError(
                    f"data.channel_codes lacks {comp!r}; give a pattern like '??{comp}'"
                )
        for key, lo in (
            ("pre_s", 0.0),
            ("post_s", 1.0),
            ("pad_s", 0.0),
            ("search_s", 0.0),
            ("sampling_rate_hz", 1.0),
            ("min_sampling_rate_hz", 0.0),
        ):
            check_range(f"data.{key}", getattr(self, key), lo)
        check_range("data.min_power_at_fmax", self.min_power_at_fmax, 0.0, 1.0)
        check_range("data.num_workers", self.num_workers, 0)
        if self.taup_grid_km is not None:
            check_range("data.taup_grid_km", self.taup_grid_km, 1e-3)
        if self.fmax_hz is not None:
            check_range("data.fmax_hz", self.fmax_hz, 0.0, self.sampling_rate_hz / 2)
        if self.pre_filt_hz is not None and len(self.pre_filt_hz) != 4:
            raise ValueError(f"data.pre_filt_hz={self.pre_filt_hz} must list four corners (Hz)")

    @property
    def n_samples(self) -> int:  # S
        return round((self.pre_s + self.post_s) * self.sampling_rate_hz)

    def class_of(self, event_type) -> str | None:
        """The class of a catalogue event type.

        ``UNKNOWN_CLASS`` (kept) or None (rejected) if it maps to no class.
        """
        mapped = map_event_type(event_type, self.event_types)
        if mapped is None and self.unknown_type == "keep":
            return UNKNOWN_CLASS
        return mapped

    @staticmethod
    def label_of(source_type: str) -> int:
        """0 / 1 for a class, -1 for an unknown one (only ``seisbert predict`` reads those)."""
        return CLASS_NAMES.index(source_type) if source_type in CLASS_NAMES else -1

    def _components(self) -> str:
        return "ZNE" if self.channels == "ZRT" else "Z"

    def check_paths(self) -> None:
        """Raise, in one sentence naming the key and the path, for an unset or missing input.

        Cheap (no file is parsed): the validate step calls it before any work, and
        ``load`` calls it first.
        """
        for key, example in (("waveform_dir", "waveforms"), ("catalog", "events.xml")):
            if getattr(self, key) in UNSET:
                raise ValueError(
                    f"data.{key} is not set; data=waveforms needs it, e.g. "
                    f"data.{key}=/path/to/{example}"
                )
        check_folder(
            "data.waveform_dir", self.waveform_dir, "the folder of waveform files (or the SDS root)"
        )
        for key, what in (
            ("catalog", "a QuakeML or CSV catalogue file"),
            ("picks_csv", "a CSV file of picks"),
        ):
            path = getattr(self, key)
            if path not in UNSET:
                check_file(f"data.{key}", path, what)
        if self.inventory not in UNSET:
            found = glob(self.inventory)
            if not found:
                raise FileNotFoundError(f"data.inventory={self.inventory!r} matches no file")
            if all(Path(f).is_dir() for f in found):
                raise ValueError(
                    f"data.inventory={self.inventory!r} is a folder; give StationXML "
                    f"file(s), e.g. data.inventory='{Path(found[0]) / '*.xml'}'"
                )

    # ------------------------------------------------------------------------- load
    def load(self, progress: bool = True, waveform_path: Path | None = None) -> RecordSet:
        """Read the catalogue and waveforms into a ``RecordSet``; rejects are listed, not raised.

        With ``waveform_path`` the waveforms are streamed there (``.npy``) chunk by chunk and
        the set holds them memory-mapped: peak memory stays one chunk whatever the count.
        Raises ValueError, with the count of each reason, when no record is usable.
        """
        self.check_paths()
        started = time.perf_counter()
        catalog = load_catalog(
            self.catalog,
            self.catalog_format,
            self.csv_columns,
            self.picks_csv,
            tuple(self.p_phases),
        )
        inventory = read_inventory(self.inventory) if self.inventory not in UNSET else None
        if self.remove_response and inventory is None:
            raise ValueError("data.remove_response=true needs data.inventory (StationXML)")
        store = (
            FileStore(self.waveform_dir, self.file_glob, progress, self.num_workers)
            if self.archive == "files"
            else SdsStore(self.waveform_dir)
        )
        coords = station_coordinates(inventory, store)
        waves = RowSink(waveform_path, (len(self.channels), self.n_samples))
        rows, rejected, n_far = [], catalog.rejected + store.rejected, 0
        state = {"source": self, "store": store, "coords": coords, "inventory": inventory}
        for out in map_chunks(
            _event_chunk,
            chunked(catalog.events, self.num_workers),
            state,
            self.num_workers,
            progress,
            desc="events",
        ):
            waves.extend(out[0])
            rows += out[1]
            rejected += out[2]
            n_far += out[3]
            store.named |= out[4]
        rejected += store.unused(self.pre_s, self.search_s)
        if n_far:
            log.info(
                "waveforms: %d event-station pairs farther than data.max_distance_km=%g left out",
                n_far,
                self.max_distance_km,
            )
        if not rows:
            raise ValueError(
                self._nothing_usable(rejected, len(catalog.events), n_far, catalog.unused_columns)
            )
        return self._record_set(
            waves, rows, rejected, len(catalog.events), time.perf_counter() - started
        )

    def _event_records(
        self,
        ev: CatalogEvent,
        store,
        coords: dict,
        inventory,
        waves: list,
        rows: list,
        rejected: list,
    ) -> int:
        """Append one event's records and rejections; returns its pairs beyond max distance."""
        # first, so the files near a rejected event count as named by the catalogue
        stations = store.stations_near(ev, self.pre_s, self.search_s)
        source_type, why = self._event_check(ev)
        if why is not None:
            rejected.append(why)
            return 0
        for station_id in sorted(set(ev.p_picks) - set(stations)):
            rejected.append(
                rejection(
                    f"{ev.event_id} {station_id}",
                    SOURCE,
                    Reason.NO_WAVEFORM,
                    f"P pick at {ev.p_picks[station_id]}, but data.waveform_dir "
                    f"holds no data of {station_id}",
                )
            )
        if not stations and not ev.p_picks:
            t = ev.origin_time
            rejected.append(
                rejection(
                    ev.event_id,
                    SOURCE,
                    Reason.NO_DATA,
                    (
                        f"no station has data in "
                        f"[origin - {self.pre_s:g} s, origin + {self.search_s:g} s]"
                        f" = [{t - self.pre_s}, {t + self.search_s}] and the event has no P pick"
                    ),
                )
            )
        n_far = 0
        for station_id in stations:
            try:
                out = self._record(ev, source_type, station_id, coords, store, inventory)
            except Rejected as r:
                rejected.append(
                    rejection(f"{ev.event_id} {station_id}", SOURCE, r.reason, r.detail)
                )
                continue
            if out is None:
                n_far += 1
            else:
                waves.append(out[0])
                rows.append(out[1])
        return n_far

    def _event_check(self, ev: CatalogEvent) -> tuple[str | None, dict | None]:
        """The event's class, or the rejection of an event no record can come from."""
        source_type = self.class_of(ev.event_type)
        if source_type is None:
            return None, rejection(
                ev.event_id,
                SOURCE,
                Reason.UNKNOWN_TYPE,
                (f"event type {ev.event_type or '(unset)'!r} is not in data.event_types"),
            )
        if ev.p_picks:
            return source_type, None
        located = math.isfinite(ev.latitude) and math.isfinite(ev.longitude)
        if ev.origin_time is None:
            why = f"event {ev.event_id} has no P pick and no origin time"
        elif self.p_from_taup and not located:
            why = (
                f"event {ev.event_id} has no P pick and no epicentre (latitude, longitude) for TauP"
            )
        else:
            return source_type, None
        return None, rejection(ev.event_id, SOURCE, Reason.NO_ORIGIN, why)

    def _nothing_usable(self, rejected: list, n_events: int, n_far: int, unused: list) -> str:
        counts = reason_counts(rejected)
        first = {}
        for r in rejected:
            first.setdefault(r["reason"], f"{r['record']}: {r['detail']}")
        examples = "; ".join(f"{k}: {v}" for k, v in first.items())
        examples = f" First of each: {examples}." if examples else ""
        far = (
            f", {n_far} pairs farther than data.max_distance_km={self.max_distance_km:g}"
            if n_far
            else ""
        )
        hint = (
            f" The catalogue's columns {unused} map to no role: if one holds the P picks, "
            "map it, e.g. data.csv_columns.p_time=<column>."
            if unused
            else ""
        )
        return (
            f"data=waveforms: no usable record from {n_events} catalogue events "
            f"(rejected {counts}{far}); nothing was cached.{examples}{hint}"
        )

    def _record_set(self, waves: RowSink, rows, rejected, n_events, seconds: float) -> RecordSet:
        waveforms = waves.array()  # (N, C, S), memory-mapped when streamed
        metadata = pd.DataFrame(rows, columns=list(METADATA_COLUMNS))
        rejected = pd.DataFrame(rejected) if rejected else empty_rejected()
        log.info(
            "waveforms: %d records from %d events in %.1f s (%.0f records/s, %d workers); "
            "rejected: %s",
            len(metadata),
            n_events,
            seconds,
            len(metadata) / seconds,
            self.num_workers,
            rejection_summary(rejected),
        )
        return RecordSet(waveforms, metadata, self.sampling_rate_hz, self.channels, rejected)

    # ------------------------------------------------------------------- one record
    def _record(
        self, ev: CatalogEvent, source_type: str, station_id: str, coords: dict, store, inventory
    ) -> tuple[np.ndarray, dict] | None:
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
            data, start, p_time, self.pre_s, self.n_samples, self.sampling_rate_hz
        )
        return wave, {
            "event_id": ev.event_id,
            "event_uri": ev.event_uri,
            "station_id": station_id,
            "source_type": source_type,
            "label": self.label_of(source_type),
            "trace_p_arrival_sample": p_sample,
            "trace_npts": npts,
            "trace_start_time": str(start),
            "trace_sampling_rate_hz": self.sampling_rate_hz,
            "trace_channel": traces["Z"].stats.channel[:2],
            "trace_p_pick_origin": p_origin,
            "source_origin_time": None if ev.origin_time is None else str(ev.origin_time),
            "source_latitude_deg": ev.latitude,
            "source_longitude_deg": ev.longitude,
            "source_depth_km": ev.depth_km,
            "source_magnitude": ev.magnitude,
            "station_latitude_deg": sta_lat,
            "station_longitude_deg": sta_lon,
            "path_ep_distance_km": dist_km,
            "path_back_azimuth_deg": baz,
        }

    def _p_arrival(self, ev: CatalogEvent, station_id: str, dist_km: float):
        if station_id in ev.p_picks:
            return ev.p_picks[station_id], "catalog"
        if not self.p_from_taup:
            raise Rejected(Reason.MISSING_PICK, "no P pick and data.p_from_taup=false")
        if ev.origin_time is None or not math.isfinite(dist_km):
            raise Rejected(
                Reason.MISSING_PICK,
                "no P pick, and no event origin or station "
                "coordinates for TauP (give data.inventory)",
            )
        depth = ev.depth_km if math.isfinite(ev.depth_km) else 0.0
        return ev.origin_time + gridded_p_seconds(
            dist_km, depth, self.taup_model, self.taup_grid_km
        ), "taup"

    def _select(self, stream, comp: str, like=None) -> list:
        """One channel's traces; of several matching channels the highest rate, then first id.

        Horizontals (``like`` given) must come from the instrument that gave Z.
        """
        pattern = self.channel_codes[comp]
        traces = [tr for tr in stream if fnmatch.fnmatchcase(tr.stats.channel, pattern)]
        if like is not None:
            traces = [
                tr
                for tr in traces
                if tr.stats.location == like.stats.location
                and tr.stats.channel[:2] == like.stats.channel[:2]
            ]
        if not traces:
            raise Rejected(
                Reason.MISSING_CHANNEL,
                f"no {pattern} channel (data.channel_codes."
                f"{comp}) among {sorted({t.id for t in stream})}",
            )
        rate = {tr.id: 0.0 for tr in traces}
        for tr in traces:
            rate[tr.id] = max(rate[tr.id], tr.stats.sampling_rate)
        best = min(rate, key=lambda i: (-rate[i], i))
        return [tr for tr in traces if tr.id == best]

    def _check_rate(self, trace_id: str, rate: float) -> None:
        """Reject a rate below ``min_sampling_rate_hz`` or whose Nyquist cannot carry fmax_hz."""
        if rate < self.min_sampling_rate_hz:
            raise Rejected(
                Reason.BAD_RATE,
                f"{trace_id} at {rate} Hz < data.min_sampling_rate_hz={self.min_sampling_rate_hz}",
            )
        problem = nyquist_problem(rate, self.sampling_rate_hz, self.fmax_hz, self.min_power_at_fmax)
        if problem is not None:
            raise Rejected(Reason.LOW_NYQUIST, f"{trace_id} {problem}")

    def _prepared(self, traces: list, t0, t1, inventory):
        """One preprocessed trace at ``sampling_rate_hz`` from one channel's traces."""
        rates = sorted({tr.stats.sampling_rate for tr in traces})
        if len(rates) > 1:
            raise Rejected(Reason.MIXED_RATE, f"{traces[0].id} has rates {rates} Hz")
        self._check_rate(traces[0].id, rates[0])
        tr = merged_without_gaps(traces, t0, t1)
        check_finite(tr)
        check_clipped(tr)  # on the counts as read: preprocessing would hide the flat top
        tr.data = detrended_tapered(tr.data, int(self.pad_s * tr.stats.sampling_rate))
        if self.remove_response:
            try:
                tr.remove_response(
                    inventory,
                    output="VEL",
                    pre_filt=self.pre_filt_hz,
                    water_level=self.water_level_db,
                    taper=False,
                )
            except Exception as e:  # obspy raises many types for a bad or missing response
                raise Rejected(Reason.RESPONSE, f"{tr.id}: {e}") from None
        if tr.stats.sampling_rate != self.sampling_rate_hz:
            tr.data = resampled(tr.data, tr.stats.sampling_rate, self.sampling_rate_hz)
            tr.stats.sampling_rate = self.sampling_rate_hz  # sample 0 keeps its time
        return tr

    def _stack(self, traces: dict, baz: float, inventory):
        """``(C, n)`` float32 on a common time base (Z, or Z, R, T) and its start time."""
        fs = self.sampling_rate_hz
        start = max(tr.stats.starttime for tr in traces.values())
        first = {c: max(0, round((start - tr.stats.starttime) * fs)) for c, tr in traces.items()}
        n = min(tr.stats.npts - first[c] for c, tr in traces.items())
        if n <= 0:
            raise Rejected(Reason.TOO_SHORT, "the components share no time span")
        arr = {c: tr.data[first[c] : first[c] + n].astype(np.float64) for c, tr in traces.items()}
        if self.channels == "Z":
            return arr["Z"][None].astype(np.float32), start  # (1, n)
        if not math.isfinite(baz):
            raise Rejected(
                Reason.MISSING_CHANNEL,
                "cannot rotate to R/T without event and station coordinates (give data.inventory)",
            )
        north, east = to_north_east(traces, arr, inventory)
        from obspy.signal.rotate import rotate_ne_rt

        radial, transverse = rotate_ne_rt(north, east, baz)
        return np.stack([arr["Z"], radial, transverse]).astype(np.float32), start  # (3, n)


def check_file(key: str, path: str, what: str) -> None:
    """Raise, naming ``key``, unless ``path`` is a non-empty file (``what``: what it holds)."""
    if Path(path).is_dir():
        raise ValueError(f"{key}={path!r} is a folder; give {what}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{key}={path!r} does not exist")
    if Path(path).stat().st_size == 0:
        raise ValueError(f"{key}={path!r} is empty (0 bytes)")


def check_folder(key: str, path: str, what: str) -> None:
    """Raise, naming ``key``, unless ``path`` is a folder (``what``: what it should be)."""
    if Path(path).is_file():
        raise ValueError(f"{key}={path!r} is a file; give {what}")
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{key}={path!r} is not a folder")


def check_fits_features(data, features) -> None:
    """Raise ValueError when records cut by the ``data`` config cannot feed ``features``.

    ``data`` and ``features`` are the two config nodes (any mapping; a key the data
    source lacks is not checked). The record ``[P - data.pre_s, P + data.post_s)`` must
    hold the features' ``[P - features.pre_s, P + features.post_s)``, and the Nyquist
    check must not use a lower fmax than the features read. For ``validate()``.
    """
    for key in ("pre_s", "post_s"):
        if data.get(key) is not None and data[key] < features[key]:
            raise ValueError(
                f"data.{key}={data[key]:g} is shorter than features.{key}={features[key]:g}: "
                "records are cut [P - data.pre_s, P + data.post_s) and the features need "
                f"[P - features.pre_s, P + features.post_s); set data.{key} >= {features[key]:g}"
            )
    fmax = data.get("fmax_hz")
    if fmax is not None and fmax < features["fmax_hz"]:
        raise ValueError(
            f"data.fmax_hz={fmax:g} is below features.fmax_hz={features['fmax_hz']:g}: "
            "records would be kept whose Nyquist cannot carry the top bins; "
            "leave data.fmax_hz as ${features.fmax_hz}"
        )


def _event_chunk(state: dict, events: list) -> tuple:
    """Records of a chunk of events (in a worker or here): waves, rows, rejected, far, named."""
    source, store = state["source"], state["store"]
    waves, rows, rejected, n_far = [], [], [], 0
    for ev in events:
        n_far += source._event_records(
            ev, store, state["coords"], state["inventory"], waves, rows, rejected
        )
    return waves, rows, rejected, n_far, set(store.named)
