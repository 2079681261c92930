"""Training runs through the real Lightning Trainer on the tiny synthetic set."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from seisbert.data.sequences import TokenDataModule
from seisbert.model.throughput import compare_throughput, parse_variants, throughput_table
from seisbert.pipeline import TokenSet, prepare
from seisbert.train.finetune import build_finetuning
from seisbert.train.job import train_job, validate, write_run_info

ROOT = Path(__file__).resolve().parents[1]


def test_cli_composes_the_documented_command():
    out = subprocess.run(
        [sys.executable, "train.py", "experiment=mlm_nsp", "model.layers=12", "--cfg", "job"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "layers: 12" in out and "source_linking: true" in out


@pytest.mark.parametrize("experiment", ["mlm", "mlm_nsp", "scratch"])
def test_fast_dev_run(tiny_cfg, experiment):
    cfg = tiny_cfg(f"experiment={experiment}", "debug=fdr", "model=tiny")
    validate(cfg)
    metrics = train_job(cfg)
    assert json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text()) == metrics
    test_rows = len(TokenSet.load(prepare(cfg)["tokens"]).metadata.query("split == 'test'"))
    one_batch = min(cfg.task.params.batch_size, test_rows)  # fast_dev_run: one test batch
    if experiment == "scratch":
        (tn, fp), (fn, tp) = metrics["test/confusion_matrix"]
        assert tn + fp + fn + tp == metrics["test/n"] == one_batch
        assert metrics["test/accuracy"] == pytest.approx((tn + tp) / one_batch)
        assert metrics["test/balanced_accuracy"] == pytest.approx(
            np.mean(
                [r[i] / sum(r) for i, r in enumerate(metrics["test/confusion_matrix"]) if sum(r)]
            )
        )
        return
    assert metrics["test/baseline_random_acc"] == pytest.approx(1 / 16)
    assert metrics["test/mlm_top5"] >= metrics["test/mlm_acc"]  # the top-1 guess is among the top 5
    assert ("test/sl_acc" in metrics) == (experiment == "mlm_nsp")
    if experiment == "mlm_nsp":  # a fraction of the batch's pairs
        assert (metrics["test/sl_acc"] * one_batch) == pytest.approx(
            round(metrics["test/sl_acc"] * one_batch)
        )


def test_finetune_starts_from_the_pretrained_encoder_and_refuses_other_tokens(tiny_cfg):
    pre = tiny_cfg("experiment=mlm", "model=tiny", "trainer.max_epochs=1")
    write_run_info(pre)
    metrics = train_job(pre)
    ckpt = Path(metrics["checkpoint"])
    assert json.loads((ckpt.parent / "model.json").read_text())["vocab_size"] == 16
    # the cache holds the run's best checkpoint, and the reported dev score is the best epoch's
    published = torch.load(ckpt, weights_only=True)
    best = torch.load(Path(pre.paths.output_dir) / "checkpoints" / "best.ckpt", weights_only=True)
    assert all(torch.equal(w, best["state_dict"][k]) for k, w in published["state_dict"].items())
    scores = [s["best_model_score"] for k, s in best["callbacks"].items() if "val/mlm_acc" in k]
    assert metrics["val/mlm_acc"] == pytest.approx(float(scores[0]))
    # even one epoch of a tiny model beats guessing: 1/K, and 5/K for the top 5
    assert metrics["test/mlm_acc"] > 1.5 * metrics["test/baseline_random_acc"]
    assert metrics["test/mlm_top5"] > 1.2 * 5 * metrics["test/baseline_random_acc"]

    # explicit, as the study passes it: "newest on these tokens" may be another test's model
    ft = tiny_cfg("experiment=finetune", "model=tiny", f"task.params.checkpoint={ckpt}")
    module, _ = build_finetuning(ft, TokenSet.load(prepare(ft)["tokens"]))
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, tensor in module.encoder.state_dict().items():
        assert torch.equal(tensor, saved[f"encoder.{name}"]), name

    other = tiny_cfg(
        "experiment=finetune",
        "model=tiny",
        "tokenizer.vocab_size=8",
        f"task.params.checkpoint={ckpt}",
    )
    with pytest.raises(
        ValueError, match=r"pretrained on tokens .* \(K=16\) but this run's tokens are .* \(K=8\)"
    ):
        build_finetuning(other, TokenSet.load(prepare(other)["tokens"]))


def test_finetune_without_a_base_model_says_what_to_run(tiny_cfg, tmp_path):
    from seisbert.config import build
    from seisbert.train.finetune import find_base_checkpoint

    cfg = tiny_cfg("experiment=finetune", "model=tiny", "task.params.pretrain_task=mlm_nsp")
    tset = TokenSet.load(prepare(cfg)["tokens"])
    cfg.paths.cache_dir = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="experiment=mlm_nsp"):
        find_base_checkpoint(cfg, build(cfg.task.params, "task.params"), tset)


def test_compiled_pretraining_keeps_plain_checkpoint_keys():
    from seisbert.tasks.pretrain import PretrainModule

    model = dict(vocab_size=16, layers=1, heads=2, d_model=16, ffn=32)
    plain = PretrainModule(model, {}, "x")
    compiled = PretrainModule(model, {"compile": True}, "x")
    assert type(compiled._forward).__name__ == "OptimizedModule" and plain._forward is plain.encoder
    assert compiled.state_dict().keys() == plain.state_dict().keys()
    assert not any("_orig_mod" in k for k in compiled.state_dict())


# ------------------------------------------------------------- numbers that could be wrong
def predict_test(module, dm, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows and blast probabilities of the test split, computed here, not by the module's hooks."""
    module.eval()
    rows, probs = [], []
    with (
        torch.no_grad(),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=str(precision).startswith("bf16")),
    ):
        for batch in dm.test_dataloader():
            probs.append(module(batch["ids"], batch["segments"]).float().softmax(-1)[:, 1])
            rows.append(batch["row"])
    return torch.cat(rows).numpy(), torch.cat(probs).numpy()


def test_finetune_metrics_are_those_of_its_best_checkpoint(tiny_cfg):
    """metrics.json recomputed with scikit-learn from the best checkpoint's own predictions."""
    from sklearn import metrics as skm

    from seisbert.tasks.finetune import FinetuneModule

    # 8 epochs at 2e-3: predictions of both classes and a dev score that changes between epochs
    cfg = tiny_cfg(
        "experiment=scratch",
        "model=tiny",
        "trainer.max_epochs=8",
        "task.params.lr=2e-3",
        "task.params.masked_eval=false",
        "logger=csv",
    )
    train_job(cfg)
    out = Path(cfg.paths.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    tset = TokenSet.load(prepare(cfg)["tokens"])
    _, dm = build_finetuning(cfg, tset)
    module = FinetuneModule.load_from_checkpoint(
        out / "checkpoints" / "best.ckpt", weights_only=True
    )
    rows, prob = predict_test(module, dm, cfg.trainer.precision)
    meta = tset.metadata.iloc[rows]
    y, pred = meta["label"].to_numpy(), (prob >= 0.5).astype(int)
    assert saved["test/n"] == len(rows) == len(dm.rows["test"])
    assert saved["test/confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert saved["test/balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert saved["test/roc_auc"] == pytest.approx(skm.roc_auc_score(y, prob), abs=1e-6)
    # per event: the mean probability of its stations against the event's label
    events = pd.DataFrame({"event": meta["event_id"].to_numpy(), "y": y, "p": prob}).groupby(
        "event"
    )
    assert (events["y"].nunique() == 1).all()  # labels are per event
    ey, ep = events["y"].first().to_numpy(), events["p"].mean().to_numpy()
    assert saved["test/event_balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(ey, ep >= 0.5)
    )
    # the dev score returned to a sweeper is the best epoch's, as logged
    logged = pd.read_csv(next((out / "csv").rglob("metrics.csv")))["val/balanced_accuracy"].dropna()
    assert len(logged) == cfg.trainer.max_epochs
    assert saved["val/balanced_accuracy"] == pytest.approx(logged.max())


def fit_and_test(module, dm, epochs: int) -> dict:
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, dm)
    return trainer.test(module, dm, verbose=False)[0]


TINY_MODEL = dict(vocab_size=16, layers=2, heads=2, d_model=32, ffn=64)


def test_tiny_classifier_beats_the_constant_predictor_on_an_easy_set(easy_tokens):
    from seisbert.tasks.finetune import FinetuneConfig, FinetuneModule

    L.seed_everything(0)
    dm = TokenDataModule(*easy_tokens("class"), vocab_size=16, batch_size=32)
    params = dataclasses.asdict(FinetuneConfig(init="scratch", lr=3e-3, masked_eval=False))
    m = fit_and_test(FinetuneModule(TINY_MODEL, params, "easy"), dm, epochs=8)
    assert m["test/n"] == len(dm.rows["test"])
    assert (
        m["test/balanced_accuracy"] >= 0.9 and m["test/roc_auc"] >= 0.95
    )  # constant predictor: 0.5, 0.5


def test_tiny_mlm_beats_the_trivial_baselines_on_an_easy_set(easy_tokens):
    from seisbert.tasks.pretrain import PretrainConfig, PretrainModule

    L.seed_everything(0)
    dm = TokenDataModule(*easy_tokens("copy"), vocab_size=16, batch_size=32)
    params = dataclasses.asdict(PretrainConfig(lr=3e-3, batch_size=32))
    m = fit_and_test(
        PretrainModule(TINY_MODEL, params, "easy", dm.step_mode().tolist()), dm, epochs=8
    )
    trivial = max(m["test/baseline_random_acc"], m["test/baseline_step_mode_acc"])
    assert (
        trivial < 0.1 and m["test/baseline_left_neighbour_acc"] > 0.95
    )  # the set is what it claims
    assert m["test/mlm_acc_all_masked"] > 4 * trivial and m["test/mlm_top5"] > 0.9


def test_bench_encoder_times_the_training_step_beside_hf_fp32():
    """make bench's model stage: the headline row is seisbert's step, every ratio is over HF
    fp32."""
    pytest.importorskip("transformers")
    rows = compare_throughput(
        presets=["small"],
        batch={"small": 2},
        steps={"small": 1},
        rounds=1,
        threads=1,
        variants="ours:fp32",
        ours_precision="bf16",
    )
    by = {r["model"]: r for r in rows}
    assert set(by) == {
        "ours:fp32",
        "ours_masked:bf16",
        "hf_bert:fp32",
    }  # the headline pair is always timed
    assert [r["model"] for r in rows if r["headline"]] == ["ours_masked:bf16"] and by[
        "hf_bert:fp32"
    ]["over_hf_fp32"] == 1
    for r in rows:
        assert r["over_hf_fp32"] == pytest.approx(
            r["tokens_per_s"] / by["hf_bert:fp32"]["tokens_per_s"]
        )
    assert "seisbert training step (ours_masked:bf16) / HF BertForMaskedLM fp32 = " in (
        throughput_table(rows, seq_len=92, vocab_size=150, threads=1, clock="wall", rounds=1)
    )
    with pytest.raises(ValueError, match="'hf_bert:fp16'.*precision one of \\['fp32', 'bf16'\\]"):
        parse_variants("hf_bert:fp16")
