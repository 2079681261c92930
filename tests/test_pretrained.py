"""Weights shipped with the package load offline, by name, through the same checks as any
bundle; an unknown name lists what is shipped."""

from __future__ import annotations

import pytest

from seisbert.artifacts.pretrained import (
    PREFIX,
    list_pretrained,
    model_card,
    pretrained_path,
    resolve_bundle,
)


def test_an_unknown_name_lists_what_is_shipped():
    with pytest.raises(
        ValueError,
        match=r"no pretrained model 'nope' \(nope.bundle.safetensors\); "
        r"shipped: ",
    ):
        resolve_bundle(f"{PREFIX}nope")
    assert str(resolve_bundle("some/run/model.bundle.safetensors")) == (
        "some/run/model.bundle.safetensors"
    )


SHIPPED = list_pretrained()


@pytest.mark.skipif(not SHIPPED, reason="no weights in seisbert/pretrained/ (make pretrained)")
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_has_its_card_and_base_and_passes_the_bundle_checks(name):
    from seisbert.bundle import load_bundle

    bundle = load_bundle(pretrained_path(name))  # checksum, registry, centroids, probe below
    module = bundle.module()
    card = model_card(name)
    assert card["name"] == name and card["model"]["input"] == bundle.input_kind
    held = card["scores"]["held-out synthetic draw"]
    assert held["n"] >= 2000 and 0.6 < held["balanced_accuracy"] <= 1.0
    assert pretrained_path(name, "base").stat().st_size < 8e6  # small enough to ship
    assert sum(p.numel() for p in module.parameters()) < 2e6


@pytest.mark.skipif(not SHIPPED, reason="no weights in seisbert/pretrained/ (make pretrained)")
def test_predict_and_the_seisbench_class_load_a_shipped_model_by_name(tmp_path):
    pytest.importorskip("seisbench")
    import obspy
    import pandas as pd
    from bundle_helpers import predict_cfg

    from seisbert.data.synthetic import SyntheticSource
    from seisbert.inference.cli import apply_bundle
    from seisbert.inference.seisbench import SeisBertClassifier

    name = SHIPPED[0]
    metrics = apply_bundle(
        predict_cfg(
            tmp_path / "eval",
            [
                f"bundle={PREFIX}{name}",
                "mode=evaluate",
                "data=synthetic",
                "data.n_events=40",
                "data.seed=11",
                "data.event_id_prefix=t",
                "predict.progress=false",
            ],
        )
    )
    assert metrics["n"] == len(pd.read_csv(tmp_path / "eval" / "predictions.csv")) > 0
    assert metrics["balanced_accuracy"] > 0.7  # a trained classifier, not chance
    assert SeisBertClassifier.list_pretrained() == SHIPPED
    model = SeisBertClassifier.from_pretrained(name)
    assert model.model_card["name"] == name
    records = SyntheticSource(n_events=6, seed=12, event_id_prefix="s").load(progress=False)
    meta = records.metadata
    event = meta["event_id"].iloc[0]
    st, start = obspy.Stream(), obspy.UTCDateTime(2021, 6, 1)
    for i in meta.index[meta["event_id"] == event]:
        net, sta = meta.loc[i, "station_id"].split(".")
        st += obspy.Trace(
            records.waveforms[i, 0].astype("float32"),
            {
                "network": net,
                "station": sta,
                "channel": "HHZ",
                "sampling_rate": 100.0,
                "starttime": start,
            },
        )
    p_at = (
        start
        + float(meta.loc[meta.index[meta["event_id"] == event][0], "trace_p_arrival_sample"])
        / 100.0
    )
    out = model.classify(st, p_time=p_at)
    assert len(out.stations) == len(st) and out.decision in ("earthquake", "blast")
    with pytest.raises(ValueError, match="is not available offline"):
        SeisBertClassifier.from_pretrained(name, version_str="9.9.9")
