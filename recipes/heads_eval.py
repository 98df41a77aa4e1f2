r"""Evaluate a bundle's audio-text heads on prepared held-out songs (+ metadata.jsonl).

Usage:
    python recipes/heads_eval.py --bundle RUN/best --prepared PREP [PREP ...] \
        --metadata SYNTH/metadata.jsonl --out EVAL [--tags "rock,jazz,..."]

Writes EVAL/summary.json (zero-shot tagging macro ROC-AUC / PR-AUC over the tag vocabulary,
caption->song and song->caption R@1/5/10, mAP@10, median rank, and 5-word lyric span -> song
retrieval by the lyrics embedding alone) and EVAL/queries.jsonl (every query with its song's rank).
The tag vocabulary is the bundle's (the training tags) unless --tags gives one.
"""

import json
import logging
import sys

from singalign import recipe
from singalign.contrastive_train import evaluate_bundle


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--prepared", nargs="+", required=True, help="prepared folders of the held-out songs")
    ap.add_argument("--metadata", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tags", help="comma-separated tag vocabulary (default: the bundle's)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    vocab = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
    summary = evaluate_bundle(args.bundle, args.prepared, args.metadata, args.out, vocab, args.device)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
