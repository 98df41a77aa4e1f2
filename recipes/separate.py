"""Separate the vocals of every song in a manifest once (cached; resumable; shardable).

Usage:
    python recipes/separate.py --manifest m/dali.jsonl --bundle BUNDLE --out work/vocals [--shard i/n] [--threads N]
    python recipes/separate.py --manifest m/dali.jsonl --umxhq vocals-b62c91ce.pth --out work/vocals
    python recipes/separate.py --manifest m/dali.jsonl --separator work/separator --out work/vocals

The separator is the one a bundle names (e.g. the Open-Unmix model trained on synthetic stems) or
the paper's umxhq from a local weights file. Speech records are not separated. Shards run side by
side on one machine should share its cores out with --threads (2 shards on 2 cores: --threads 1
each; with every shard on every core, each was 3.4x slower).
"""

import logging
import sys

from singalign import recipe
from singalign.data.manifest import load_manifest
from singalign.prepare import separate_files


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--manifest", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundle", help="use the separator this bundle names")
    src.add_argument("--umxhq", help="path of umxhq's vocals-b62c91ce.pth")
    src.add_argument(
        "--separator", help="a folder from recipes/train_separator.py (separator.json + vocals.pth)"
    )
    ap.add_argument("--out", required=True, help="cache folder for the vocals")
    recipe.add_shard_args(ap)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    recipe.apply_threads(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from singalign.separation import SeparatorConfig, VocalSeparator, separator_from_bundle

    if args.bundle:
        from singalign.bundle import Bundle

        separator = separator_from_bundle(Bundle.load(args.bundle), args.device)
        if separator is None:
            print("the bundle names no separator (kind 'none'): nothing to do")
            return 0
    elif args.separator:
        import json
        from pathlib import Path

        cfg = SeparatorConfig.from_dict(json.loads((Path(args.separator) / "separator.json").read_text()))
        separator = VocalSeparator(cfg, Path(args.separator) / "vocals.pth", device=args.device)
    else:
        separator = VocalSeparator(SeparatorConfig(weights=args.umxhq), device=args.device)
    songs = [r.audio for r in load_manifest(args.manifest) if r.kind == "song"]
    done = separate_files(songs, args.out, separator, shard=args.shard)
    print(f"{len(done)} songs separated (or already cached) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
