"""Ingestion speed of ``data=waveforms`` beside a plain one-process ObsPy read loop.

    python scripts/bench/ingest.py [--events 20] [--stations 20] [--workers 2]
    python scripts/bench/ingest.py --lookup-only      # the event-lookup row alone (seconds)

Writes E events x S stations of 100 Hz miniSEED (ObsPy's bundled BW.UH4 recording,
re-stamped, one 230-s file per pair), a QuakeML catalogue with P picks at the even
stations and a StationXML inventory, so the odd stations need TauP. Then times
(a) plain: per pair ``obspy.read(file, starttime, endtime)``, ``detrend``, ``taper``, the
    cut, and ``TauPyModel.get_travel_times`` per unpicked pair; it is handed the pairs and
    P picks, so it skips indexing and catalogue parsing (the comparison favours it);
(b) seisbert: ``WaveformSource.load()`` end to end (index, QuakeML, inventory, TauP on
    a 1 km grid, checks), in this process and with ``--workers`` processes.
Prints records/s and the ratio to (a). Other load on the machine shifts every figure.
First, the event lookup (which stations have data near each event) against a synthetic index
of 8,000 and 80,000 files, one event per 5 files, as an archive grows in time: the seconds
grow with the events (10x), not with events x files (100x, the full scan it replaced, timed at
8,000 files and on a sample of the events at 80,000).
Then the peak memory (max RSS of a fresh process) of ``load()`` on ``--memory-events`` events:
all waveforms in memory and stacked, against streamed to a memory-mapped ``.npy`` as the
records stage does (``waveform_path``): the streamed peak does not grow with the record count.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import obspy
import pandas as pd
from obspy import UTCDateTime
from obspy.core.event import Catalog, Event, Origin, Pick, WaveformStreamID
from obspy.core.inventory import Inventory, Network, Station
from obspy.geodetics import kilometers2degrees

from seisbert.data.geometry import _p_at_node
from seisbert.data.stores import INDEX_COLUMNS, FileStore
from seisbert.data.waveforms import WaveformSource

UH4 = Path(obspy.__file__).parent / "signal/tests/data/BW.UH4._.EHZ.D.2010.147.cut.slist.gz"
ORIGIN = UTCDateTime("2010-05-27T16:24:33")  # the recording's event; its P is 1.2 s later
EVENT_LAT, EVENT_LON, DEPTH_KM = 48.0, 11.6, 8.0
PRE_S, POST_S, PAD_S, FS = 20.0, 100.0, 5.0, 100.0  # the data config's defaults


def build(folder: Path, n_events: int, n_stations: int) -> list[tuple]:
    """Write the dataset; returns the plain loop's pairs (path, pick or None, origin, deg)."""
    uh4 = obspy.read(str(UH4))[0]
    (folder / "wf").mkdir(parents=True)
    dist_km = np.linspace(10.0, 150.0, n_stations)
    stations = [
        Station(f"S{s:02d}", EVENT_LAT + d / 111.19, EVENT_LON, 0.0) for s, d in enumerate(dist_km)
    ]
    Inventory([Network("XX", stations=stations)]).write(str(folder / "stations.xml"), "STATIONXML")
    events, pairs = [], []
    for e in range(n_events):
        origin, picks = ORIGIN + 3600 * e, []
        for s, station in enumerate(stations):
            tr = uh4.copy()
            tr.stats.network, tr.stats.station = "XX", station.code
            tr.stats.starttime += 3600 * e
            path = folder / "wf" / f"e{e:03d}_{station.code}.mseed"
            tr.write(str(path), format="MSEED")
            pick = origin + 1.16 if s % 2 == 0 else None
            if pick is not None:
                picks.append(
                    Pick(
                        time=pick, phase_hint="P", waveform_id=WaveformStreamID("XX", station.code)
                    )
                )
            pairs.append((str(path), pick, origin, kilometers2degrees(dist_km[s])))
        events.append(
            Event(
                event_type="earthquake",
                picks=picks,
                origins=[
                    Origin(
                        time=origin, latitude=EVENT_LAT, longitude=EVENT_LON, depth=DEPTH_KM * 1000
                    )
                ],
            )
        )
    Catalog(events).write(str(folder / "events.xml"), format="QUAKEML")
    return pairs


def plain_loop(pairs: list[tuple]) -> float:
    """Records/s of the straightforward ObsPy way, one pair after another."""
    from obspy.taup import TauPyModel

    taup, out = TauPyModel("ak135"), []
    start = time.perf_counter()
    for path, pick, origin, dist_deg in pairs:
        p = (
            pick
            if pick is not None
            else origin
            + min(
                a.time
                for a in taup.get_travel_times(
                    source_depth_in_km=DEPTH_KM, distance_in_degree=dist_deg, phase_list=["ttp"]
                )
            )
        )
        tr = obspy.read(path, starttime=p - PRE_S - PAD_S, endtime=p + POST_S + PAD_S)[0]
        tr.detrend("demean").detrend("linear").taper(0.5, type="hann", max_length=PAD_S)
        first = round((p - PRE_S - tr.stats.starttime) * FS)
        out.append(tr.data[first : first + round((PRE_S + POST_S) * FS)].astype(np.float32))
    return len(out) / (time.perf_counter() - start)


def seisbert_load(folder: Path, num_workers: int) -> tuple[float, int]:
    _p_at_node.cache_clear()  # no TauP times carried over from an earlier run
    source = WaveformSource(
        waveform_dir=str(folder / "wf"),
        catalog=str(folder / "events.xml"),
        inventory=str(folder / "stations.xml"),
        num_workers=num_workers,
    )
    start = time.perf_counter()
    records = source.load(progress=False)
    return len(records) / (time.perf_counter() - start), len(records)


def peak_load(folder: Path, streamed: bool) -> None:
    """(In a fresh process) load the folder's records and print the peak RSS in MB."""
    source = WaveformSource(
        waveform_dir=str(folder / "wf"),
        catalog=str(folder / "events.xml"),
        inventory=str(folder / "stations.xml"),
    )
    records = source.load(progress=False, waveform_path=folder / "w.npy" if streamed else None)
    float(np.nansum(records.waveforms[-1]))  # the last record is there
    print(len(records), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_rss(folder: Path, streamed: bool) -> tuple[int, float]:
    cmd = [
        sys.executable,
        __file__,
        "--peak-of",
        str(folder),
        *(["--streamed"] if streamed else []),
    ]
    n, mb = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    return int(n), float(mb)


def memory(n_events: int, n_stations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), n_events, n_stations)
        for streamed in (False, True):
            n, mb = peak_rss(Path(tmp), streamed)
            mode = "streamed to .npy (records stage)" if streamed else "in memory, stacked        "
            print(
                f"peak memory, {mode}: {mb:6.0f} MB for {n} records "
                f"({n * round((PRE_S + POST_S) * FS) * 4 / 2**20:.0f} MB of waveforms)"
            )


LOOKUP_STATIONS, FILE_S, FILES_PER_EVENT = 100, 3600.0, 5  # hour files; one event per 5 files


def lookup_index(n_files: int) -> tuple[pd.DataFrame, list]:
    """Index rows of ``n_files`` hour files (100 stations) and events spread over their span."""
    rng = np.random.default_rng(0)
    hours = n_files // LOOKUP_STATIONS
    start = (
        ORIGIN.timestamp
        + np.repeat(np.arange(hours) * FILE_S, LOOKUP_STATIONS)
        + rng.uniform(0, 1, n_files)
    )
    index = pd.DataFrame(
        {
            "path": [f"f{i:06d}.mseed" for i in range(n_files)],
            "station_id": [f"XX.S{i % LOOKUP_STATIONS:03d}" for i in range(n_files)],
            "start": start,
            "end": start + FILE_S,
            "lat": np.nan,
            "lon": np.nan,
        },
        columns=INDEX_COLUMNS,
    )
    times = np.sort(rng.uniform(0, hours * FILE_S, n_files // FILES_PER_EVENT))
    events = [SimpleNamespace(origin_time=ORIGIN + t, p_picks={}) for t in times]
    return index, events


def full_scan(index: pd.DataFrame, events: list) -> float:
    """Seconds of the lookup this replaced (its code as it was): every file compared per event."""
    named = set()
    started = time.perf_counter()
    for ev in events:
        have = set(index["station_id"])
        t = float(ev.origin_time.timestamp)
        hit = (index["start"] <= t + 300.0) & (index["end"] >= t - PRE_S)
        near = set(index.loc[hit, "station_id"])
        named.update(index.loc[hit, "path"])
        sorted(near | (set(ev.p_picks) & have))
    return time.perf_counter() - started


def timed_lookup(store: FileStore, events: list) -> float:
    started = time.perf_counter()
    found = sum(len(store.stations_near(ev, PRE_S, 300.0)) for ev in events)
    assert found >= LOOKUP_STATIONS * len(events)  # every station has data near every event
    return time.perf_counter() - started


def lookup() -> None:
    """The event-lookup row: seconds at 8,000 and 80,000 files and their ratio."""
    seconds, scans = {}, {}
    for n_files in (8_000, 80_000):
        index, events = lookup_index(n_files)
        store = FileStore.from_index(index)
        seconds[n_files] = min(timed_lookup(store, events) for _ in range(3))  # best of 3
        sample = events[:: max(1, len(events) // 100)]  # the full scan on 80k: minutes otherwise
        scans[n_files] = full_scan(index, sample) * len(events) / len(sample)
        print(
            f"event lookup, {n_files:6d} files, {len(events):6d} events: "
            f"{seconds[n_files]:6.3f} s   (the full scan it replaced: {scans[n_files]:6.1f} s, "
            f"timed on {len(sample)} events)"
        )
    print(
        f"event lookup, 80k / 8k files: {seconds[80_000] / seconds[8_000]:.1f}x the time for "
        f"10x the files and events (the full scan: {scans[80_000] / scans[8_000]:.0f}x)"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--stations", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument(
        "--memory-events",
        type=int,
        nargs="+",
        default=[25, 100],
        help="events (x --stations) of the memory check, one run per count",
    )
    ap.add_argument(
        "--peak-of", type=Path, help=argparse.SUPPRESS
    )  # the memory check's child process
    ap.add_argument("--streamed", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lookup-only", action="store_true", help="the event-lookup row alone")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.peak_of is not None:
        return peak_load(args.peak_of, args.streamed)
    lookup()
    if args.lookup_only:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        pairs = build(Path(tmp), args.events, args.stations)
        seisbert_load(Path(tmp), 0)  # warm-up: imports, TauP model, plugin lookup
        plain = plain_loop(pairs)
        print(
            f"{len(pairs)} pairs of 100 Hz miniSEED, QuakeML, "
            f"{sum(p[1] is None for p in pairs)} P from TauP"
        )
        print(f"plain ObsPy loop, 1 process : {plain:7.0f} records/s")
        for workers in [0, *args.workers]:
            rate, n = seisbert_load(Path(tmp), workers)
            print(
                f"seisbert, num_workers={workers:<2d}     : {rate:7.0f} records/s "
                f"({n} records)  ratio {rate / plain:.1f}x"
            )
    for n_events in args.memory_events:
        memory(n_events, args.stations)


if __name__ == "__main__":
    main()
