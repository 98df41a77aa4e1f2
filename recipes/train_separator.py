"""Train an Open-Unmix vocals model on (vocals, accompaniment) stems (resumable).

Usage:
    python recipes/train_separator.py --stems SYNTH/stems --out work/separator [--steps 3000] [--hidden 256]

STEMS holds <id>/vocals.flac and <id>/accompaniment.flac (the layout `singalign synth songs` writes).
The weights go to OUT/vocals.pth with OUT/separator.json; `recipes/make_bundle.py` puts them in a bundle.
"""

import sys

from singalign import recipe
from singalign.separation import SeparatorConfig, SeparatorTrainConfig, stem_pairs, train_separator


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--stems", nargs="+", required=True, help="stems folder(s)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=SeparatorTrainConfig.steps)
    ap.add_argument("--batch-size", type=int, default=SeparatorTrainConfig.batch_size)
    ap.add_argument("--hidden", type=int, default=256, help="LSTM size (umxhq: 512)")
    ap.add_argument("--seed", type=int, default=0)
    return recipe.run("train_separator", run, ap.parse_args(argv))


def run(args) -> int:
    from singalign.errors import SingalignError

    pairs = [(voc, acc) for _, voc, acc in stem_pairs(args.stems)]
    if not pairs:
        raise SingalignError(f"no <id>/vocals.flac + accompaniment.flac pairs under {' '.join(args.stems)}")
    train = SeparatorTrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    path = train_separator(pairs, args.out, SeparatorConfig(hidden_size=args.hidden), train)
    print(f"{len(pairs)} songs; weights -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
