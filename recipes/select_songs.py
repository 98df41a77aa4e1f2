r"""The paper's data selection (Section 4.1.1): keep songs whose notes agree with a pitch model.

Usage:
    python recipes/select_songs.py --manifest m/dali.jsonl --bundle runs/pitch/best --out m/dali_selected.jsonl \
        [--threshold 0.5] [--no-separation | --vocals VOCALS_DIR] [--report sel/report.jsonl]
    # check the stage on a corpus with exact labels: corrupt 30% of the annotations first
    python recipes/select_songs.py --manifest m/songs_dev.jsonl --bundle runs/multitask/best --out /tmp/sel.jsonl \
        --plant 0.3 --no-separation

For every song, the bundle's pitch model (CRNN-1 of a multitask or pitch_onset_only bundle)
estimates framewise pitch over the whole song (its vocals separated, read from recipes/separate.py's
cache with --vocals, or the mixture with --no-separation); the annotations are compared at each shift of
-12..+12 semitones; the best shift becomes the record's ``pitch_shift`` and songs whose framewise
error (Eq. 10) at that shift exceeds --threshold are dropped. The kept records go to --out (a
manifest); one line per song (shift, error, kept, errors at every shift) goes to the report
(default: OUT with .report.jsonl). Estimates are cached per song beside the report, so a re-run
skips finished songs. When no song is kept, the stage exits with status 1 (after writing the
report): a pitch model that disagrees with every annotation is broken or untrained, and training
on what it kept would silently train on speech alone.

--plant F corrupts a share F of the songs first (in turn: a random nonzero shift, which must be
found and undone; a random melody and notes 300 ms late, which must be dropped) and prints how
many of each were handled correctly: proof that the stage does what it claims.
"""

import json
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from singalign import recipe
from singalign.bundle import Bundle
from singalign.data.manifest import load_manifest, save_manifest
from singalign.files import atomic_path, write_jsonl
from singalign.select import fault_report, plant_faults, select_songs
from singalign.transcribe import TranscribeOptions, Transcriber


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--manifest", required=True, help="songs with notes (whole songs)")
    ap.add_argument("--bundle", required=True, help="a bundle with a pitch model")
    ap.add_argument("--out", required=True, help="manifest of the kept songs (with pitch_shift set)")
    ap.add_argument("--threshold", type=float, default=0.5, help="largest framewise error kept (0.5)")
    ap.add_argument("--report", default=None, help="per-song JSONL (default: OUT.report.jsonl)")
    recipe.add_separation_args(ap)
    ap.add_argument("--plant", type=float, default=0.0, help="corrupt this share of songs first")
    ap.add_argument("--seed", type=int, default=0, help="seed of --plant")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(args.out)
    report_path = Path(args.report) if args.report else out.with_suffix(".report.jsonl")
    cache = report_path.parent / (report_path.stem + ".pitch")
    cache.mkdir(parents=True, exist_ok=True)

    records = [r for r in load_manifest(args.manifest) if r.kind == "song" and r.notes]
    planted = {}
    if args.plant:
        records, planted = plant_faults(records, args.plant, args.seed)
    transcriber = Transcriber(
        Bundle.load(args.bundle),
        TranscribeOptions(separation=not args.no_separation, vocals_dir=args.vocals, keep_frames=False),
    )
    if not transcriber.model.cfg.has_pitch_onset:
        ap.error(f"{args.bundle}: this bundle has no pitch model (mode {transcriber.model.cfg.mode})")
    bar = tqdm(total=len(records), unit="song", desc="pitch")

    def predict(r):
        f = cache / f"{r.id.replace('/', '__')}.npy"
        if f.exists():
            pred = np.load(f)
        else:
            _, post, _ = transcriber.posteriors(r.audio)
            pred = post["pitch_probs"].argmax(-1).astype(np.int16)
            with atomic_path(f) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, pred)
        bar.update(1)
        return pred

    kept, report = select_songs(records, predict, args.threshold)
    bar.close()
    save_manifest(out, kept)
    write_jsonl(
        report_path,
        [
            {"id": s.id, "shift": s.shift, "error": round(s.error, 4), "kept": s.kept, "errors": s.errors}
            for s in report
        ],
    )
    errs = np.array([s.error for s in report])
    print(
        f"{len(kept)}/{len(records)} songs kept (threshold {args.threshold}); framewise error at the best "
        f"shift: median {np.median(errs):.3f}, max {errs.max():.3f}; {sum(s.shift != 0 for s in report)} "
        f"songs shifted. Kept manifest: {out}; report: {report_path}"
    )
    if planted:
        print("planted faults handled correctly:", json.dumps(fault_report(report, planted)))
    if records and not kept:
        print(
            f"error: no song kept: the pitch model of {args.bundle} disagrees with every annotation "
            f"(median framewise error {np.median(errs):.3f}); check that model, or raise --threshold",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
