"""The end of a run says where its model is and how it scored, and warns when a classifier
collapsed to one class or sits at chance; epoch lines carry the validation scores."""

from __future__ import annotations

import logging
import re

import pytest

from seisbert.data.records import CLASS_NAMES
from seisbert.metrics import classification_metrics, collapse_warnings
from seisbert.train.job import train_job

SCRATCH = ["experiment=scratch", "trainer.max_epochs=2", "task.params.masked_eval=false"]


def test_a_forced_collapse_is_warned_about_naming_the_class(tiny_cfg, caplog):
    cfg = tiny_cfg(*SCRATCH, "task.params.lr=1.0")  # a step this large sends every record one way
    with caplog.at_level(logging.INFO):
        metrics = train_job(cfg)
    (called,) = {w.split("called '")[1].split("'")[0] for w in metrics["warnings"]}
    assert called in ("earthquake", "blast")
    assert [w.split(":")[0] for w in metrics["warnings"]] == [
        "the classifier predicts one class on dev",
        "the classifier predicts one class on test",
    ]
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "seisbert.summary"
    ]
    assert warned == metrics["warnings"]
    (block,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("== ")]
    assert re.search(rf"\n  model +{cfg.paths.output_dir}/model.bundle.safetensors\n", block), block
    assert "test" in block and "balanced accuracy 0.500" in block


def test_a_classifier_that_separates_gets_a_summary_without_warnings(tiny_cfg, caplog):
    with caplog.at_level(logging.INFO):
        metrics = train_job(tiny_cfg("experiment=baseline_hgb"))
    assert metrics["test/balanced_accuracy"] > 0.6 and metrics["warnings"] == []
    (block,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("== ")]
    assert block.startswith("== baseline hgb finished ==")
    assert f"balanced accuracy {metrics['test/balanced_accuracy']:.3f}" in block


def test_chance_without_collapse_is_named_as_chance():
    y = [0] * 10 + [1] * 10
    half_wrong = classification_metrics(y, [0.9] * 5 + [0.1] * 5 + [0.9] * 5 + [0.1] * 5)
    (text,) = collapse_warnings(half_wrong, "dev", CLASS_NAMES)
    assert text.startswith("dev balanced accuracy 0.500 is at chance (<= 0.55)")
    good = classification_metrics(y, [0.1] * 9 + [0.9] + [0.9] * 10)
    assert collapse_warnings(good, "dev", CLASS_NAMES) == []
    one_class = classification_metrics(y, [0.7] * 20)
    assert collapse_warnings(one_class, "test", ["eq", "ex"])[0].startswith(
        "the classifier predicts one class on test: all 20 records are called 'ex'"
    )


def _epoch_lines(tiny_cfg, caplog, *overrides) -> list[str]:
    with caplog.at_level(logging.INFO, logger="seisbert.train"):
        train_job(tiny_cfg(*SCRATCH, *overrides))
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "seisbert.train" and r.getMessage().startswith("epoch ")
    ]


def test_fine_tuning_epoch_lines_show_validation_scores(tiny_cfg, caplog):
    lines = _epoch_lines(tiny_cfg, caplog)
    assert [line.split(":")[0].split(" step")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("val/balanced_accuracy" in line for line in lines), lines


def test_a_step_budget_is_shown_as_steps_not_epochs(tiny_cfg, caplog):
    (line,) = _epoch_lines(tiny_cfg, caplog, "trainer.max_steps=3", "trainer.max_epochs=-1")
    assert line.startswith("epoch 1 step 3/3:"), line


def test_the_synthetic_source_says_how_many_events_it_kept_and_why(caplog):
    from seisbert.data.synthetic import SyntheticSource

    with caplog.at_level(logging.INFO, logger="seisbert.data.synthetic.source"):
        records = SyntheticSource(n_events=40, seed=3).load(progress=False)
    kept = records.metadata["event_id"].nunique()
    assert 0 < kept < 40
    assert any(
        m.startswith(
            f"synthetic: 40 generated events -> {kept} kept (the others had fewer "
            "than data.min_sta=3 stations above the SNR cut)"
        )
        for m in caplog.messages
    ), caplog.messages


def test_a_vocabulary_sweep_shows_chance_beside_each_k_and_ranks_on_dev():
    import pandas as pd

    from seisbert.analysis.sweeps import summary_table

    jobs = pd.DataFrame(
        {
            "job": ["0", "1", "2"],
            "status": ["done"] * 3,
            "cfg:tokenizer.vocab_size": [16, 64, 150],
            "cfg:task.monitor": ["val/mlm_acc"] * 3,
            "cfg:task.monitor_mode": ["max"] * 3,
            "val/mlm_acc": [0.30, 0.25, 0.20],
            "test/mlm_acc": [0.1, 0.9, 0.5],
        }
    )
    table = summary_table(jobs, "val/mlm_acc")
    assert list(table["tokenizer.vocab_size"]) == [16, 64, 150]  # by dev, not by test
    assert list(table.columns[:4]) == ["job", "status", "tokenizer.vocab_size", "1/K"]
    assert table["1/K"].tolist() == pytest.approx([1 / 16, 1 / 64, 1 / 150])


def test_rejections_are_counted_by_what_they_count():
    from seisbert.data.records import Reason, rejection_summary

    rows = [
        {"reason": r}
        for r in (
            Reason.GAP,
            Reason.GAP,
            Reason.CLIPPED,
            Reason.UNKNOWN_TYPE,
            Reason.UNREADABLE,
            Reason.UNUSED_FILE,
            Reason.UNUSED_FILE,
        )
    ]
    assert rejection_summary(rows) == (
        "3 records (2 gap or overlap, 1 clipped); 3 files (2 file near no event, 1 unreadable "
        "file); 1 events (1 unknown event type)"
    )
    assert rejection_summary([]) == "nothing rejected"
