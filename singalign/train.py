"""One training loop for every stage (pretrain on speech, fine-tune on songs + speech, any mode).

``EpochLoop`` is that loop: ``fit`` (the ALT models) and ``singalign.contrastive_train.fit_heads``
(the audio-text heads) give it their batches, loss, validation and export. The same code runs
alone or under ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA). Each epoch's
batches are a pure function of (seed, epoch), and a checkpoint holds the model, optimizer,
scheduler and RNG states and the position within the epoch, so a run that is killed and resumed
ends with exactly the weights of one that never stopped.

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
from collections.abc import Callable
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
    # after the warm-up: "constant" (the authors'), or "cosine": down to lr * lr_final over the run's
    # planned steps (max_steps, else epochs x the steps of an epoch), one curve over a known budget
    # instead of a constant rate and a separate lower-rate run
    lr_decay: str = "constant"
    lr_final: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = True  # the authors' code
    grad_clip: float | None = None
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0
    amp: bool = True  # float16 mixed precision, CUDA only
    # bfloat16 autocast on CPU (weights and losses stay float32): 1.14x faster `small` training steps
    # on a 2-core AVX512-BF16 AMD EPYC (bench/bench_train_step.py), slower on CPUs without native
    # bf16, so off by default
    cpu_bf16: bool = False
    # torch.compile the two residual CNNs (models.compile_cnns): fuses their elementwise passes;
    # 2.4x faster `small` steps on 2 CPU cores (3.1x with cpu_bf16); needs a C++ compiler
    compile: bool = False
    device: str = "auto"
    save_every_steps: int | None = None  # extra mid-epoch checkpoints for long epochs
    valid_batch_size: int = 8

    def __post_init__(self) -> None:
        if self.lr_decay not in ("constant", "cosine"):
            raise ValueError(f"lr_decay must be 'constant' or 'cosine', not {self.lr_decay!r}")

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


# ----------------------------------------------------------------------------- a batch through the model


def forward_batch(net, batch: dict[str, Any], device) -> dict[str, Any]:
    """The ALT model (or its DDP wrapper) on a collated batch (``singalign.data.prepared.collate``).

    The pitch/onset targets are passed (oracle-mode models feed them to the lyrics CRNN) and
    ``po_gate`` is the batch's ``has_notes``: for items without notes (speech) the lyrics CRNN gets
    zeros in place of pitch/onset.
    """
    return net(
        batch["features"].to(device),
        batch["lengths"].to(device),
        pitch_target=batch["pitch"].to(device),
        onset_target=batch["onset"].to(device),
        po_gate=batch["has_notes"].to(device).float(),
    )


def batch_loss(
    net, batch: dict[str, Any], loss_cfg: LossConfig, device, amp: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``forward_batch`` (under autocast to the dtype ``amp``, if given), then the joint ALT loss on
    the batch (computed in float32).

    Returns:
        (the model's outputs, the loss terms: ``joint_loss``'s, the total under ``"loss"``).
    """
    import torch

    from singalign.models.losses import joint_loss

    with torch.autocast(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None):
        outputs = forward_batch(net, batch, device)
    tensors = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return outputs, joint_loss(outputs, tensors, loss_cfg)


# ----------------------------------------------------------------------------- evaluation


def pitch_frame_errors(out: dict[str, Any], batch: dict[str, Any]) -> tuple[int, int]:
    """(frames, frames whose argmax pitch class is wrong) over the items of a batch that have notes."""
    pred = out["pitch_logits"].argmax(-1).cpu()
    frames = errors = 0
    for i, n in enumerate(batch["lengths"].tolist()):
        if batch["has_notes"][i]:
            frames += n
            errors += int((pred[i, :n] != batch["pitch"][i, :n]).sum())
    return frames, errors


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
            out = forward_batch(model, batch, device)
            if "char_logits" in out:
                logp = out["char_logits"].float().log_softmax(-1).cpu().numpy()
                for i, n in enumerate(out["ctc_lengths"].tolist()):
                    hyps.append(ctc_greedy(logp[i, :n])[0])
                    refs.append(batch["texts"][i])
            if "pitch_logits" in out:
                f, e = pitch_frame_errors(out, batch)
                frames, errors = frames + f, errors + e
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


# ----------------------------------------------------------------------------- the epoch loop


def init_device(name: str) -> tuple[_Dist, Any]:
    """Join the ``torchrun`` process group if there is one; returns (``_Dist``, this rank's device)."""
    import torch

    device_type = "cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu"
    dist_info = setup_distributed(device_type)
    return dist_info, pick_device(name, dist_info)


def warmup_schedule(opt, warmup_steps: int, total_steps: int | None = None, final: float = 1.0) -> Any:
    """A linear learning-rate warm-up over ``warmup_steps`` optimizer steps, then constant, or, given
    ``total_steps``, a cosine from the full rate down to ``final`` times it at step ``total_steps``
    (and ``final`` after)."""
    import torch

    warm = max(1, warmup_steps)

    def factor(s: int) -> float:
        if s + 1 < warm or total_steps is None:
            return min(1.0, (s + 1) / warm)
        span = max(1, total_steps - warm)
        t = min(1.0, (s + 1 - warm) / span)
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def batches_per_rank(n_batches: int, world: int) -> int:
    """How many of an epoch's ``n_batches`` each of ``world`` ranks takes (the same number on every
    rank, at least one): what EpochLoop runs and what a cosine schedule plans for."""
    return max(1, n_batches // world)


def _initial_state() -> dict[str, Any]:
    """The loop state of a new run; ``epoch_sums`` / ``epoch_batches`` carry the current epoch's loss
    sums over a resume, so an epoch's ``train_*`` means are over the batches it ran, and ``seconds``
    the run's training time up to the checkpoint, so the records' clock goes on from there."""
    return dict(
        epoch=0, batch_in_epoch=0, step=0, best=None, bad_epochs=0, history=[], epoch_sums={}, epoch_batches=0,
        seconds=0.0,
    )  # fmt: skip


@dataclass
class EpochLoop:
    """The epoch loop of every training run (``fit`` here, ``contrastive_train.fit_heads``).

    What a stage computes comes in as callables (``run``); the loop owns the rest: the optimizer
    step, the position within the epoch, the kill/``max_steps``/early-stopping rules, atomic
    checkpoints (``OUT/checkpoint.pt``), the per-epoch record in ``OUT/history.jsonl`` and the export
    of the best model. A checkpoint holds ``model``, ``optimizer``, ``scheduler``, ``scaler`` (when
    a scaler is given), ``rng`` and the loop state: ``epoch``, ``batch_in_epoch``, ``step``, ``best``,
    ``bad_epochs``, ``history``, the epoch's loss sums so far (``epoch_sums``, ``epoch_batches``) and
    the run's training time so far (``seconds``): a resumed run's records count the time of every
    process up to its last checkpoint, not only its own (time after a kill's last checkpoint is lost,
    as its work is).

    Attributes:
        out: the run folder.
        model: the module saved as ``model`` in the checkpoint and whose gradients are clipped
            (not a DDP wrapper: the stage's ``loss`` calls the wrapper).
        opt, sched: optimizer, and learning-rate scheduler stepped after every optimizer step.
        dist: this process's rank and the world size.
        cfg: the run's config; ``epochs``, ``max_steps``, ``patience``, ``grad_clip`` and
            ``save_every_steps`` are read from it.
        t0: this process's start (``clock()``), for the records' ``seconds``; a resume moves it back
            by the checkpoint's ``seconds``.
        scaler: a ``torch.amp.GradScaler`` (mixed precision), or None.
        clock: seconds now (``time.time``; tests pass a fake clock).
    """

    out: Path
    model: Any
    opt: Any
    sched: Any
    dist: _Dist
    cfg: Any
    t0: float
    scaler: Any = None
    clock: Callable[[], float] = time.time
    state: dict[str, Any] = field(default_factory=_initial_state)

    def resume(self) -> bool:
        """Load ``OUT/checkpoint.pt``, if it exists, into the model, optimizer, scheduler, RNGs and
        loop state. Call it before the model is wrapped in DDP, so the wrapper starts from the
        resumed weights. Returns whether there was a checkpoint."""
        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        ck = load_checkpoint(path)
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        if "scaler" in ck and self.scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        fresh = _initial_state()  # checkpoints from before the epoch sums were kept lack them
        self.state = {k: ck.get(k, fresh[k]) for k in fresh}
        self.t0 -= self.state["seconds"]  # the records' clock goes on from the checkpoint's time
        if self.dist.main:
            log.info("resumed from %s at epoch %d, step %d", path, self.state["epoch"], self.state["step"])
        return True

    def checkpoint(self) -> None:
        """Atomically write ``OUT/checkpoint.pt`` (rank 0)."""
        self.state["seconds"] = self.clock() - self.t0
        if self.dist.main:
            scaler = {} if self.scaler is None else {"scaler": self.scaler.state_dict()}
            save_checkpoint(
                self.out / CHECKPOINT,
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.opt.state_dict(),
                    "scheduler": self.sched.state_dict(),
                    **scaler,
                    "rng": rng_state(),
                    **self.state,
                },
            )

    def _optimize(self, loss, after_backward: Callable[[], None] | None) -> None:
        import torch

        opt, scaler, clip = self.opt, self.scaler, self.cfg.grad_clip
        opt.zero_grad(set_to_none=True)
        (loss if scaler is None else scaler.scale(loss)).backward()
        if after_backward is not None:
            after_backward()
        if clip:
            if scaler is not None:
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
        self.sched.step()

    def run(
        self,
        batches: Callable[[int], list[list[int]]],
        loss: Callable[[int, int, list[int]], dict[str, Any]],
        validate: Callable[[], dict[str, float]] | None,
        metric: str,
        export_best: Callable[[dict[str, Any], list[dict[str, Any]]], None],
        after_backward: Callable[[], None] | None = None,
        stop_after_steps: int | None = None,
        progress: bool = True,
    ) -> FitResult:
        """Train from the current state until ``epochs``, ``max_steps``, early stopping or a kill.

        Args:
            batches: epoch -> that epoch's batches (lists of item indices) for all ranks together; a
                pure function of the epoch, so a resumed run sees the same ones. Rank r takes every
                world-th batch from the r-th, all ranks the same number (at least one: with fewer batches
                than ranks, batches are shared).
            loss: (epoch, batch index within the epoch, item indices) -> loss terms (scalar tensors)
                with the total under ``"loss"``; each term's epoch mean is recorded as ``train_<name>``.
            validate: () -> figures, run on rank 0 after each epoch and recorded as ``valid_<name>``;
                None when there is nothing to validate on (the last model is then exported each epoch).
            metric: the name in ``validate``'s figures to minimize (best model, early stopping).
            export_best: (the epoch's record, the history before it) -> None; writes ``OUT/best``.
            after_backward: run after each backward pass (e.g. averaging gradients DDP does not see).
            stop_after_steps: stop (as if killed) once this many optimizer steps are done in total.
            progress: show a progress bar (rank 0 only).

        Returns:
            FitResult whose ``model`` is ``self.model``.
        """
        self.model.train()
        restore = self._catch_signals()
        try:
            return self._run(
                batches, loss, validate, metric, export_best, after_backward, stop_after_steps, progress
            )
        finally:
            restore()

    # SIGTERM/SIGINT (Ctrl-C, a scheduler's preemption) end the run after the current step with a
    # checkpoint, so the same command resumes it; a second signal is not caught again.
    def _catch_signals(self) -> Callable[[], None]:
        import signal
        import threading

        self._signal: int | None = None
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum, _frame):
            self._signal = signum
            for sig, h in old.items():
                signal.signal(sig, h)

        for sig in old:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, h in old.items():
                signal.signal(sig, h)

        return restore

    def _signalled(self) -> bool:
        """Whether a stop signal arrived (on any rank: every rank must stop at the same step)."""
        flag = getattr(self, "_signal", None) is not None
        if self.dist.world > 1:
            import torch
            import torch.distributed as dist

            t = torch.tensor([1 if flag else 0])
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
        if flag and self.dist.main:
            log.warning(
                "stop signal: checkpoint at step %d written to %s; run the same command again to resume",
                self.state["step"],
                self.out / CHECKPOINT,
            )
        return flag

    def _run(self, batches, loss, validate, metric, export_best, after_backward, stop_after_steps, progress):
        import torch
        from tqdm import tqdm

        from singalign.files import write_jsonl

        cfg, state, d = self.cfg, self.state, self.dist
        stopped_early = killed = False
        while state["epoch"] < cfg.epochs and not killed:
            epoch = state["epoch"]
            every = batches(epoch)
            # every rank takes the same number of batches (DDP steps in lockstep); with fewer batches
            # than ranks, some are shared
            per_rank = batches_per_rank(len(every), d.world)
            mine = [every[(d.rank + k * d.world) % len(every)] for k in range(per_rank)] if every else []
            bar = tqdm(total=len(mine), initial=state["batch_in_epoch"], desc=f"epoch {epoch + 1}",
                       disable=not (progress and d.main), leave=False)  # fmt: skip
            sums: dict[str, float] = state["epoch_sums"]  # carried over a resume
            for b_idx in range(state["batch_in_epoch"], len(mine)):
                terms = loss(epoch, b_idx, mine[b_idx])
                self._optimize(terms["loss"], after_backward)
                state["step"] += 1
                state["batch_in_epoch"] = b_idx + 1
                state["epoch_batches"] += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                bar.update(1)
                bar.set_postfix(loss=f"{float(terms['loss'].detach()):.3f}")
                if cfg.save_every_steps and state["step"] % cfg.save_every_steps == 0:
                    self.checkpoint()
                killed = (
                    stop_after_steps is not None and state["step"] >= stop_after_steps
                ) or self._signalled()
                if killed or (cfg.max_steps is not None and state["step"] >= cfg.max_steps):
                    break
            bar.close()
            if killed:
                self.checkpoint()
                break
            # ---- end of epoch (or of max_steps): validate, keep the best, checkpoint
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": state["step"],
                "seconds": round(self.clock() - self.t0, 1),
            }
            # means over the batches this epoch ran (fewer than len(mine) when max_steps ends it)
            record.update({f"train_{k}": v / max(1, state["epoch_batches"]) for k, v in sums.items()})
            stop = False
            if d.main:
                if validate is not None:
                    record.update({f"valid_{k}": v for k, v in validate().items()})
                    value = record[f"valid_{metric}"]
                    if state["best"] is None or value < state["best"]:
                        state["best"], state["bad_epochs"] = value, 0
                        export_best(record, state["history"])
                    else:
                        state["bad_epochs"] += 1
                    stop = state["bad_epochs"] >= cfg.patience
                else:
                    export_best(record, state["history"])
                state["history"].append(record)
                write_jsonl(self.out / HISTORY, state["history"])
                log.info("epoch %d: %s", epoch + 1, json.dumps(record))
            if d.world > 1:
                import torch.distributed as dist

                flag = torch.tensor([1 if stop else 0])
                dist.broadcast(flag, src=0)
                stop = bool(flag.item())
            state["epoch"], state["batch_in_epoch"] = epoch + 1, 0
            state["epoch_sums"], state["epoch_batches"] = {}, 0
            self.checkpoint()
            if stop:
                stopped_early = True
                break
            if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
                break
        if d.world > 1:
            import torch.distributed as dist

            dist.barrier()
        seconds = self.clock() - self.t0
        return FitResult(
            state["epoch"], state["step"], state["best"], stopped_early, seconds, str(self.out), self.model
        )


# ----------------------------------------------------------------------------- fit


def _load_init_weights(model, bundle_dir: str) -> tuple[int, int]:
    """Start ``model`` from a bundle's weights: tensors of the same name and shape are copied, the
    RNN blocks of a narrower model are embedded in wider ones (``models.blocks.widen_rnn_state``),
    the rest keeps its initialization. Returns the numbers of tensors copied and widened."""
    from singalign.bundle import Bundle
    from singalign.models.blocks import widen_rnn_state

    state = Bundle.load(bundle_dir).state_dict()
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    widened = {k: v for k, v in widen_rnn_state(state, own).items() if k not in matched}
    own.update(matched)
    own.update(widened)
    model.load_state_dict(own)
    n, w = len(matched), len(widened)
    log.info("initialized %d/%d tensors from %s (%d copied, %d widened)", n + w, len(own), bundle_dir, n, w)
    return n, w


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

    from singalign.bundle import Bundle
    from singalign.data.prepared import PreparedSet, collate, epoch_batches
    from singalign.files import write_json
    from singalign.models import SingAlignModel, compile_cnns

    t0 = time.time()
    dist_info, device = init_device(cfg.device)
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
    if cfg.compile:
        compile_cnns(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    amp_dtype = (
        torch.float16 if use_amp else (torch.bfloat16 if cfg.cpu_bf16 and device.type == "cpu" else None)
    )
    total = None
    if cfg.lr_decay == "cosine":
        per_epoch = len(epoch_batches(train.entries, cfg.batch_size, cfg.speech_per_batch, cfg.seed, 0))
        total = cfg.epochs * batches_per_rank(per_epoch, dist_info.world)
        total = min(total, cfg.max_steps) if cfg.max_steps is not None else total
    sched = warmup_schedule(opt, cfg.warmup_steps, total, cfg.lr_final)
    loop = EpochLoop(out, model, opt, sched, dist_info, cfg, t0, scaler)
    loop.resume()

    net = model
    if dist_info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def loss(epoch: int, index: int, items: list[int]) -> dict[str, Any]:
        return batch_loss(net, collate([train[i] for i in items]), cfg.loss, device, amp_dtype)[1]

    def export_best(record: dict[str, Any], history: list[dict[str, Any]]) -> None:
        report = _report(cfg, record, history, train, valid)
        Bundle.from_model(model, cfg.features, separator=cfg.separator, training=report).save(out / "best")

    return loop.run(
        batches=lambda epoch: epoch_batches(
            train.entries, cfg.batch_size, cfg.speech_per_batch, cfg.seed, epoch
        ),
        loss=loss,
        validate=(lambda: evaluate(model, valid, cfg, device)) if valid is not None and len(valid) else None,
        metric="metric",
        export_best=export_best,
        stop_after_steps=stop_after_steps,
        progress=progress,
    )


def _report(
    cfg: TrainConfig, record: dict[str, Any], history: list[dict[str, Any]], train, valid
) -> dict[str, Any]:
    """The training report stored in an exported bundle (``history``: the records before ``record``)."""
    return {
        "epoch": record["epoch"],
        "step": record["step"],
        "train_items": len(train),
        "train_hours": round(
            sum(e["n_frames"] for e in train.entries)
            / float(cfg.features.sample_rate / cfg.features.hop_length)
            / 3600,
            3,
        ),
        "valid_items": len(valid) if valid is not None else 0,
        "last": record,
        "history": history + [record],
        "config": replace(cfg).to_dict(),
    }


def export_checkpoint(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Export a run's latest checkpoint (``RUN/checkpoint.pt``, not the best validation model in
    ``RUN/best``) as a bundle at ``out``; its training report says which epoch and step it holds.

    Returns:
        The bundle folder.
    """
    from singalign.bundle import Bundle
    from singalign.data.prepared import PreparedSet
    from singalign.models import SingAlignModel

    run = Path(run_dir)
    cfg = TrainConfig.from_dict(json.loads((run / "train_config.json").read_text()))
    ck = load_checkpoint(run / CHECKPOINT)
    model = SingAlignModel(cfg.model)
    model.load_state_dict(ck["model"])
    history = ck["history"]
    record = history[-1] if history else {"epoch": ck["epoch"], "step": ck["step"]}
    train = PreparedSet.load(list(cfg.train), max_frames=cfg.max_frames)  # entries only: lazy
    valid = PreparedSet.load(list(cfg.valid)) if cfg.valid else None
    report = _report(cfg, record, history[:-1], train, valid)
    # the weights are the checkpoint's (maybe mid-epoch), the "last" record the last finished epoch
    report.update({"from_checkpoint": True, "epoch": ck["epoch"], "step": ck["step"],
                   "batch_in_epoch": ck["batch_in_epoch"]})  # fmt: skip
    return Bundle.from_model(model, cfg.features, separator=cfg.separator, training=report).save(out)
