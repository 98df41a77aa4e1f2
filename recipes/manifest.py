"""Read a corpus in its real layout and write the manifest (JSONL, one record per line).

Usage:
    python recipes/manifest.py --corpus librispeech --root LibriSpeech --split train-clean-360 --out m/ls360.jsonl
    python recipes/manifest.py --corpus dali --root DALI/annot --audio-dir DALI/audio --split train --out m/dali.jsonl
    python recipes/manifest.py --corpus jamendo --root jamendolyrics --out m/jamendo.jsonl

Corpora: librispeech, dali, jamendo, magnatagatune, mtg-jamendo, gtzan (see singalign.data).
"""

import logging
import sys

from singalign import recipe
from singalign.data.corpora import CORPORA, read_corpus
from singalign.data.manifest import save_manifest


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--corpus", required=True, choices=CORPORA)
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="")
    ap.add_argument("--audio-dir", default=None)
    ap.add_argument(
        "--lenient", action="store_true", help="warn and skip malformed items instead of stopping"
    )
    ap.add_argument("--out", required=True, help="manifest file to write (.jsonl)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    records = read_corpus(args.corpus, args.root, args.split, args.audio_dir, strict=not args.lenient)
    save_manifest(args.out, records)
    print(f"{len(records)} records -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
