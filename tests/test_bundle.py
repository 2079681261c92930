"""The model bundle: one safetensors file that rebuilds the classifier, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import pipeline_probabilities, trained
from safetensors.numpy import load_file, save_file

from seisbert.bundle import HEADER_KEY, load_bundle, read_header
from seisbert.inference.predict import probabilities, tokens_of
from seisbert.pipeline import FeatureSet, TokenSet


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained(str(tmp_path_factory.mktemp("bundle_run")))


def test_round_trip_gives_identical_predictions(run):
    bundle = load_bundle(run["bundle"])
    tset = TokenSet.load(run["tokens"])
    rows = np.arange(len(tset.metadata))
    from_bundle = probabilities(bundle.module(), np.asarray(tset.tokens), 64, progress=False)
    np.testing.assert_array_equal(from_bundle, pipeline_probabilities(run, rows))
    assert 0 < from_bundle.min() < from_bundle.max() < 1  # a real classifier, not a constant


def test_round_trip_of_a_psd_input_model(tmp_path_factory):
    run = trained(str(tmp_path_factory.mktemp("bundle_psd")), "model.input=both")
    bundle = load_bundle(run["bundle"])
    assert bundle.input_kind == "both"
    tset = TokenSet.load(run["tokens"])
    windows = np.asarray(FeatureSet.load(run["features"]).features)
    rows = np.arange(len(tset.metadata))
    from_bundle = probabilities(bundle.module(), np.asarray(tset.tokens), 64, False, windows)
    np.testing.assert_allclose(from_bundle, pipeline_probabilities(run, rows), rtol=0, atol=1e-6)


def test_bundle_tokenizer_reproduces_the_training_tokens(run):
    bundle = load_bundle(run["bundle"])
    fset = FeatureSet.load(run["features"])
    np.testing.assert_array_equal(
        tokens_of(bundle, np.asarray(fset.features)),
        np.asarray(TokenSet.load(run["tokens"]).tokens),
    )


def test_header_holds_provenance_and_metrics(run):
    info = read_header(run["bundle"])
    summary = json.loads((run["features"] / "summary.json").read_text())
    assert info["class_names"] == ["earthquake", "blast"]
    assert info["tokenizer"]["digest"] == run["tokens"].name
    assert info["training"]["counts"]["records"] == summary["records"]
    assert info["training"]["train_prior_blast"] == 0.5  # class-weighted loss
    assert info["metrics"]["test/balanced_accuracy"] == pytest.approx(
        run["metrics"]["test/balanced_accuracy"]
    )
    assert info["features"]["window_s"] == 1.0 and "torch" in info["versions"]
    assert info["hyper_parameters"]["model"]["vocab_size"] == 16
    assert run["bundle"].read_bytes()[8:9] == b"{"  # safetensors: u64 header length, JSON header


def _rewrite(src, dst, edit):
    tensors = load_file(str(src))
    info = read_header(src)
    edit(info)
    save_file(tensors, str(dst), metadata={HEADER_KEY: json.dumps(info)})
    return dst


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda i: i.update(format=99), r"bundle format 99 \(this seisbert reads format 2\)"),
        (lambda i: i.update(seisbert_version="0.9.0"), r"written by seisbert 0.9.0, this is 0.1"),
        (
            lambda i: i["features"].update(whiten_db=3.0),
            r"features config has keys \['whiten_db'\]",
        ),
        (
            lambda i: i["features"].update(scaling="zscore"),
            r"features.scaling='zscore' is not allowed",
        ),
        (
            lambda i: i.update(module="os.system"),
            r"module 'os.system' is not one of seisbert's bundle",
        ),
        (
            lambda i: i["hyper_parameters"].update(_target_="os.system"),
            r"hyper_parameters \['_target_'\] are not arguments of module 'classifier'",
        ),
        (
            lambda i: i["hyper_parameters"]["model"].update(layers="2; rm -rf /"),
            r"hyper_parameters.model.layers='2; rm -rf /' is not a int",
        ),
    ],
)
def test_incompatible_bundle_is_refused_saying_what_differs(run, tmp_path, edit, message):
    bad = _rewrite(run["bundle"], tmp_path / "bad.safetensors", edit)
    with pytest.raises(ValueError, match=message):
        load_bundle(bad)


def test_foreign_files_are_refused(run, tmp_path):
    with pytest.raises(ValueError, match="is not a file"):
        load_bundle(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a bundle at all")
    with pytest.raises(ValueError, match="is not a safetensors file"):
        load_bundle(tmp_path / "junk.safetensors")
    save_file(load_file(str(run["bundle"])), str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="without a seisbert header"):
        load_bundle(tmp_path / "plain.safetensors")


def test_tokenizer_and_encoder_can_be_reused_from_a_bundle_or_tokens_artifact(run, tmp_path):
    from seisbert.bundle import encoder_from_bundle, load_tokenizer_from

    fset = FeatureSet.load(run["features"])
    expected = np.asarray(TokenSet.load(run["tokens"]).tokens)
    for path in (run["bundle"], run["tokens"]):
        tokenizer, digest = load_tokenizer_from(path)
        assert digest == run["tokens"].name
        np.testing.assert_array_equal(tokenizer.tokenize(np.asarray(fset.features)), expected)
    model, state, digest = encoder_from_bundle(run["bundle"])
    module = load_bundle(run["bundle"]).module()
    assert model["vocab_size"] == 16 and digest == run["tokens"].name
    for name, weight in module.encoder.state_dict().items():
        np.testing.assert_array_equal(state[name].numpy(), weight.numpy())
    with pytest.raises(ValueError, match="neither a bundle file nor a tokens artifact"):
        load_tokenizer_from(tmp_path)


def test_a_bundle_is_fine_tuned_on_a_new_region_with_its_own_tokenizer(run, tmp_path):
    """Transfer: another synthetic draw (a "new region") keeps the bundle's tokenizer
    (tokenizer.from_path, no fit) and starts from its encoder (task.params.checkpoint=bundle)."""
    from conftest import compose_cfg

    from seisbert.pipeline import prepare
    from seisbert.train.job import train_job

    region = [
        "data.seed=7",
        "experiment=finetune",
        "trainer.max_epochs=1",
        "task.params.masked_eval=false",
        f"task.params.checkpoint={run['bundle']}",
    ]
    refused = compose_cfg(tmp_path / "a", region, tmp_path / "cache")
    with pytest.raises(ValueError, match="tokenizer.from_path="):
        train_job(refused)  # its own fitted tokenizer speaks another vocabulary
    cfg = compose_cfg(
        tmp_path / "b", [*region, f"tokenizer.from_path={run['bundle']}"], tmp_path / "cache"
    )
    tokens = prepare(cfg)["tokens"]
    tset = TokenSet.load(tokens)
    assert tset.tokenizer_digest == run["tokens"].name != tset.digest
    windows = np.asarray(FeatureSet.load(prepare(cfg)["features"]).features)
    centroids = load_bundle(run["bundle"]).tokenizer().centroids
    nearest = ((windows[:20, :, None] - centroids[None, None]) ** 2).sum(-1).argmin(-1)
    np.testing.assert_array_equal(nearest, np.asarray(tset.tokens[:20]))  # the bundle's centroids
    metrics = train_job(cfg)
    assert metrics["train_records"] == int((tset.metadata["split"] == "train").sum())
    assert (
        load_bundle(Path(cfg.paths.output_dir) / "model.bundle.safetensors").info["tokenizer"][
            "digest"
        ]
        == run["tokens"].name
    )  # the chain keeps the original vocabulary's name
