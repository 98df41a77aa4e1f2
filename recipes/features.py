"""Features and frame targets for every record of a manifest (songs cut between words).

Usage:
    python recipes/features.py --manifest m/dali.jsonl --out prep/dali_train [--vocals work/vocals] [--shard i/n] [--threads N]
    python recipes/features.py --out prep/dali_train --finalize        # after all shards: write items.jsonl

Without --shard the stage finalizes by itself. Shards run side by side on one machine should share
its cores out with --threads (e.g. 1 each for 2 shards on 2 cores). Finished items are skipped on a re-run.
"""

import logging
import sys

from singalign import recipe
from singalign.data.manifest import load_manifest
from singalign.prepare import PrepareConfig, finalize, prepare_records


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--manifest", nargs="*", default=[], help="manifest file(s)")
    ap.add_argument("--out", required=True, help="prepared folder")
    ap.add_argument(
        "--vocals", default=None, help="separated vocals cache (recipes/separate.py); default: mixture twice"
    )
    ap.add_argument("--split", default=None, help="keep only records of this split")
    recipe.add_shard_args(ap)
    ap.add_argument("--finalize", action="store_true", help="only gather finished items into items.jsonl")
    args = ap.parse_args(argv)
    recipe.apply_threads(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.finalize:
        records = [
            r for m in args.manifest for r in load_manifest(m) if args.split is None or r.split == args.split
        ]
        n = prepare_records(records, args.out, PrepareConfig(), sep_dir=args.vocals, shard=args.shard)
        print(f"{n} new items in {args.out}")
    if args.finalize or args.shard is None:
        print(f"{finalize(args.out)} items listed in {args.out}/items.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
