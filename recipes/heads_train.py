r"""Train the audio-text heads (tags/captions and lyrics spaces) on a trained ALT bundle.

Usage:
    python recipes/heads_train.py --bundle ALT_BUNDLE --train PREP [PREP ...] --valid PREP \
        --metadata SYNTH/metadata.jsonl --out RUN [--mode frozen|joint] [--text-tower minilm|bow] \
        [--finetune-text] [--no-evidence] [--pooling attention|mean] [--embed-dim 128] [--epochs 50] [--max-steps N] \
        [--batch-size 32] [--lr 1e-3] [--tag-weight 1] [--lyrics-weight 1] [--seed 0] \
        [--select retrieval|loss] [--grad-clip 1.0]
    python recipes/heads_train.py --config RUN/train_config.json      # the same run again / resumed
    torchrun --nproc_per_node 2 recipes/heads_train.py --config RUN/train_config.json

--mode frozen keeps the ALT weights (its encodings are cached in RUN/encodings); --mode joint trains
them too with the ALT losses plus the weighted contrastive terms (validation then reports WER, to
compare with the ALT run's). PREP folders come from recipes/features.py (items are song segments
<song id>/segNNN); metadata.jsonl is the synthetic corpus's (id, split, tags, caption, lyrics).
RUN/best is a bundle with the head: use it with `singalign index add/search/tag --bundle RUN/best`.
"""

import json
import logging
import sys
from dataclasses import replace

from singalign import recipe
from singalign.contrastive_train import HeadTrainConfig, fit_heads


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--config", help="a train_config.json written by an earlier run (options override it)")
    ap.add_argument("--bundle", help="the trained ALT bundle whose encoder the heads sit on")
    ap.add_argument("--train", nargs="+", help="prepared training folders")
    ap.add_argument("--valid", nargs="*", default=None, help="prepared validation folders")
    ap.add_argument("--metadata", nargs="+", help="metadata.jsonl file(s)")
    ap.add_argument("--out", help="run folder")
    ap.add_argument("--mode", choices=("frozen", "joint"), default=None)
    ap.add_argument("--text-tower", choices=("minilm", "bow"), default=None)
    ap.add_argument("--finetune-text", action="store_true", help="fine-tune the text tower (default: frozen)")
    ap.add_argument(
        "--no-evidence",
        action="store_true",
        help="the head sees the lyrics encoding alone, not also CRNN-1's pitch and onset "
        "probabilities (which it sees by default with a multitask bundle)",
    )
    ap.add_argument("--pooling", choices=("attention", "mean"), default=None)
    ap.add_argument("--embed-dim", type=int, default=None)
    for name, typ in [("epochs", int), ("max-steps", int), ("batch-size", int), ("lr", float), ("text-lr", float),
                      ("alt-lr", float), ("tag-weight", float), ("lyrics-weight", float), ("warmup-steps", int),
                      ("patience", int), ("seed", int), ("speech-per-batch", int), ("save-every-steps", int)]:  # fmt: skip
        ap.add_argument(f"--{name}", type=typ, default=None)
    ap.add_argument(
        "--select",
        choices=("retrieval", "loss"),
        default=None,
        help="what picks the best epoch and stops early: retrieval (default: 1 - mean of tag "
        "ROC-AUC, caption and lyrics mAP@10) or the validation loss",
    )
    ap.add_argument(
        "--grad-clip",
        type=float,
        default=None,
        help="clip the gradient norm at this (default 1.0; 0: no clipping, as recipes/train.py)",
    )
    ap.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.config:
        with open(args.config) as f:
            cfg = HeadTrainConfig.from_dict(json.load(f))
    else:
        if not (args.bundle and args.train and args.metadata and args.out):
            ap.error("give --config, or --bundle, --train, --metadata and --out")
        cfg = HeadTrainConfig(
            train=tuple(args.train), metadata=tuple(args.metadata), bundle=args.bundle, out_dir=args.out
        )
    updates = {k: v for k, v in {
        "bundle": args.bundle, "out_dir": args.out, "mode": args.mode, "device": args.device,
        "select": args.select,
        "train": tuple(args.train) if args.train else None,
        "valid": tuple(args.valid) if args.valid is not None else None,
        "metadata": tuple(args.metadata) if args.metadata else None,
    }.items() if v is not None}  # fmt: skip
    if args.grad_clip is not None:
        updates["grad_clip"] = args.grad_clip or None  # 0: none
    for name in ("epochs", "max_steps", "batch_size", "lr", "text_lr", "alt_lr", "tag_weight", "lyrics_weight",
                 "warmup_steps", "patience", "seed", "speech_per_batch", "save_every_steps"):  # fmt: skip
        if getattr(args, name) is not None:
            updates[name] = getattr(args, name)
    head = {
        k: v
        for k, v in {
            "text_tower": args.text_tower,
            "pooling": args.pooling,
            "embed_dim": args.embed_dim,
        }.items()
        if v is not None
    }
    if args.finetune_text:
        head["text_trainable"] = True
    if args.no_evidence:
        head["evidence"] = False
    cfg = replace(cfg, **updates, head=replace(cfg.head, **head))
    result = fit_heads(cfg)
    print(
        f"{result.steps} steps, {result.epochs} epochs, best validation {cfg.select} metric {result.best_metric}; bundle: {cfg.out_dir}/best"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
