"""Pretraining on one's own unlabeled archive: ``unlabeled=waveforms`` (a typeless QuakeML
with origins and picks) feeds the tokenizer and pretraining, never fine-tuning or test."""

from __future__ import annotations

import obspy
import pytest

from seisbert.data.synthetic import SyntheticSource
from seisbert.inference.files import write_records_as_files
from seisbert.pipeline import TokenSet, prepare
from seisbert.train.job import train_job, validate


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Another synthetic draw written as a user's archive: miniSEED and a QuakeML whose events
    carry no type at all."""
    folder = tmp_path_factory.mktemp("archive")
    records = SyntheticSource(n_events=30, seed=77, event_id_prefix="arc").load(progress=False)
    catalog_path = write_records_as_files(records, folder)
    catalog = obspy.read_events(str(catalog_path))
    for event in catalog:
        event.event_type = None
    catalog.write(str(catalog_path), format="QUAKEML")
    return folder, catalog_path, len(records.metadata)


def pool_overrides(archive) -> list[str]:
    folder, catalog, _ = archive
    return [
        "unlabeled=waveforms",
        f"unlabeled.waveform_dir={folder / 'waveforms'}",
        f"unlabeled.catalog={catalog}",
        "unlabeled.file_glob=*.mseed",
        "unlabeled.p_from_taup=false",
    ]


def test_a_typeless_archive_is_a_pool_for_pretraining_only(tiny_cfg, archive):
    cfg = tiny_cfg("experiment=mlm", "trainer.max_epochs=1", *pool_overrides(archive))
    validate(cfg)
    metrics = train_job(cfg)
    tset = TokenSet.load(prepare(cfg)["tokens"])
    pool_ids = set(tset.pool_metadata["event_id"])
    assert metrics["pool_records"] == len(tset.pool_metadata) > 0.8 * archive[2]
    assert all("arc" in str(e) for e in pool_ids)  # the archive draw's own ids
    assert not pool_ids & set(tset.metadata["event_id"])  # fine-tuning and test never see it
    assert (tset.pool_metadata["label"] == -1).all()


def test_a_labelled_set_cannot_keep_unknown_types(tiny_cfg):
    from omegaconf import open_dict

    cfg = tiny_cfg("experiment=finetune")
    with open_dict(cfg):
        cfg.data.unknown_type = "keep"  # as data=waveforms data.unknown_type=keep would set it
    with pytest.raises(
        ValueError,
        match=r"data.unknown_type=keep keeps records of no class; .* as an unlabeled pool "
        r"\(unlabeled=waveforms",
    ):
        validate(cfg)
