"""Tune the note decoding of a bundle (onset threshold, minimum note length) for COnP F on validation songs.

Usage:
    python recipes/tune_notes.py --bundle runs/multitask/best --manifest m/dali_dev.jsonl --out eval/tune_notes.json
        [--thresholds 0.2 0.3 ... 0.9] [--min-frames 0 2 4 6 8 10 12 16] [--split valid] [--limit N]
        [--no-separation | --vocals VOCALS_DIR] [--save-bundle runs/multitask/tuned]

CRNN-1's pitch and onset posteriors of the validation songs are computed once, through the full
pipeline (separation included, or read from recipes/separate.py's cache with --vocals, as
`recipes/evaluate.py` runs them), then every (onset threshold,
minimum note length) of the grid decodes the notes (`singalign.decode.notes_from_posteriors`) and
scores them with mir_eval (COn, COnP, COnPOff; mean over songs). The paper's decoding is threshold
0.4 with no minimum length; a minimum length (in 16 ms feature frames) merges the short notes that
a flickering framewise pitch splits off. Prints the COnP F table, writes OUT (JSON: every grid
point, the best, the bundle's current point, and its decode options with the best values), and with
--save-bundle writes a copy of the bundle with those decode options (it may be the bundle's folder).
"""

import argparse
import logging
import sys

from singalign import recipe
from singalign.bundle import Bundle
from singalign.data.manifest import load_manifest
from singalign.evaluate import manifest_note_posteriors, notes_grid_table, tune_notes
from singalign.files import write_json
from singalign.transcribe import TranscribeOptions, Transcriber


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--bundle", required=True, help="a trained bundle with a pitch/onset model")
    ap.add_argument("--manifest", nargs="+", required=True, help="validation manifest(s) of songs with notes")
    ap.add_argument("--out", required=True, help="results JSON")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--min-frames", type=int, nargs="+", default=[0, 2, 4, 6, 8, 10, 12, 16])
    recipe.add_tuning_args(ap, "onset threshold and minimum note length")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return recipe.run("tune_notes", run, args)


def run(args: argparse.Namespace) -> int:
    bundle = Bundle.load(args.bundle)
    tr = Transcriber(
        bundle,
        TranscribeOptions(keep_frames=False, separation=not args.no_separation, vocals_dir=args.vocals),
    )
    records = [r for m in args.manifest for r in load_manifest(m) if args.split in (None, r.split)]
    items = manifest_note_posteriors(tr, records[: args.limit] if args.limit else records, not args.quiet)
    result = tune_notes(items, tr.decode_options, args.thresholds, args.min_frames, not args.quiet)
    result = {"bundle": str(bundle.path), "data": {"manifest": args.manifest, "split": args.split,
              "limit": args.limit, "separation": not args.no_separation}, **result}  # fmt: skip
    best, cur = result["best"], result["current"]
    print(notes_grid_table(result["grid"]))
    print(
        f"{result['n_items']} songs: COnP F {100 * best['COnP']['f']:.2f}% (P {100 * best['COnP']['precision']:.2f}, "
        f"R {100 * best['COnP']['recall']:.2f}) at threshold {best['onset_threshold']:g}, minimum "
        f"{best['min_note_frames']} frames; the bundle's (threshold {cur['onset_threshold']:g}, minimum "
        f"{cur['min_note_frames']}): {100 * cur['COnP']['f']:.2f}%"
    )
    write_json(args.out, result)
    print(f"wrote {args.out}")
    if args.save_bundle:
        decode = {
            **(bundle.config.get("decode") or {}),
            "onset_threshold": best["onset_threshold"],
            "min_note_frames": best["min_note_frames"],
        }
        tuning = {"data": result["data"], "n_items": result["n_items"], "best": best,
                  "thresholds": sorted(args.thresholds), "min_frames": sorted(args.min_frames)}  # fmt: skip
        out = bundle.save_tuned(args.save_bundle, decode, "notes_tuning", tuning)
        print(
            f"wrote {out} (decode: onset threshold {best['onset_threshold']:g}, minimum {best['min_note_frames']} frames)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
