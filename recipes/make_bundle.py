r"""Assemble a release bundle: trained weights + (optional) separator + (optional) LM + a label.

Usage:
    python recipes/make_bundle.py --from runs/multitask/best --out singalign/resources/bundles/default \
        [--separator work/separator] [--lm work/lm] [--label "trained on synthetic singing ..."] \
        [--report eval/tables.txt] [--lm-binary compact|as-built] [--max-mb 50]
    # new weights fine-tuned from a released bundle, keeping its separator, LM and decoding settings
    python recipes/make_bundle.py --from runs/cont/best --carry singalign/resources/bundles/default --out B

--from is a bundle, or a run folder of recipes/train.py (then its latest checkpoint is exported,
not RUN/best: the best-validation model can lag behind when the metric is coarse early on).
--separator is a folder written by recipes/train_separator.py (vocals.pth + separator.json);
--lm a folder written by `singalign lm build`. Of the LM, the bundle carries only what the decoder
reads: the KenLM binary and the word list (lm/lm.bin, lm/unigrams.txt), never the ARPA text. The
binary is the compact layout (trie, 8-bit quantized, compressed pointers: `singalign.lm.COMPACT`),
rebuilt from the folder's lm.arpa when its lm.bin is in another layout (--lm-binary as-built copies
lm.bin as it is). Files are copied into the bundle and listed with their SHA-256 (checked when the
bundle is loaded); a bundle over --max-mb (default 50) is not written. Inference then reads
everything from the bundle.

--carry OLD takes from the bundle OLD its separator and LM (their files and settings) and its
decoding settings with the records of how they were tuned (``decode``, ``lm_tuning``,
``notes_tuning``), for weights trained further from OLD; ``carried_from`` in bundle.json names OLD
and its weights' SHA-256, and says that the settings were tuned for those weights (tune_lm.py and
tune_notes.py --save-bundle list what they re-tune for the new weights under 'retuned'). Features and
vocabulary must match OLD's. --separator and --lm, when given too, replace what was carried. An
audio-text head is never carried: it was trained on OLD's encoder.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from singalign import recipe
from singalign.bundle import MAX_BUNDLE_MB, WEIGHTS_FILE, Bundle, bundle_size
from singalign.errors import BundleError
from singalign.lm import COMPACT, bundle_files


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument(
        "--from", dest="src", required=True, help="a trained bundle (e.g. RUN/best), or a run folder"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--carry",
        default=None,
        help="a bundle whose separator, LM and decoding settings the new weights keep",
    )
    ap.add_argument("--separator", default=None)
    ap.add_argument("--lm", default=None, help="an LM folder written by `singalign lm build`")
    ap.add_argument(
        "--lm-binary",
        choices=("compact", "as-built"),
        default="compact",
        help="the LM binary to ship: the compact trie (default) or the folder's lm.bin as it is",
    )
    ap.add_argument("--label", default="")
    ap.add_argument(
        "--report", default=None, help="a text file (e.g. evaluation tables) stored in the bundle"
    )
    ap.add_argument(
        "--max-mb", type=float, default=MAX_BUNDLE_MB, help="size cap in MB (default: %(default)s)"
    )
    args = ap.parse_args(argv)
    return recipe.run("make_bundle", run, args)


#: What ``--carry`` takes from the old bundle's config, besides the separator and LM files.
CARRIED = ("separator", "lm", "decode", "lm_tuning", "notes_tuning")


def carry(bundle: Bundle, old: Bundle) -> dict[str, Path]:
    """Give ``bundle`` the separator, LM and decoding settings of ``old`` (see the module docstring);
    returns the files to copy from ``old`` (name in the bundle -> path)."""
    for key in ("features", "vocab", "blank_index", "frame_rate"):
        if bundle.config.get(key) != old.config.get(key):
            raise BundleError(f"--carry {old.path}: its {key} differ from the new weights' bundle's")
    for key in CARRIED:
        if key in old.config:
            bundle.config[key] = old.config[key]
        else:
            bundle.config.pop(key, None)
    bundle.config["carried_from"] = {
        "bundle": str(old.path),
        "model_sha256": old.config["files"][WEIGHTS_FILE],
        "keys": [k for k in CARRIED if k in old.config],
        "note": "separator, LM and decoding settings taken from that bundle; the decoding settings "
        "were tuned for its weights, except those listed under 'retuned' (tuned for these weights "
        "afterwards by tune_lm.py or tune_notes.py)",
    }
    bundle.config.pop("decode_note", None)
    return {
        name: old.path / name
        for name in old.config.get("files", {})
        if name.startswith(("separator/", "lm/"))
    }


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="make_bundle_") as work:
        src = Path(args.src)
        if (src / "checkpoint.pt").exists() and not (src / "bundle.json").exists():
            from singalign.train import export_checkpoint

            src = export_checkpoint(src, Path(work) / "checkpoint_bundle")
        bundle = Bundle.load(src)
        extra = carry(bundle, Bundle.load(args.carry)) if args.carry else {}
        if args.separator:
            sep = json.loads((Path(args.separator) / "separator.json").read_text())
            bundle.config["separator"] = {**sep, "kind": "umx", "weights": "separator/vocals.pth"}
            extra["separator/vocals.pth"] = Path(args.separator) / "vocals.pth"
        if args.lm:
            layout = COMPACT if args.lm_binary == "compact" else None
            bundle.config["lm"], lm_files = bundle_files(args.lm, work, layout)
            extra.update(lm_files)
            bundle.config["decode"] = {**bundle.config.get("decode", {}), "method": "beam"}
        if args.report:
            extra["REPORT.txt"] = Path(args.report)
        if args.label:
            bundle.config["label"] = args.label
        out = bundle.save(args.out, extra_files=extra, max_bytes=int(args.max_mb * 1e6))
    print(Bundle.load(out).describe())
    sizes = bundle_size(out)
    print(
        f"size: {sum(sizes.values()) / 1e6:.1f} MB ("
        + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sizes.items())
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
