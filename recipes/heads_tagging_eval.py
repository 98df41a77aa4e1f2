r"""Zero-shot tagging of a real tagging corpus (MagnaTagATune, MTG-Jamendo, GTZAN) with a bundle's head.

Usage:
    python recipes/heads_tagging_eval.py --bundle RUN/best --corpus mtat --root MTAT_AUDIO \
        [--annotations annotations_final.csv] [--top-n 50] [--split test] [--limit N] --out EVAL
    python recipes/heads_tagging_eval.py --bundle RUN/best --corpus mtg --tsv autotagging_top50tags-test.tsv \
        --root MTG_AUDIO --out EVAL
    python recipes/heads_tagging_eval.py --bundle RUN/best --corpus gtzan --root GTZAN --out EVAL

Every clip is embedded (files that fail are reported and skipped) and scored against every tag of
the corpus (the prompt ensemble of singalign.textsample); EVAL/summary.json gets macro ROC-AUC and
PR-AUC (and, for GTZAN, zero-shot genre accuracy), EVAL/scores.jsonl every clip's scores.
"""

import json
import logging
import sys

import numpy as np
from tqdm import tqdm

from singalign import metrics, recipe
from singalign.data import tagging
from singalign.embed import Embedder, EmbedOptions
from singalign.files import write_json, write_jsonl


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--corpus", choices=("mtat", "mtg", "gtzan"), required=True)
    ap.add_argument("--root", required=True, help="audio root (GTZAN: the folder holding genres/)")
    ap.add_argument("--annotations", help="MTAT annotations_final.csv (default: ROOT/annotations_final.csv)")
    ap.add_argument("--tsv", help="MTG-Jamendo autotagging*.tsv")
    ap.add_argument("--top-n", type=int, default=50, help="MTAT: keep the N most frequent tags")
    ap.add_argument("--split", default=None, help="keep records of this split only")
    ap.add_argument("--limit", type=int, default=None, help="at most this many clips")
    ap.add_argument("--no-separation", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.corpus == "mtat":
        records = tagging.read_magnatagatune(args.root, args.annotations, top_n=args.top_n, strict=False)
    elif args.corpus == "mtg":
        if not args.tsv:
            ap.error("--corpus mtg needs --tsv")
        records = tagging.read_mtg_jamendo(args.tsv, args.root, strict=False)
    else:
        records = tagging.read_gtzan(args.root, strict=False)
    records = [r for r in records if args.split is None or r.split == args.split][: args.limit]
    vocab = sorted({t for r in records for t in r.tags})
    emb = Embedder.from_path(args.bundle, EmbedOptions(separation=not args.no_separation))
    tag_emb = emb.embed_tags(vocab)
    rows, scores, truth = [], [], []
    for r in tqdm(records, desc="clips", unit="clip"):
        try:
            feats = emb.load_features(r.audio)
        except Exception as exc:  # a bad clip is reported and skipped
            print(f"singalign: error: {r.audio}: {exc}", file=sys.stderr)
            continue
        s = tag_emb @ emb.embed_features(feats)["tags"]
        scores.append(s)
        truth.append([t in r.tags for t in vocab])
        rows.append(
            {
                "id": r.id,
                "tags": list(r.tags),
                "scores": {t: round(float(v), 5) for t, v in zip(vocab, s, strict=True)},
            }
        )
    if not rows:
        print("singalign: error: no clip could be read", file=sys.stderr)
        return 1
    scores_a, truth_a = np.array(scores), np.array(truth, dtype=int)
    summary = {"corpus": args.corpus, "clips": len(rows), "tags": len(vocab),
               "macro_roc_auc": metrics.macro_roc_auc(truth_a, scores_a),
               "macro_pr_auc": metrics.macro_pr_auc(truth_a, scores_a)}  # fmt: skip
    if args.corpus == "gtzan":
        summary["genre_accuracy"] = metrics.zero_shot_accuracy(scores_a, truth_a.argmax(1))
    write_json(f"{args.out}/summary.json", summary)
    write_jsonl(f"{args.out}/scores.jsonl", rows)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
