"""Training the audio-text heads: alone on a frozen ALT model, or jointly with the ALT losses.

``fit_heads(HeadTrainConfig)`` follows ``singalign.train.fit``: a frozen config written to
``OUT/train_config.json``, batches that are a pure function of (seed, epoch) (the texts of a batch
too: they are drawn from a generator seeded by (seed, epoch, batch)), an atomic checkpoint with
the model, optimizer, scheduler and RNG states and the position in the epoch (a killed run resumes
exactly), validation each epoch with early stopping, ``history.jsonl``, the best model exported as
a bundle (``OUT/best``: the ALT weights + the head, see ``singalign.models.heads``), and DDP under
``torchrun``. The epoch loop itself is ``singalign.train.EpochLoop``, the one ``fit`` runs; this
module gives it the heads' batches, loss, validation and export.

Modes:
    ``frozen``: the ALT bundle's weights stay fixed. Its encoder output for every item is computed
        once and cached in ``OUT/encodings/`` (float16, one file per item), so a step costs only the
        heads and the text tower.
    ``joint``: the ALT model trains too; the loss is the joint ALT loss (pitch + onset + CTC) +
        ``tag_weight`` * InfoNCE(tags) + ``lyrics_weight`` * InfoNCE(lyrics). Validation also reports
        greedy WER (``singalign.train.evaluate``), to measure what the contrastive terms do to it.

Texts per item: ``tags`` space: a stochastic tag text or the caption of the item's song
(``singalign.textsample.tag_text``); ``lyrics`` space: a span of the item's lyrics. Items of the
same song are positives of each other in the tags space, equal texts in both (``info_nce``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from singalign.models.heads import HeadConfig
from singalign.models.losses import LossConfig
from singalign.textsample import TextSampleConfig

log = logging.getLogger(__name__)

MODES = ("frozen", "joint")
SELECT = ("retrieval", "loss")
# the validation figures whose mean makes the "retrieval" selection metric (higher is better)
RETRIEVAL_FIGURES = ("tag_roc_auc", "t2m_map@10", "lyr_map@10")
ENCODINGS = "encodings"


@dataclass(frozen=True)
class HeadTrainConfig:
    """Everything that defines a head-training run (written to ``OUT/train_config.json``)."""

    train: tuple[str, ...]  # prepared folders (singalign.data.prepared)
    metadata: tuple[str, ...]  # metadata.jsonl files: song id -> tags, caption, lyrics
    bundle: str  # the ALT bundle whose encoder the heads sit on (joint mode: the starting weights)
    valid: tuple[str, ...] = ()
    out_dir: str = "runs/heads"
    mode: str = "frozen"
    head: HeadConfig = field(default_factory=lambda: HeadConfig(evidence=True))
    text: TextSampleConfig = field(default_factory=TextSampleConfig)
    tag_weight: float = 1.0
    lyrics_weight: float = 1.0
    loss: LossConfig = field(default_factory=LossConfig)  # the ALT terms (joint mode)
    epochs: int = 50
    max_steps: int | None = None
    batch_size: int = 32
    speech_per_batch: int = 0  # joint mode: speech items in each batch (ALT loss only)
    max_frames: int = 2000
    lr: float = 1e-3  # heads
    text_lr: float = 2e-5  # a fine-tuned text tower
    alt_lr: float = 5e-4  # joint mode: the ALT model
    warmup_steps: int = 100
    grad_clip: float | None = 1.0
    patience: int = 10
    # what picks the best epoch and stops early: "retrieval" (1 - the mean of tag ROC-AUC and the
    # caption and lyrics mAP@10) or "loss" (the validation InfoNCE). On the synthetic songs the
    # loss turned upward from epoch 5 while ROC-AUC and mAP still rose to epoch 11 (the text
    # logits grow overconfident before the rankings stop improving).
    select: str = "retrieval"
    seed: int = 0
    device: str = "auto"
    save_every_steps: int | None = None
    valid_batch_size: int = 16

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {SELECT}, not {self.select!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(head=self.head.to_dict(), text=self.text.to_dict(), loss=self.loss.to_dict())
        d.update(train=list(self.train), valid=list(self.valid), metadata=list(self.metadata))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadTrainConfig:
        d = dict(d)
        d["head"] = HeadConfig.from_dict(d.get("head", {}))
        d["text"] = TextSampleConfig.from_dict(d.get("text", {}))
        d["loss"] = LossConfig.from_dict(d.get("loss", {}))
        for k in ("train", "valid", "metadata"):
            d[k] = tuple(d.get(k, ()))
        return cls(**d)


# ----------------------------------------------------------------------------- data


@dataclass
class HeadData:
    """Prepared items joined with their songs' metadata."""

    items: Any  # PreparedSet
    metas: list[Any]  # SongMeta | None per item
    song_ids: list[str]

    @classmethod
    def load(
        cls, folders, metadata: dict, max_frames: int | None = None, require_meta: bool = False
    ) -> HeadData:
        from singalign.data.prepared import PreparedSet
        from singalign.textsample import song_id_of

        items = PreparedSet.load(list(folders), max_frames=max_frames)
        songs = [song_id_of(e["id"]) for e in items.entries]
        keep = [i for i, s in enumerate(songs) if not require_meta or s in metadata]
        items.entries = [items.entries[i] for i in keep]
        songs = [songs[i] for i in keep]
        return cls(items, [metadata.get(s) for s in songs], songs)

    def __len__(self) -> int:
        return len(self.items)


def batch_texts(
    data: HeadData, idx: list[int], texts: dict[int, str], cfg: TextSampleConfig, rng
) -> dict[str, list]:
    """Per space: the batch positions that have a text, their texts, and their positive keys."""
    from singalign.textsample import lyric_span, tag_text

    out: dict[str, list] = {"tags": [], "lyrics": []}
    for pos, i in enumerate(idx):
        meta = data.metas[i]
        t = tag_text(meta, rng, cfg) if meta is not None else ""
        if t:
            out["tags"].append((pos, t, data.song_ids[i]))
        lyr = lyric_span(texts.get(i, data.items.entries[i].get("text", "")), rng, cfg)
        if lyr:
            out["lyrics"].append((pos, lyr, lyr))
    return out


# ----------------------------------------------------------------------------- encodings cache


def cache_encodings(
    model, data: HeadData, folder: Path, device, progress: bool = True, evidence: bool = False
) -> list[Path]:
    """The frozen encoder output of every item (with CRNN-1's probabilities when ``evidence``, see
    ``embed.capture_encoding``), one ``<n>.npy`` (T2, D) float16 file each.

    Files already present are kept (the cache belongs to one bundle and one ``evidence``: ``folder``
    is named after them), so an interrupted run resumes its cache.
    """
    import torch
    from tqdm import tqdm

    from singalign.embed import capture_encoding
    from singalign.files import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:07d}.npy" for i in range(len(data))]
    todo = [i for i, p in enumerate(paths) if not p.exists()]
    model.eval()
    for i in tqdm(todo, desc="encoding", unit="item", disable=not progress, leave=False):
        it = data.items[i]
        x = torch.from_numpy(it["features"])[None].to(device)
        with torch.no_grad(), capture_encoding(model, evidence) as box:
            out = model(
                x, torch.tensor([x.shape[-1]], device=device), po_gate=torch.tensor([float(it["has_notes"])])
            )
        n = int(out["ctc_lengths"][0])
        with atomic_path(paths[i]) as tmp, open(tmp, "wb") as f:
            np.save(f, box["h"][0, :n].cpu().numpy().astype(np.float16))
    return paths


def pad_encodings(arrays: list[np.ndarray]):
    """(T_i, D) arrays -> (B, T, D) float tensor and (B,) lengths."""
    import torch

    t = max(a.shape[0] for a in arrays)
    h = torch.zeros(len(arrays), t, arrays[0].shape[1])
    for i, a in enumerate(arrays):
        h[i, : a.shape[0]] = torch.from_numpy(a.astype(np.float32))
    return h, torch.tensor([a.shape[0] for a in arrays])


# ----------------------------------------------------------------------------- the module


def _contrastive_terms(head, h, lengths, texts: dict[str, list], weights: dict[str, float]):
    """InfoNCE per space over the batch items that have a text of that space."""
    import torch

    from singalign.models.heads import info_nce, same_key_matrix

    terms = {}
    for space in head.cfg.spaces:
        rows = texts.get(space, [])
        if len(rows) < 2 or weights.get(space, 0.0) == 0.0:
            terms[space] = h.new_zeros(())
            continue
        pos = torch.tensor([r[0] for r in rows], device=h.device)
        a = head.embed_audio(h[pos], lengths[pos], space)
        t = head.embed_text([r[1] for r in rows], space)
        positives = same_key_matrix([r[2] for r in rows]).to(h.device)
        terms[space] = info_nce(a, t, head.scale(space), positives)
    return terms


class _HeadsStep:
    """What one training step runs (frozen: heads on cached encodings; joint: ALT model + heads)."""

    def __init__(self, cfg: HeadTrainConfig, head, alt) -> None:
        self.cfg, self.head, self.alt = cfg, head, alt
        self.weights = {"tags": cfg.tag_weight, "lyrics": cfg.lyrics_weight}

    def __call__(self, net_alt, batch, texts, device) -> dict:
        """``net_alt``: the ALT model or its DDP wrapper (joint mode); None in frozen mode."""
        from singalign.embed import capture_encoding
        from singalign.train import batch_loss

        if self.alt is None:
            h, lengths = batch["h"].to(device), batch["h_lengths"].to(device)
            terms = _contrastive_terms(self.head, h, lengths, texts, self.weights)
            terms["loss"] = sum(self.weights[s] * v for s, v in terms.items())
            return terms
        with capture_encoding(self.alt, self.head.cfg.evidence) as box:
            out, terms = batch_loss(net_alt, batch, self.cfg.loss, device)
        con = _contrastive_terms(self.head, box["h"], out["ctc_lengths"], texts, self.weights)
        terms.update(con)
        terms["loss"] = terms["loss"] + sum(self.weights[s] * v for s, v in con.items())
        return terms


# ----------------------------------------------------------------------------- the loop


@dataclass
class HeadFitResult:
    epochs: int
    steps: int
    best_metric: float | None
    stopped_early: bool
    seconds: float
    out_dir: str
    head: Any = field(default=None, repr=False)


def _collate(data: HeadData, idx: list[int], enc_paths: list[Path] | None):
    from singalign.data.prepared import collate

    if enc_paths is not None:
        h, lengths = pad_encodings([np.load(enc_paths[i]) for i in idx])
        return {"h": h, "h_lengths": lengths}
    return collate([data.items[i] for i in idx])


def fit_heads(
    cfg: HeadTrainConfig, stop_after_steps: int | None = None, progress: bool = True
) -> HeadFitResult:
    """Train (or resume training) the heads as ``cfg`` says; see the module docstring.

    Args:
        cfg: the run. ``OUT/checkpoint.pt`` present means resume.
        stop_after_steps: stop (as if killed) after this many optimizer steps in total; for tests.
        progress: progress bars (rank 0 only).
    """
    import torch

    from singalign.bundle import Bundle
    from singalign.data.prepared import epoch_batches
    from singalign.files import write_json
    from singalign.library import bundle_fingerprint
    from singalign.models.heads import AudioTextHead, head_config_for, save_with_head
    from singalign.textsample import load_metadata, tag_vocabulary
    from singalign.train import EpochLoop, init_device, warmup_schedule

    t0 = time.time()
    dist_info, device = init_device(cfg.device)
    out = Path(cfg.out_dir)
    bundle = Bundle.load(cfg.bundle)
    head_cfg = head_config_for(bundle, cfg.head)
    cfg = replace(cfg, head=head_cfg)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "train_config.json", cfg.to_dict())

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    metadata = load_metadata(list(cfg.metadata))
    frozen = cfg.mode == "frozen"
    train = HeadData.load(cfg.train, metadata, cfg.max_frames, require_meta=frozen)
    valid = HeadData.load(cfg.valid, metadata, require_meta=True) if cfg.valid else None
    if len(train) == 0:
        raise ValueError(f"no training items in {cfg.train} with metadata in {cfg.metadata}")
    tag_vocab = tag_vocabulary([m for m in train.metas if m is not None])

    head = AudioTextHead(head_cfg).to(device)
    alt = None
    enc_train = enc_valid = None
    if frozen:
        encoder = bundle.build_model().to(device)
        ev = head_cfg.evidence
        cache = out / ENCODINGS / (bundle_fingerprint(bundle).replace("+", "_") + ("_evidence" if ev else ""))
        if dist_info.main:  # rank 0 fills the cache; the others wait for it
            enc_train = cache_encodings(encoder, train, cache / "train", device, progress, ev)
            enc_valid = (
                cache_encodings(encoder, valid, cache / "valid", device, progress, ev) if valid else None
            )
        if dist_info.world > 1:
            torch.distributed.barrier()
            enc_train = cache_encodings(encoder, train, cache / "train", device, False, ev)
            enc_valid = cache_encodings(encoder, valid, cache / "valid", device, False, ev) if valid else None
        del encoder
        module = head
    else:
        alt = bundle.build_model().to(device).train()
        module = torch.nn.ModuleDict({"alt": alt, "head": head})
    groups = [
        {
            "params": [
                p for n, p in head.named_parameters() if not n.startswith("text.") and p.requires_grad
            ],
            "lr": cfg.lr,
        }
    ]
    text_params = [p for p in head.text.parameters() if p.requires_grad]
    if text_params:
        groups.append(
            {"params": text_params, "lr": cfg.text_lr if head_cfg.text_tower == "minilm" else cfg.lr}
        )
    if alt is not None:
        groups.append({"params": list(alt.parameters()), "lr": cfg.alt_lr})
    # joint mode: the ALT model's own optimizer (Adam with AMSGrad, as recipes/train.py), so that a
    # joint run differs from an ALT-only run by the contrastive terms alone
    opt = torch.optim.AdamW(groups, weight_decay=0.0, amsgrad=not frozen)
    loop = EpochLoop(out, module, opt, warmup_schedule(opt, cfg.warmup_steps), dist_info, cfg, t0)
    loop.resume()

    # DDP wraps the ALT model (joint mode), whose forward it sees; the head is called through its
    # own methods (embed_audio, embed_text), which DDP cannot hook, so its gradients are averaged
    # across ranks by hand after each backward.
    net_alt = alt
    if dist_info.world > 1 and alt is not None:
        net_alt = torch.nn.parallel.DistributedDataParallel(
            alt, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    step_fn = _HeadsStep(cfg, head, alt)
    texts = {i: e.get("text", "") for i, e in enumerate(train.items.entries)}

    def loss(epoch: int, index: int, items: list[int]) -> dict[str, Any]:
        # a batch's texts are a function of (seed, epoch, batch, rank): a resumed run draws the same
        rng = np.random.default_rng([cfg.seed, epoch, index, dist_info.rank])
        batch_t = batch_texts(train, items, texts, cfg.text, rng)
        return step_fn(net_alt, _collate(train, items, enc_train), batch_t, device)

    def export_best(record: dict[str, Any], history: list[dict[str, Any]]) -> None:
        src = bundle
        if alt is not None:
            src = Bundle.from_model(alt, bundle.feature_config, separator=bundle.config.get("separator"),
                                    decode=bundle.config.get("decode"), lm=bundle.config.get("lm"),
                                    training={"joint_heads": record}, label=bundle.config.get("label", ""))  # fmt: skip
            src.path = bundle.path  # carry the source bundle's extra files (separator, LM)
            src.config["files"] = {
                k: v for k, v in bundle.config.get("files", {}).items() if k != "model.safetensors"
            }
        report = {"record": record, "history": history, "config": cfg.to_dict()}
        save_with_head(
            src, head, out / "best", tag_vocab=tag_vocab, text_sample=cfg.text.to_dict(), report=report
        )

    def validate_epoch() -> dict[str, float]:
        return validate(cfg, head, alt, valid, enc_valid, tag_vocab, device)

    speech = 0 if frozen else cfg.speech_per_batch
    res = loop.run(
        batches=lambda epoch: epoch_batches(train.items.entries, cfg.batch_size, speech, cfg.seed, epoch),
        loss=loss,
        validate=validate_epoch if valid is not None and len(valid) else None,
        metric="retrieval_error" if cfg.select == "retrieval" else "loss",
        export_best=export_best,
        after_backward=(lambda: _average_grads(head, dist_info.world)) if dist_info.world > 1 else None,
        stop_after_steps=stop_after_steps,
        progress=progress,
    )
    return HeadFitResult(
        res.epochs, res.steps, res.best_metric, res.stopped_early, res.seconds, res.out_dir, head
    )


def _average_grads(module, world: int) -> None:
    """All-reduce the gradients of a module that runs outside the DDP wrapper."""
    import torch.distributed as dist

    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


# ----------------------------------------------------------------------------- validation


def embed_items(
    head, data: HeadData, enc_paths, alt, device, batch_size: int = 16, progress: bool = False
) -> dict[str, np.ndarray]:
    """Audio embeddings (N, E) per space of every item (cached encodings, or the ALT model)."""
    import torch
    from tqdm import tqdm

    from singalign.embed import capture_encoding

    out: dict[str, list] = {s: [] for s in head.cfg.spaces}
    was = head.training
    head.eval()
    if alt is not None:
        alt_was = alt.training
        alt.eval()
    bar = tqdm(total=len(data), desc="embedding", unit="item", disable=not progress)
    with torch.no_grad():
        for k in range(0, len(data), batch_size):
            idx = list(range(k, min(k + batch_size, len(data))))
            bar.update(len(idx))
            if enc_paths is not None:
                h, lengths = pad_encodings([np.load(enc_paths[i]) for i in idx])
            else:
                b = _collate(data, idx, None)
                with capture_encoding(alt, head.cfg.evidence) as box:
                    o = alt(
                        b["features"].to(device),
                        b["lengths"].to(device),
                        po_gate=b["has_notes"].to(device).float(),
                    )
                h, lengths = box["h"], o["ctc_lengths"]
            for s in head.cfg.spaces:
                out[s].append(head.embed_audio(h.to(device), lengths.to(device), s).cpu().numpy())
    head.train(was)
    if alt is not None:
        alt.train(alt_was)
    bar.close()
    return {s: np.concatenate(v) for s, v in out.items()}


def validate(
    cfg: HeadTrainConfig, head, alt, data: HeadData, enc_paths, tag_vocab, device
) -> dict[str, float]:
    """Validation figures: contrastive loss (deterministic texts), and retrieval/tagging figures
    from ``evaluate_embeddings``; WER too in joint mode."""
    import torch

    was = head.training
    head.eval()
    losses = []
    texts = {i: e.get("text", "") for i, e in enumerate(data.items.entries)}
    weights = {"tags": cfg.tag_weight, "lyrics": cfg.lyrics_weight}
    emb = embed_items(head, data, enc_paths, alt, device, cfg.valid_batch_size)
    with torch.no_grad():
        for k in range(0, len(data), cfg.batch_size):
            idx = list(range(k, min(k + cfg.batch_size, len(data))))
            rng = np.random.default_rng([cfg.seed, 10**6 + k])
            bt = batch_texts(data, idx, texts, cfg.text, rng)
            total = 0.0
            for space in head.cfg.spaces:
                rows = bt[space]
                if len(rows) < 2:
                    continue
                from singalign.models.heads import info_nce, same_key_matrix

                a = torch.from_numpy(emb[space][[idx[r[0]] for r in rows]]).to(device)
                t = head.embed_text([r[1] for r in rows], space)
                total += weights[space] * float(
                    info_nce(a, t, head.scale(space), same_key_matrix([r[2] for r in rows]).to(device))
                )
            losses.append(total)
    head.train(was)
    result = {"loss": float(np.mean(losses)) if losses else float("nan")}
    summary, _ = evaluate_embeddings(head, data, emb, tag_vocab, cfg.text, seed=cfg.seed)
    result.update(summary)
    result["retrieval_error"] = retrieval_error(result)
    if alt is not None:
        try:
            from types import SimpleNamespace

            from singalign.train import evaluate

            rates = evaluate(alt, data.items, SimpleNamespace(valid_batch_size=cfg.valid_batch_size), device)
            result.update({k: v for k, v in rates.items() if k in ("wer", "cer", "pitch_frame_error")})
        except ImportError as exc:  # the decoding/metrics stages may not be installed yet
            log.warning("no WER in validation (%s)", exc)
    return result


# ----------------------------------------------------------------------------- evaluation


def retrieval_error(figures: dict[str, float]) -> float:
    """1 - the mean of the ``RETRIEVAL_FIGURES`` present (NaN ones skipped); NaN if none is."""
    vals = [figures[k] for k in RETRIEVAL_FIGURES if k in figures and not math.isnan(figures[k])]
    return 1.0 - float(np.mean(vals)) if vals else math.nan


def _retrieval_summary(prefix: str, sim: np.ndarray, relevant=None) -> dict[str, float]:
    from singalign.metrics import retrieval_metrics

    names = {"R@1": "r@1", "R@5": "r@5", "R@10": "r@10", "mAP@10": "map@10", "median_rank": "medr"}
    return {f"{prefix}_{names.get(k, k)}": v for k, v in retrieval_metrics(sim, relevant).items()}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def evaluate_embeddings(
    head,
    data: HeadData,
    emb: dict[str, np.ndarray],
    tag_vocab: list[str],
    text_cfg: TextSampleConfig,
    seed: int = 0,
    query_words: int = 5,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Song-level figures from item embeddings (a song = the mean of its items' embeddings).

    Returns (summary, per-query rows). Summary keys: ``tag_roc_auc``, ``tag_pr_auc`` (zero-shot,
    macro over ``tag_vocab``), ``tag_top1`` (songs whose best-scored tag is theirs),
    ``t2m_*``/``m2t_*`` (caption <-> song: r@1/5/10, medr, map@10), ``lyr_*`` (a span of
    ``query_words`` consecutive words of one of the song's items -> song), ``n_songs``.
    """
    import torch

    from singalign import metrics
    from singalign.textsample import caption_of, zero_shot_prompts

    songs = list(dict.fromkeys(s for s, m in zip(data.song_ids, data.metas, strict=True) if m is not None))
    where = {s: [i for i, x in enumerate(data.song_ids) if x == s] for s in songs}
    metas = {s: data.metas[where[s][0]] for s in songs}
    summary: dict[str, float] = {"n_songs": float(len(songs))}
    rows: list[dict[str, Any]] = []
    if not songs:
        return summary, rows

    def text_emb(texts: list[str], space: str) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate(
                [head.embed_text(texts[k : k + 256], space).cpu().numpy() for k in range(0, len(texts), 256)]
            )

    if "tags" in head.cfg.spaces:
        song_emb = _unit(np.stack([emb["tags"][where[s]].mean(0) for s in songs]))
        vocab = [t for t in tag_vocab]
        if vocab:
            prompts = [zero_shot_prompts(t, text_cfg) for t in vocab]
            flat = text_emb([p for ps in prompts for p in ps], "tags")
            tag_emb, k = [], 0
            for ps in prompts:
                tag_emb.append(flat[k : k + len(ps)].mean(0))
                k += len(ps)
            scores = song_emb @ _unit(np.stack(tag_emb)).T
            truth = np.array([[t in metas[s].tags for t in vocab] for s in songs], dtype=np.int64)
            summary["tag_roc_auc"] = metrics.macro_roc_auc(truth, scores)
            summary["tag_pr_auc"] = metrics.macro_pr_auc(truth, scores)
            # share of songs whose best-scored tag is one of theirs
            summary["tag_top1"] = float(np.mean(truth[np.arange(len(songs)), scores.argmax(1)]))
            genres = [
                k
                for k, t in enumerate(vocab)
                if any(t in metas[s].categories.get("genre", ()) for s in songs)
            ]
            labelled = [i for i, s in enumerate(songs) if len(set(metas[s].categories.get("genre", ()))) == 1]
            if len(genres) > 1 and labelled:  # zero-shot genre classification among the genre tags
                labels = [genres.index(vocab.index(metas[songs[i]].categories["genre"][0])) for i in labelled]
                summary["genre_accuracy"] = metrics.zero_shot_accuracy(
                    scores[np.ix_(labelled, genres)], labels
                )
        captions = [caption_of(metas[s]) for s in songs]
        if all(captions):
            sim = text_emb(captions, "tags") @ song_emb.T  # (Q songs, N songs)
            t2m = metrics.retrieval_ranks(sim)
            summary.update(_retrieval_summary("t2m", sim))
            summary.update(_retrieval_summary("m2t", sim.T))
            rows += [{"task": "caption->song", "query": c, "song": s, "rank": int(r)}
                     for c, s, r in zip(captions, songs, t2m, strict=True)]  # fmt: skip
    if "lyrics" in head.cfg.spaces:
        rng = np.random.default_rng([seed, 7])
        lyr_songs, queries = [], []
        for s in songs:
            with_words = [
                i for i in where[s] if len(data.items.entries[i].get("text", "").split()) >= query_words
            ]
            if not with_words:
                continue
            words = data.items.entries[with_words[int(rng.integers(len(with_words)))]]["text"].split()
            start = int(rng.integers(0, len(words) - query_words + 1))
            lyr_songs.append(s)
            queries.append(" ".join(words[start : start + query_words]))
        if queries:
            song_lyr = _unit(np.stack([emb["lyrics"][where[s]].mean(0) for s in songs]))
            sim = text_emb(queries, "lyrics") @ song_lyr.T
            rel = [[songs.index(s)] for s in lyr_songs]
            ranks = metrics.retrieval_ranks(sim, rel)
            summary.update(_retrieval_summary("lyr", sim, rel))
            rows += [{"task": "lyrics->song", "query": q, "song": s, "rank": int(r)}
                     for q, s, r in zip(queries, lyr_songs, ranks, strict=True)]  # fmt: skip
    return summary, rows


def evaluate_bundle(
    bundle_path: str,
    folders: list[str],
    metadata: list[str],
    out_dir: str | None = None,
    tag_vocab: list[str] | None = None,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Evaluate a bundle's head on prepared items (+ metadata); writes ``summary.json`` and
    ``queries.jsonl`` (every query with the rank of its song) to ``out_dir`` when given."""
    import torch

    from singalign.bundle import Bundle
    from singalign.files import write_json, write_jsonl
    from singalign.models.heads import load_head
    from singalign.textsample import TextSampleConfig, load_metadata, tag_vocabulary

    bundle = Bundle.load(bundle_path)
    head = load_head(bundle, device)
    alt = bundle.build_model().to(device)
    data = HeadData.load(folders, load_metadata(metadata), require_meta=True)
    vocab = tag_vocab if tag_vocab is not None else (bundle.config["head"].get("tag_vocab") or
                                                      tag_vocabulary([m for m in data.metas if m]))  # fmt: skip
    text_cfg = TextSampleConfig.from_dict(bundle.config["head"].get("text_sample") or {})
    emb = embed_items(head, data, None, alt, torch.device(device), progress=progress)
    summary, rows = evaluate_embeddings(head, data, emb, vocab, text_cfg, seed=seed)
    if out_dir:
        write_json(Path(out_dir) / "summary.json", {"bundle": str(bundle_path), **summary})
        write_jsonl(Path(out_dir) / "queries.jsonl", rows)
    return summary
