r"""Evaluate bundles on a manifest (whole songs through the full pipeline) and write the evidence.

Usage:
    python recipes/evaluate.py --manifest m/test.jsonl --bundle runs/multitask/best --out eval/multitask
    python recipes/evaluate.py --manifest m/test.jsonl --bundle B1 B2 B3 --label baseline oracle multitask --out eval/
        [--greedy] [--lm LM_DIR] [--no-separation | --vocals VOCALS_DIR] [--limit N] [--also greedy beam beam_lm]
        [--align]
    python recipes/evaluate.py --prepared prep/songs_test --bundle runs/baseline/best runs/oracle/best \
        runs/multitask/best --label baseline oracle multitask --lm LM_DIR --also greedy --out eval/table1

Writes OUT[/label]/hypotheses.jsonl and summary.json per bundle, and OUT/tables.txt (the paper's
Tables 1 and 2 for the given bundles; with several, Table 1b: each one's WER and CER difference to
the first with a 95% paired bootstrap interval over the items, also in OUT/paired.json). --also
scores more decodings of the same model pass (e.g. greedy against beam + LM); --align scores forced
alignment of the reference lyrics. --vocals reads the songs' vocals from recipes/separate.py's cache
(made with the bundles' separator) instead of separating every song again for every bundle.

--prepared scores prepared items (recipes/features.py) instead of audio: the stored features go into
the model with the items' true notes, as in training's validation. That is how an oracle-mode bundle
(which cannot transcribe audio) is compared with the others on the same items, as in the paper's
Table 1; lyrics only (no note scores, no alignment), on segments rather than whole songs.
--withhold-notes (with --prepared) is an ablation: the lyrics CRNN gets zeros in place of its
pitch/onset input, so the difference to the normal score shows how much a model uses its notes;
--true-notes (with --prepared, multitask bundles) gives it the true notes instead of CRNN-1's
estimates, so the difference shows what better notes would be worth to its lyrics. --limit N scores
the first N items only: e.g. a sample of the training items, to see how well a model fits what it
trained on (if it scores about as badly there as on the test items, more data will not help much;
more capacity or more steps will).
"""

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from singalign import recipe
from singalign.bundle import Bundle
from singalign.data.manifest import load_manifest
from singalign.evaluate import evaluate_records, paired_comparisons, tables
from singalign.files import write_json, write_text
from singalign.transcribe import TranscribeOptions


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", nargs="+", help="manifest(s): whole songs through the full pipeline")
    src.add_argument("--prepared", nargs="+", help="prepared folder(s): segments, with their true notes")
    ap.add_argument("--bundle", required=True, nargs="+")
    ap.add_argument("--label", nargs="*", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default=None, help="keep only records of this split")
    ap.add_argument("--greedy", action="store_true")
    ap.add_argument("--lm", default=None, help="LM folder or file for beam search")
    recipe.add_separation_args(ap)
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="evaluate at most N records (with --prepared: the first N items with text)",
    )
    ap.add_argument(
        "--also",
        nargs="*",
        default=[],
        choices=["greedy", "beam", "beam_lm"],
        help="more decodings scored from the same model pass (beam: no LM; beam_lm: the bundle's or --lm)",
    )
    ap.add_argument(
        "--align",
        action="store_true",
        help="also force-align the reference lyrics and score word onsets (mean abs error, within 0.3 s)",
    )
    notes = ap.add_mutually_exclusive_group()
    notes.add_argument(
        "--withhold-notes",
        action="store_true",
        help="with --prepared: zeros in place of the lyrics CRNN's pitch/onset input (an ablation)",
    )
    notes.add_argument(
        "--true-notes",
        action="store_true",
        help="with --prepared, multitask bundles: the true notes in place of CRNN-1's estimates (an ablation)",
    )
    args = ap.parse_args(argv)
    if (args.withhold_notes or args.true_notes) and not args.prepared:
        ap.error(f"--{'withhold' if args.withhold_notes else 'true'}-notes needs --prepared")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    labels = args.label or [
        Path(b).parent.name if Path(b).name == "best" else Path(b).name for b in args.bundle
    ]
    if len(labels) != len(args.bundle):
        ap.error("give one --label per --bundle")
    decode = (
        {"method": "greedy"} if args.greedy else ({"method": "beam", "lm_path": args.lm} if args.lm else {})
    )
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be at least 1, not {args.limit}")
    if args.prepared:
        if args.align or args.split:
            ap.error("--align and --split go with --manifest")
        return recipe.run("evaluate", lambda a: _prepared(a, labels, decode), args)
    records = [
        r for m in args.manifest for r in load_manifest(m) if args.split is None or r.split == args.split
    ]
    records = records[: args.limit]  # None: all
    options = replace(
        TranscribeOptions(keep_frames=False),
        separation=not args.no_separation,
        vocals_dir=args.vocals,
        decode=decode,
    )
    decoders = _decoders(args)
    summaries = {}
    for label, path in zip(labels, args.bundle, strict=True):
        out = Path(args.out) / label if len(args.bundle) > 1 else Path(args.out)
        summaries[label] = evaluate_records(
            Bundle.load(path), records, out, options, decoders=decoders, align=args.align
        )
        keys = ("wer", "cer", "notes", "decoders", "alignment")
        print(label, json.dumps({k: summaries[label][k] for k in keys if k in summaries[label]}))
    return _write_tables(args, labels, summaries)


def _write_tables(args, labels: list[str], summaries: dict) -> int:
    paired = {}
    if len(labels) > 1:
        paired = paired_comparisons({label: Path(args.out) / label for label in labels})
        write_json(Path(args.out) / "paired.json", paired)
    text = tables(summaries, paired)
    write_text(Path(args.out) / "tables.txt", text)
    print(text)
    return 0


def _decoders(args) -> dict[str, dict]:
    also = {
        "greedy": {"method": "greedy"},
        "beam": {"method": "beam", "lm_path": None, "unigrams_path": None},
        "beam_lm": {"method": "beam", **({"lm_path": args.lm} if args.lm else {})},
    }
    return {k: also[k] for k in args.also}


def _prepared(args, labels: list[str], decode: dict) -> int:
    from singalign.evaluate import evaluate_prepared

    summaries = {}
    for label, path in zip(labels, args.bundle, strict=True):
        out = Path(args.out) / label if len(args.bundle) > 1 else Path(args.out)
        summaries[label] = evaluate_prepared(
            Bundle.load(path),
            args.prepared,
            out,
            decode,
            _decoders(args),
            withhold_notes=args.withhold_notes,
            true_notes=args.true_notes,
            limit=args.limit,
        )
        keys = ("decoding", "wer", "cer", "decoders", "pitch_frame_error")
        print(label, json.dumps({k: summaries[label][k] for k in keys if k in summaries[label]}))
    return _write_tables(args, labels, summaries)


if __name__ == "__main__":
    sys.exit(main())
