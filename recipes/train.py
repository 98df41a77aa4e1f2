r"""Train one stage: pretraining on speech, fine-tuning on songs + speech, any mode.

Usage:
    python recipes/train.py --train PREP [PREP ...] --valid PREP --out RUN \
        [--preset paper|medium|small] [--mode baseline|oracle|multitask|pitch_onset_only] \
        [--init-from BUNDLE] [--epochs 100] [--max-steps N] [--batch-size 16] [--speech-per-batch 4] \
        [--lr 5e-4] [--warmup-steps 100] [--lr-decay constant|cosine] [--lr-final 0.1] [--patience 10] \
        [--seed 0] [--separator-bundle BUNDLE | --separator SEP_DIR] [--cpu-bf16] [--compile]
    python recipes/train.py --config RUN/train_config.json      # the same run again / resumed

    # several processes or machines (DistributedDataParallel; gloo on CPU, nccl on GPUs):
    torchrun --nproc_per_node 4 recipes/train.py --config cfg.json

Re-running with the same --out resumes from RUN/checkpoint.pt exactly where it stopped. --max-steps ends
the run as if its epoch ended there (validation, export of the best); a resume with a higher limit
starts the next epoch. --lr-decay cosine lowers the learning rate after the warm-up along a cosine to
lr x --lr-final at the run's last planned step (--max-steps, else --epochs full epochs; a resume
with another --epochs or --max-steps moves that end, and the curve with it); the default keeps it
constant. To pause in the middle of an epoch instead, kill the run (SIGTERM or Ctrl-C):
it checkpoints after the current step.
PREP folders are made by recipes/features.py. The best model is exported to RUN/best (a bundle).
The separator named (default: none, the mixture in both channels) must be the one the PREP features
were made with; the bundles name it so that inference separates the same way.
"""

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from singalign import recipe
from singalign.models import preset
from singalign.train import TrainConfig, fit


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--config", help="a train_config.json (other options override it)")
    ap.add_argument("--train", nargs="+", help="prepared training folders")
    ap.add_argument("--valid", nargs="*", default=None, help="prepared validation folders")
    ap.add_argument("--out", help="run folder (checkpoints, history, best bundle)")
    ap.add_argument(
        "--preset", default=None, help="model size preset: paper, medium or small (see the README)"
    )
    ap.add_argument("--mode", default=None, help="baseline | oracle | multitask | pitch_onset_only")
    ap.add_argument(
        "--init-from",
        default=None,
        help="bundle whose weights start the model: same-shaped tensors copied, narrower BiLSTMs widened",
    )
    ap.add_argument(
        "--separator-bundle",
        default=None,
        help="copy this bundle's separator entry into the exported bundles",
    )
    ap.add_argument(
        "--separator",
        default=None,
        help="a folder from recipes/train_separator.py: the exported bundles name it as their separator",
    )
    for name, typ in [("epochs", int), ("max-steps", int), ("batch-size", int), ("speech-per-batch", int),
                      ("lr", float), ("warmup-steps", int), ("lr-final", float), ("patience", int), ("seed", int), ("max-frames", int),
                      ("save-every-steps", int)]:  # fmt: skip
        ap.add_argument(f"--{name}", type=typ, default=None)
    ap.add_argument(
        "--lr-decay",
        choices=["constant", "cosine"],
        default=None,
        help="learning rate after the warm-up: constant (default) or a cosine down to lr x --lr-final",
    )
    ap.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    ap.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the CNNs (2-3x faster CPU steps; needs a C++ compiler; the first steps compile)",
    )
    ap.add_argument(
        "--cpu-bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast on CPU: faster on CPUs with native bf16 (AVX512-BF16/AMX), slower elsewhere",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.config:
        with open(args.config) as f:
            cfg = TrainConfig.from_dict(json.load(f))
    else:
        if not (args.train and args.out):
            ap.error("give --config, or --train and --out")
        cfg = TrainConfig(train=tuple(args.train), out_dir=args.out)
    updates = {}
    if args.train:
        updates["train"] = tuple(args.train)
    if args.valid is not None:
        updates["valid"] = tuple(args.valid)
    if args.out:
        updates["out_dir"] = args.out
    if args.preset or args.mode:
        updates["model"] = preset(args.preset or cfg.model.preset, args.mode or cfg.model.mode)
    if args.init_from:
        updates["init_from"] = args.init_from
    if args.separator_bundle:
        from singalign.bundle import Bundle

        updates["separator"] = Bundle.load(args.separator_bundle).config["separator"]
    if args.separator:
        sep_dir = Path(args.separator).resolve()
        sep = json.loads((sep_dir / "separator.json").read_text())
        updates["separator"] = {**sep, "kind": "umx", "weights": str(sep_dir / "vocals.pth")}
    for name in ("epochs", "max_steps", "batch_size", "speech_per_batch", "lr", "warmup_steps", "lr_decay", "lr_final", "patience", "seed",
                 "max_frames", "save_every_steps", "device", "cpu_bf16", "compile"):  # fmt: skip
        if getattr(args, name) is not None:
            updates[name] = getattr(args, name)
    cfg = replace(cfg, **updates)
    result = fit(cfg)
    print(json.dumps({k: v for k, v in vars(result).items() if k != "model"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
