"""The SeisBench wrapper: ``classify`` on an ObsPy stream equals ``seisbert predict``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import predict_cfg, trained
from obspy import Stream, Trace, UTCDateTime
from obspy.core.event import Catalog, Event, Pick, ResourceIdentifier, WaveformStreamID

from seisbert.inference.cli import apply_bundle as cli_run
from seisbert.pipeline import TokenSet, load_records

pytest.importorskip(
    "seisbench", reason="SeisBench not installed: pip install 'seisbert[seisbench]'"
)
from seisbench.models import WaveformModel  # noqa: E402

from seisbert.inference.seisbench import SeisBertClassifier  # noqa: E402

START = UTCDateTime(2021, 6, 1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained(str(tmp_path_factory.mktemp("seisbench_run")))


def event_stream(run) -> tuple[Stream, UTCDateTime]:
    """The stations of one test-split event, with 20 s of data before the record and 30 after."""
    tset, records = TokenSet.load(run["tokens"]), load_records(run["records"])
    meta = tset.metadata
    event = meta.loc[meta["split"] == "test", "event_id"].iloc[0]
    rng = np.random.default_rng(1)
    st = Stream()
    for row in np.flatnonzero(meta["event_id"].to_numpy() == event):
        wave = np.asarray(records.waveforms[meta["record_index"][row], 0], np.float64)
        data = np.concatenate(
            [rng.normal(0, wave[:500].std(), 2000), wave, rng.normal(0, wave[-500:].std(), 3000)]
        )
        net, sta = meta["station_id"][row].split(".")
        st += Trace(
            data.astype(np.float32),
            {
                "network": net,
                "station": sta,
                "channel": "HHZ",
                "sampling_rate": 100.0,
                "starttime": START,
            },
        )
    return st, START + 20 + 10  # P sits 10 s into the record


def test_is_a_seisbench_waveform_model(run):
    model = SeisBertClassifier(run["bundle"])
    assert isinstance(model, WaveformModel)
    assert model.sampling_rate == 100.0 and model.component_order == "Z"
    assert model.labels == ["earthquake", "blast"]
    with pytest.raises(NotImplementedError, match="classify"):
        model.annotate(Stream())


def test_classify_matches_predict_on_the_same_traces(run, tmp_path):
    st, p_time = event_stream(run)
    out = SeisBertClassifier(run["bundle"]).classify(st, p_time=p_time, event_id="ev1")
    assert len(out.stations) == len(st) and out.rejected == []
    st.write(str(tmp_path / "ev1.mseed"), format="MSEED")
    ev = Event(
        resource_id=ResourceIdentifier("smi:local/event/ev1"),
        event_type="earthquake",
        picks=[
            Pick(
                time=p_time,
                phase_hint="P",
                waveform_id=WaveformStreamID(tr.stats.network, tr.stats.station),
            )
            for tr in st
        ],
    )
    Catalog([ev]).write(str(tmp_path / "catalog.xml"), format="QUAKEML")
    cli_run(
        predict_cfg(
            tmp_path / "out",
            [
                f"bundle={run['bundle']}",
                "data=waveforms",
                f"data.waveform_dir={tmp_path}",
                f"data.catalog={tmp_path / 'catalog.xml'}",
                "data.file_glob=*.mseed",
                "predict.progress=false",
            ],
        )
    )
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv").set_index("station_id")
    got = {s["station_id"]: s["prob_blast"] for s in out.stations}
    np.testing.assert_allclose([got[s] for s in pred.index], pred["prob_blast"], rtol=0, atol=1e-7)
    assert out.prob_blast == pytest.approx(pred["prob_blast"].mean())
    assert out.decision == ("blast" if out.prob_blast >= 0.5 else "earthquake")


def test_classify_reports_a_station_it_cannot_use(run):
    st, p_time = event_stream(run)
    st[0].data = st[0].data[:4000]  # 40 s: ends before the window
    out = SeisBertClassifier(run["bundle"]).classify(st, p_time=p_time)
    assert [r["reason"] for r in out.rejected] == ["too short for the window"]
    assert len(out.stations) == len(st) - 1
    with pytest.raises(ValueError, match="classify needs the P arrival: p_time"):
        SeisBertClassifier(run["bundle"]).classify(st)


def test_classify_takes_an_obspy_event_and_names_a_missing_pick(run):
    st, p_time = event_stream(run)
    ids = sorted({f"{tr.stats.network}.{tr.stats.station}" for tr in st})
    model = SeisBertClassifier(run["bundle"])
    by_time = model.classify(st, p_time=p_time)
    picks = [
        Pick(time=p_time, phase_hint="P", waveform_id=WaveformStreamID(*sid.split(".")))
        for sid in ids[1:]
    ]  # the first station has no pick
    out = model.classify(st, event=Event(picks=picks))
    assert [s["station_id"] for s in out.stations] == [
        s["station_id"] for s in by_time.stations if s["station_id"] != ids[0]
    ]
    for got, want in zip(out.stations, by_time.stations[1:]):
        assert got["prob_blast"] == pytest.approx(want["prob_blast"], abs=1e-6)
    assert out.rejected == [
        {
            "record": ids[0],
            "reason": "missing pick",
            "detail": f"no P pick for {ids[0]} in the event, and no inventory and origin for TauP",
        }
    ]
    with pytest.raises(ValueError, match="classify needs the P arrival"):
        model.classify(st)
