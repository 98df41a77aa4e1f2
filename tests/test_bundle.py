"""Bundles carry their config, verify their weights and rebuild the same model."""

import json

import pytest
import torch

from singalign.bundle import Bundle, init_bundle
from singalign.errors import BundleError, MissingWeightsError
from singalign.features import LogMelConfig
from singalign.models import SingAlignModel, preset


def test_round_trip_rebuilds_identical_model(tmp_path):
    torch.manual_seed(3)
    model = SingAlignModel(preset("tiny", "multitask")).eval()
    feats = LogMelConfig(top_db=None)
    b = Bundle.from_model(model, feats, training={"step": 5})
    b.save(tmp_path / "b")
    loaded = Bundle.load(tmp_path / "b")
    assert loaded.feature_config == feats and loaded.model_config == model.cfg and loaded.trained
    x = torch.randn(1, 2, 80, 50)
    with torch.no_grad():
        a, c = model(x, torch.tensor([50])), loaded.build_model()(x, torch.tensor([50]))
    assert torch.equal(a["char_logits"], c["char_logits"])
    cfg = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert cfg["vocab"][0] == "|" and cfg["blank_index"] == 0 and len(cfg["files"]["model.safetensors"]) == 64


def test_corrupt_or_missing_weights_are_named(tmp_path):
    path = init_bundle(tmp_path / "b", preset="tiny")
    assert not Bundle.load(path).trained
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        Bundle.load(path)
    weights.unlink()
    with pytest.raises(MissingWeightsError, match="model.safetensors"):
        Bundle.load(path)
    with pytest.raises(BundleError, match="not a bundle"):
        Bundle.load(tmp_path)


def test_saving_over_an_existing_bundle_replaces_it_whole(tmp_path):
    p = init_bundle(tmp_path / "b", preset="tiny", seed=1)
    first = Bundle.load(p).state["lyrics.fc.weight"].clone()
    init_bundle(tmp_path / "b", preset="tiny", seed=2)
    assert not torch.equal(first, Bundle.load(p).state["lyrics.fc.weight"])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b"]  # no temporary folders left
