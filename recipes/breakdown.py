r"""WER and CER of evaluations broken down by song attributes: which songs are hard.

Usage:
    python recipes/breakdown.py --eval eval/test/small eval/test/medium --metadata songs_test/metadata.jsonl \
        --by voice.type style mix.vocal_to_accompaniment_db=3 [--label small medium] [--out eval/test/breakdown]

Each --eval is an evaluation folder of recipes/evaluate.py (its hypotheses.jsonl; whole songs or
prepared segments). --metadata is a JSONL of songs with an "id" (singalign synth writes one per
corpus: voice, style, bpm, key, tags, mix levels ...). Each --by is a dotted attribute path,
optionally with =WIDTH to bin numbers into [k*WIDTH, (k+1)*WIDTH). Prints one table per attribute
(WER and CER in %, pooled over each group's items, per evaluation) and, with --out, writes them to
OUT/breakdown.txt and OUT/breakdown.json.
"""

import sys
from pathlib import Path

from singalign import recipe
from singalign.errors import SingalignError
from singalign.evaluate import breakdown, breakdown_table
from singalign.files import read_jsonl, write_json, write_text


def parse_by(spec: str) -> tuple[str, float | None]:
    key, _, width = spec.partition("=")
    if not width:
        return key, None
    try:
        w = float(width)
    except ValueError:
        w = 0.0
    if not w > 0:
        raise SingalignError(f"--by {spec}: the bin width after '=' must be a positive number")
    return key, w


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--eval", nargs="+", required=True, help="evaluation folders (recipes/evaluate.py)")
    ap.add_argument("--label", nargs="*", default=None, help="one label per --eval (default: folder names)")
    ap.add_argument("--metadata", nargs="+", required=True, help="JSONL of songs with an id")
    ap.add_argument("--by", nargs="+", required=True, help="attribute paths, e.g. voice.type or bpm=30")
    ap.add_argument("--out", default=None, help="folder for breakdown.txt and breakdown.json")
    args = ap.parse_args(argv)
    labels = args.label or [Path(e).name for e in args.eval]
    if len(labels) != len(args.eval) or len(set(labels)) != len(labels):
        ap.error("give one distinct --label per --eval")
    try:
        specs = [parse_by(b) for b in args.by]
        evaluations = {}
        for label, folder in zip(labels, args.eval, strict=True):
            path = Path(folder) / "hypotheses.jsonl"
            if not path.is_file():
                raise SingalignError(f"{path}: not found (give a folder written by recipes/evaluate.py)")
            evaluations[label] = read_jsonl(path)
        metadata = {str(r["id"]): r for m in args.metadata for r in read_jsonl(m) if "id" in r}
    except (SingalignError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    texts, results = [], {}
    for key, width in specs:
        rows = breakdown(evaluations, metadata, key, width)
        if not rows:
            print(f"warning: no scored song has the attribute {key!r}", file=sys.stderr)
        texts.append(breakdown_table(key, rows, labels))
        results[key] = rows  # bins (tuples) are written as JSON arrays
    text = "\n\n".join(texts)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "breakdown.txt", text + "\n")
        write_json(out / "breakdown.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
