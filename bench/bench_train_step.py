"""Training-step speed on CPU: float32 against bfloat16 autocast (``TrainConfig.cpu_bf16``), each
eager and with the CNNs compiled (``TrainConfig.compile``, ``models.compile_cnns``).

Usage: python bench/bench_train_step.py [--preset small] [--batch 16] [--frames 1000] [--repeats 2]
       [--no-compile]

One step = forward of both CRNNs (multitask mode) + the joint loss on random targets + backward,
on random features (the cost does not depend on the values). Prints the median seconds per step of
each setting, alternating them so that a busy machine slows all alike. The compiled settings are
timed after a warm-up step that compiles them (tens of seconds each; not counted).
"""

import argparse
import copy
import statistics
import time

import torch

from singalign.models import SingAlignModel, compile_cnns, preset
from singalign.models.losses import LossConfig, joint_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = preset(args.preset, "multitask")
    eager = SingAlignModel(cfg)
    models = {False: eager}
    if args.compile:
        models[True] = copy.deepcopy(eager)
        compile_cnns(models[True])
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

    def step(setting: tuple[bool, bool]) -> float:
        bf16, compiled = setting
        model = models[compiled]
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, lengths, pitch_target=batch["pitch"], onset_target=batch["onset"])
        joint_loss(out, batch, LossConfig())["loss"].backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    settings = [(bf16, compiled) for compiled in models for bf16 in (False, True)]
    for setting in settings:  # warm-up (and compiling)
        step(setting)
    times = {setting: [] for setting in settings}
    for _ in range(args.repeats):
        for setting in settings:
            times[setting].append(step(setting))
    base = statistics.median(times[(False, False)])
    print(f"preset {args.preset}, multitask, {b} x {t} frames, {torch.get_num_threads()} threads")
    print("| precision | CNNs | s per step | speed-up |\n|---|---|---:|---:|")
    for bf16, compiled in settings:
        sec = statistics.median(times[(bf16, compiled)])
        name = "bfloat16 autocast" if bf16 else "float32"
        print(f"| {name} | {'compiled' if compiled else 'eager'} | {sec:.2f} | {base / sec:.2f} |")


if __name__ == "__main__":
    main()
