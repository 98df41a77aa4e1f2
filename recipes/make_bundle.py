"""Assemble a release bundle: trained weights + (optional) separator + (optional) LM + a label.

Usage:
    python recipes/make_bundle.py --from runs/multitask/best --out singalign/resources/bundles/default \
        [--separator work/separator] [--lm work/lm] [--label "trained on synthetic singing ..."] \
        [--report eval/tables.txt]

--separator is a folder written by recipes/train_separator.py (vocals.pth + separator.json);
--lm a folder written by `singalign lm build` (lm.bin + unigrams.txt). Files are copied into the
bundle and listed with their SHA-256; inference then reads everything from the bundle.
"""

import argparse
import json
import sys
from pathlib import Path

from singalign.bundle import Bundle


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--from", dest="src", required=True, help="a trained bundle (e.g. RUN/best)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--separator", default=None)
    ap.add_argument("--lm", default=None)
    ap.add_argument("--label", default="")
    ap.add_argument(
        "--report", default=None, help="a text file (e.g. evaluation tables) stored in the bundle"
    )
    args = ap.parse_args(argv)
    bundle = Bundle.load(args.src)
    extra = {}
    if args.separator:
        sep = json.loads((Path(args.separator) / "separator.json").read_text())
        bundle.config["separator"] = {**sep, "kind": "umx", "weights": "separator/vocals.pth"}
        extra["separator/vocals.pth"] = Path(args.separator) / "vocals.pth"
    if args.lm:
        lm_dir = Path(args.lm)
        bundle.config["lm"] = {
            "binary": "lm/lm.bin",
            "unigrams": "lm/unigrams.txt",
            **json.loads((lm_dir / "lm.json").read_text()),
        }
        extra["lm/lm.bin"] = lm_dir / "lm.bin"
        extra["lm/unigrams.txt"] = lm_dir / "unigrams.txt"
        bundle.config["decode"] = {**bundle.config.get("decode", {}), "method": "beam"}
    if args.report:
        extra["REPORT.txt"] = Path(args.report)
    if args.label:
        bundle.config["label"] = args.label
    out = bundle.save(args.out, extra_files=extra)
    print(Bundle.load(out).describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
