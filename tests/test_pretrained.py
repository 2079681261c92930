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
