r"""Tune the LM weight (alpha) and word bonus (beta) of a bundle's beam search on validation data.

Usage:
    python recipes/tune_lm.py --bundle runs/multitask/best --manifest m/dali_dev.jsonl --out eval/tune_lm.json
    python recipes/tune_lm.py --bundle B --prepared prep/dali_dev --out eval/tune_lm.json \
        [--lm LM_DIR] [--alphas 0 0.25 0.5 0.75 1 1.5] [--betas 0 0.5 1 1.85 3] [--beam 25] \
        [--split valid] [--limit N] [--no-separation | --vocals VOCALS_DIR] [--save-bundle runs/multitask/tuned]

The lyrics CRNN's CTC posteriors of the validation data are computed once (--manifest: whole songs
or segments through the full pipeline, separation included (or read from recipes/separate.py's
cache with --vocals), as `recipes/evaluate.py` runs them;
--prepared: the stored features of `recipes/features.py`, as training's validation sees them),
then beam search with the LM (the bundle's, or --lm) is run for every (alpha, beta) of the grid
(`singalign.evaluate.tune_lm`, over `singalign.decode.tune_lm_weights`). Prints the WER table,
writes OUT (JSON: every grid point, the best, greedy and no-LM baselines, and the bundle's decode
options with the best values), and with --save-bundle writes a copy of the bundle whose decode
options carry the best alpha and beta (written atomically; it may be the bundle's own folder).
"""

import argparse
import logging
import sys
from dataclasses import replace

from singalign import recipe
from singalign.bundle import Bundle
from singalign.data.manifest import load_manifest
from singalign.errors import SingalignError
from singalign.evaluate import grid_table, manifest_posteriors, prepared_posteriors, tune_lm
from singalign.files import write_json
from singalign.transcribe import TranscribeOptions, Transcriber


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--bundle", required=True, help="a trained bundle with a lyrics model")
    data = ap.add_mutually_exclusive_group(required=True)
    data.add_argument("--manifest", nargs="+", help="validation manifest(s) (songs or utterances)")
    data.add_argument("--prepared", nargs="+", help="prepared validation folder(s) (recipes/features.py)")
    ap.add_argument("--out", required=True, help="results JSON")
    ap.add_argument("--lm", default=None, help="LM folder or file (default: the bundle's LM)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.5])
    ap.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.85, 3.0])
    ap.add_argument("--beam", type=int, default=None, help="beam width (default: the bundle's, else 25)")
    recipe.add_tuning_args(ap, "alpha/beta")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.lm and args.save_bundle:
        ap.error("--save-bundle stores weights tuned for the bundle's own LM: drop --lm")
    return recipe.run("tune_lm", run, args)


def run(args: argparse.Namespace) -> int:
    bundle = Bundle.load(args.bundle)
    decode = {"method": "beam", **({"lm_path": args.lm} if args.lm else {})}
    separation = bool(args.manifest) and not args.no_separation
    tr = Transcriber(
        bundle,
        TranscribeOptions(keep_frames=False, separation=separation, vocals_dir=args.vocals, decode=decode),
    )
    options = tr.decode_options  # the bundle's decoding, with its LM resolved
    if not options.lm_path:
        raise SingalignError(f"{args.bundle}: the bundle carries no LM; give one with --lm DIR")
    if args.beam:
        options = replace(options, beam_width=args.beam)
    if args.manifest:
        records = [r for m in args.manifest for r in load_manifest(m) if args.split in (None, r.split)]
        items = manifest_posteriors(tr, records[: args.limit] if args.limit else records, not args.quiet)
    else:
        items = prepared_posteriors(tr, args.prepared, args.limit, not args.quiet)
    result = tune_lm(items, options, args.alphas, args.betas, bundle.config.get("decode"), not args.quiet)
    result = {"bundle": str(bundle.path), "data": {"manifest": args.manifest, "prepared": args.prepared,
              "split": args.split, "limit": args.limit, "separation": separation}, **result}  # fmt: skip
    best = result["best"]
    print(grid_table(result["grid"]))
    print(
        f"{result['n_items']} items, {result['n_ref_words']} words: WER greedy {100 * result['greedy']['wer']:.2f}%, "
        f"beam without LM {100 * result['beam_no_lm']['wer']:.2f}%, beam with LM {100 * best['wer']:.2f}% "
        f"at alpha {best['alpha']:g}, beta {best['beta']:g} (the bundle's: alpha {options.alpha:g}, "
        f"beta {options.beta:g})"
    )
    write_json(args.out, result)
    print(f"wrote {args.out}")
    if args.save_bundle:
        tuning = {"data": result["data"], "n_items": result["n_items"], "best": best,
                  "alphas": sorted(args.alphas), "betas": sorted(args.betas)}  # fmt: skip
        out = bundle.save_tuned(args.save_bundle, result["decode_options"], "lm_tuning", tuning)
        print(f"wrote {out} (decode: alpha {best['alpha']:g}, beta {best['beta']:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
