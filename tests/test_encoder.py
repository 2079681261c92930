"""Tests for the hand-written encoder and its heads (seisbert.model)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from seisbert.config import build
from seisbert.model import Encoder, EncoderConfig, MLMHead, SequenceHead, optimizer_groups

K = 24
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "model"


def tiny(**overrides) -> EncoderConfig:
    base = dict(vocab_size=K, layers=2, heads=2, d_model=32, ffn=64, dropout=0.0, attn_dropout=0.0)
    return EncoderConfig(**(base | overrides))


def sequences(cfg: EncoderConfig, batch: int = 3, n: int = 90, seed: int = 0) -> torch.Tensor:
    """(batch, n + 2) token ids: [CLS] t1..tn [SEP]."""
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(0, cfg.vocab_size, (batch, n), generator=g)
    cls = torch.full((batch, 1), cfg.cls_id)
    sep = torch.full((batch, 1), cfg.sep_id)
    return torch.cat([cls, body, sep], dim=1)


def model(cfg: EncoderConfig, seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(cfg).eval()


def test_special_ids_follow_spectral_tokens():
    cfg = tiny()
    assert (cfg.pad_id, cfg.cls_id, cfg.sep_id, cfg.mask_id, cfg.n_tokens) == (
        K,
        K + 1,
        K + 2,
        K + 3,
        K + 4,
    )
    assert model(cfg).tok_emb.num_embeddings == K + 4


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_forward_shapes_and_attention_rows_sum_to_one(norm):
    cfg = tiny(norm=norm)
    tokens = sequences(cfg)
    tokens[1, 60:] = cfg.pad_id
    hidden, atts = model(cfg)(tokens, return_attention=True)
    assert hidden.shape == (3, 92, 32) and torch.isfinite(hidden).all()
    assert len(atts) == cfg.layers and all(a.shape == (3, cfg.heads, 92, 92) for a in atts)
    for a in atts:
        torch.testing.assert_close(a.sum(-1), torch.ones(3, cfg.heads, 92), atol=1e-6, rtol=0)
        assert a[1, :, :, 60:].abs().max() == 0  # no query attends to padding


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_sdpa_path_equals_explicit_attention_path(norm):
    cfg = tiny(norm=norm, dropout=0.1, attn_dropout=0.1)  # eval mode turns dropout off
    tokens = sequences(cfg)
    tokens[0, 50:] = cfg.pad_id
    segments = (torch.arange(92) >= 46).long().expand(3, -1)
    enc = model(cfg)
    with torch.no_grad():
        fast = enc(tokens, segments)
        plain, _ = enc(tokens, segments, return_attention=True)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_padding_changes_no_real_position(norm):
    cfg = tiny(norm=norm)
    enc = model(cfg)
    tokens = sequences(cfg, n=60)  # (3, 62)
    padded = torch.cat([tokens, torch.full((3, 30), cfg.pad_id)], dim=1)  # (3, 92)
    with torch.no_grad():
        short, long = enc(tokens), enc(padded)
        # what sits at a masked-out position must not matter either
        garbage = padded.clone()
        garbage[:, 62:] = 5
        masked = enc(garbage, pad_mask=padded != cfg.pad_id)
    torch.testing.assert_close(long[:, :62], short, atol=1e-5, rtol=0)
    torch.testing.assert_close(masked[:, :62], short, atol=1e-5, rtol=0)


def test_segments_and_positions_matter():
    cfg = tiny()
    enc = model(cfg)
    tokens = sequences(cfg, batch=1)
    with torch.no_grad():
        a = enc(tokens)
        b = enc(tokens, segments=(torch.arange(92) >= 46).long()[None])
        c = enc(tokens.flip(1))
    assert (a - b).abs().max() > 1e-3
    assert (a - c.flip(1)).abs().max() > 1e-3  # not a bag of tokens


def test_sequence_longer_than_max_len_raises():
    cfg = tiny(max_len=32)
    with pytest.raises(ValueError, match="exceeds model.max_len=32"):
        model(cfg)(sequences(cfg, n=40))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(heads=3), r"model.heads=3 does not divide model.d_model=32"),
        (dict(norm="sandwich"), r"model.norm='sandwich' is not allowed"),
        (dict(vocab_size=200), r"model.vocab_size=200 is out of range; allowed \[8, 150\]"),
        (dict(layers=0), r"model.layers=0 is out of range"),
        (dict(dropout=1.5), r"model.dropout=1.5 is out of range"),
    ],
)
def test_bad_config_names_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny(**overrides)


def test_parameter_count_matches_hand_formula(caplog):
    K_, d, f, L, n_pos, n_seg = K, 32, 64, 2, 96, 2
    embeddings = (K_ + 4) * d + n_pos * d + n_seg * d + 2 * d  # + embedding LayerNorm
    block = (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 2 * (2 * d)
    expected = embeddings + L * block + 2 * d  # + final LayerNorm (pre-norm)
    with caplog.at_level(logging.DEBUG, logger="seisbert.model.encoder"):
        enc = model(tiny())
    assert enc.num_parameters() == expected == 21_248
    assert enc.num_parameters(exclude_embeddings=True) == expected - (K_ + 4 + n_pos + n_seg) * d
    assert "encoder: 0.02M parameters" in caplog.text
    assert model(tiny(norm="post")).num_parameters() == expected - 2 * d


def test_init_is_deterministic_and_scaled():
    cfg = tiny(layers=8, d_model=128, ffn=512, heads=4)
    a, b, c = model(cfg, seed=1), model(cfg, seed=1), model(cfg, seed=2)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if pa.dim() >= 2:
            assert not torch.equal(pa, pc), name
    assert a.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert a.blocks[0].mlp.proj.weight.std().item() == pytest.approx(
        0.02 / 4, rel=0.05
    )  # / sqrt(2 * 8)
    assert a.blocks[0].attn.qkv.bias.abs().max() == 0


def test_weight_decay_groups_split_by_dimension():
    cfg = tiny()
    enc = model(cfg)
    module = torch.nn.ModuleDict({"encoder": enc, "mlm": MLMHead(cfg, enc.tok_emb)})
    decay, no_decay = optimizer_groups(module, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(
        p.dim() < 2 for p in no_decay["params"]
    )
    ids = [id(p) for p in decay["params"] + no_decay["params"]]
    assert len(ids) == len(set(ids)) == len(list(module.parameters()))  # tied embedding once
    assert any(p is enc.tok_emb.weight for p in decay["params"])
    d, f = 32, 64  # biases and LayerNorms: embedding LN, 2 blocks, final LN, head (dense, LN, bias)
    assert (
        sum(p.numel() for p in no_decay["params"])
        == 2 * d + 2 * (3 * d + d + f + d + 4 * d) + 2 * d + 3 * d + K
    )
    groups = enc.configure_optimizer_groups(0.01)
    torch.optim.AdamW(groups, lr=1e-3)  # accepted by the optimizer as is


def test_mlm_head_is_tied_and_predicts_spectral_tokens_only():
    cfg = tiny()
    enc = model(cfg)
    head = MLMHead(cfg, enc.tok_emb)
    tokens = sequences(cfg, batch=2)
    logits = head(enc(tokens))
    assert logits.shape == (2, 92, K)
    logits.sum().backward()
    assert enc.tok_emb.weight.grad[:K].abs().sum() > 0  # the decoder's gradient reaches the table
    assert head.embedding.weight is enc.tok_emb.weight


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sequence_head_reads_cls(n_classes):
    cfg = tiny()
    head = SequenceHead(cfg, n_classes).eval()
    hidden = torch.randn(4, 92, 32)
    logits = head(hidden)
    assert logits.shape == (4, n_classes)
    hidden[:, 1:] = 0  # only [CLS] matters
    torch.testing.assert_close(head(hidden), logits)
    with pytest.raises(ValueError, match="n_classes=1 is out of range"):
        SequenceHead(cfg, 1)


def test_overfits_a_tiny_batch_with_mlm():
    cfg = tiny()
    torch.manual_seed(0)
    enc, tokens = Encoder(cfg), sequences(cfg, batch=8)
    head = MLMHead(cfg, enc.tok_emb)
    masked = torch.rand(tokens.shape, generator=torch.Generator().manual_seed(1)) < 0.15
    masked[:, [0, -1]] = False
    inputs = tokens.masked_fill(masked, cfg.mask_id)
    params = optimizer_groups(torch.nn.ModuleList([enc, head]), 0.0)
    opt = torch.optim.AdamW(params, lr=3e-3)
    for step in range(400):
        loss = F.cross_entropy(head(enc(inputs)[masked]), tokens[masked])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 0:
            first = loss.item()
    assert first > 2.5  # about log(24) = 3.2 at init
    assert loss.item() < 0.05  # speed is make bench's job, not a timed test's


def test_flops_estimate_follows_nanogpt_formula():
    cfg = tiny()
    enc = model(cfg)
    n = enc.num_parameters(exclude_embeddings=True)
    assert enc.estimate_flops_per_token(92) == 6 * n + 12 * 2 * 2 * 16 * 92
    assert enc.estimate_mfu(1e6, 1e12, 92) == pytest.approx(
        enc.estimate_flops_per_token(92) * 1e6 / 1e12
    )


@pytest.mark.parametrize("preset, params_m", [("tiny", 0.02), ("small", 0.82), ("base", 85.21)])
def test_presets_compose_with_tokenizer_vocab(preset, params_m):
    # the presets extend the registered schema (conftest registers it), so compose them
    def model_cfg(*overrides):
        with initialize_config_dir(config_dir=str(CONFIG_DIR.parent), version_base="1.3"):
            root = compose(
                "train", overrides=[f"model={preset}", "tokenizer.vocab_size=100", *overrides]
            )
        return build(root.model, "model")

    cfg = model_cfg()
    assert cfg.vocab_size == 100 and cfg.n_tokens == 104
    assert Encoder(cfg).num_parameters() / 1e6 == pytest.approx(params_m, abs=0.01)
    swept = model_cfg("model.layers=6", "model.heads=8")  # a sweep point
    assert (swept.layers, swept.heads) == (6, 8)


def test_runs_under_bf16_autocast():
    # init_std=0.2: at the default 0.02 the blocks add so little to the residual stream that
    # a wrong bf16 attention moves the output by 0.02 only (measured); here by more than 1
    cfg = tiny(init_std=0.2)
    enc, tokens = model(cfg), sequences(cfg, batch=2)
    with torch.no_grad():
        full = enc(tokens)  # float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = enc(tokens)
            plain, atts = enc(tokens, return_attention=True)
    # bf16 keeps 8 mantissa bits: the float32 function to about 0.01 (measured 0.012)
    torch.testing.assert_close(fast.float(), full, atol=0.05, rtol=0)
    torch.testing.assert_close(plain.float(), full, atol=0.05, rtol=0)


def test_compiles_without_graph_breaks():
    # aot_eager traces forward and backward through dynamo and AOTAutograd without
    # inductor's C++ build, which takes minutes on 2 cores; inductor runs on the GPU path.
    cfg = tiny()
    enc, tokens = model(cfg).train(), sequences(cfg, batch=2)
    compiled = torch.compile(enc, backend="aot_eager", fullgraph=True)
    compiled(tokens).sum().backward()
    torch.testing.assert_close(compiled.eval()(tokens), enc.eval()(tokens), atol=1e-5, rtol=0)
    assert set(enc.state_dict()) == set(
        compiled._orig_mod.state_dict()
    )  # save the uncompiled weights
