"""Training-step speed on CPU: float32 against bfloat16 autocast (``TrainConfig.cpu_bf16``).

Usage: python bench/bench_train_step.py [--preset small] [--batch 16] [--frames 1000] [--repeats 3]

One step = forward of both CRNNs (multitask mode) + the joint loss on random targets + backward,
on random features (the cost does not depend on the values). Prints the median seconds per step of
each precision, alternating them so that a busy machine slows both alike.
"""

import argparse
import statistics
import time

import torch

from singalign.models import SingAlignModel, preset
from singalign.models.losses import LossConfig, joint_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = preset(args.preset, "multitask")
    model = SingAlignModel(cfg)
    b, t = args.batch, args.frames
    x = torch.randn(b, 2, cfg.n_mels, t)
    lengths = torch.full((b,), t)
    n_chars = t // 8
    batch = {
        "lengths": lengths,
        "pitch": torch.randint(0, cfg.n_pitch, (b, t)),
        "onset": (torch.rand(b, t) < 0.05).float(),
        "has_notes": torch.ones(b, dtype=torch.bool),
        "targets": torch.randint(1, cfg.n_vocab, (b, n_chars)),
        "target_lengths": torch.full((b,), n_chars),
        "has_text": torch.ones(b, dtype=torch.bool),
    }

    def step(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, lengths, pitch_target=batch["pitch"], onset_target=batch["onset"])
        joint_loss(out, batch, LossConfig())["loss"].backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    times = {False: [], True: []}
    step(False), step(True)  # warm-up
    for _ in range(args.repeats):
        for bf16 in (False, True):
            times[bf16].append(step(bf16))
    f32, bf = statistics.median(times[False]), statistics.median(times[True])
    print(f"preset {args.preset}, multitask, {b} x {t} frames, {torch.get_num_threads()} threads")
    print("| precision | s per step | speed-up |\n|---|---:|---:|")
    print(f"| float32 | {f32:.2f} | 1.00 |")
    print(f"| bfloat16 autocast | {bf:.2f} | {f32 / bf:.2f} |")


if __name__ == "__main__":
    main()
