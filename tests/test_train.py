"""Training runs through the real Lightning Trainer on the tiny synthetic set."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seisbert.pipeline import TokenSet, prepare
from seisbert.run import run_task, validate, write_run_info
from seisbert.tasks.finetune_run import build_finetuning

ROOT = Path(__file__).resolve().parents[1]


def test_cli_composes_the_documented_command():
    out = subprocess.run([sys.executable, "train.py", "experiment=mlm_nsp", "model.layers=12", "--cfg", "job"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "layers: 12" in out and "source_linking: true" in out


@pytest.mark.parametrize("experiment", ["mlm", "mlm_nsp", "scratch"])
def test_fast_dev_run(tiny_cfg, experiment):
    cfg = tiny_cfg(f"experiment={experiment}", "debug=fdr", "model=tiny")
    validate(cfg)
    metrics = run_task(cfg)
    key = "test/mlm_acc" if experiment.startswith("mlm") else "test/balanced_accuracy"
    assert key in metrics and 0.0 <= metrics[key] <= 1.0


def test_finetune_starts_from_the_pretrained_encoder_and_refuses_other_tokens(tiny_cfg):
    pre = tiny_cfg("experiment=mlm", "model=tiny", "trainer.max_epochs=1")
    write_run_info(pre)
    metrics = run_task(pre)
    ckpt = Path(metrics["checkpoint"])
    assert ckpt.exists() and json.loads((ckpt.parent / "model.json").read_text())["vocab_size"] == 16

    ft = tiny_cfg("experiment=finetune", "model=tiny")
    module, _ = build_finetuning(ft, TokenSet.load(prepare(ft)["tokens"]))
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, tensor in module.encoder.state_dict().items():
        assert torch.equal(tensor, saved[f"encoder.{name}"]), name

    other = tiny_cfg("experiment=finetune", "model=tiny", "tokenizer.vocab_size=8",
                     f"task.params.checkpoint={ckpt}")
    with pytest.raises(ValueError, match=r"pretrained on tokens .* \(K=16\) but this run's tokens are .* \(K=8\)"):
        build_finetuning(other, TokenSet.load(prepare(other)["tokens"]))


def test_finetune_without_a_base_model_says_what_to_run(tiny_cfg, tmp_path):
    from seisbert.config import build
    from seisbert.tasks.finetune_run import find_base_checkpoint

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
