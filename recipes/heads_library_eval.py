r"""End-to-end search evaluation: index held-out synthetic songs, then query them as a user would.

Usage:
    python recipes/heads_library_eval.py --bundle RUN/best --audio SYNTH/dali \
        --metadata SYNTH/metadata.jsonl --db EVAL/library.db --out EVAL [--split test] \
        [--no-separation] [--greedy] [--words 5] [--seed 0]

Indexes the audio (singalign index add: transcription, embeddings, tags; resumable), then asks
per song (a) its caption (text -> music) and (b) a span of --words consecutive words of its lyrics
(`search --lyrics`). A library already indexed with the same bundle is only queried.
Writes EVAL/queries.jsonl (query, song, rank) and EVAL/summary.json (R@1/5/10, median rank).
Audio files are matched to metadata by file stem = song id.

A lyrics query's phrase may be sung in other songs too (a synthetic corpus draws its lines from a
limited pool of held-out text). Each lyrics row also gives `sung_in` (how many songs of the
library sing the phrase, itself included) and `rank_any` (the rank of the first of them); the
summary gives `lyrics_*` (the queried song itself must come first: strict), `lyrics_any_*` (any
song that sings the phrase counts) and `lyrics_unique_*` (only the phrases sung in one song).
"""

import json
import logging
import sys
from pathlib import Path

import numpy as np

from singalign import recipe
from singalign.bundle import Bundle
from singalign.embed import Embedder, EmbedOptions
from singalign.files import write_json, write_jsonl
from singalign.library import Library, TrackAnalyzer, bundle_fingerprint, index_meta, index_paths
from singalign.metrics import first_relevant_rank
from singalign.search import search_library
from singalign.textsample import caption_of, load_metadata, songs_singing


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--audio", nargs="+", required=True, help="audio files or folders of the songs")
    ap.add_argument("--metadata", nargs="+", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default=None, help="query only songs of this split")
    ap.add_argument("--words", type=int, default=5)
    ap.add_argument("--no-separation", action="store_true")
    ap.add_argument("--no-transcribe", action="store_true", help="lyrics search by embedding only")
    ap.add_argument("--greedy", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    bundle = Bundle.load(args.bundle)
    lib = Library(args.db, create=True)
    analyzer = TrackAnalyzer(bundle, not args.no_separation, not args.no_transcribe, None, args.greedy)
    lib.set_meta(index_meta(bundle, analyzer, not args.no_separation))
    index_paths(lib, args.audio, analyzer, bundle_fingerprint(bundle))
    metas = load_metadata(args.metadata)
    paths = {Path(p).stem: p for (p,) in lib.db.execute("SELECT path FROM tracks")}
    songs = [s for s in paths if s in metas and (args.split is None or metas[s].split == args.split)]
    embedder = Embedder(bundle, EmbedOptions(separation=False))
    rng = np.random.default_rng(args.seed)
    lyrics = {s: metas[s].lyrics for s in paths if s in metas}  # every song of the library
    rows = []
    for s in songs:
        queries = {"caption": (caption_of(metas[s]), {})}
        words = metas[s].lyrics.split()
        if len(words) >= args.words:
            start = int(rng.integers(0, len(words) - args.words + 1))
            queries["lyrics"] = (" ".join(words[start : start + args.words]), {"lyrics": True})
        for task, (q, how) in queries.items():
            kw = {"lyrics": q} if how else {"query": q}
            res = [r["path"] for r in search_library(lib, embedder, top=lib.count(), **kw)]
            row = {"task": task, "query": q, "song": s, "rank": first_relevant_rank(res, {paths[s]})}
            if task == "lyrics":
                sung = {paths[o] for o in songs_singing(q, lyrics)} | {paths[s]}
                row.update(sung_in=len(sung), rank_any=first_relevant_rank(res, sung))
            rows.append(row)
    summary = {"songs": len(songs), "library": lib.count()}
    lyr = [r for r in rows if r["task"] == "lyrics"]
    measures = [
        ("caption", [r["rank"] for r in rows if r["task"] == "caption"]),
        ("lyrics", [r["rank"] for r in lyr]),
        ("lyrics_any", [r["rank_any"] for r in lyr]),
        ("lyrics_unique", [r["rank"] for r in lyr if r["sung_in"] == 1]),
    ]
    for name, got in measures:
        ranks = np.array(got)
        if len(ranks):
            summary.update({f"{name}_r@{k}": float(np.mean(ranks <= k)) for k in (1, 5, 10)})
            summary[f"{name}_medr"] = float(np.median(ranks))
    if lyr:
        summary["lyrics_unique_queries"] = sum(r["sung_in"] == 1 for r in lyr)
    write_jsonl(f"{args.out}/queries.jsonl", rows)
    write_json(f"{args.out}/summary.json", summary)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
