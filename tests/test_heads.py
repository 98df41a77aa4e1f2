"""Audio-text heads: the InfoNCE loss, masked pooling, zero-shot tagging on planted pairs, bundles
with heads, embedding whole songs, and head training (frozen and joint, exact resume)."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_prepared

from singalign import metrics
from singalign.bundle import Bundle, init_bundle
from singalign.contrastive_train import HeadTrainConfig, evaluate_bundle, fit_heads
from singalign.embed import Embedder, EmbedOptions, capture_encoding
from singalign.errors import BundleError
from singalign.models.heads import (
    HEAD_FILE,
    AudioTextHead,
    HeadConfig,
    MaskedPool,
    head_config_for,
    info_nce,
    load_head,
    same_key_matrix,
    save_with_head,
)
from singalign.textsample import zero_shot_prompts


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny models: a second intra-op thread only adds synchronisation (30x slower on a busy machine)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


BOW = HeadConfig(
    text_tower="bow",
    text_trainable=True,
    bow_buckets=512,
    bow_dim=32,
    embed_dim=32,
    proj_hidden=64,
    dropout=0.0,
)


def test_info_nce_aligned_pairs_near_zero_and_random_pairs_near_log_n():
    n = 16
    eye = torch.eye(n, 32)  # orthonormal, so every wrong pair has cosine 0
    assert float(info_nce(eye, eye, 100.0)) < 1e-6
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(64, 512, generator=g), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(64, 512, generator=g), dim=-1)
    assert abs(float(info_nce(a, t, 1.0)) - math.log(64)) < 0.05
    # swapped texts: every pair wrong, the loss is large (about scale * 1)
    assert float(info_nce(eye, eye.roll(1, 0), 10.0)) > 9.0


def test_info_nce_positives_spread_the_target():
    # two copies of one pair: without positives the best loss is log 2; declaring them
    # positives of each other gives the same minimum, and a third distinct pair stays near 0
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    pos = same_key_matrix(["x", "x", "y"])
    assert pos.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    loss = float(info_nce(a, a, 100.0, pos))
    assert abs(loss - (2 * math.log(2)) / 3) < 1e-4  # rows 0 and 1 each at log 2, row 2 at 0


@pytest.mark.parametrize("mode", ["mean", "attention"])
def test_masked_pool_ignores_padding(mode):
    torch.manual_seed(0)
    pool = MaskedPool(8, mode, 16)
    h = torch.randn(2, 10, 8)
    lengths = torch.tensor([10, 6])
    out = pool(h, lengths)
    h2 = h.clone()
    h2[1, 6:] = 1e3  # padding of item 2
    assert torch.allclose(pool(h2, lengths), out, atol=1e-6)
    assert torch.allclose(pool(h[1:, :6], torch.tensor([6])), out[1:], atol=1e-6)
    if mode == "mean":
        assert torch.allclose(out[1], h[1, :6].mean(0), atol=1e-6)


def test_identical_embeddings_give_recall_at_1_of_one():
    from singalign.contrastive_train import _retrieval_summary

    e = torch.nn.functional.normalize(torch.randn(20, 16), dim=-1).numpy()
    s = _retrieval_summary("t2m", e @ e.T)
    assert s["t2m_r@1"] == 1.0 and s["t2m_medr"] == 1.0 and s["t2m_map@10"] == 1.0


def test_planted_pairs_reach_zero_shot_roc_auc_one():
    """A tiny head + bag-of-words text tower learns planted (encoding, tag) pairs from scratch."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tags = ["rock", "jazz", "folk", "metal", "soul", "blues"]
    d = 24
    centres = rng.standard_normal((len(tags), d)).astype(np.float32)
    labels = rng.integers(0, len(tags), 96)
    h = torch.from_numpy(
        centres[labels][:, None, :] + 0.7 * rng.standard_normal((96, 12, d)).astype(np.float32)
    )
    lengths = torch.full((96,), 12)
    head = AudioTextHead(replace(BOW, audio_dim=d, spaces=("tags",)))
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _step in range(300):
        idx = torch.from_numpy(rng.choice(96, 24, replace=False))
        texts = [tags[labels[i]] for i in idx]
        loss = info_nce(
            head.embed_audio(h[idx], lengths[idx], "tags"),
            head.embed_text(texts, "tags"),
            head.scale("tags"),
            same_key_matrix(texts),
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        audio = head.embed_audio(h, lengths, "tags").numpy()
        tag_emb = head.embed_text(tags, "tags").numpy()
    truth = np.eye(len(tags), dtype=int)[labels]
    assert metrics.macro_roc_auc(truth, audio @ tag_emb.T) == 1.0
    assert metrics.zero_shot_accuracy(audio @ tag_emb.T, labels) == 1.0


@pytest.fixture(scope="module")
def head_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    torch.manual_seed(0)
    alt = Bundle.load(init_bundle(root / "alt", "tiny", "multitask"))
    head = AudioTextHead(head_config_for(alt, replace(BOW, evidence=True)))
    return save_with_head(alt, head, root / "with_head", tag_vocab=["rock", "jazz"])


def test_bundle_keeps_head_beside_alt_weights(head_bundle, tmp_path):
    b = Bundle.load(head_bundle)
    assert HEAD_FILE in b.config["files"] and b.config["head"]["tag_vocab"] == ["rock", "jazz"]
    m = b.model_config  # the lyrics encoding, then CRNN-1's pitch and onset probabilities
    assert b.config["head"]["config"]["audio_dim"] == 2 * m.ly_rnn_hidden + m.n_pitch + 1
    b.build_model()  # the ALT weights load as before (the head lives in its own file)
    h1, h2 = load_head(b), load_head(Bundle.load(head_bundle))
    x = torch.randn(2, 7, h1.cfg.audio_dim)
    assert torch.equal(
        h1.embed_audio(x, torch.tensor([7, 5]), "tags"), h2.embed_audio(x, torch.tensor([7, 5]), "tags")
    )
    # a damaged head file is caught by the bundle checksum
    import shutil

    shutil.copytree(head_bundle, tmp_path / "bad")
    (tmp_path / "bad" / HEAD_FILE).write_bytes(b"0" * 100)
    with pytest.raises(BundleError, match="SHA-256"):
        Bundle.load(tmp_path / "bad")
    alt_only = Bundle.load(init_bundle(tmp_path / "plain", "tiny"))
    with pytest.raises(BundleError, match="no audio-text head"):
        load_head(alt_only)


def test_embedder_stitches_windows_of_a_long_song(head_bundle):
    emb = Embedder(
        Bundle.load(head_bundle), EmbedOptions(separation=False, window_frames=400, overlap_frames=100)
    )
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((2, 80, 1500)).astype(np.float32)
    h = emb.encode(feats)
    assert h.shape == (750, emb.head.cfg.audio_dim)
    short = feats[..., :300]  # one window: the same as one forward pass
    assert emb.head.cfg.evidence  # the encoding is followed by CRNN-1's probabilities
    with torch.no_grad(), capture_encoding(emb.model, evidence=True) as box:
        emb.model(torch.from_numpy(short[None]), torch.tensor([300]))
    assert torch.allclose(emb.encode(short), box["h"][0], atol=1e-5)
    vec = emb.embed_features(feats)
    assert set(vec) == {"tags", "lyrics"} and all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in vec.values())
    scores = emb.tag_scores(vec["tags"], ["rock", "jazz"])
    assert scores.shape == (1, 2) and np.all(np.abs(scores) <= 1 + 1e-6)


def test_evidence_follows_the_encoding_with_crnn1_probabilities_pooled_to_its_rate(head_bundle):
    alt = Bundle.load(Path(head_bundle).parent / "alt")
    model = alt.build_model().eval()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 2, 80, 41)).astype(np.float32))
    lengths = torch.tensor([41, 30])
    with torch.no_grad(), capture_encoding(model) as plain:
        model(x, lengths)
    with torch.no_grad(), capture_encoding(model, evidence=True) as box:
        out = model(x, lengths)
    k1 = alt.model_config.n_pitch + 1
    h = box["h"]
    assert h.shape == (2, 21, plain["h"].shape[-1] + k1)
    assert torch.equal(h[..., :-k1], plain["h"])
    po = torch.cat([out["pitch_logits"].softmax(-1), torch.sigmoid(out["onset_logits"])[..., None]], -1)
    want = torch.nn.functional.max_pool1d(po[:1].transpose(1, 2), 3, 2, 1).transpose(
        1, 2
    )  # item 0: no padding
    assert torch.allclose(h[0, :, -k1:], want[0], atol=1e-6)
    assert torch.all(h[1, 15:, -k1:] == 0)  # padded frames of the shorter item carry nothing
    # the head's input width follows: only a multitask bundle gets the evidence
    assert (
        head_config_for(alt, replace(BOW, evidence=True)).audio_dim == 2 * alt.model_config.ly_rnn_hidden + k1
    )
    base = Bundle.load(init_bundle(Path(head_bundle).parent / "base", "tiny", "baseline"))
    assert head_config_for(base, replace(BOW, evidence=True)).evidence is False


def test_minilm_text_tower_frozen():
    head = AudioTextHead(HeadConfig(audio_dim=8, spaces=("tags",)))
    base = head.text(["rock music", "a rock song", "a quiet piano lullaby"])
    assert base.shape == (3, 384) and torch.allclose(base.norm(dim=-1), torch.ones(3), atol=1e-5)
    sim = base @ base.T
    assert sim[0, 1] > sim[0, 2] + 0.1  # the pretrained encoder knows rock from lullabies
    assert not any(k.startswith("text.encoder.") for k in head.export_state())  # frozen: not stored
    assert not any(p.requires_grad for p in head.text.parameters())


# ----------------------------------------------------------------------------- training

TAGS = ["rock", "jazz", "pop", "folk"]
WORDS = "love night river light stone fire dream road home sky rain heart".split()


def _planted_corpus(root: Path, n_songs: int = 12) -> tuple[Path, Path]:
    """Songs of 2 segments; each song's tag is planted in its features (a loud band per tag)."""
    from singalign.data.prepared import PreparedSet, save_item

    rng = np.random.default_rng(0)
    items, metas = [], []
    for s in range(n_songs):
        lyr = " ".join(rng.choice(WORDS, 8))
        items += [
            {"id": f"song{s:03d}/seg{g:03d}", "text": lyr, "n_frames": 120, "kind": "song"} for g in range(2)
        ]
        metas.append(
            {"id": f"song{s:03d}", "split": "train", "tags": {"genre": [TAGS[s % 4]]}, "lyrics": lyr}
        )
    prep = make_prepared(root / "prep", items)
    ps = PreparedSet.load(str(prep))
    for i, e in enumerate(ps.entries):
        it = ps[i]
        k = int(e["id"][4:7]) % 4
        it["features"][:, 10 + 15 * k : 20 + 15 * k] += 4.0
        save_item(e["file"], it["features"], it["pitch"], it["onset"], it["targets"])
    meta = root / "metadata.jsonl"
    meta.write_text("".join(json.dumps(m) + "\n" for m in metas))
    return prep, meta


def test_fit_heads_frozen_resumes_exactly_and_learns_planted_tags(tmp_path, head_bundle):
    prep, meta = _planted_corpus(tmp_path)
    alt = str(Path(head_bundle).parent / "alt")
    cfg = HeadTrainConfig(
        train=(str(prep),), valid=(str(prep),), metadata=(str(meta),), bundle=alt,
        out_dir=str(tmp_path / "straight"), head=replace(BOW, evidence=True), epochs=6, batch_size=8, lr=3e-3, warmup_steps=3, seed=3,
    )  # fmt: skip
    fit_heads(cfg, progress=False)
    resumed = replace(cfg, out_dir=str(tmp_path / "resumed"))
    fit_heads(resumed, stop_after_steps=5, progress=False)  # "killed" in epoch 2 (3 batches an epoch)
    fit_heads(resumed, progress=False)
    a = load_head(Bundle.load(tmp_path / "straight" / "best")).state_dict()
    b = load_head(Bundle.load(tmp_path / "resumed" / "best")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist = [json.loads(x) for x in (tmp_path / "straight" / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 6 and hist[-1]["valid_tag_roc_auc"] == 1.0
    assert "valid_genre_accuracy" in hist[-1]
    # the best epoch is the one with the lowest retrieval error (the default selection)
    errs = [h["valid_retrieval_error"] for h in hist]
    best = json.loads((tmp_path / "straight" / "best" / "bundle.json").read_text())["head"]["training"][
        "record"
    ]
    assert best["valid_retrieval_error"] == min(errs)
    summary = evaluate_bundle(
        str(tmp_path / "straight" / "best"), [str(prep)], [str(meta)], str(tmp_path / "ev")
    )
    assert summary["tag_roc_auc"] == 1.0 and summary["n_songs"] == 12
    rows = (tmp_path / "ev" / "queries.jsonl").read_text().splitlines()
    assert len(rows) == 24  # 12 caption queries + 12 lyric queries, each with its rank


def test_fit_heads_joint_trains_alt_weights_and_reports_wer(tmp_path, head_bundle):
    prep, meta = _planted_corpus(tmp_path, n_songs=4)
    alt = Path(head_bundle).parent / "alt"
    cfg = HeadTrainConfig(
        train=(str(prep),), valid=(str(prep),), metadata=(str(meta),), bundle=str(alt), mode="joint",
        out_dir=str(tmp_path / "joint"), head=replace(BOW, evidence=True), epochs=1, batch_size=4, warmup_steps=1,
    )  # fmt: skip
    fit_heads(cfg, progress=False)
    out = Bundle.load(tmp_path / "joint" / "best")
    src = Bundle.load(alt)
    assert any(not torch.equal(out.state[k], src.state[k]) for k in src.state)
    hist = json.loads((tmp_path / "joint" / "history.jsonl").read_text().splitlines()[-1])
    assert {"train_ctc", "train_tags", "train_lyrics", "valid_loss", "valid_wer"} <= set(hist)
    assert zero_shot_prompts("rock")[0] == "rock"


def test_retrieval_error_is_one_minus_the_mean_of_its_figures():
    from singalign.contrastive_train import retrieval_error

    assert retrieval_error(
        {"tag_roc_auc": 0.9, "t2m_map@10": 0.5, "lyr_map@10": 0.1, "loss": 3.0}
    ) == pytest.approx(0.5)
    assert retrieval_error({"tag_roc_auc": 0.8, "t2m_map@10": float("nan")}) == pytest.approx(0.2)
    assert math.isnan(retrieval_error({"loss": 1.0}))
    with pytest.raises(ValueError, match="select"):
        HeadTrainConfig(train=("a",), metadata=("m",), bundle="b", select="wer")
