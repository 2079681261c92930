"""The waveforms source on real recordings that ObsPy ships in its installed package.

- BW.UH4..EHZ (100 Hz, 230 s): a local event near Unterhaching, Bavaria, on
  2010-05-27 that ObsPy's coincidence-trigger test finds at 16:24:31-35 on all four
  BW.UH stations; our P pick (recursive STA/LTA onset) is 16:24:34.16.
- II.TLY.00.BHZ (20 Hz SAC): the 2011-03-11 M9 Tohoku-oki earthquake at 30.1 deg, with
  origin, location and an analyst P pick in its SAC header.
- obspy.read(): BW.RJOB EHZ/EHN/EHE (30 s) with its StationXML (obspy.read_inventory()).
- usgs_event.xml: a 2014 M1.54 ComCat event whose event_type is "quarry blast".
Files are linked from the obspy installation, never copied into the repository.
"""

import logging
import math
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import pytest
import scipy.signal
from obspy import UTCDateTime
from obspy.core.event import Arrival, Catalog, Event, Origin, Pick, WaveformStreamID

from seisbert.data.catalog import map_event_type, read_catalog
from seisbert.data.records import Reason
from seisbert.data.waveforms import WaveformSource, taup_p_seconds
from seisbert.features import FeatureConfig, featurize_chunk

OBSPY = Path(obspy.__file__).parent
UH4 = OBSPY / "signal/tests/data/BW.UH4._.EHZ.D.2010.147.cut.slist.gz"
TLY = OBSPY / "realtime/tests/data/II.TLY.BHZ.SAC"
USGS_BLAST = OBSPY / "io/quakeml/tests/data/usgs_event.xml"
UH_ORIGIN, UH_P = UTCDateTime("2010-05-27T16:24:33"), UTCDateTime("2010-05-27T16:24:34.16")


def link(src: Path, folder: Path, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    dst.symlink_to(src)
    return dst


def csv_catalog(path: Path, rows: list[dict]) -> str:
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def uh4() -> obspy.Trace:
    return obspy.read(str(UH4))[0]


def restamped(tr: obspy.Trace, station: str, network: str = "XX", **stats) -> obspy.Trace:
    out = tr.copy()
    out.stats.network, out.stats.station = network, station
    for key, value in stats.items():
        setattr(out.stats, key, value)
    return out


# ------------------------------------------------------------------------ real data
def test_real_local_event_gives_the_feature_window(tmp_path):
    catalog = csv_catalog(
        tmp_path / "cat.csv",
        [
            {
                "event_id": "uh-a",
                "origin_time": str(UH_ORIGIN),
                "event_type": "earthquake",
                "station_id": "BW.UH4",
                "p_time": str(UH_P),
            },
            {
                "event_id": "uh-b",
                "origin_time": "2010-05-27T16:27:30",
                "event_type": "earthquake",
                "station_id": "BW.UH4",
                "p_time": "2010-05-27T16:27:31.44",
            },
        ],
    )
    rs = WaveformSource(waveform_dir=str(link(UH4, tmp_path / "wf").parent), catalog=catalog).load(
        progress=False
    )
    assert rs.waveforms.shape == (2, 1, 12000) and rs.waveforms.dtype == np.float32
    a, b = rs.metadata.iloc[0], rs.metadata.iloc[1]
    assert (a.trace_p_arrival_sample, a.trace_npts) == (2000, 12000)
    assert (
        a.trace_start_time == "2010-05-27T16:24:14.160000Z" and a.trace_p_pick_origin == "catalog"
    )
    z = rs.waveforms[0, 0]
    assert np.isfinite(z).all()
    noise, onset = np.std(z[1000:1900]), np.std(z[2000:2200])
    assert onset > 5 * noise  # the P onset is where the record says
    # The second event ends 22.6 s after P: kept with NaN padding; features reject it.
    last = UTCDateTime("2010-05-27T16:27:54")  # the recording's last sample
    assert b.trace_npts == round((last - UTCDateTime(b.trace_start_time)) * 100) + 1
    assert np.isnan(rs.waveforms[1, 0, b.trace_npts :]).all()
    feats, reasons = featurize_chunk(
        rs.waveforms,
        rs.metadata.trace_p_arrival_sample.to_numpy(),
        rs.metadata.trace_npts.to_numpy(),
        FeatureConfig(),
    )
    assert feats.shape == (2, 90, 20) and list(reasons) == ["", Reason.TOO_SHORT]
    # the kept record's windows, recomputed with SciPy from P - 10 s (sample 1000) to P + 80 s
    _, pxx = scipy.signal.periodogram(
        z[1000:10000].astype(np.float64).reshape(90, 100), fs=100.0, window="hann", axis=-1
    )
    pxx = pxx[:, 1:21]  # 1..20 Hz
    np.testing.assert_allclose(feats[0], np.log10(pxx / np.median(pxx, axis=0)), atol=1e-3)


def tohoku_quakeml(path: Path, with_pick: bool) -> str:
    sac = obspy.read(str(TLY))[0].stats.sac
    ref = obspy.read(str(TLY))[0].stats.starttime - sac.b
    event = Event(
        event_type="earthquake",
        origins=[Origin(time=ref + sac.o, latitude=sac.evla, longitude=sac.evlo, depth=sac.evdp)],
    )
    if with_pick:
        event.picks = [
            Pick(
                time=ref + sac.a,
                phase_hint="P",
                waveform_id=WaveformStreamID(
                    network_code="II", station_code="TLY", channel_code="BHZ"
                ),
            )
        ]
    Catalog([event]).write(str(path), format="QUAKEML")
    return str(path)


def test_tohoku_20hz_is_too_slow_by_default_and_taup_matches_the_analyst_pick(tmp_path):
    wf = link(TLY, tmp_path / "wf").parent
    picked = WaveformSource(waveform_dir=str(wf), catalog=tohoku_quakeml(tmp_path / "a.xml", True))
    with pytest.raises(
        ValueError,
        match=r"no usable record from 1 catalogue events \(rejected "
        r"\{'unexpected sampling rate': 1\}\).*BHZ at 20.0 Hz < data.min_sampling",
    ):
        picked.load(progress=False)
    picked.min_sampling_rate_hz = 20.0
    by_pick = picked.load(progress=False).metadata.iloc[0]
    by_taup = (
        WaveformSource(
            waveform_dir=str(wf),
            catalog=tohoku_quakeml(tmp_path / "b.xml", False),
            min_sampling_rate_hz=20.0,
        )
        .load(progress=False)
        .metadata.iloc[0]
    )
    assert by_pick.trace_p_pick_origin == "catalog" and by_taup.trace_p_pick_origin == "taup"
    assert by_taup.path_ep_distance_km == pytest.approx(3342.5, abs=5)  # SAC header: dist
    p_pick = UTCDateTime(by_pick.trace_start_time) + by_pick.trace_p_arrival_sample / 100
    p_taup = UTCDateTime(by_taup.trace_start_time) + by_taup.trace_p_arrival_sample / 100
    assert abs(p_taup - p_pick) < 1.0  # ak135: 367.4 s; the analyst: 367.8 s after origin


def test_taup_p_matches_a_hand_value():
    # At 1 deg (111.19 km) and 10 km depth the first P is the direct wave in ak135's
    # 5.8 km/s upper crust: hypot(111.19, 10) / 5.8 = 19.25 s.
    assert taup_p_seconds(111.19, 10.0) == pytest.approx(math.hypot(111.19, 10.0) / 5.8, abs=0.1)
    assert taup_p_seconds(111.19, -0.5) == taup_p_seconds(111.19, 0.0)  # above the datum


def test_real_quakeml_quarry_blast_is_label_1(tmp_path, uh4):
    [event] = read_catalog(USGS_BLAST)
    assert event.event_type == "quarry blast" and event.magnitude == pytest.approx(1.54)
    assert map_event_type(event.event_type, WaveformSource().event_types) == "blast"
    # End to end: the real UH4 recording re-stamped to the blast's time at a station
    # 50 km north (coordinates in the SAC header), P from TauP.
    tr = restamped(uh4, "CIX", network="CI")
    tr.stats.starttime = event.origin_time - 20
    tr.stats.sac = obspy.core.AttribDict(stla=event.latitude + 0.45, stlo=event.longitude)
    tr.write(str(tmp_path / "cix.sac"), format="SAC")
    rs = WaveformSource(
        waveform_dir=str(tmp_path), file_glob="*.sac", catalog=str(USGS_BLAST)
    ).load(progress=False)
    row = rs.metadata.iloc[0]
    assert (row.source_type, row.label, row.trace_p_pick_origin) == ("blast", 1, "taup")
    assert row.path_ep_distance_km == pytest.approx(50, abs=1)
    assert row.path_back_azimuth_deg == pytest.approx(180, abs=1)


# -------------------------------------------------------------------------- bad input
def test_every_bad_input_is_rejected_and_counted_while_good_records_go_on(tmp_path, uh4, caplog):
    wf = tmp_path / "wf"
    link(UH4, wf)
    (wf / "junk.mseed").write_text("not a seismogram")
    early, late = uh4.slice(endtime=UH_P - 5), uh4.slice(starttime=UH_P - 3)
    restamped(early, "GAP").write(str(wf / "gap1.mseed"), format="MSEED")
    restamped(late, "GAP").write(str(wf / "gap2.mseed"), format="MSEED")
    restamped(uh4.slice(endtime=UH_P + 10), "OVL").write(str(wf / "ovl1.mseed"), format="MSEED")
    restamped(uh4.slice(starttime=UH_P), "OVL").write(str(wf / "ovl2.mseed"), format="MSEED")
    restamped(early, "MIX").write(str(wf / "mix1.mseed"), format="MSEED")
    restamped(late.copy().decimate(2), "MIX").write(str(wf / "mix2.mseed"), format="MSEED")
    restamped(uh4.copy().decimate(5), "LOW").write(str(wf / "low.mseed"), format="MSEED")
    restamped(uh4, "NOP").write(str(wf / "nop.mseed"), format="MSEED")
    picks = [
        {
            "event_id": "good",
            "origin_time": str(UH_ORIGIN),
            "event_type": "Earthquake",
            "station_id": f"{s}",
            "p_time": str(UH_P),
        }
        for s in ("BW.UH4", "XX.GAP", "XX.OVL", "XX.MIX", "XX.LOW")
    ]
    ufo = {"event_id": "ufo", "origin_time": str(UH_ORIGIN + 60), "event_type": "sonic boom"}
    catalog = csv_catalog(tmp_path / "cat.csv", picks + [ufo])
    with caplog.at_level(logging.INFO, logger="seisbert.data.waveforms"):
        rs = WaveformSource(waveform_dir=str(wf), catalog=catalog).load(progress=False)
    assert sorted(rs.metadata.station_id) == ["BW.UH4", "XX.OVL"]  # identical overlap merges
    np.testing.assert_array_equal(rs.waveforms[0], rs.waveforms[1])
    reasons = dict(zip(rs.rejected.reason, rs.rejected.detail))
    assert sorted(reasons) == sorted(
        [
            Reason.UNREADABLE,
            Reason.GAP,
            Reason.MIXED_RATE,
            Reason.BAD_RATE,
            Reason.MISSING_PICK,
            Reason.UNKNOWN_TYPE,
        ]
    )
    assert "junk.mseed" in reasons[Reason.UNREADABLE]
    assert "sonic boom" in reasons[Reason.UNKNOWN_TYPE]
    assert "[50.0, 100.0]" in reasons[Reason.MIXED_RATE]
    assert "XX.NOP" in rs.rejected.record[rs.rejected.reason == Reason.MISSING_PICK].item()
    summary = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()][-1]
    assert "2 records from 2 events in " in summary
    assert "; rejected: 1 files (1 unreadable file); 4 records (" in summary  # never added up
    assert Reason.GAP in summary


def test_no_pick_without_taup_is_a_missing_pick(tmp_path):
    catalog = csv_catalog(
        tmp_path / "cat.csv",
        [{"event_id": "e", "origin_time": str(UH_ORIGIN), "event_type": "earthquake"}],
    )
    source = WaveformSource(
        waveform_dir=str(link(UH4, tmp_path / "wf").parent), catalog=catalog, p_from_taup=False
    )
    with pytest.raises(
        ValueError,
        match=r"\{'missing pick': 1\}.*e BW.UH4: no P pick and "
        "data.p_from_taup=false",
    ):
        source.load(progress=False)


# ------------------------------------------------------------------------ Z/R/T, response
RJOB_EVENT = dict(
    event_id="rjob",
    origin_time="2009-08-24T00:19:58",
    event_type="earthquake",
    latitude=47.45,
    longitude=12.2,
    depth_km=8.0,
    station_id="BW.RJOB",
    p_time="2009-08-24T00:20:05",
)


def rjob_source(tmp_path, stream, **kwargs) -> WaveformSource:
    tmp_path.mkdir(parents=True, exist_ok=True)
    stream.write(str(tmp_path / "rjob.mseed"), format="MSEED")
    inventory = kwargs.pop("inventory", obspy.read_inventory())
    inventory.write(str(tmp_path / "rjob.xml"), format="STATIONXML")
    return WaveformSource(
        waveform_dir=str(tmp_path),
        file_glob="*.mseed",
        catalog=csv_catalog(tmp_path / "cat.csv", [RJOB_EVENT]),
        inventory=str(tmp_path / "rjob.xml"),
        **kwargs,
    )


def preprocessed(stream) -> obspy.Stream:
    for tr in stream:  # what WaveformSource does before rotating (all linear)
        tr.data = tr.data.astype(np.float64)
        tr.detrend("demean").detrend("linear").taper(
            max_percentage=0.5, max_length=5.0, type="hann"
        )
    return stream


def test_zrt_agrees_with_obspy_rotate_on_a_real_three_component_stream(tmp_path):
    rs = rjob_source(tmp_path, obspy.read(), channels="ZRT").load(progress=False)
    row = rs.metadata.iloc[0]
    assert rs.channels == "ZRT" and rs.waveforms.shape == (1, 3, 12000)
    # The data start 18 s before P: sample 0 is the first sample, 30 s are valid.
    assert (row.trace_p_arrival_sample, row.trace_npts) == (200, 3000)
    expected = preprocessed(obspy.read()).rotate("NE->RT", back_azimuth=row.path_back_azimuth_deg)
    for c, comp in enumerate("ZRT"):
        got = rs.waveforms[0, c, :3000]
        want = expected.select(component=comp)[0].data
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert np.isnan(rs.waveforms[0, :, 3000:]).all()


def test_zrt_from_1_2_horizontals_uses_the_inventory_orientation(tmp_path):
    stream, inventory = obspy.read(), obspy.read_inventory()
    for obj in list(stream) + [c for n in inventory for s in n for c in s]:
        code = obj.stats.channel if isinstance(obj, obspy.Trace) else obj.code
        new = code.replace("EHN", "EH1").replace("EHE", "EH2")
        if isinstance(obj, obspy.Trace):
            obj.stats.channel = new
        else:
            obj.code = new
    renamed = rjob_source(tmp_path, stream, channels="ZRT", inventory=inventory).load(
        progress=False
    )
    plain = rjob_source(tmp_path / "plain", obspy.read(), channels="ZRT").load(progress=False)
    np.testing.assert_allclose(renamed.waveforms, plain.waveforms, rtol=1e-5, atol=1e-3)


def test_zrt_without_horizontals_is_a_missing_channel(tmp_path):
    source = rjob_source(tmp_path, obspy.read().select(channel="EHZ"), channels="ZRT")
    with pytest.raises(ValueError, match=r"\{'missing channel': 1\}.*no \?\?\[N1\] channel"):
        source.load(progress=False)


def test_remove_response_gives_velocity_and_failures_are_rejected(tmp_path):
    stream = obspy.read()
    nores = restamped(stream.select(channel="EHZ")[0], "NORES", network="BW")
    source = rjob_source(tmp_path, stream + nores, remove_response=True)
    event = dict(RJOB_EVENT, station_id="BW.NORES")
    csv_catalog(tmp_path / "cat.csv", [RJOB_EVENT, event])
    rs = source.load(progress=False)
    assert list(rs.metadata.station_id) == ["BW.RJOB"]
    assert list(rs.rejected.reason) == [Reason.RESPONSE] and "BW.NORES" in rs.rejected.detail[0]
    want = preprocessed(obspy.read().select(channel="EHZ"))[0]
    want.remove_response(obspy.read_inventory(), output="VEL", water_level=60.0, taper=False)
    got = rs.waveforms[0, 0, :3000]
    np.testing.assert_allclose(got, want.data, rtol=1e-4, atol=1e-4 * np.abs(want.data).max())
    assert np.abs(got).max() < 1e-4  # m/s, not counts


# ----------------------------------------------------------------- archives, catalogues
def test_sds_archive_gives_the_same_record_as_files(tmp_path, uh4):
    day = tmp_path / "sds/2010/BW/UH4/EHZ.D"
    day.mkdir(parents=True)
    uh4.write(str(day / "BW.UH4..EHZ.D.2010.147"), format="MSEED")
    catalog = csv_catalog(
        tmp_path / "cat.csv",
        [
            {
                "event_id": "uh-a",
                "origin_time": str(UH_ORIGIN),
                "event_type": "earthquake",
                "station_id": "BW.UH4",
                "p_time": str(UH_P),
            }
        ],
    )
    sds = WaveformSource(archive="sds", waveform_dir=str(tmp_path / "sds"), catalog=catalog)
    files = WaveformSource(waveform_dir=str(link(UH4, tmp_path / "wf").parent), catalog=catalog)
    a, b = sds.load(progress=False), files.load(progress=False)
    np.testing.assert_allclose(a.waveforms, b.waveforms, rtol=1e-6, atol=1e-3)
    pd.testing.assert_frame_equal(a.metadata, b.metadata)


def test_quakeml_p_comes_from_arrivals_hints_and_the_earliest_pick(tmp_path):
    wid = WaveformStreamID(network_code="XX", station_code="A")
    picks = [
        Pick(time=UTCDateTime(10), waveform_id=wid),  # no hint: its arrival says Pg
        Pick(time=UTCDateTime(12), phase_hint="P", waveform_id=wid),
        Pick(time=UTCDateTime(5), phase_hint="S", waveform_id=WaveformStreamID("XX", "B")),
        Pick(time=UTCDateTime(20), phase_hint="Pn", waveform_id=WaveformStreamID("XX", "B")),
    ]
    origin = Origin(
        time=UTCDateTime(0),
        latitude=1,
        longitude=2,
        depth=3000,
        arrivals=[Arrival(pick_id=picks[0].resource_id, phase="Pg")],
    )
    Catalog([Event(event_type="quarry blast", picks=picks, origins=[origin])]).write(
        str(tmp_path / "c.xml"), format="QUAKEML"
    )
    [event] = read_catalog(tmp_path / "c.xml")
    assert event.p_picks == {"XX.A": UTCDateTime(10), "XX.B": UTCDateTime(20)}
    assert (event.depth_km, event.event_type) == (3.0, "quarry blast")


def test_csv_catalogue_with_renamed_columns_and_a_picks_file(tmp_path):
    pd.DataFrame(
        {
            "id": ["ci1", "ci2"],
            "time": ["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"],
            "latitude": [35.0, 36.0],
            "longitude": [-117.0, -118.0],
            "depth": [1.0, 9.0],
            "mag": [1.2, 2.0],
            "type": ["quarry blast", "earthquake"],
        }
    ).to_csv(tmp_path / "c.csv")
    pd.DataFrame(
        {
            "event_id": ["ci1", "ci1", "nope"],
            "station_id": ["CI.A", "CI.A", "CI.B"],
            "p_time": ["2020-01-01T00:00:09Z", "2020-01-01T00:00:08Z", "2020-01-01T00:00:01Z"],
            "phase": ["P", "Pg", "P"],
        }
    ).to_csv(tmp_path / "p.csv")
    columns = {
        "event_id": "id",
        "origin_time": "time",
        "depth_km": "depth",
        "magnitude": "mag",
        "event_type": "type",
    }
    ev1, ev2 = read_catalog(tmp_path / "c.csv", csv_columns=columns, picks_csv=tmp_path / "p.csv")
    assert ev1.p_picks == {"CI.A": UTCDateTime("2020-01-01T00:00:08Z")} and not ev2.p_picks
    assert (ev2.depth_km, ev2.magnitude, ev2.event_type) == (9.0, 2.0, "earthquake")
    with pytest.raises(ValueError, match="data.csv_columns"):
        read_catalog(tmp_path / "c.csv")


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="data.channels='ZNE' is not allowed"):
        WaveformSource(channels="ZNE")
    with pytest.raises(ValueError, match="data.event_types.quake='tremor'"):
        WaveformSource(event_types={"quake": "tremor"})
    with pytest.raises(ValueError, match="data.csv_columns key='origin'"):
        WaveformSource(csv_columns={"origin": "time"})
    with pytest.raises(ValueError, match="data.catalog is not set"):
        WaveformSource(waveform_dir=str(tmp_path)).load()
    with pytest.raises(ValueError, match="data.file_glob='\\*.sac' matches no files"):
        WaveformSource(
            waveform_dir=str(tmp_path),
            file_glob="*.sac",
            catalog=csv_catalog(tmp_path / "c.csv", [RJOB_EVENT]),
        ).load()


def test_pairs_beyond_max_distance_are_left_out_and_logged(tmp_path, caplog):
    source = WaveformSource(
        waveform_dir=str(link(TLY, tmp_path / "wf").parent),
        max_distance_km=1000.0,
        catalog=tohoku_quakeml(tmp_path / "a.xml", False),
        min_sampling_rate_hz=20.0,
    )
    with caplog.at_level(logging.INFO, logger="seisbert.data.waveforms"):
        with pytest.raises(
            ValueError,
            match=r"\(rejected \{\}, 1 pairs farther than "
            r"data.max_distance_km=1000\); nothing was cached\.$",
        ):
            source.load(progress=False)
    assert "1 event-station pairs farther than data.max_distance_km=1000 left out" in caplog.text


# ------------------------------------------------------------------ fast ingestion
def test_worker_processes_and_streaming_give_the_same_records_rejections_and_listing(tmp_path, uh4):
    wf, rows = tmp_path / "wf", []
    for e in range(3):
        for s in range(3):
            tr = restamped(uh4, f"S{s}")
            tr.stats.starttime += 3600 * e
            wf.mkdir(exist_ok=True)
            tr.write(str(wf / f"e{e}s{s}.mseed"), format="MSEED")
            rows.append(
                {
                    "event_id": f"e{e}",
                    "origin_time": str(UH_ORIGIN + 3600 * e),
                    "event_type": "earthquake",
                    "station_id": f"XX.S{s}",
                    "p_time": str(UH_P + 3600 * e),
                }
            )
    (wf / "junk.mseed").write_text("not a seismogram")
    lone = restamped(uh4, "LONE")
    lone.stats.starttime += 86400
    lone.write(str(wf / "lone.mseed"), format="MSEED")
    rows.append({**rows[0], "station_id": "XX.NONE"})
    catalog = csv_catalog(tmp_path / "cat.csv", rows)
    serial, parallel = (
        WaveformSource(waveform_dir=str(wf), catalog=catalog, num_workers=n).load(progress=False)
        for n in (0, 2)
    )
    # streamed to disk as read (the records stage's path): the same array, memory-mapped
    streamed = WaveformSource(waveform_dir=str(wf), catalog=catalog, num_workers=2).load(
        progress=False, waveform_path=tmp_path / "waveforms.npy"
    )
    assert len(serial) == 9 and isinstance(streamed.waveforms, np.memmap)
    np.testing.assert_array_equal(serial.waveforms, parallel.waveforms)
    np.testing.assert_array_equal(serial.waveforms, streamed.waveforms)
    pd.testing.assert_frame_equal(serial.metadata, parallel.metadata)
    pd.testing.assert_frame_equal(serial.rejected, parallel.rejected)
    assert sorted(serial.rejected.reason) == sorted(
        [Reason.UNREADABLE, Reason.NO_WAVEFORM, Reason.UNUSED_FILE]
    )


def test_taup_on_a_1_km_grid_is_within_10_ms_and_runs_once_per_node():
    from seisbert.data.geometry import _p_at_node, gridded_p_seconds

    rng = np.random.default_rng(0)
    near = zip(
        rng.uniform(0.2, 12, 8), rng.uniform(0, 4, 8)
    )  # near the source the curve bends most
    far = zip(rng.uniform(90, 200, 8), rng.uniform(0, 30, 8))  # and across the Pg/Pn crossover
    for dist, depth in [*near, *far]:
        assert (
            abs(gridded_p_seconds(dist, depth, "ak135", 1.0) - taup_p_seconds(dist, depth)) < 0.010
        )
    _p_at_node.cache_clear()
    for dist, depth in zip(
        np.linspace(100.1, 100.9, 30), np.linspace(8.1, 8.9, 30)
    ):  # one grid cell
        gridded_p_seconds(dist, depth, "ak135", 1.0)
    assert (_p_at_node.cache_info().misses, _p_at_node.cache_info().hits) == (4, 4 * 30 - 4)
    assert gridded_p_seconds(100.0, 8.0, "ak135", None) == taup_p_seconds(100.0, 8.0)
    assert gridded_p_seconds(100.0, 8.0, "ak135", 1.0) == pytest.approx(
        taup_p_seconds(100.0, 8.0), abs=1e-9
    )


def test_short_event_ids_fall_back_to_uris_only_where_they_clash():
    from seisbert.data.catalog import CatalogEvent, _unique_short_ids, short_event_id

    uris = ["smi:a/event/1", "smi:b/event/1", "smi:a/event/2"]
    events = _unique_short_ids(
        [CatalogEvent(short_event_id(u), "earthquake", event_uri=u) for u in uris]
    )
    assert [e.event_id for e in events] == ["smi:a/event/1", "smi:b/event/1", "2"]
