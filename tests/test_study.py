"""The paper study end to end at a tiny scale: every row of the report gets our number."""

import runpy
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]



def hlist(*items) -> str:
    """A Hydra override list of override strings (each quoted)."""
    return "[" + ",".join(f"'{i}'" for i in items) + "]"


TINY_STUDY = [
    "seeds=[0]", "label_sizes=[50,null]", "umap=false", "attention=false",
    "pretrain.mlm=" + hlist("experiment=mlm", "trainer.max_epochs=1"),
    "pretrain.mlm_nsp=" + hlist("experiment=mlm_nsp", "trainer.max_epochs=1"),
    "finetune.lr_grid.mlm=[1e-4,3e-4]", "finetune.lr_grid.mlm_nsp=[1e-4]", "finetune.lr_grid.scratch=[3e-4]",
    "finetune.max_steps=12", "finetune.val_every_steps=6",
    "baselines.rf=" + hlist("baseline.n_estimators=10", "baseline.max_depth_grid=[6,12]"),
    "baselines.hgb=" + hlist("baseline.max_iter=10", "baseline.learning_rate_grid=[0.1]",
                             "baseline.max_leaf_nodes_grid=[7]"),
    "baselines.cnn=" + hlist("baseline.max_steps=10", "baseline.val_every_steps=5", "baseline.lr_grid=[1e-3]"),
]


def test_tiny_study_writes_a_report_with_every_row(tmp_path, shared_cache):
    tiny = ["data.n_events=80", "tokenizer.vocab_size=16", "model=tiny", "logger=none",
            "~callbacks.progress_bar", "trainer.enable_progress_bar=false", f"paths.cache_dir={shared_cache}"]
    base = "base_overrides=" + hlist(*tiny)
    main = runpy.run_path(str(ROOT / "scripts" / "reproduce_paper.py"))["main"]
    report = main([base, *TINY_STUDY, f"out_dir={tmp_path}/report", f"run_dir={tmp_path}/runs"])
    text = report.read_text()
    results = pd.read_csv(tmp_path / "report" / "results.csv")
    assert set(results.arm) == {"mlm", "mlm_nsp", "scratch", "rf", "hgb", "cnn"}
    assert set(results["labels"].astype(str)) == {"50", "all"}
    assert results.balanced_accuracy.between(0, 1).all()
    # the same labelled subset for every arm at a given size and seed
    assert results.groupby("labels").train_records.nunique().eq(1).all()
    for row in ("MLM-pretrained", "MLM+SL-pretrained", "scratch", "random forest", "boosted trees", "CNN on PSD",
                "first half masked", "~30%", "Label-limited curve", "What was tried"):
        assert row in text, row
    mlm = results[(results.arm == "mlm")]
    assert mlm.chosen.str.contains("lr").all() and mlm.tried.str.contains("0.0003").all()
    assert (tmp_path / "report" / "label_curve.png").exists()
