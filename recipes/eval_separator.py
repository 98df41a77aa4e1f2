"""Evaluate a vocals separator on held-out stems: SDR of the separated vocals against the true ones.

Usage:
    python recipes/eval_separator.py --stems SYNTH_TEST/stems --separator work/separator --out eval/separator
    python recipes/eval_separator.py --stems SYNTH_TEST/stems --bundle BUNDLE --out eval/separator [--limit N]

STEMS holds <id>/vocals.flac and <id>/accompaniment.flac at the separator's rate (the layout
`singalign synth songs` writes); each song's mixture is their sum. Writes OUT/per_song.jsonl (sdr,
sdr_mixture: the mixture itself as the estimate, sdr_gain) and OUT/summary.json (median and mean
over songs; the median is what the music demixing evaluations report).
"""

import json
import sys
from pathlib import Path

import numpy as np

from singalign import recipe
from singalign.files import write_json, write_jsonl


def run(args) -> int:
    from singalign.bundle import Bundle
    from singalign.errors import SingalignError
    from singalign.separation import (
        SeparatorConfig,
        VocalSeparator,
        evaluate_separator,
        separator_from_bundle,
        stem_pairs,
    )

    stems = stem_pairs(args.stems)[: args.limit]
    if not stems:
        raise SingalignError(f"no <id>/vocals.flac + accompaniment.flac pairs under {' '.join(args.stems)}")
    if args.bundle:
        separator = separator_from_bundle(Bundle.load(args.bundle))
        if separator is None:
            raise SingalignError(f"{args.bundle}: the bundle names no separator")
    else:
        folder = Path(args.separator)
        cfg = SeparatorConfig.from_dict(json.loads((folder / "separator.json").read_text()))
        separator = VocalSeparator(cfg, folder / "vocals.pth")
    rows = evaluate_separator(separator, stems)
    summary = {"songs": len(rows), "stems": args.stems, "separator": args.bundle or args.separator}
    for key in ("sdr", "sdr_mixture", "sdr_gain"):
        values = np.array([r[key] for r in rows])
        summary[f"median_{key}"] = float(np.median(values))
        summary[f"mean_{key}"] = float(np.mean(values))
    out = Path(args.out)
    write_jsonl(out / "per_song.jsonl", rows)
    write_json(out / "summary.json", summary)
    print(
        f"{len(rows)} songs: vocals SDR median {summary['median_sdr']:.2f} dB "
        f"(the mixture as the estimate: {summary['median_sdr_mixture']:.2f} dB) -> {out}/summary.json"
    )
    return 0


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--stems", nargs="+", required=True, help="stems folder(s)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--separator", help="a folder from recipes/train_separator.py")
    src.add_argument("--bundle", help="use the separator this bundle names")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=None, help="at most N songs")
    return recipe.run("eval_separator", run, ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
