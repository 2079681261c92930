"""``seisbert predict`` / ``evaluate``: the fine-tuning run's numbers, reasons for bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from bundle_helpers import pipeline_probabilities, predict_cfg, trained
from obspy import Trace, UTCDateTime
from obspy.core.event import Catalog, Event, Origin, Pick, ResourceIdentifier, WaveformStreamID

from seisbert.bundle import load_bundle
from seisbert.config import build
from seisbert.data.records import RecordSet
from seisbert.inference.cli import apply_bundle as cli_run
from seisbert.inference.predict import (
    PredictConfig,
    event_table,
    prediction_table,
    prior_shift,
    score,
    score_chunks,
    waveform_rows,
)
from seisbert.pipeline import FeatureSet, TokenSet, load_records

START = UTCDateTime(2021, 3, 1)
PAD_S = 5.0  # file data before and after the record: the waveform source's taper lives there
FS = 100.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained(str(tmp_path_factory.mktemp("predict_run")))


def zero_line_padded(x: np.ndarray, pad: int) -> np.ndarray:
    """``x`` with constant pads (a before, b after) chosen so the whole trace has a zero
    least-squares line: the source's linear detrend then leaves ``x`` as it is."""
    n = len(x) + 2 * pad
    t = np.arange(n) - (n - 1) / 2
    pre, post = np.zeros(n), np.zeros(n)
    pre[:pad], post[-pad:] = 1.0, 1.0
    full = np.concatenate([np.zeros(pad), x.astype(np.float64), np.zeros(pad)])
    A = np.array([[pre.sum(), post.sum()], [(t * pre).sum(), (t * post).sum()]])
    a, b = np.linalg.solve(A, -np.array([full.sum(), (t * full).sum()]))
    return full + a * pre + b * post


def write_event(
    folder, catalog: Catalog, event_id: str, kind: str, p_time, stations: dict, pick: bool = True
) -> None:
    """One QuakeML event (type, origin, P picks) and one miniSEED file per station."""
    ev = Event(
        resource_id=ResourceIdentifier(f"smi:local/event/{event_id}"),
        event_type=kind,
        origins=[Origin(time=p_time - 5, latitude=40.0, longitude=-112.0, depth=5000.0)],
    )
    for station_id, trace in stations.items():
        net, sta = station_id.split(".")
        trace.stats.network, trace.stats.station, trace.stats.channel = net, sta, "HHZ"
        trace.write(
            str(folder / f"{event_id}.{station_id}.mseed"), format="MSEED", encoding="FLOAT32"
        )
        if pick:
            ev.picks.append(
                Pick(time=p_time, phase_hint="P", waveform_id=WaveformStreamID(net, sta, "", "HHZ"))
            )
    catalog.append(ev)


def records_as_files(run: dict, folder, n_events: int = 2):
    """Test-split records of the fine-tuning run written as miniSEED + QuakeML."""
    tset = TokenSet.load(run["tokens"])
    records = load_records(run["records"])
    meta = tset.metadata
    events = meta.loc[meta["split"] == "test", "event_id"].drop_duplicates().iloc[:n_events]
    catalog, rows = Catalog(), []
    for k, event_id in enumerate(events):
        p_time = START + 3600 * k + 10 + PAD_S
        stations = {}
        for row in np.flatnonzero(meta["event_id"].to_numpy() == event_id):
            wave = np.asarray(records.waveforms[meta["record_index"][row], 0])
            stations[meta["station_id"][row]] = Trace(
                zero_line_padded(wave, round(PAD_S * FS)).astype(np.float32),
                {"sampling_rate": FS, "starttime": START + 3600 * k},
            )
            rows.append(row)
        kind = (
            "quarry blast"
            if meta.loc[meta["event_id"] == event_id, "label"].iloc[0]
            else "earthquake"
        )
        write_event(folder, catalog, event_id, kind, p_time, stations)
    return catalog, np.array(rows)


def waveform_overrides(folder) -> list[str]:
    return [
        "data=waveforms",
        f"data.waveform_dir={folder}",
        f"data.catalog={folder / 'catalog.xml'}",
        "data.file_glob=*.mseed",
        "data.pre_s=10",
        "data.post_s=80",
        "predict.progress=false",
    ]


def test_predict_on_miniseed_equals_the_fine_tuning_run(run, tmp_path):
    wf = tmp_path / "archive"
    wf.mkdir()
    catalog, rows = records_as_files(run, wf)
    catalog.write(str(wf / "catalog.xml"), format="QUAKEML")
    cfg = predict_cfg(tmp_path / "out", [f"bundle={run['bundle']}", *waveform_overrides(wf)])
    cli_run(cfg)
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv")
    expected = pipeline_probabilities(run, rows)
    tset_meta = TokenSet.load(run["tokens"]).metadata.iloc[rows]
    key = [f"{e}|{s}" for e, s in zip(tset_meta["event_id"], tset_meta["station_id"])]
    short = pred["event_id"].str.rsplit("/", n=1).str[-1]  # the URI's id, or the short id itself
    got = pred.set_index(short + "|" + pred["station_id"]).loc[key, "prob_blast"]
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=0, atol=1e-6)
    # the same tokens as the training run's tokenizer stage gave these records
    bundle = load_bundle(run["bundle"])
    source = build(cfg.data, "data")
    records = source.load(progress=False)
    scored = score(bundle, records, PredictConfig(progress=False))
    chunks = list(score_chunks(bundle, records, PredictConfig(progress=False, chunk_records=3)))
    order = [
        key.index(f"{str(e).rsplit('/', 1)[-1]}|{s}")
        for e, s in zip(scored.metadata["event_id"], scored.metadata["station_id"])
    ]
    tokens = np.concatenate([c.tokens for c in chunks])
    trained_tokens = np.asarray(TokenSet.load(run["tokens"]).tokens)[rows[order]]
    np.testing.assert_array_equal(tokens, trained_tokens)
    trained_features = np.asarray(FeatureSet.load(run["features"]).features)[rows[order]]
    features = np.concatenate([c.features for c in chunks])
    np.testing.assert_allclose(features, trained_features, rtol=0, atol=1e-4)  # log10 units
    assert not list((tmp_path / "out").glob(".records-*"))  # the streamed waveforms are removed
    events = pd.read_csv(tmp_path / "out" / "events.csv")
    assert len(events) == 2 and events["n_stations"].sum() == len(rows)
    assert set(events["decision"]) <= {"earthquake", "blast"}


def test_bad_inputs_each_give_their_reason_and_the_rest_is_classified(run, tmp_path):
    wf = tmp_path / "archive"
    wf.mkdir()
    catalog, rows = records_as_files(run, wf, n_events=1)
    noise = np.random.default_rng(0).normal(size=12_000).astype(np.float32)
    p_time = START + 7200 + 15
    write_event(
        wf,
        catalog,
        "short",
        "earthquake",
        p_time,  # 30 s of data: too short for 90 s
        {"XX.SHRT": Trace(noise[:3000], {"sampling_rate": FS, "starttime": p_time - 15})},
    )
    write_event(
        wf,
        catalog,
        "slow",
        "earthquake",
        p_time + 3600,  # 20 Hz: below min_sampling_rate_hz
        {"XX.SLOW": Trace(noise[:2400], {"sampling_rate": 20.0, "starttime": p_time + 3600 - 15})},
    )
    write_event(
        wf,
        catalog,
        "nopick",
        "earthquake",
        p_time + 7200,  # data near origin, no pick
        {"XX.NOPK": Trace(noise, {"sampling_rate": FS, "starttime": p_time + 7200 - 15})},
        pick=False,
    )
    (wf / "broken.mseed").write_bytes(b"this is not miniSEED" * 50)
    catalog.write(str(wf / "catalog.xml"), format="QUAKEML")
    cli_run(predict_cfg(tmp_path / "out", [f"bundle={run['bundle']}", *waveform_overrides(wf)]))
    rejected = pd.read_csv(tmp_path / "out" / "rejected.csv")
    assert sorted(rejected["reason"]) == sorted(
        ["unreadable file", "too short for the window", "unexpected sampling rate", "missing pick"]
    )
    assert "broken.mseed" in " ".join(rejected["detail"])
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) == len(rows)


def test_data_that_does_not_fit_the_bundle_is_refused(run, tmp_path):
    cfg = predict_cfg(
        tmp_path / "out",
        [
            f"bundle={run['bundle']}",
            *waveform_overrides(tmp_path),
            "data.pre_s=5",
            "data.sampling_rate_hz=50",
        ],
    )
    with pytest.raises(
        ValueError,
        match=r"data.sampling_rate_hz=50 but the bundle's features need 100 Hz "
        r"records; data.pre_s=5 is shorter than the bundle's features.pre_s=10",
    ):
        cli_run(cfg)
    assert not (tmp_path / "out" / "predictions.csv").exists()


def test_prior_shift_is_bayes_rule():
    p = np.array([0.1, 0.4, 0.5, 0.9])
    np.testing.assert_allclose(prior_shift(p, 0.5, 0.5), p)
    np.testing.assert_allclose(
        prior_shift(0.5, 0.5, 0.7), 0.7
    )  # an undecided record takes the prior
    shifted = prior_shift(p, 0.3, 0.8)
    odds = lambda q: q / (1 - q)  # noqa: E731
    np.testing.assert_allclose(odds(shifted) / odds(p), odds(0.8) / odds(0.3))
    np.testing.assert_allclose(prior_shift(shifted, 0.8, 0.3), p)


def test_prior_blast_moves_decisions_and_event_means(run):
    bundle = load_bundle(run["bundle"])
    meta = pd.DataFrame(
        {"event_id": ["a", "a", "b"], "station_id": ["X.1", "X.2", "X.1"], "label": [1, 1, 0]}
    )

    class Fake:  # only the fields prediction_table reads
        metadata, prob_blast = meta, np.array([0.35, 0.45, 0.2])

    plain = prediction_table(Fake, bundle, PredictConfig())
    shifted = prediction_table(Fake, bundle, PredictConfig(prior_blast=0.7))
    assert list(plain["predicted"]) == ["earthquake"] * 3
    assert list(shifted["predicted"]) == ["blast", "blast", "earthquake"]  # 0.2 -> 0.37 stays
    events = event_table(shifted, PredictConfig(prior_blast=0.7), bundle.class_names)
    np.testing.assert_allclose(
        events["mean_prob_blast"],
        [prior_shift(np.array([0.35, 0.45]), 0.5, 0.7).mean(), prior_shift(0.2, 0.5, 0.7)],
    )
    assert list(events["n_stations"]) == [2, 1] and list(events["decision"]) == [
        "blast",
        "earthquake",
    ]


def test_evaluate_writes_metrics_and_figures(run, tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = tmp_path / "eval"
    cli_run(
        predict_cfg(
            out,
            [
                f"bundle={run['bundle']}",
                "mode=evaluate",
                "data=synthetic",
                "data.n_events=40",
                "data.seed=7",
                "predict.progress=false",
            ],
        )
    )
    metrics = json.loads((out / "metrics.json").read_text())
    pred = pd.read_csv(out / "predictions.csv")
    assert metrics["n"] == len(pred) > 0
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(pred["label"], pred["prob_blast"]))
    assert metrics["pr_auc"] == pytest.approx(
        average_precision_score(pred["label"], pred["prob_blast"])
    )
    assert metrics["event_n"] == pred["event_id"].nunique()
    for name in ("confusion_record", "confusion_event", "reliability", "roc"):
        assert (out / f"{name}.png").stat().st_size > 1000


def test_a_csv_of_files_and_p_times_predicts_the_same_and_names_each_bad_line(run, tmp_path):
    """data=file_list: the same probabilities as the fine-tuning run; no event types needed
    for predict; a missing file, a bad time and a broken file each rejected with their line."""
    wf = tmp_path / "archive"
    wf.mkdir()
    catalog, rows = records_as_files(run, wf)
    lines = [
        {
            "file": f"archive/{ev.resource_id.id.rsplit('/', 1)[-1]}.{p.waveform_id.network_code}."
            f"{p.waveform_id.station_code}.mseed",
            "p_time": str(p.time),
            "event_id": ev.resource_id.id.rsplit("/", 1)[-1],
        }
        for ev in catalog
        for p in ev.picks
    ]
    (wf / "broken.mseed").write_bytes(b"this is not miniSEED" * 50)
    lines += [
        {"file": "archive/missing.mseed", "p_time": lines[0]["p_time"], "event_id": "x"},
        {"file": lines[0]["file"], "p_time": "yesterday", "event_id": "x"},
        {"file": "archive/broken.mseed", "p_time": lines[0]["p_time"], "event_id": "x"},
    ]
    pd.DataFrame(lines).to_csv(
        tmp_path / "records.csv", index=False
    )  # no station_id, no event_type
    cli_run(
        predict_cfg(
            tmp_path / "out",
            [
                f"bundle={run['bundle']}",
                "data=file_list",
                f"data.file_list={tmp_path / 'records.csv'}",
                "data.pre_s=10",
                "data.post_s=80",
                "predict.progress=false",
            ],
        )
    )
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv")
    meta = TokenSet.load(run["tokens"]).metadata.iloc[rows]
    got = pred.set_index(pred["event_id"] + "|" + pred["station_id"]).loc[
        [f"{e}|{s}" for e, s in zip(meta["event_id"], meta["station_id"])], "prob_blast"
    ]
    np.testing.assert_allclose(got.to_numpy(), pipeline_probabilities(run, rows), rtol=0, atol=1e-6)
    assert set(pred["source_type"]) == {"unknown"} and set(pred["label"]) == {-1}
    rejected = pd.read_csv(tmp_path / "out" / "rejected.csv")
    n = len(rows)
    assert list(rejected["record"].str.split(" ").str[0]) == [
        f"records.csv:{n + 2 + k}" for k in range(3)
    ]
    assert list(rejected["reason"]) == ["unreadable file", "bad catalogue value", "unreadable file"]
    assert (
        "missing.mseed does not exist" in rejected["detail"][0]
        and "yesterday" in rejected["detail"][1]
    )
    # training (and evaluate) need a class for every record: keep is refused there
    with pytest.raises(
        ValueError, match="data.unknown_type=keep: evaluate needs the class of every record"
    ):
        cli_run(
            predict_cfg(
                tmp_path / "eval",
                [
                    f"bundle={run['bundle']}",
                    "mode=evaluate",
                    "data=file_list",
                    f"data.file_list={tmp_path / 'records.csv'}",
                    "data.unknown_type=keep",
                ],
            )
        )
    with pytest.raises(
        ValueError, match="lacks the column\\(s\\) 'p_time' \\(data.file_columns.p_time\\)"
    ):
        pd.DataFrame(lines).drop(columns="p_time").to_csv(tmp_path / "bad.csv", index=False)
        cli_run(
            predict_cfg(
                tmp_path / "out2",
                [
                    f"bundle={run['bundle']}",
                    "data=file_list",
                    f"data.file_list={tmp_path / 'bad.csv'}",
                    "data.pre_s=10",
                    "data.post_s=80",
                    "predict.progress=false",
                ],
            )
        )


def test_chunked_scoring_equals_one_chunk(run):
    """Chunks of 7 give bit-identical probabilities, the same kept rows and the same rejections
    (with their record_index) as one chunk, for memory-mapped and in-memory waveforms."""
    bundle = load_bundle(run["bundle"])
    mapped = load_records(run["records"])
    assert isinstance(mapped.waveforms, np.memmap)
    waves = np.array(mapped.waveforms[:40])
    waves[[3, 20]] = 0.0  # two records the features stage rejects, in different chunks of 7
    in_memory = RecordSet(
        waves, mapped.metadata.iloc[:40], mapped.sampling_rate_hz, mapped.channels
    )
    for records in (mapped, in_memory):
        one = score(bundle, records, PredictConfig(progress=False, chunk_records=10**6))
        seven = score(bundle, records, PredictConfig(progress=False, chunk_records=7))
        np.testing.assert_array_equal(seven.prob_blast, one.prob_blast)
        pd.testing.assert_frame_equal(seven.metadata, one.metadata)
        pd.testing.assert_frame_equal(seven.rejected, one.rejected)
    assert [d.split()[0] for d in one.rejected["detail"]] == ["record_index=3", "record_index=20"]
    assert len(one.metadata) == 38 and 3 not in set(one.metadata["record_index"])


TABLES = ("predictions.csv", "events.csv", "rejected.csv")


def test_predict_tables_do_not_depend_on_the_chunk_size(run, tmp_path):
    tables = {}
    for chunk in (7, 100_000):
        out = tmp_path / str(chunk)
        cli_run(
            predict_cfg(
                out,
                [
                    f"bundle={run['bundle']}",
                    "data=synthetic",
                    "data.n_events=30",
                    "data.seed=11",
                    "predict.progress=false",
                    f"predict.chunk_records={chunk}",
                ],
            )
        )
        tables[chunk] = {n: (out / n).read_bytes() for n in TABLES}
    assert tables[7] == tables[100_000]
    assert len(pd.read_csv(tmp_path / "7" / "predictions.csv")) > 7 * 3  # several chunks


def test_waveform_rows_reads_a_memory_map_by_file(tmp_path):
    rows = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    np.save(tmp_path / "w.npy", rows)
    mapped = np.load(tmp_path / "w.npy", mmap_mode="r")
    for start, stop in ((0, 2), (2, 5), (4, 9), (5, 7)):
        got = waveform_rows(mapped, start, stop)
        assert not isinstance(got, np.memmap)
        np.testing.assert_array_equal(got, rows[start:stop])
    view = mapped[1:]  # a view of a map: its own rows, not its file's
    np.testing.assert_array_equal(waveform_rows(view, 1, 3), rows[2:4])


def test_chunk_records_must_be_positive():
    with pytest.raises(ValueError, match=r"predict\.chunk_records=0 is out of range; allowed \[1,"):
        PredictConfig(chunk_records=0)


def test_predict_writes_the_input_quakeml_back_with_event_types(run, tmp_path):
    import obspy

    wf = tmp_path / "archive"
    wf.mkdir()
    catalog, _ = records_as_files(run, wf)
    extra = catalog[0].copy()  # an event no waveform belongs to: kept, said unclassified
    extra.resource_id = obspy.core.event.ResourceIdentifier("smi:local/event/nowaveforms")
    extra.picks = []
    catalog.append(extra)
    for event in catalog:
        event.event_type = "not reported"  # an archive without types: predict supplies them
    catalog.write(str(wf / "catalog.xml"), format="QUAKEML")
    cli_run(
        predict_cfg(
            tmp_path / "out",
            [f"bundle={run['bundle']}", *waveform_overrides(wf), "data.unknown_type=keep"],
        )
    )
    events = pd.read_csv(tmp_path / "out" / "events.csv").set_index("event_uri")
    back = obspy.read_events(str(tmp_path / "out" / "events.xml"))
    assert [e.resource_id.id for e in back] == [e.resource_id.id for e in catalog]
    for event in back[:-1]:
        row = events.loc[event.resource_id.id]
        assert (
            event.event_type
            == {"earthquake": "earthquake", "blast": "quarry blast"}[row["decision"]]
        )
        assert f"P(blast)={row['mean_prob_blast']:.4f}" in event.comments[-1].text
    for given, written in zip(catalog, back):  # origins and picks are the input's
        assert written.origins[0].time == given.origins[0].time
        assert [p.time for p in written.picks] == [p.time for p in given.picks]
    assert back[-1].event_type == "not reported"
    assert back[-1].comments[-1].text == "seisbert: not classified (no usable record)"


def test_evaluate_warns_when_every_record_is_called_one_class(run, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="seisbert.summary"):
        cli_run(
            predict_cfg(
                tmp_path / "eval",
                [
                    f"bundle={run['bundle']}",
                    "mode=evaluate",
                    "data=synthetic",
                    "data.n_events=40",
                    "data.seed=7",
                    "predict.progress=false",
                    "predict.threshold=0.0",
                ],
            )
        )
    n = len(pd.read_csv(tmp_path / "eval" / "predictions.csv"))
    assert caplog.messages == [
        f"the classifier predicts one class on these records: all {n} records are called "
        "'blast' (collapsed; its balanced accuracy 0.500 says nothing)"
    ]
