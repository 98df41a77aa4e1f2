"""The joint loss masks padding, skips unlabelled terms and matches hand computations."""

import math

import torch

from singalign.models import SingAlignModel, preset
from singalign.models.losses import LossConfig, joint_loss


def _batch(t=50):
    torch.manual_seed(0)
    pitch = torch.full((2, t), 128)
    pitch[0, 5:20] = 60
    onset = torch.zeros(2, t)
    onset[0, 5] = 1
    return {
        "features": torch.randn(2, 2, 80, t),
        "lengths": torch.tensor([t, 30]),
        "pitch": pitch,
        "onset": onset,
        "has_notes": torch.tensor([True, True]),
        "targets": torch.tensor([[9, 6, 13, 13, 16], [4, 3, 0, 0, 0]]),
        "target_lengths": torch.tensor([5, 2]),
        "has_text": torch.tensor([True, True]),
    }


def _run(batch, model):
    out = model(batch["features"], batch["lengths"])
    return joint_loss(out, batch, LossConfig())


def test_padding_values_change_no_loss():
    model = SingAlignModel(preset("tiny", "multitask")).eval()
    b = _batch()
    a = _run(b, model)
    b2 = {k: v.clone() for k, v in b.items()}
    b2["features"][1, :, :, 30:] = 99.0
    b2["pitch"][1, 30:] = 7
    b2["onset"][1, 30:] = 1.0
    b2["targets"][1, 2:] = 5
    c = _run(b2, model)
    for k in ("pitch", "onset", "ctc", "loss"):
        assert torch.equal(a[k], c[k]), k


def test_unlabelled_items_do_not_count():
    model = SingAlignModel(preset("tiny", "multitask")).eval()
    b = _batch()
    b["has_notes"] = torch.tensor([False, False])
    terms = _run(b, model)
    assert terms["pitch"].item() == 0.0 and terms["onset"].item() == 0.0 and terms["ctc"].item() > 0


def test_onset_and_pitch_terms_match_hand_computation():
    t = 4
    out = {"pitch_logits": torch.zeros(1, t, 129), "onset_logits": torch.zeros(1, t)}
    batch = {
        "lengths": torch.tensor([t]),
        "pitch": torch.tensor([[60, 60, 128, 128]]),
        "onset": torch.tensor([[1.0, 0, 0, 0]]),
        "has_notes": torch.tensor([True]),
    }
    terms = joint_loss(out, batch, LossConfig(onset_pos_weight=20.0))
    # uniform logits: CE = log(129) for every frame whatever the class weights
    assert math.isclose(float(terms["pitch"]), math.log(129), rel_tol=1e-6)
    # BCE at logit 0 is log 2; the one positive frame is weighted 20: (20 + 3) log 2 / 4
    assert math.isclose(float(terms["onset"]), 23 * math.log(2) / 4, rel_tol=1e-6)
