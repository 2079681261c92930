"""SeisBench format: export -> import round trip, the file layout, foreign datasets."""

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from obspy.signal.rotate import rotate_ne_rt
from omegaconf import OmegaConf

from seisbert.data.records import Reason, RecordSet
from seisbert.data.seisbench_format import SeisBenchSource, export_seisbench
from seisbert.data.traces import antialias_filter

ROOT = Path(__file__).resolve().parents[1]
KEY_COLUMNS = [
    "event_id",
    "station_id",
    "source_type",
    "label",
    "trace_p_arrival_sample",
    "trace_npts",
    "trace_start_time",
    "source_magnitude",
    "path_ep_distance_km",
]


def record_set(channels: str = "Z", seed: int = 0) -> RecordSet:
    """Five records with awkward ids, NaN padding and NaN metadata, on the 20 s + 100 s cut."""
    rng = np.random.default_rng(seed)
    n, S = 5, 12000
    npts = np.array([12000, 9000, 11000, 12000, 10001])
    p = np.array([2000, 2000, 1500, 2000, 0])
    waves = rng.standard_normal((n, len(channels), S)).astype(np.float32) * 1e-6  # (N, C, S)
    waves[np.broadcast_to(np.arange(S) >= npts[:, None, None], waves.shape)] = np.nan
    meta = pd.DataFrame(
        {
            "event_id": ["smi:ch.ethz/event/1$a", "smi:ch.ethz/event/1$a", "ev2", "ev3", "ev4"],
            "station_id": ["UU.SRU", "UU.001", "S01", "UU.SRU", "XX.LONG.NAME"],
            "source_type": ["earthquake", "earthquake", "blast", "blast", "earthquake"],
            "label": [0, 0, 1, 1, 0],
            "trace_p_arrival_sample": p,
            "trace_npts": npts,
            "trace_start_time": [f"2020-01-0{i + 1}T12:00:00.010000Z" for i in range(n)],
            "source_magnitude": [1.23456789012345, np.nan, 2.5, 0.1, 3.0],
            "path_ep_distance_km": rng.uniform(10, 200, n),
        }
    )
    return RecordSet(waves, meta, 100.0, channels)


@pytest.mark.parametrize("channels", ["Z", "ZRT"])
def test_export_import_round_trip_is_exact(tmp_path, channels):
    records = record_set(channels)
    split = np.array(["train", "train", "val", "test", "dev"])
    export_seisbench(records, split, tmp_path, progress=False)
    back = SeisBenchSource(path=str(tmp_path), channels=channels).load(progress=False)
    assert back.rejected.empty and back.channels == channels
    np.testing.assert_array_equal(back.waveforms, records.waveforms)  # NaN where NaN
    pd.testing.assert_frame_equal(
        back.metadata[KEY_COLUMNS], records.metadata[KEY_COLUMNS], check_dtype=False
    )
    assert list(back.metadata["split"]) == ["train", "train", "dev", "test", "dev"]


def test_files_follow_the_seisbench_layout(tmp_path):
    records = record_set("ZRT")
    export_seisbench(records, None, tmp_path, progress=False)
    meta = pd.read_csv(tmp_path / "metadata.csv", dtype=str)
    assert {
        "trace_name",
        "trace_category",
        "source_id",
        "station_network_code",
        "station_code",
        "trace_p_arrival_sample",
        "trace_sampling_rate_hz",
    } <= set(meta.columns)
    assert "split" not in meta and "event_id" not in meta
    assert list(meta.trace_category) == list(records.metadata.source_type)
    assert list(meta.station_code[:3]) == ["SRU", "001", "S01"]  # codes stay text
    assert meta.station_network_code.isna()[2]  # "S01" has no network
    assert not any("$" in n or "/" in n for n in meta.trace_name)
    with h5py.File(tmp_path / "waveforms.hdf5", "r") as f:
        fmt = {k: f["data_format"][k][()] for k in f["data_format"]}
        assert (fmt["dimension_order"], fmt["component_order"]) == (b"CW", b"ZRT")
        assert fmt["sampling_rate"] == 100.0
        shapes = [f["data"][n].shape for n in meta.trace_name]
    assert shapes == [(3, n) for n in records.metadata.trace_npts]  # valid samples only
    assert not list(tmp_path.glob("*.tmp-*"))


def test_split_values_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"split values \['validation'\] are not allowed"):
        export_seisbench(record_set(), ["train"] * 4 + ["validation"], tmp_path, progress=False)
    with pytest.raises(ValueError, match="one value per record"):
        export_seisbench(record_set(), ["train"], tmp_path, progress=False)


def foreign_dataset(path: Path) -> pd.DataFrame:
    """A seisbench-style dataset written by hand: 50 Hz, ZNE, "WC" order, trace blocks."""
    rng = np.random.default_rng(1)
    block = rng.standard_normal((4, 3000, 3)).astype(np.float32)  # (N, W, C)
    meta = pd.DataFrame(
        {
            "trace_name": [
                "bucket0$0,:3000",
                "bucket0$1,:2500",
                "bucket0$2,:3000",
                "bucket0$3,:3000",
                "missing$0",
                "bucket0$1,:3000",
                "bucket0$0,:3000",
            ],
            "source_id": ["a", "b", "c", "d", "e", "f", "g"],
            "station_network_code": ["CH"] * 7,
            "station_code": ["ZUR"] * 7,
            "trace_category": [
                "earthquake",
                "mine blast",
                "noise",
                "earthquake",
                "earthquake",
                "earthquake",
                "earthquake",
            ],
            "trace_P_arrival_sample": [1000, 500, 1000, np.nan, 1000, 1000, 1000],
            "trace_sampling_rate_hz": [50.0, 50.0, 50.0, 50.0, 50.0, 20.0, 50.0],
            "path_back_azimuth_deg": [30.0, 200.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            "trace_start_time": ["2021-01-01T00:00:00.000000Z"] * 7,
            "split": ["train", "dev", "test", "train", "train", "train", "test"],
        }
    )
    path.mkdir(parents=True, exist_ok=True)
    meta.to_csv(path / "metadata.csv", index=False)
    with h5py.File(path / "waveforms.hdf5", "w") as f:
        f["data_format/dimension_order"] = "WC"
        f["data_format/component_order"] = "ZNE"
        f["data/bucket0"] = block
    return meta, block


def test_foreign_dataset_blocks_resampling_rotation_and_rejections(tmp_path):
    _, block = foreign_dataset(tmp_path)
    rs = SeisBenchSource(path=str(tmp_path), channels="ZRT").load(progress=False)
    assert list(rs.metadata.event_id) == ["a", "b", "g"]
    assert list(rs.metadata.source_type) == ["earthquake", "blast", "earthquake"]
    assert list(rs.metadata.station_id) == ["CH.ZUR"] * 3
    reasons = dict(zip(rs.rejected.record, rs.rejected.reason))
    assert reasons == {
        "bucket0$2,:3000": Reason.UNKNOWN_TYPE,
        "bucket0$3,:3000": Reason.MISSING_PICK,
        "missing$0": Reason.UNREADABLE,
        "bucket0$1,:3000": Reason.BAD_RATE,
    }
    a, b = rs.metadata.iloc[0], rs.metadata.iloc[1]
    # 50 -> 100 Hz: P at 1000 becomes 2000, 60 s of data become 6000 samples.
    assert (a.trace_p_arrival_sample, a.trace_npts) == (2000, 6000)
    # P 10 s into a 50 s trace: sample 0 is the first sample, not P - 20 s.
    assert (b.trace_p_arrival_sample, b.trace_npts) == (1000, 5000)
    r, t = rotate_ne_rt(block[0, :, 1].astype(np.float64), block[0, :, 2].astype(np.float64), 30.0)
    from scipy.signal import resample_poly

    # the same polyphase anti-aliased resampling as data=waveforms (seisbert/data/traces.py)
    want = [
        resample_poly(x.astype(np.float64), 2, 1, window=antialias_filter(2, 1).copy())
        for x in (block[0, :, 0], r, t)
    ]
    np.testing.assert_allclose(rs.waveforms[0, :, :6000], np.stack(want), rtol=1e-4, atol=1e-5)


def test_splits_filter_and_z_only(tmp_path):
    foreign_dataset(tmp_path)
    rs = SeisBenchSource(path=str(tmp_path), splits=["dev"]).load(progress=False)
    assert list(rs.metadata.event_id) == ["b"] and rs.waveforms.shape == (1, 1, 12000)


def test_chunked_dataset_reads_every_chunk(tmp_path):
    export_seisbench(record_set(seed=1), None, tmp_path / "a", progress=False)
    export_seisbench(record_set(seed=2), None, tmp_path / "b", progress=False)
    for chunk in ("a", "b"):
        (tmp_path / chunk / "metadata.csv").rename(tmp_path / f"metadata{chunk}.csv")
        (tmp_path / chunk / "waveforms.hdf5").rename(tmp_path / f"waveforms{chunk}.hdf5")
    (tmp_path / "chunks").write_text("a\nb\n")
    rs = SeisBenchSource(path=str(tmp_path)).load(progress=False)
    want = np.concatenate([record_set(seed=1).waveforms, record_set(seed=2).waveforms])
    np.testing.assert_array_equal(rs.waveforms, want)


def test_source_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="data.channels='ZNE' is not allowed"):
        SeisBenchSource(channels="ZNE")
    with pytest.raises(ValueError, match="data.path must be set"):
        SeisBenchSource().load()
    with pytest.raises(ValueError, match="not a SeisBench dataset"):
        SeisBenchSource(path=str(tmp_path)).load()


def test_export_script_reexports_a_configured_source(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "export_seisbench", ROOT / "scripts/export_seisbench.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    records = record_set("Z")
    export_seisbench(
        records, ["train", "dev", "test", "test", "train"], tmp_path / "a", progress=False
    )
    cfg = OmegaConf.create(
        {
            "data": {
                "_target_": "seisbert.data.seisbench_format.SeisBenchSource",
                "path": str(tmp_path / "a"),
            },
            "split": {"_target_": "seisbert.data.splits.SplitConfig"},
        }
    )
    script.export_from_config(cfg, tmp_path / "b", use_cache=False, progress=False)
    a, b = (pd.read_csv(tmp_path / d / "metadata.csv", dtype=str) for d in "ab")
    pd.testing.assert_frame_equal(a, b[a.columns])
    with (
        h5py.File(tmp_path / "a/waveforms.hdf5") as fa,
        h5py.File(tmp_path / "b/waveforms.hdf5") as fb,
    ):
        for name in a.trace_name:
            np.testing.assert_array_equal(fa["data"][name][()], fb["data"][name][()])


def test_rate_whose_nyquist_cannot_carry_fmax_is_rejected(tmp_path):
    """50 Hz keeps the PSD at 20 Hz; asked for 24 Hz (above 50 Hz's Nyquist) every 50 Hz trace
    goes."""
    foreign_dataset(tmp_path)
    kept = SeisBenchSource(path=str(tmp_path), fmax_hz=20.0).load(progress=False)
    assert len(kept.metadata) == 3
    with pytest.raises(ValueError, match="nyquist below fmax"):
        SeisBenchSource(path=str(tmp_path), fmax_hz=24.0).load(progress=False)


def test_text_in_a_p_pick_cell_rejects_that_trace_and_keeps_the_rest(tmp_path):
    export_seisbench(record_set(), None, tmp_path, progress=False)
    meta = pd.read_csv(tmp_path / "metadata.csv", dtype=str)
    meta.loc[2, "trace_p_arrival_sample"] = "abc"
    meta.to_csv(tmp_path / "metadata.csv", index=False)
    rs = SeisBenchSource(path=str(tmp_path)).load(progress=False)
    assert list(rs.metadata.trace_p_arrival_sample) == [2000, 2000, 2000, 0]
    (bad,) = rs.rejected.itertuples()
    assert (bad.record, bad.reason) == (meta.trace_name[2], Reason.BAD_VALUE)
    assert f"trace {meta.trace_name[2]!r}: trace_p_arrival_sample='abc'" in bad.detail
