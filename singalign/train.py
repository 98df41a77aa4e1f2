"""One training loop for every stage (pretrain on speech, fine-tune on songs + speech, any mode).

The same code runs alone or under ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on
CUDA). Each epoch's batches are a pure function of (seed, epoch), and a checkpoint holds the
model, optimizer, scheduler and RNG states and the position within the epoch, so a run that is
killed and resumed ends with exactly the weights of one that never stopped.

Checkpoints are written atomically (temporary name, then rename) and loaded with
``weights_only=True``; the best model so far is exported as a bundle (``OUT/best``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from singalign.features import LogMelConfig
from singalign.models.config import ModelConfig
from singalign.models.losses import LossConfig

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (written to ``OUT/train_config.json``)."""

    train: tuple[str, ...]  # prepared folders (see singalign.data.prepared)
    valid: tuple[str, ...] = ()
    out_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    features: LogMelConfig = field(default_factory=LogMelConfig)
    init_from: str | None = None  # a bundle whose matching weights start this run (pretrain -> fine-tune)
    separator: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    epochs: int = 100
    max_steps: int | None = None
    batch_size: int = 16
    speech_per_batch: int = 4  # the authors' 12 songs + 4 speech utterances per batch of 16
    max_frames: int = 2000  # longer items are skipped (CTC targets cannot be cropped)
    lr: float = 5e-4
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = True  # the authors' code
    grad_clip: float | None = None
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0
    amp: bool = True  # mixed precision, CUDA only
    device: str = "auto"
    save_every_steps: int | None = None  # extra mid-epoch checkpoints for long epochs
    valid_batch_size: int = 8

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"], d["loss"], d["features"] = (
            self.model.to_dict(),
            self.loss.to_dict(),
            self.features.to_dict(),
        )
        d["train"], d["valid"], d["betas"] = list(self.train), list(self.valid), list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d["model"]) if "model" in d else ModelConfig()
        d["loss"] = LossConfig.from_dict(d["loss"]) if "loss" in d else LossConfig()
        d["features"] = LogMelConfig.from_dict(d["features"]) if "features" in d else LogMelConfig()
        d["train"], d["valid"] = tuple(d["train"]), tuple(d.get("valid", ()))
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass
class FitResult:
    epochs: int
    steps: int
    best_metric: float | None
    stopped_early: bool
    seconds: float
    out_dir: str
    model: Any = field(default=None, repr=False)  # the trained module (this process's replica)


# ----------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> _Dist:
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, d: _Dist):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", d.local_rank)
    return torch.device(name)


# ----------------------------------------------------------------------------- checkpoints


def rng_state() -> dict[str, Any]:
    import torch

    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state()[1].tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuple(state["python"]))
    np_state = np.random.get_state()
    np.random.set_state((np_state[0], np.asarray(state["numpy"], dtype=np.uint32), *np_state[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically write a training checkpoint (tensors and plain Python values only)."""
    import torch

    from singalign.files import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (``weights_only=True``: no pickled classes)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- evaluation


def evaluate(model, data, cfg: TrainConfig, device) -> dict[str, float]:
    """Greedy-decode WER/CER for lyrics models, framewise pitch error for pitch models.

    ``data`` is a PreparedSet. Returns ``{"metric": <lower is better>, ...}``.
    """
    import torch

    from singalign.data.prepared import collate
    from singalign.decode import ctc_greedy
    from singalign.metrics import error_rates

    model.eval()
    refs, hyps = [], []
    frames = errors = 0
    with torch.no_grad():
        for start in range(0, len(data), cfg.valid_batch_size):
            batch = collate([data[i] for i in range(start, min(start + cfg.valid_batch_size, len(data)))])
            out = model(
                batch["features"].to(device),
                batch["lengths"].to(device),
                pitch_target=batch["pitch"].to(device),
                onset_target=batch["onset"].to(device),
                po_gate=batch["has_notes"].to(device).float(),
            )
            if "char_logits" in out:
                logp = out["char_logits"].float().log_softmax(-1).cpu().numpy()
                for i, n in enumerate(out["ctc_lengths"].tolist()):
                    hyps.append(ctc_greedy(logp[i, :n])[0])
                    refs.append(batch["texts"][i])
            if "pitch_logits" in out:
                pred = out["pitch_logits"].argmax(-1).cpu()
                for i, n in enumerate(batch["lengths"].tolist()):
                    if batch["has_notes"][i]:
                        frames += n
                        errors += int((pred[i, :n] != batch["pitch"][i, :n]).sum())
    model.train()
    result: dict[str, float] = {}
    if hyps:
        rates = error_rates(refs, hyps)
        result.update(
            wer=rates["wer"] if rates["wer"] is not None else 0.0,
            cer=rates["cer"] if rates["cer"] is not None else 0.0,
        )
    if frames:
        result["pitch_frame_error"] = errors / frames
    result["metric"] = result.get("wer", result.get("pitch_frame_error", math.nan))
    return result


# ----------------------------------------------------------------------------- the loop


def _load_init_weights(model, bundle_dir: str) -> None:
    from singalign.bundle import Bundle

    state = Bundle.load(bundle_dir).state_dict()
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    own.update(matched)
    model.load_state_dict(own)
    log.info("initialized %d/%d tensors from %s", len(matched), len(own), bundle_dir)


def fit(cfg: TrainConfig, stop_after_steps: int | None = None, progress: bool = True) -> FitResult:
    """Train (or resume training) as ``cfg`` says.

    Args:
        cfg: the run's configuration. ``OUT/checkpoint.pt`` present means resume.
        stop_after_steps: stop (as if killed) once this many optimizer steps are done in total; for tests.
        progress: show a progress bar (rank 0 only).

    Returns:
        FitResult. Artifacts in ``cfg.out_dir``: checkpoint.pt, history.jsonl, train_config.json,
        best/ (a bundle of the best validation model, or of the last model without validation).
    """
    import torch
    from tqdm import tqdm

    from singalign.bundle import Bundle
    from singalign.data.prepared import PreparedSet, collate, epoch_batches
    from singalign.files import write_json, write_jsonl
    from singalign.models import SingAlignModel
    from singalign.models.losses import joint_loss

    t0 = time.time()
    device_type = (
        "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    dist_info = setup_distributed(device_type)
    device = pick_device(cfg.device, dist_info)
    out = Path(cfg.out_dir)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "train_config.json", cfg.to_dict())

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    train = PreparedSet.load(list(cfg.train), max_frames=cfg.max_frames)
    valid = PreparedSet.load(list(cfg.valid)) if cfg.valid else None
    if len(train) == 0:
        raise ValueError(f"no training items in {cfg.train} (max_frames={cfg.max_frames})")

    model = SingAlignModel(cfg.model).to(device)
    if cfg.init_from:
        _load_init_weights(model, cfg.init_from)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad)
    warm = max(1, cfg.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best": None, "bad_epochs": 0, "history": []}
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if "scaler" in ck and use_amp:
            scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        state = {k: ck[k] for k in state}
        if dist_info.main:
            log.info("resumed from %s at epoch %d, step %d", ckpt_path, state["epoch"], state["step"])

    net = model
    if dist_info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def checkpoint() -> None:
        if dist_info.main:
            save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_state(),
                    **state,
                },
            )

    def export(path: Path, report: dict[str, Any]) -> None:
        Bundle.from_model(model, cfg.features, separator=cfg.separator, training=report).save(path)

    stopped_early = killed = False
    model.train()
    while state["epoch"] < cfg.epochs and not killed:
        epoch = state["epoch"]
        batches = epoch_batches(train.entries, cfg.batch_size, cfg.speech_per_batch, cfg.seed, epoch)
        per_rank = len(batches) // dist_info.world or 1
        mine = batches[dist_info.rank :: dist_info.world][:per_rank]
        bar = tqdm(
            total=len(mine),
            initial=state["batch_in_epoch"],
            desc=f"epoch {epoch + 1}",
            disable=not (progress and dist_info.main),
            leave=False,
        )
        sums: dict[str, float] = {}
        for b_idx in range(state["batch_in_epoch"], len(mine)):
            batch = collate([train[i] for i in mine[b_idx]])
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                outputs = net(
                    batch["features"].to(device),
                    batch["lengths"].to(device),
                    pitch_target=batch["pitch"].to(device),
                    onset_target=batch["onset"].to(device),
                    po_gate=batch["has_notes"].to(device).float(),
                )
            tensors = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            terms = joint_loss(outputs, tensors, cfg.loss)
            opt.zero_grad(set_to_none=True)
            scaler.scale(terms["loss"]).backward()
            if cfg.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            state["step"] += 1
            state["batch_in_epoch"] = b_idx + 1
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss'].item():.3f}")
            if cfg.save_every_steps and state["step"] % cfg.save_every_steps == 0:
                checkpoint()
            if (stop_after_steps is not None and state["step"] >= stop_after_steps) or (
                cfg.max_steps is not None and state["step"] >= cfg.max_steps
            ):
                killed = stop_after_steps is not None and state["step"] >= stop_after_steps
                break
        bar.close()
        if killed:
            checkpoint()
            break
        n_batches = max(1, len(mine))
        # ---- end of epoch (or of max_steps): validate, keep the best, checkpoint
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": state["step"],
            "seconds": round(time.time() - t0, 1),
        }
        record.update({f"train_{k}": v / n_batches for k, v in sums.items()})
        stop = False
        if dist_info.main:
            if valid is not None and len(valid):
                record.update({f"valid_{k}": v for k, v in evaluate(model, valid, cfg, device).items()})
                metric = record["valid_metric"]
                if state["best"] is None or metric < state["best"]:
                    state["best"], state["bad_epochs"] = metric, 0
                    export(out / "best", _report(cfg, state, record, train, valid))
                else:
                    state["bad_epochs"] += 1
                stop = state["bad_epochs"] >= cfg.patience
            else:
                export(out / "best", _report(cfg, state, record, train, valid))
            state["history"].append(record)
            write_jsonl(out / HISTORY, state["history"])
            log.info("epoch %d: %s", epoch + 1, json.dumps(record))
        if dist_info.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([1 if stop else 0])
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        state["epoch"], state["batch_in_epoch"] = epoch + 1, 0
        checkpoint()
        if stop:
            stopped_early = True
            break
        if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
            break
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()
    return FitResult(
        state["epoch"], state["step"], state["best"], stopped_early, time.time() - t0, str(out), model
    )


def _report(cfg: TrainConfig, state: dict[str, Any], record: dict[str, Any], train, valid) -> dict[str, Any]:
    """The training report stored in an exported bundle."""
    return {
        "epoch": record["epoch"],
        "step": state["step"],
        "train_items": len(train),
        "train_hours": round(
            sum(e["n_frames"] for e in train.entries)
            / float(cfg.features.sample_rate / cfg.features.hop_length)
            / 3600,
            3,
        ),
        "valid_items": len(valid) if valid is not None else 0,
        "last": record,
        "history": state["history"] + [record],
        "config": replace(cfg).to_dict(),
    }
