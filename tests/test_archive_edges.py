"""Archive edges: each gives a message naming the file, row or key, and the good records go on.

Real ObsPy I/O on small files in tmp_path (BW.UH4, ObsPy's bundled local event, re-stamped),
QuakeML written by ObsPy, SeisBench datasets written with h5py; no mocks. Each test adds one
kind of edge beside a good record and checks the reason's text and count, or the error.
"""

import logging
import multiprocessing
import os
import time
from pathlib import Path

import h5py
import numpy as np
import obspy
import pandas as pd
import pytest
from obspy import UTCDateTime
from obspy.core.event import Catalog, Event, Origin, Pick, ResourceIdentifier, WaveformStreamID
from obspy.core.inventory import Inventory, Network, Station

from seisbert.data.catalog import load_catalog, parse_time
from seisbert.data.file_list import FileListSource
from seisbert.data.records import Reason, reason_counts
from seisbert.data.seisbench_format import SeisBenchSource
from seisbert.data.stores import INDEX_COLUMNS, FileStore, SpanIndex
from seisbert.data.waveforms import WaveformSource

UH4 = Path(obspy.__file__).parent / "signal/tests/data/BW.UH4._.EHZ.D.2010.147.cut.slist.gz"
UH_ORIGIN, UH_P = UTCDateTime("2010-05-27T16:24:33"), UTCDateTime("2010-05-27T16:24:34.16")
GOOD = {
    "event_id": "good",
    "origin_time": str(UH_ORIGIN),
    "event_type": "earthquake",
    "station_id": "XX.GOOD",
    "p_time": str(UH_P),
}


@pytest.fixture(scope="module")
def uh4() -> obspy.Trace:
    return obspy.read(str(UH4))[0]


def write(tr: obspy.Trace, folder: Path, station: str, fmt: str = "MSEED", **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = tr.copy()
    out.stats.network, out.stats.station = "XX", station
    path = folder / f"{station.lower()}.{fmt.lower()}"
    out.write(str(path), format=fmt, **kw)
    return path


def source(tmp_path: Path, rows: list[dict], uh4, **kwargs) -> WaveformSource:
    """XX.GOOD plus whatever the test wrote under tmp_path/wf, and a CSV catalogue of ``rows``."""
    write(uh4, tmp_path / "wf", "GOOD")
    pd.DataFrame([GOOD, *rows]).to_csv(tmp_path / "cat.csv", index=False)
    return WaveformSource(
        waveform_dir=str(tmp_path / "wf"), catalog=str(tmp_path / "cat.csv"), **kwargs
    )


def detail(rs, reason: str) -> str:
    return " | ".join(rs.rejected.detail[rs.rejected.reason == reason])


def assert_good_kept(rs) -> None:
    good = np.flatnonzero(rs.metadata.station_id == "XX.GOOD")
    assert len(good) == 1 and np.isfinite(rs.waveforms[good[0]]).all()


# ------------------------------------------------------------ 1. files that are no waveform
def test_zero_filled_2gib_and_unknown_files_are_skipped_by_their_first_bytes(tmp_path, uh4, caplog):
    wf = tmp_path / "wf"
    wf.mkdir()
    with open(wf / "preallocated.mseed", "wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GiB of zeros on no disk
    (wf / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (wf / "empty.sac").write_bytes(b"")
    write(uh4, wf, "SAC1", fmt="SAC")  # a known format besides miniSEED still goes through
    started = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="seisbert.data.stores"):
        rs = source(tmp_path, [{**GOOD, "station_id": "XX.SAC1"}], uh4).load(progress=False)
    # ObsPy's format detection spent minutes and GBs on this file; its first bytes take no time
    assert time.perf_counter() - started < 20
    assert reason_counts(rs.rejected) == {Reason.UNREADABLE: 3}
    why = dict(zip(rs.rejected.record.map(lambda p: Path(p).name), rs.rejected.detail))
    assert why["preallocated.mseed"] == (
        "preallocated.mseed: not a waveform file: its first 4096 bytes are all zero (a "
        "zero-filled or preallocated file, not a recording); skipped before ObsPy's format "
        "detection"
    )
    assert why["figure.png"].startswith(
        "figure.png: not a waveform file: its first bytes b'\\x89PNG\\r\\n\\x1a\\n\\x00\\x01"
    )
    assert "match none of the formats ObsPy reads" in why["figure.png"]
    assert "empty.sac: not a waveform file: it is empty (0 bytes)" in why["empty.sac"]
    assert sorted(rs.metadata.station_id) == ["XX.GOOD", "XX.SAC1"]
    assert_good_kept(rs)
    assert "(3 rejected {'unreadable file': 3})" in caplog.text


# --------------------------------------------------------------------- 2. event lookup
def test_span_lookup_finds_exactly_the_overlapping_files_of_a_full_scan():
    rng = np.random.default_rng(0)
    n = 5000
    durations = rng.choice([0.0, 1.0, 230.0, 3600.0, 86400.0, 3e7], n)  # up to a year
    starts = rng.uniform(0, 1e7, n)
    spans = SpanIndex(starts, starts + durations)
    for a in rng.uniform(-1e5, 1.1e7, 300):
        b = a + rng.choice([0.0, 320.0, 5000.0])
        want = np.flatnonzero((starts <= b) & (starts + durations >= a))
        np.testing.assert_array_equal(spans.overlapping(a, b), want)
    assert len(SpanIndex.empty().overlapping(0.0, 1.0)) == 0


def test_stations_near_names_the_stations_and_files_a_full_scan_finds(tmp_path):
    rng = np.random.default_rng(1)
    starts = np.sort(rng.uniform(0, 86400 * 3, 600))
    index = pd.DataFrame(
        {
            "path": [f"f{i}" for i in range(600)],
            "station_id": [f"XX.S{i % 40:02d}" for i in range(600)],
            "start": starts,
            "end": starts + rng.choice([600.0, 3600.0], 600),
            "lat": np.nan,
            "lon": np.nan,
        },
        columns=INDEX_COLUMNS,
    )
    store = FileStore.from_index(index)
    for t in rng.uniform(0, 86400 * 3, 50):
        event = type(
            "Ev", (), {"origin_time": UTCDateTime(t), "p_picks": {"XX.S00": None, "XX.NONE": None}}
        )
        hit = (index.start <= t + 300) & (index.end >= t - 20)
        assert store.stations_near(event, 20.0, 300.0) == sorted(
            set(index.station_id[hit]) | {"XX.S00"}
        )
        assert set(index.path[hit]) <= store.named


# ------------------------------------------------------------------ 3. non-UTF-8 bytes
def test_a_non_utf8_byte_names_the_file_offset_and_line(tmp_path, uh4):
    wf = write(uh4, tmp_path / "wf", "GOOD").parent
    csv = tmp_path / "cat.csv"
    csv.write_bytes(
        b"event_id,origin_time,event_type\ngood,2010-05-27T16:24:33,earthquake\n"
        b"caf\xe9,2010-05-27T16:24:33,earthquake\n"
    )
    with pytest.raises(
        ValueError,
        match=(
            r"^data.catalog='.*cat.csv': byte 0xe9 at offset 71 \(line 3, column 4\) is not "
            r"UTF-8; save it as UTF-8"
        ),
    ):
        WaveformSource(waveform_dir=str(wf), catalog=str(csv)).load(progress=False)
    Catalog(
        [
            Event(
                resource_id=ResourceIdentifier("smi:local/event/1"),
                event_type="earthquake",
                origins=[Origin(time=UH_ORIGIN, latitude=48.0, longitude=11.6)],
            )
        ]
    ).write(str(tmp_path / "q.xml"), format="QUAKEML")
    text = (tmp_path / "q.xml").read_bytes()
    (tmp_path / "q.xml").write_bytes(text.replace(b"<type>", b"<!-- \xe9 --><type>", 1))
    with pytest.raises(
        ValueError,
        match=(
            r"^data.catalog='.*q.xml' cannot be read as QuakeML: byte 0xe9 at offset \d+ "
            r"\(line \d+, column \d+\) is not UTF-8, and its XML declaration names no other"
        ),
    ):
        load_catalog(tmp_path / "q.xml")
    (tmp_path / "list.csv").write_bytes(b"file,p_time\nwf/g\xfc.mseed,2010-05-27T16:24:34.16\n")
    with pytest.raises(
        ValueError,
        match=(
            r"^data.file_list='.*list.csv': byte 0xfc at offset 16 "
            r"\(line 2, column 5\) is not UTF-8"
        ),
    ):
        FileListSource(file_list=str(tmp_path / "list.csv")).load(progress=False)


def test_a_non_utf8_seisbench_metadata_csv_names_the_file(tmp_path):
    seisbench_dataset(tmp_path, [row("g1", "e1", "earthquake")])
    meta = tmp_path / "metadata.csv"
    meta.write_bytes(meta.read_bytes().replace(b"earthquake", b"s\xe9isme"))
    with pytest.raises(
        ValueError,
        match=r"^data.path='.*metadata.csv': byte 0xe9 at offset \d+ "
        r"\(line 2, column \d+\) is not UTF-8",
    ):
        SeisBenchSource(path=str(tmp_path)).load(progress=False)


# --------------------------------------------------------------------- 4, 12. SeisBench
def row(name: str, event: str, category: str) -> dict:
    return {
        "trace_name": name,
        "source_id": event,
        "trace_category": category,
        "trace_p_arrival_sample": 2000,
        "trace_sampling_rate_hz": 100.0,
    }


def seisbench_dataset(path: Path, rows: list[dict], traces: dict | None = None) -> None:
    """metadata.csv of ``rows`` and waveforms.hdf5 with one noise trace per row (or ``traces``)."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / "metadata.csv", index=False)
    traces = traces or {}
    with h5py.File(path / "waveforms.hdf5", "w") as f:
        f["data_format/dimension_order"] = "CW"
        f["data_format/component_order"] = "Z"
        for r in rows:
            f[f"data/{r['trace_name']}"] = traces.get(
                r["trace_name"], rng.standard_normal((1, 12000)).astype(np.float32)
            )


def test_seisbench_event_with_two_types_and_a_non_numeric_trace_are_skipped(tmp_path):
    clipped = np.random.default_rng(1).standard_normal((1, 12000)) * 1e3
    clipped[0, 3000:3040] = 2**31 - 1
    seisbench_dataset(
        tmp_path,
        [
            row("g1", "e1", "earthquake"),
            row("c1", "e2", "earthquake"),
            row("c2", "e2", "quarry blast"),
            row("txt", "e3", "earthquake"),
            row("clip", "e4", "earthquake"),
        ],
        {"txt": np.array([b"1.0", b"2.0"]), "clip": clipped.astype(np.int64)},
    )
    rs = SeisBenchSource(path=str(tmp_path)).load(progress=False)
    assert list(rs.metadata.trace_name) == ["g1"]
    reasons = dict(zip(rs.rejected.record, rs.rejected.reason))
    assert reasons == {
        "c1": Reason.CONFLICTING_TYPE,
        "c2": Reason.CONFLICTING_TYPE,
        "txt": Reason.NON_NUMERIC,
        "clip": Reason.CLIPPED,
    }
    why = dict(zip(rs.rejected.record, rs.rejected.detail))
    assert why["c1"] == (
        "event e2 is written as 'earthquake' (traces c1) and 'quarry blast' "
        "(traces c2); every trace of it is skipped"
    )
    assert why["txt"].startswith("trace 'txt' in ") and why["txt"].endswith(
        "waveforms.hdf5 holds |S3 values, not numbers"
    )
    assert why["clip"] == "trace 'clip' Z: 40 samples at the int32 limits (-2147483648, 2147483647)"


def test_truncated_hdf5_and_missing_data_format_name_the_file(tmp_path):
    seisbench_dataset(tmp_path / "cut", [row("g1", "e1", "earthquake")])
    h5 = tmp_path / "cut" / "waveforms.hdf5"
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    with pytest.raises(
        ValueError,
        match=r"^data.path: .*cut/waveforms.hdf5 cannot be opened as "
        r"HDF5 \(.*truncated file.*\); a truncated or partly",
    ):
        SeisBenchSource(path=str(tmp_path / "cut")).load(progress=False)
    seisbench_dataset(tmp_path / "nofmt", [row("g1", "e1", "earthquake")])
    with h5py.File(tmp_path / "nofmt" / "waveforms.hdf5", "a") as f:
        del f["data_format"]
    with pytest.raises(
        ValueError,
        match=r"^.*nofmt/waveforms.hdf5 has no 'data_format' group; "
        r"a SeisBench waveforms file names dimension_order",
    ):
        SeisBenchSource(path=str(tmp_path / "nofmt")).load(progress=False)
    (tmp_path / "nofmt" / "waveforms.hdf5").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"^data.path: .*nofmt/waveforms.hdf5 does not "
        r"exist \(each metadata CSV needs",
    ):
        SeisBenchSource(path=str(tmp_path / "nofmt")).load(progress=False)


# ------------------------------------------------------------- 5. a reused QuakeML id
def test_a_reused_quakeml_id_with_another_origin_keeps_the_first_and_counts_the_rest(tmp_path, uh4):
    wf = write(uh4, tmp_path / "wf", "GOOD").parent

    def event(origin, station: str) -> Event:
        return Event(
            resource_id=ResourceIdentifier("smi:local/event/42"),
            event_type="earthquake",
            origins=[Origin(time=origin, latitude=48.0, longitude=11.6, depth=8000.0)],
            picks=[
                Pick(
                    time=origin + 1.16, phase_hint="P", waveform_id=WaveformStreamID("XX", station)
                )
            ],
        )

    Catalog([event(UH_ORIGIN, "GOOD"), event(UH_ORIGIN + 86400, "OTHER")]).write(
        str(tmp_path / "events.xml"), format="QUAKEML"
    )
    rs = WaveformSource(waveform_dir=str(wf), catalog=str(tmp_path / "events.xml")).load(
        progress=False
    )
    assert reason_counts(rs.rejected) == {Reason.DUPLICATE_EVENT: 1}
    assert rs.rejected.record.item() == "42 (event 2)"
    assert detail(rs, Reason.DUPLICATE_EVENT) == (
        "events.xml: event 2 reuses the event id '42' of event 1 with another origin "
        "(2010-05-28T16:24:33.000000Z at 48, 11.6, 8 km vs. 2010-05-27T16:24:33.000000Z at "
        "48, 11.6, 8 km); kept event 1, skipped event 2"
    )
    assert_good_kept(rs)
    assert list(rs.metadata.event_id) == ["42"]  # the skipped event's pick was not merged in


# ---------------------------------------------------------- 6, 10. file lists, epoch times
def test_duplicate_file_list_rows_are_classified_once(tmp_path, uh4):
    write(uh4, tmp_path / "wf", "GOOD")
    write(uh4, tmp_path / "wf", "TWO")
    epoch = f"{UH_P.timestamp:.2f}"  # the same P time as epoch seconds
    pd.DataFrame(
        {
            "file": ["wf/good.mseed", "wf/two.mseed", "wf/good.mseed", "./wf/good.mseed"],
            "p_time": [str(UH_P), str(UH_P), str(UH_P), epoch],
            "event_type": "earthquake",
        }
    ).to_csv(tmp_path / "list.csv", index=False)
    rs = FileListSource(file_list=str(tmp_path / "list.csv")).load(progress=False)
    assert sorted(rs.metadata.station_id) == ["XX.GOOD", "XX.TWO"]
    assert reason_counts(rs.rejected) == {Reason.DUPLICATE_ROW: 2}
    assert list(rs.rejected.record) == ["list.csv:4 wf/good.mseed", "list.csv:5 ./wf/good.mseed"]
    assert (
        list(rs.rejected.detail)
        == [
            "repeats list.csv:2 (the same file, station and P time 2010-05-27T16:24:34.160000Z); "
            "the record is classified once"
        ]
        * 2
    )


def test_epoch_seconds_and_iso_p_times_give_the_same_record(tmp_path, uh4):
    assert parse_time("1.7e9", "p_time") == UTCDateTime(1_700_000_000)
    assert parse_time("1700000000", "p_time") == UTCDateTime("2023-11-14T22:13:20Z")
    assert parse_time("20200101", "p_time") == UTCDateTime(2020, 1, 1)  # an ISO basic date
    write(uh4, tmp_path / "wf", "GOOD")
    loaded = []
    for name, p_time in (("iso", str(UH_P)), ("epoch", repr(UH_P.timestamp))):
        pd.DataFrame(
            {"file": ["wf/good.mseed"], "p_time": [p_time], "event_type": "earthquake"}
        ).to_csv(tmp_path / f"{name}.csv", index=False)
        loaded.append(FileListSource(file_list=str(tmp_path / f"{name}.csv")).load(progress=False))
    iso, epoch = loaded
    assert epoch.metadata.trace_start_time.item() == str(UH_P - 20)
    np.testing.assert_array_equal(iso.waveforms, epoch.waveforms)
    rs = source(
        tmp_path,
        [
            {
                **GOOD,
                "event_id": "ep",
                "station_id": "XX.EP",
                "origin_time": str(UH_ORIGIN.timestamp),
                "p_time": str(UH_P.timestamp),
            }
        ],
        uh4,
    )
    write(uh4, tmp_path / "wf", "EP")
    rs = rs.load(progress=False)
    ep = rs.metadata[rs.metadata.station_id == "XX.EP"]
    assert ep.source_origin_time.item() == str(UH_ORIGIN)
    assert ep.trace_p_arrival_sample.item() == 2000


# ----------------------------------------------------------------- 7. unreadable folders
def listed_in(folder: Path, pattern: str) -> tuple:
    """(indexed paths, rejected rows) of ``FileStore(".", pattern)`` run in ``folder`` by a
    forked child; as root it drops to nobody, since root may list a folder of mode 000."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child():
        os.chdir(folder)
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        store = FileStore(".", pattern, progress=False)
        queue.put((sorted(store.index.path), store.rejected))

    process = ctx.Process(target=child)
    process.start()
    out = queue.get(timeout=120)
    process.join()
    return out


def test_an_unreadable_subfolder_is_counted_naming_the_folder(tmp_path, uh4):
    wf = write(uh4, tmp_path / "wf", "GOOD").parent
    write(uh4, wf / "open", "OPEN")
    write(uh4, wf / "locked", "HIDDEN")
    (wf / "locked").chmod(0)
    try:
        paths, rejected = listed_in(wf, "**/*")
        top_paths, top_rejected = listed_in(wf, "*.mseed")
    finally:
        (wf / "locked").chmod(0o755)
    assert paths == ["good.mseed", "open/open.mseed"]
    assert [(r["record"], r["reason"]) for r in rejected] == [
        ("./locked", Reason.UNREADABLE_FOLDER)
    ]
    assert rejected[0]["detail"] == (
        "cannot list the folder ./locked (PermissionError: Permission denied); the files in it "
        "that data.file_glob='**/*' would match were not indexed"
    )
    assert (top_paths, top_rejected) == (["good.mseed"], [])  # the glob never goes there


# ---------------------------------------------------------------------- 8. clipped traces
def test_int32_saturated_and_flat_topped_traces_are_rejected_as_clipped(tmp_path, uh4):
    counts = uh4.copy()
    counts.data = np.round(uh4.data - uh4.data.mean()).astype(np.int32)  # peak 7,881 counts
    saturated, flat = counts.copy(), counts.copy()
    saturated.data[3000:3030] = 2**31 - 1  # 16:24:33.68, inside the cut
    saturated.data[3030:3060] = -(2**31)
    # 5000x the gain on a 24-bit digitizer: the event's peaks are cut flat, a few samples each
    flat.data = np.clip(counts.data * 5000, -(2**23), 2**23 - 1).astype(np.int32)
    write(saturated, tmp_path / "wf", "SAT", encoding="INT32")
    write(flat, tmp_path / "wf", "FLAT", encoding="INT32")
    rows = [{**GOOD, "station_id": "XX.SAT"}, {**GOOD, "station_id": "XX.FLAT"}]
    rs = source(tmp_path, rows, uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.CLIPPED: 2}
    why = dict(zip(rs.rejected.record, rs.rejected.detail))
    assert why["good XX.SAT"] == (
        "XX.SAT..EHZ: 60 samples at the int32 limits (-2147483648, "
        "2147483647), the first at 2010-05-27T16:24:33.680000Z"
    )
    assert why["good XX.FLAT"] == (
        "XX.FLAT..EHZ: 50 samples pinned at 8388607 (a digitizer's "
        "flat top), the first at 2010-05-27T16:24:34.150000Z"
    )
    assert_good_kept(rs)


# ------------------------------------------------------------------ 9, 11. paths and keys
def test_garbage_stationxml_names_data_inventory_and_the_file(tmp_path, uh4):
    bad = tmp_path / "stations" / "b.xml"
    bad.parent.mkdir()
    Inventory([Network("XX", stations=[Station("GOOD", 48.0, 11.6, 0.0)])]).write(
        str(tmp_path / "stations" / "a.xml"), format="STATIONXML"
    )
    bad.write_bytes(b"<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(
        ValueError,
        match=(
            r"^data.inventory='.*stations/\*.xml': .*stations/b.xml "
            r"cannot be read as StationXML \(TypeError: Unknown"
        ),
    ):
        source(tmp_path, [], uh4, inventory=str(tmp_path / "stations" / "*.xml")).load(
            progress=False
        )


def test_a_folder_where_a_file_is_expected_is_said_to_be_a_folder(tmp_path, uh4):
    wf = write(uh4, tmp_path / "wf", "GOOD").parent
    pd.DataFrame([GOOD]).to_csv(tmp_path / "cat.csv", index=False)
    cat = str(tmp_path / "cat.csv")
    cases = [
        (
            dict(waveform_dir=str(wf), catalog=str(wf)),
            f"data.catalog='{wf}' is a folder; give a QuakeML or CSV catalogue file",
        ),
        (
            dict(waveform_dir=str(wf), catalog=cat, picks_csv=str(wf)),
            f"data.picks_csv='{wf}' is a folder; give a CSV file of picks",
        ),
        (
            dict(waveform_dir=str(wf), catalog=cat, inventory=str(wf)),
            f"data.inventory='{wf}' is a folder; give StationXML file(s), e.g. "
            f"data.inventory='{wf}/*.xml'",
        ),
        (
            dict(waveform_dir=cat, catalog=cat),
            f"data.waveform_dir='{cat}' is a file; give the folder of waveform files "
            "(or the SDS root)",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as info:
            WaveformSource(**kwargs).load(progress=False)
        assert str(info.value) == message
    with pytest.raises(ValueError, match=r"^data.file_list='.*wf' is a folder; give the CSV file"):
        FileListSource(file_list=str(wf)).load(progress=False)
    with pytest.raises(
        ValueError,
        match=r"^data.path='.*cat.csv' is a file; give the SeisBench "
        r"dataset's folder",
    ):
        SeisBenchSource(path=cat).load(progress=False)
    pd.DataFrame(
        {"file": ["wf/good.mseed", "wf"], "p_time": str(UH_P), "event_type": "earthquake"}
    ).to_csv(tmp_path / "list.csv", index=False)
    rs = FileListSource(file_list=str(tmp_path / "list.csv")).load(progress=False)
    assert len(rs) == 1 and reason_counts(rs.rejected) == {Reason.UNREADABLE: 1}
    assert rs.rejected.detail.item() == (
        f"{tmp_path / 'wf'} is a folder; column 'file' names one waveform file per row"
    )


def test_a_cut_last_miniseed_record_is_said_not_dropped_silently(tmp_path, caplog):
    import logging

    import obspy

    from seisbert.data.stores import KeptWarnings, read_checked

    path = tmp_path / "cut.mseed"
    obspy.read().write(str(path), format="MSEED", reclen=512)
    whole = read_checked(path, KeptWarnings(), fmt="MSEED")
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 100)  # 412 bytes of the last record: ObsPy is silent
    kept = KeptWarnings()
    cut = read_checked(path, kept, fmt="MSEED")
    assert sum(tr.stats.npts for tr in cut) < sum(tr.stats.npts for tr in whole)
    with caplog.at_level(logging.WARNING, logger="seisbert.data.stores"):
        kept.log()
    assert "cut.mseed: the file ends inside a miniSEED record: its last 412 bytes" in caplog.text
