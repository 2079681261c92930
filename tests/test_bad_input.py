"""Bad input to ``data=waveforms``: each case gets its reason, the good records go on.

Every fixture is written by ObsPy (miniSEED, QuakeML) or pandas (CSV) into tmp_path.
The good record is BW.UH4 (ObsPy's bundled local event, 100 Hz) re-stamped as XX.GOOD;
each test adds one kind of bad input and checks the reason's text, the counts, and that
XX.GOOD is still loaded.
"""

import json
import logging
import math
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from obspy import UTCDateTime
from obspy.core.event import Catalog, Event, Origin, Pick, ResourceIdentifier, WaveformStreamID
from omegaconf import open_dict
from scipy.signal import welch

from seisbert.config import build
from seisbert.data.records import Reason, reason_counts
from seisbert.data.traces import power_gain, resampled
from seisbert.data.waveforms import WaveformSource, check_fits_features

OBSPY = Path(obspy.__file__).parent
UH4 = OBSPY / "signal/tests/data/BW.UH4._.EHZ.D.2010.147.cut.slist.gz"
UH_ORIGIN, UH_P = UTCDateTime("2010-05-27T16:24:33"), UTCDateTime("2010-05-27T16:24:34.16")
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
GOOD = {
    "event_id": "good",
    "origin_time": str(UH_ORIGIN),
    "event_type": "earthquake",
    "station_id": "XX.GOOD",
    "p_time": str(UH_P),
}
FMAX_HZ = 20.0  # features.fmax_hz of configs/features/psd.yaml


@pytest.fixture(scope="module")
def uh4() -> obspy.Trace:
    return obspy.read(str(UH4))[0]


def write(tr: obspy.Trace, folder: Path, station: str, name: str | None = None, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = tr.copy()
    out.stats.network, out.stats.station = "XX", station
    path = folder / (name or f"{station.lower()}.mseed")
    out.write(str(path), format="MSEED", **kw)
    return path


def pick_row(station: str, **kw) -> dict:
    return {**GOOD, "station_id": f"XX.{station}", **kw}


def source(tmp_path: Path, rows: list[dict], uh4, **kwargs) -> WaveformSource:
    """XX.GOOD plus whatever the test wrote under tmp_path/wf, and a CSV of ``rows``."""
    write(uh4, tmp_path / "wf", "GOOD")
    pd.DataFrame([GOOD, *rows]).to_csv(tmp_path / "cat.csv", index=False)
    return WaveformSource(
        waveform_dir=str(tmp_path / "wf"),
        catalog=str(tmp_path / "cat.csv"),
        fmax_hz=FMAX_HZ,
        **kwargs,
    )


def detail(rs, reason: str) -> str:
    return " | ".join(rs.rejected.detail[rs.rejected.reason == reason])


def assert_good_kept(rs) -> None:
    good = rs.metadata.station_id == "XX.GOOD"
    assert good.sum() == 1
    assert np.isfinite(rs.waveforms[np.flatnonzero(good)[0]]).all()


# --------------------------------------------------------------------- samples, files
def test_nan_and_inf_samples_reject_only_their_record(tmp_path, uh4):
    for station, value in (("NAN", np.nan), ("INF", np.inf)):
        tr = uh4.copy()
        tr.data = tr.data.astype(np.float32)
        tr.data[5000] = value  # 16:24:53.68, inside the cut
        write(tr, tmp_path / "wf", station)
    rs = source(tmp_path, [pick_row("NAN"), pick_row("INF")], uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.NONFINITE: 2}
    assert "XX.NAN..EHZ: 1 NaN or inf samples, the first at 2010-05-27T16:24:53.680000Z" in detail(
        rs, Reason.NONFINITE
    )
    assert sorted(rs.rejected.record) == ["good XX.INF", "good XX.NAN"]
    assert_good_kept(rs)
    assert len(rs) == 1


def test_truncated_and_corrupt_miniseed_are_rejected_with_obspys_warning(tmp_path, uh4):
    wf = tmp_path / "wf"
    full = write(uh4, wf, "TRU").read_bytes()
    (wf / "tru.mseed").write_bytes(full[: len(full) // 2 + 100])  # half a record at the end
    tr = uh4.copy()
    tr.data = tr.data.astype(np.int32)
    steim = bytearray(write(tr, wf, "STE", encoding="STEIM2", reclen=512).read_bytes())
    steim[512 * 10 + 100 : 512 * 10 + 300] = b"\x55" * 200  # damaged data frames, header intact
    (wf / "ste.mseed").write_bytes(bytes(steim))
    rs = source(tmp_path, [pick_row("TRU"), pick_row("STE")], uh4).load(progress=False)
    counts = reason_counts(rs.rejected)
    # The truncated file fails while indexing (so its pick has no waveform); the Steim
    # damage shows only when the samples are decoded, so it rejects the pair.
    assert counts == {Reason.CORRUPT: 2, Reason.NO_WAVEFORM: 1}
    text = detail(rs, Reason.CORRUPT)
    assert "tru.mseed: obspy warned: readMSEEDBuffer(): Last record only has 100 byte(s)" in text
    assert "Corrupt data?" in text and "Data integrity check for Steim2 failed" in text
    assert (
        rs.rejected.record[rs.rejected.reason == Reason.CORRUPT].str.endswith("tru.mseed").sum()
        == 1
    )
    assert_good_kept(rs)


def test_mixed_data_types_in_a_channel_have_their_own_reason(tmp_path, uh4):
    early, late = uh4.slice(endtime=UH_P - 5), uh4.slice(starttime=UH_P - 3)
    early.data = early.data.astype(np.int32)
    late.data = late.data.astype(np.float32)
    write(early, tmp_path / "wf", "MIX", "mix1.mseed")
    write(late, tmp_path / "wf", "MIX", "mix2.mseed")
    rs = source(tmp_path, [pick_row("MIX")], uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.MIXED_DTYPE: 1}
    assert (
        detail(rs, Reason.MIXED_DTYPE)
        == "XX.MIX..EHZ has pieces of data types ['float32', 'int32']"
    )
    assert_good_kept(rs)


# --------------------------------------------------------------------- resampling
def band_limited_noise(
    fs: float, start, f_hi: float, extra: tuple = (), seed: int = 0, duration_s: float = 200.0
) -> obspy.Trace:
    """The same continuous signal (equal-power sines, random phases, up to f_hi) at fs.

    ``extra`` adds a band of the same density (f_lo, f_hi) that only this rate carries.
    """
    t = np.arange(round(duration_s * fs)) / fs
    x = np.zeros_like(t)
    for lo, hi, s in ((0.05, f_hi, seed), *((lo, hi, seed + 1) for lo, hi in extra)):
        freqs = np.arange(lo, hi, 0.05)
        for f, phase in zip(freqs, np.random.default_rng(s).uniform(0, 2 * np.pi, len(freqs))):
            x += np.cos(2 * np.pi * f * t + phase)
    return obspy.Trace(x, {"sampling_rate": fs, "starttime": start, "channel": "HHZ"})


def psd_1hz(x: np.ndarray) -> np.ndarray:
    """One-sided PSD at 1 Hz resolution of a 100 Hz series (1-s Hann windows, like features)."""
    return welch(x, fs=100.0, nperseg=100)[1]


def test_polyphase_resampling_keeps_the_psd_up_to_fmax_and_does_not_alias():
    start = UTCDateTime(0)
    want = band_limited_noise(100.0, start, 23.0).data
    bins = slice(1, int(FMAX_HZ) + 1)  # 1..20 Hz
    up = resampled(band_limited_noise(50.0, start, 23.0).data, 50.0, 100.0)
    # 200 Hz with strong content at 60-95 Hz, which would alias to 5-40 Hz unfiltered
    down = resampled(
        band_limited_noise(200.0, start, 23.0, extra=((60.0, 95.0),)).data, 200.0, 100.0
    )
    for got in (up, down):
        assert len(got) == len(want)
        ratio = psd_1hz(got[500:-500])[bins] / psd_1hz(want[500:-500])[bins]
        assert np.all(np.abs(ratio - 1) < 0.1), ratio
        assert np.corrcoef(got[500:-500], want[500:-500])[0, 1] > 0.999  # sample by sample
    assert power_gain(40.0, 100.0, FMAX_HZ) == pytest.approx(0.25, abs=0.01)  # Nyquist = fmax
    assert power_gain(50.0, 100.0, FMAX_HZ) == pytest.approx(1.0, abs=0.01)
    assert power_gain(100.0, 100.0, 50.0) == 0.0  # no resampling, at Nyquist


def test_records_at_50_hz_match_100_hz_and_40_hz_is_rejected_for_its_nyquist(tmp_path, uh4):
    start, wf = UH_P - 50, tmp_path / "wf"
    for station, fs in (("R100", 100.0), ("R50", 50.0), ("R40", 40.0)):
        write(band_limited_noise(fs, start, 19.0), wf, station, encoding="FLOAT64")
    rows = [pick_row(s) for s in ("R100", "R50", "R40")]
    rs = source(tmp_path, rows, uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.LOW_NYQUIST: 1}
    assert detail(rs, Reason.LOW_NYQUIST) == (
        "XX.R40..HHZ at 40 Hz (Nyquist 20 Hz): resampled to 100 Hz it keeps 25% of the power at "
        "features.fmax_hz=20 Hz < data.min_power_at_fmax=0.9"
    )
    assert sorted(rs.metadata.station_id) == ["XX.GOOD", "XX.R100", "XX.R50"]
    wave = dict(zip(rs.metadata.station_id, rs.waveforms[:, 0]))
    ratio = psd_1hz(wave["XX.R50"])[1:21] / psd_1hz(wave["XX.R100"])[1:21]
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    assert_good_kept(rs)


# ---------------------------------------------------------------- events and files
def test_silent_drops_become_counted_reasons(tmp_path, uh4):
    lone = uh4.copy()
    lone.stats.starttime = UTCDateTime("2012-01-01")  # no event near it
    write(lone, tmp_path / "wf", "LONE")
    rows = [
        pick_row("NOWF"),  # a pick at a station with no waveform file
        {"event_id": "ghost", "event_type": "earthquake", "origin_time": ""},
        {"event_id": "unlocated", "event_type": "earthquake", "origin_time": "2010-05-27T18:00:00"},
        {
            "event_id": "quiet",
            "event_type": "blast",
            "origin_time": "2015-01-01T00:00:00",
            "latitude": 48.0,
            "longitude": 11.0,
        },
    ]
    rs = source(tmp_path, rows, uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {
        Reason.NO_ORIGIN: 2,
        Reason.NO_WAVEFORM: 1,
        Reason.NO_DATA: 1,
        Reason.UNUSED_FILE: 1,
    }
    by_record = dict(zip(rs.rejected.record, rs.rejected.detail))
    assert by_record["good XX.NOWF"] == (
        "P pick at 2010-05-27T16:24:34.160000Z, but data.waveform_dir holds no data of XX.NOWF"
    )
    assert by_record["ghost"] == "event ghost has no P pick and no origin time"
    assert "no epicentre (latitude, longitude)" in by_record["unlocated"]
    assert by_record["quiet"].startswith(
        "no station has data in [origin - 20 s, origin + 300 s] = [2014-12-31T23:59:40"
    )
    [unused] = [r for r in rs.rejected.record if r.endswith("lone.mseed")]
    assert "lone.mseed (XX.LONE, 2012-01-01T00:00:00" in by_record[unused]
    assert_good_kept(rs)


def test_conflicting_event_types_reject_the_event_naming_both(tmp_path, uh4):
    twins = [
        pick_row("GOOD", event_id="twin", event_type="earthquake"),
        pick_row("GOOD", event_id="twin", event_type="Quarry Blast"),
    ]
    rs = source(tmp_path, twins, uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.CONFLICTING_TYPE: 1}
    assert detail(rs, Reason.CONFLICTING_TYPE) == (
        "cat.csv: event twin is written as 'earthquake' (row 2) and 'quarry blast' (row 3)"
    )
    assert list(rs.metadata.event_id) == ["good"]
    # QuakeML: two events with one resource id
    rid = "smi:local/twin"
    events = [
        Event(
            resource_id=ResourceIdentifier(rid),
            event_type=kind,
            origins=[Origin(time=UH_ORIGIN, latitude=48.0, longitude=11.6)],
            picks=[Pick(time=UH_P, phase_hint="P", waveform_id=WaveformStreamID("XX", "GOOD"))],
        )
        for kind in ("earthquake", "explosion")
    ]
    good = Event(
        resource_id=ResourceIdentifier("smi:local/good"),
        event_type="earthquake",
        origins=[Origin(time=UH_ORIGIN)],
        picks=[Pick(time=UH_P, phase_hint="P", waveform_id=WaveformStreamID("XX", "GOOD"))],
    )
    Catalog([*events, good]).write(str(tmp_path / "cat.xml"), format="QUAKEML")
    rs = WaveformSource(waveform_dir=str(tmp_path / "wf"), catalog=str(tmp_path / "cat.xml")).load(
        progress=False
    )
    assert detail(rs, Reason.CONFLICTING_TYPE) == (
        "cat.xml: event twin is written as 'earthquake' (event 1) and 'explosion' (event 2)"
    )
    # the short id users know, with the resource URI kept beside it
    assert list(rs.metadata.event_id) == ["good"] and list(rs.metadata.event_uri) == [
        "smi:local/good"
    ]


def test_bad_catalogue_values_name_file_row_and_column_and_the_load_goes_on(tmp_path, uh4):
    rows = [
        pick_row("GOOD", event_id="bad-time", origin_time="not-a-time"),
        pick_row("GOOD", event_id="bad-lat", latitude="abc"),
        pick_row("GOOD", event_id="far-lat", latitude="91"),
        pick_row("GOOD", event_id="bad-pick", p_time="yesterday"),
    ]
    rs = source(tmp_path, rows, uh4).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.BAD_VALUE: 4}
    assert list(rs.rejected.detail) == [
        "cat.csv row 2 (line 3), column 'origin_time': 'not-a-time' is not a time (ISO 8601, "
        "e.g. 2020-01-01T12:00:00Z); row skipped",
        "cat.csv row 3 (line 4), column 'latitude': 'abc' is not a number; row skipped",
        "cat.csv row 4 (line 5), column 'latitude': '91' is not a number in [-90, 90]; row skipped",
        "cat.csv row 5 (line 6), column 'p_time': 'yesterday' is not a time (ISO 8601, "
        "e.g. 2020-01-01T12:00:00Z); row skipped",
    ]
    assert list(rs.rejected.record) == [f"cat.csv row {i}" for i in (2, 3, 4, 5)]
    assert list(rs.metadata.event_id) == ["good"]
    assert_good_kept(rs)


def test_stray_and_bad_rows_of_a_picks_file_are_counted(tmp_path, uh4):
    pd.DataFrame(
        {
            "event_id": ["good", "nope", "good"],
            "station_id": ["XX.GOOD", "XX.GOOD", ""],
            "p_time": [str(UH_P)] * 3,
        }
    ).to_csv(tmp_path / "picks.csv", index=False)
    rs = source(tmp_path, [], uh4, picks_csv=str(tmp_path / "picks.csv")).load(progress=False)
    assert reason_counts(rs.rejected) == {Reason.STRAY_PICK: 1, Reason.BAD_VALUE: 1}
    assert detail(rs, Reason.STRAY_PICK) == (
        "picks.csv row 2: event 'nope' is not in the catalogue (or was rejected)"
    )
    assert (
        detail(rs, Reason.BAD_VALUE)
        == "picks.csv row 3 (line 4), column 'station_id': '' is not set"
    )
    assert_good_kept(rs)


# ---------------------------------------------------------- nothing usable, paths
def compose_waveforms(tmp_path: Path, *overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["data=waveforms", "logger=none", *overrides])
    with open_dict(cfg):
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.output_dir = str(tmp_path / "out")
    return cfg


def test_misnamed_pick_column_is_an_error_with_counts_and_nothing_is_cached(tmp_path, uh4):
    from seisbert.pipeline import records_artifact

    write(uh4, tmp_path / "wf", "GOOD")
    pd.DataFrame(
        [
            {
                "event_id": "good",
                "origin_time": str(UH_ORIGIN),
                "event_type": "earthquake",
                "station_id": "XX.GOOD",
                "p_arrival": str(UH_P),
            }
        ]
    ).to_csv(tmp_path / "c.csv", index=False)
    cfg = compose_waveforms(
        tmp_path, f"data.waveform_dir={tmp_path / 'wf'}", f"data.catalog={tmp_path / 'c.csv'}"
    )
    with pytest.raises(
        ValueError,
        match=(
            r"^data=waveforms: no usable record from 1 catalogue events \(rejected "
            r"\{'no pick and no origin': 1\}\); nothing was cached\. .* The catalogue's columns "
            r"\['p_arrival'\] map to no role: .* data.csv_columns.p_time=<column>\.$"
        ),
    ):
        records_artifact(cfg)
    assert not list((tmp_path / "cache").rglob("waveforms.npy"))
    assert not list((tmp_path / "cache").rglob("rejected.csv"))


def test_missing_or_unset_paths_fail_in_one_sentence_before_any_work(tmp_path, uh4, caplog):
    wf = write(uh4, tmp_path / "wf", "GOOD").parent
    cases = [
        (
            dict(waveform_dir=str(tmp_path / "nope"), catalog="c.csv"),
            FileNotFoundError,
            f"data.waveform_dir='{tmp_path / 'nope'}' is not a folder",
        ),
        (
            dict(waveform_dir=str(wf), catalog=str(tmp_path / "none.xml")),
            FileNotFoundError,
            f"data.catalog='{tmp_path / 'none.xml'}' does not exist",
        ),
        (
            dict(waveform_dir=str(wf), catalog="???"),
            ValueError,
            "data.catalog is not set; data=waveforms needs it, e.g. "
            "data.catalog=/path/to/events.xml",
        ),
        (
            dict(waveform_dir=str(wf), catalog=str(tmp_path / "c.csv"), inventory="/no/*.xml"),
            FileNotFoundError,
            "data.inventory='/no/*.xml' matches no file",
        ),
    ]
    pd.DataFrame([GOOD]).to_csv(tmp_path / "c.csv", index=False)
    with caplog.at_level(logging.INFO):
        for kwargs, error, message in cases:
            with pytest.raises(error) as info:
                WaveformSource(**kwargs).load(progress=False)
            assert str(info.value) == message
    assert "indexed" not in caplog.text  # no file was touched
    # Hydra's ??? reaches the source as it is; check_paths is what validate() calls.
    cfg = compose_waveforms(tmp_path, f"data.waveform_dir={wf}")
    with pytest.raises(ValueError, match=r"^data.catalog is not set"):
        build(cfg.data, "data").check_paths()


def test_empty_and_header_only_catalogues_are_one_sentence(tmp_path, uh4):
    wf = write(uh4, tmp_path / "wf", "GOOD").parent
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "empty.xml").write_text("")
    (tmp_path / "header.csv").write_text("event_id,origin_time,event_type\n")
    Catalog().write(str(tmp_path / "none.xml"), format="QUAKEML")
    cases = {
        "empty.csv": r"^data.catalog='.*empty.csv' is empty \(0 bytes\)$",
        "empty.xml": r"^data.catalog='.*empty.xml' is empty \(0 bytes\)$",
        "header.csv": (
            r"^data.catalog='.*header.csv' has a header \['event_id', 'origin_time', "
            r"'event_type'\] but no rows, so it holds no events$"
        ),
        "none.xml": r"^data.catalog='.*none.xml' holds no events \(an empty QuakeML catalogue\)$",
    }
    for name, pattern in cases.items():
        with pytest.raises(ValueError, match=pattern):
            WaveformSource(waveform_dir=str(wf), catalog=str(tmp_path / name)).load(progress=False)


def test_data_window_and_fmax_must_cover_the_features():
    data, features = (
        {"pre_s": 20.0, "post_s": 100.0, "fmax_hz": 20.0},
        {"pre_s": 10.0, "post_s": 80.0, "fmax_hz": 20.0},
    )
    check_fits_features(data, features)  # the defaults fit
    with pytest.raises(
        ValueError,
        match=r"^data.post_s=60 is shorter than features.post_s=80: .*"
        r"set data.post_s >= 80$",
    ):
        check_fits_features({**data, "post_s": 60.0}, features)
    with pytest.raises(ValueError, match=r"^data.fmax_hz=15 is below features.fmax_hz=20"):
        check_fits_features({**data, "fmax_hz": 15.0}, features)
    check_fits_features({"n_events": 80}, features)  # a source without a cut is not checked


def test_rejections_reach_rejected_csv_and_summary_json(tmp_path, uh4):
    from seisbert.pipeline import features_artifact, records_artifact

    wf = tmp_path / "wf"
    rows = []
    for i in range(4):  # four good events an hour apart, so every split can get one
        tr = uh4.copy()
        tr.stats.starttime += 3600 * i
        write(tr, wf, f"G{i}")
        rows.append(
            pick_row(
                f"G{i}",
                event_id=f"e{i}",
                origin_time=str(UH_ORIGIN + 3600 * i),
                p_time=str(UH_P + 3600 * i),
            )
        )
    bad = uh4.copy()
    bad.data = bad.data.astype(np.float32)
    bad.data[5000] = np.nan
    write(bad, wf, "NAN")
    rows += [pick_row("NAN", event_id="e0"), pick_row("G1", event_id="oops", latitude="abc")]
    pd.DataFrame(rows).to_csv(tmp_path / "cat.csv", index=False)
    cfg = compose_waveforms(
        tmp_path, f"data.waveform_dir={wf}", f"data.catalog={tmp_path / 'cat.csv'}"
    )
    want = {Reason.NONFINITE: 1, Reason.BAD_VALUE: 1}
    records = records_artifact(cfg)
    assert reason_counts(pd.read_csv(records / "rejected.csv")) == want
    summary = json.loads((features_artifact(cfg) / "summary.json").read_text())
    assert summary["records"] == 4 and summary["rejected"] == want
    assert math.isclose(sum(sum(c.values()) for c in summary["per_split_and_class"].values()), 4)
