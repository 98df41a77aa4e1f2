"""Shapes, parameter counts and padding invariance of the paper's CRNNs."""

import pytest
import torch

from singalign.models import SingAlignModel, count_parameters, preset
from singalign.models.config import ModelConfig


@pytest.mark.parametrize("name", ["paper", "small"])
def test_shapes_for_1000_frames(name):
    torch.manual_seed(0)
    model = SingAlignModel(preset(name, "multitask")).eval()
    x = torch.randn(1, 2, 80, 1000)
    with torch.no_grad():
        out = model(x, torch.tensor([1000]))
    assert out["pitch_logits"].shape == (1, 1000, 129)
    assert out["onset_logits"].shape == (1, 1000)
    assert out["char_logits"].shape == (1, 500, 34)
    assert out["ctc_lengths"].tolist() == [500]


def test_parameter_counts_printed_in_readme():
    counts = {
        name: count_parameters(SingAlignModel(preset(name, "multitask")))
        for name in ("paper", "small", "medium")
    }
    # The paper's preset: CRNN-1 339,536 + CRNN-2 17,989,098 (authors' code: about 18.5 M with a 2-layer head).
    assert counts == {"paper": 18_328_634, "small": 2_099_490, "medium": 6_349_602}
    lyrics = SingAlignModel(preset("paper", "baseline"))
    assert lyrics.pitch_onset is None and count_parameters(lyrics) == 17_989_098


def test_modes_build_the_right_networks():
    assert SingAlignModel(preset("tiny", "pitch_onset_only")).lyrics is None
    assert SingAlignModel(preset("tiny", "baseline")).pitch_onset is None
    with pytest.raises(ValueError, match="mode"):
        ModelConfig(mode="nope")


def test_padding_changes_nothing_for_valid_frames():
    torch.manual_seed(0)
    model = SingAlignModel(preset("tiny", "multitask")).eval()
    x = torch.randn(2, 2, 80, 120)
    lengths = torch.tensor([120, 77])
    x2 = x.clone()
    x2[1, :, :, 77:] = 1e3  # garbage in the padding
    with torch.no_grad():
        a, b = model(x, lengths), model(x2, lengths)
        alone = model(x[1:, :, :, :77], lengths[1:])
    assert torch.equal(a["char_logits"][1, :39], b["char_logits"][1, :39])
    assert torch.equal(a["pitch_logits"][1, :77], b["pitch_logits"][1, :77])
    torch.testing.assert_close(a["char_logits"][1, :39], alone["char_logits"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a["onset_logits"][1, :77], alone["onset_logits"][0], atol=1e-5, rtol=1e-5)


def test_oracle_uses_ground_truth_and_baseline_ignores_it():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 80, 40)
    lengths = torch.tensor([40])
    pitch = torch.full((1, 40), 128)
    onset = torch.zeros(1, 40)
    oracle = SingAlignModel(preset("tiny", "oracle")).eval()
    with torch.no_grad():
        a = oracle(x, lengths, pitch_target=pitch, onset_target=onset)["char_logits"]
        pitch2 = pitch.clone()
        pitch2[0, 10:20] = 60
        b = oracle(x, lengths, pitch_target=pitch2, onset_target=onset)["char_logits"]
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="oracle"):
        oracle(x, lengths)


def test_multitask_gradients_flow_from_ctc_into_pitch_network():
    torch.manual_seed(0)
    model = SingAlignModel(preset("tiny", "multitask"))
    out = model(torch.randn(1, 2, 80, 30), torch.tensor([30]))
    out["char_logits"].sum().backward()
    grad = model.pitch_onset.fc.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_config_round_trip():
    cfg = preset("small", "oracle")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_rnn_block_equals_packed_bilstm_for_unequal_lengths():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from singalign.models.blocks import RNNBlock

    torch.manual_seed(0)
    block = RNNBlock(20, 16).eval()
    x, lengths = torch.randn(3, 50, 20), torch.tensor([50, 31, 7])
    packed = pack_padded_sequence(block.norm(x), lengths, batch_first=True, enforce_sorted=False)
    ref, _ = pad_packed_sequence(block.lstm(packed)[0], batch_first=True, total_length=50)
    torch.testing.assert_close(block(x, lengths), ref, atol=1e-6, rtol=1e-5)


def _widened(old: SingAlignModel, new: SingAlignModel) -> dict:
    from singalign.models.blocks import widen_rnn_state

    old_state, new_state = old.state_dict(), new.state_dict()
    copied = {k: v for k, v in old_state.items() if k in new_state and new_state[k].shape == v.shape}
    return {**new_state, **copied, **widen_rnn_state(old_state, new_state)}


def test_widening_a_bilstm_keeps_the_old_model_outputs():
    """One lyrics BiLSTM block of 48 units widened to 64, with the output layer: the wider model
    starts out computing exactly what the trained narrow one does, at unequal lengths too."""
    torch.manual_seed(0)
    old = SingAlignModel(preset("tiny", "multitask")).eval()
    for p in old.parameters():  # non-trivial norms and biases, as after training
        p.data.add_(0.1 * torch.randn_like(p))
    new = SingAlignModel(preset("tiny", "multitask", ly_rnn_hidden=64)).eval()
    before = {k: v.clone() for k, v in new.state_dict().items()}
    new.load_state_dict(_widened(old, new))
    x, lengths = torch.randn(2, 2, 80, 40), torch.tensor([40, 27])
    with torch.no_grad():
        a, b = old(x, lengths), new(x, lengths)
    assert torch.allclose(a["char_logits"], b["char_logits"], atol=1e-5)
    assert torch.equal(a["pitch_logits"], b["pitch_logits"])
    w, w_old = new.lyrics.rnns[0].lstm.weight_hh_l0.view(4, 64, 64), old.lyrics.rnns[0].lstm.weight_hh_l0
    assert torch.equal(w[:, :48, :48], w_old.view(4, 48, 48)) and not w[:, :48, 48:].any()
    # the new units keep their own initialization
    assert torch.equal(w[:, 48:], before["lyrics.rnns.0.lstm.weight_hh_l0"].view(4, 64, 64)[:, 48:])
    assert not new.lyrics.fc.weight[:, 48:64].any() and not new.lyrics.fc.weight[:, 112:].any()


def test_widening_into_a_deeper_stack_leaves_the_new_block_and_output_layer_alone():
    torch.manual_seed(0)
    old = SingAlignModel(preset("tiny", "multitask"))
    new = SingAlignModel(preset("tiny", "multitask", ly_rnn_hidden=64, ly_rnn_layers=2))
    from singalign.models.blocks import widen_rnn_state

    widened = widen_rnn_state(old.state_dict(), new.state_dict())
    assert all(k.startswith("lyrics.rnns.0.") for k in widened)  # not block 1, not lyrics.fc
    assert len(widened) == 10  # 4 LSTM tensors x 2 directions + the block's layer norm
    # a narrower or unchanged model is not "widened"
    assert widen_rnn_state(new.state_dict(), old.state_dict()) == {}
    assert widen_rnn_state(old.state_dict(), old.state_dict()) == {}
