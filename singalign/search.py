"""Searching a library (``singalign search``) and zero-shot tagging (``singalign tag``).

``search_library`` ranks a library's tracks by free text (the tag space), by remembered lyrics
(an approximate character match that tolerates transcription errors, ties broken by full-text
search of the transcriptions fused with the lyric-text embedding, then the best candidates checked
in the lyrics model's stored posteriors: ``spot_rerank``) or by a similar song;
the index itself, its schema and its costs are described in ``singalign.library``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from singalign.errors import SingalignError, file_error
from singalign.library import FTS_CANDIDATES, Library, _load_bundle, bundle_fingerprint
from singalign.ranking import VectorRanking, fuse_top

#: Lyrics search checks the phrase in the stored posteriors of at most this many of its best
#: tracks by the approximate match (``spot_rerank``) ...
SPOT_TRACKS = 50
#: ... in a window of frames around the stretch of what was heard that matched it best, this many
#: frames (31.25 a second) before its first character's frame and after its last one's ...
SPOT_MARGIN = 48
#: ... and of at most this many frames in all: 50 windows of about 250 frames (a 5-word phrase) fit.
#: A window's cost does not depend on the song's length (``Library.posterior_windows`` reads and
#: decompresses only the chunks that hold it); the phrase DP takes about 0.3 ms per 1,000 frames.
SPOT_FRAMES = 15_000
#: A word boundary in the phrase may be missing from what was heard (``spotting.phrase_scores``).
SPOT_OPTIONAL_SPACE = True
#: In a library of at most this many tracks the check covers twice as many tracks and frames: the
#: stages before it cost little there (at 10k simulated tracks, over 1,000 queries, 19 ms median
#: and 34 ms p99 with 50 checked, 23-26 and 32-44 ms with 100; at 100k, 26-33 and 41-56 ms with
#: 50, 36-43 and 53-69 ms with 100), and on 500 held-out synthetic songs 100 checked find a song
#: singing a 5-word phrase first for 90.2% of them, 50 for 89.6% (Recall@5 0.928 and 0.914).
SPOT_SMALL_LIBRARY = 10_000
#: What one character edit of the approximate match costs a checked track, in nats of spotting
#: score. On 280 held-out synthetic songs (5-word phrases), ranking by the spotting score alone
#: found the song first for 63.9%, by the edits alone 55.7%, by their sum at 0.5 / 1 / 2 / 4 nats
#: an edit 66.8 / 67.5 / 68.6 / 67.1% (see the issue-6 note).
SPOT_EDIT_COST = 2.0


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "search",
        help="search a library by text, by remembered lyrics, or by a similar song",
        description="Search a library. QUERY is free text matched against the songs' audio "
        '("slow piano ballad with a female voice"); --lyrics finds songs by words sung in them '
        "(an approximate match of what was heard that tolerates misheard letters, with full-text search "
        "of the transcriptions and the lyrics embedding; the best candidates are then checked in the "
        "lyrics model's stored posteriors, where the runner-up letters are kept); --like FILE finds "
        "songs that sound like FILE. Several criteria are fused by reciprocal rank. "
        "QUERY or PHRASE '-' reads one per line from standard input and answers each as it comes, "
        "the model loaded once (with --json, one JSON list per line): a tool that searches often "
        "pays the few seconds of loading once.",
    )
    s.add_argument(
        "query", nargs="?", default=None, help="text describing the music ('-': one per line from stdin)"
    )
    s.add_argument("--db", required=True, help="library file")
    s.add_argument("--top", type=int, default=10, help="results to show (default: %(default)s)")
    s.add_argument("--json", action="store_true", help='print [{"path", "score"}] best first')
    s.add_argument("--lyrics", metavar="PHRASE", help="words sung in the song ('-': one per line from stdin)")
    s.add_argument("--like", metavar="FILE", help="an audio file (indexed or not): find similar songs")
    s.add_argument("--bundle", help="bundle (default: the one the library was built with)")
    s.add_argument("--no-separation", action="store_true", help="for --like on a file not in the library")
    s.set_defaults(func=_cmd_search)

    t = sub.add_parser(
        "tag",
        help="zero-shot tag scores for audio files (JSON)",
        description='Score each AUDIO file against any tags; prints {"<audio path>": {"<tag>": score}} '
        "(cosine similarity in [-1, 1], higher is more likely). A file that fails is reported and skipped.",
    )
    t.add_argument("audio", nargs="+", help="audio files or folders")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--tags", help='comma-separated tags, e.g. "rock,jazz,sad"')
    g.add_argument("--tags-file", help="file of tags (one per line or comma-separated)")
    t.add_argument("--bundle", help="bundle with an audio-text head (default: the bundled default)")
    t.add_argument("--db", help="reuse stored embeddings of unchanged files in this library")
    t.add_argument("--no-separation", action="store_true", help="skip vocal separation")
    t.add_argument("--device", default="cpu")
    t.set_defaults(func=_cmd_tag)


def search_library(
    lib: Library,
    embedder=None,
    query: str | None = None,
    lyrics: str | None = None,
    like: str | None = None,
    top: int = 10,
) -> list[dict[str, Any]]:
    """Search as ``singalign search`` does; returns ``[{"path", "score"}]`` best first.

    One vector criterion alone scores by cosine; anything else (lyrics, or several criteria) by
    reciprocal rank fusion of each ranking; ``lyrics`` gives one ranking (``lyrics_ranking``), whose
    match quality is the score when it is the only criterion.
    """
    from singalign.bundle import sha256_file

    if not (query or lyrics or like):
        raise SingalignError("give a QUERY, --lyrics PHRASE or --like FILE")
    exclude: set[int] = set()
    vectors: list[tuple[np.ndarray, str]] = []  # (query vector, space) of each vector criterion
    if like:
        p = str(Path(like).resolve())
        known = lib.lookup(p)
        if known is None and os.path.exists(p):
            same = lib.find_sha(sha256_file(p))
            known = (same, "") if same is not None else None
        if known is not None:
            vec = lib.embedding(known[0], "tags")
            exclude.add(known[0])
        else:
            vec = embedder.embed_file(like)["tags"]
        vectors.append((vec, "tags"))
    if query:
        vectors.append((embedder.embed_texts([query], "tags")[0], "tags"))
    if not lyrics and len(vectors) == 1:  # one vector criterion: its cosine scores
        hits = lib.search_vector(vectors[0][0], "tags", top, exclude)
        return [{"path": p, "score": round(s, 6)} for _, p, s in hits]
    rankings: list[list[int] | VectorRanking] = [lib.vector_ranking(v, sp, exclude) for v, sp in vectors]
    if lyrics:
        ranked, match = lyrics_ranking(lib, embedder, lyrics, exclude, top)
        if not rankings:  # lyrics alone: the match quality of the phrase is the score
            return _with_paths(lib, [(i, match.get(i, 0.0)) for i in ranked[:top]])
        rankings.append(ranked)
    return _with_paths(lib, fuse_top(rankings, top))


def lyrics_ranking(
    lib: Library, embedder, phrase: str, exclude: set[int], top: int
) -> tuple[list[int], dict[int, float]]:
    """Tracks for a remembered lyrics ``phrase``, best first, and each matched track's score.

    Tracks are ordered by the approximate match of the phrase in what was heard
    (``Library.fuzzy_matches``; score = 1 - edits / phrase length, 1 for the phrase as it is); ties
    by reciprocal rank fusion of full-text search of the transcripts' words and the lyric-text
    embedding. In a library above ``FUZZY_ALL_TRACKS``, only those two rankings' candidates are
    matched; the rest follow in fused order. Rank fusion of the three with equal weights was
    worse: on 100 held-out synthetic songs a 5-word phrase found its song first 28% of the time
    by the approximate match, 14% by the words, 20% by fusing them (see the issue-6 note).
    Last, the first tracks are checked in their stored posteriors and reordered (``spot_rerank``):
    among 500 held-out synthetic songs, with the 2026-11-22 default model, rank 1 for 44.0% of the
    phrases without it, 60.6% with it (60.0% when it read whole songs instead of windows); 74.0%
    with it and the 2026-12-03 default model (75.0% with the transcripts matched too; a song that
    sings the phrase, the queried one or another: 88.6%, 89.6%; checking 100 candidates, as a
    library of at most ``SPOT_SMALL_LIBRARY`` tracks does: 75.8% and 90.2%).
    """
    from singalign.ranking import fused_scores, query_text

    words = [i for i in lib.search_fts(phrase) if i not in exclude]
    others: list[list[int] | VectorRanking] = [words]
    candidates = set(words)
    # the lyrics matrix is loaded only when a lyric-text embedding will be compared with it
    if embedder is not None and "lyrics" in embedder.spaces and len(lib.matrix("lyrics")[0]):
        by_embedding = lib.vector_ranking(embedder.embed_texts([phrase], "lyrics")[0], "lyrics", exclude)
        others.append(by_embedding)
        candidates.update(int(by_embedding.ids[k]) for k in by_embedding.best(FTS_CANDIDATES))
    ids, costs, ends = lib.fuzzy_matches(phrase, sorted(candidates), with_lm=words)
    keep = ~np.isin(ids, list(exclude)) if exclude else np.ones(len(ids), bool)
    ids, costs, ends = ids[keep], costs[keep], ends[keep]
    fused = fused_scores(others, ids)  # ids ascend (fuzzy_matches)
    order = np.lexsort((ids, -fused, costs))
    ranked = ids[order].tolist()
    n = max(1, len(query_text(phrase)))
    edits = dict(zip(ids.tolist(), costs.tolist(), strict=True))
    match = {i: round(1.0 - c / n, 6) for i, c in edits.items()}
    at = dict(zip(ids.tolist(), ends.tolist(), strict=True))
    ranked, match = spot_rerank(lib, phrase, ranked, match, edits, at)
    if len(ranked) < top:  # a large library: the unmatched tracks follow in fused order
        seen = set(ranked)
        ranked += [i for i, _ in fuse_top(others, top + len(seen)) if i not in seen][: top - len(ranked)]
    return ranked, match


def spot_rerank(
    lib: Library,
    phrase: str,
    ranked: list[int],
    match: dict[int, float],
    edits: dict[int, int],
    ends: dict[int, int] | None = None,
) -> tuple[list[int], dict[int, float]]:
    """Check ``phrase`` in the stored CTC posteriors of the first tracks of ``ranked`` (those that
    have them, up to ``SPOT_TRACKS`` tracks and ``SPOT_FRAMES`` frames, twice both in a library of
    at most ``SPOT_SMALL_LIBRARY`` tracks) and put the checked tracks first, by their spotting score
    (``spotting.phrase_scores``, <= 0) minus ``SPOT_EDIT_COST`` per character edit of the
    approximate match (``edits``); the others follow in their order.

    A track is checked in a window: the frames of the stretch of what was heard that matched the
    phrase best (it ends at character ``ends[i]`` of ``heard_match``, ``Library.fuzzy_matches``,
    and starts at most the phrase's length plus its edits before; each character's frame is
    stored, ``Library.heard_frames``), widened by ``SPOT_MARGIN`` frames on each side. The score
    there equals the whole song's when the best alignment lies in the window, and is lower
    otherwise. A track without ``ends`` (or no frames of what was heard) is checked whole.

    A checked track's score is exp(that sum / letters of the phrase): 1 when the model heard the
    phrase exactly; the others keep their ``match`` score, capped at the lowest checked one.
    """
    from singalign.ranking import query_text
    from singalign.spotting import phrase_labels, phrase_scores

    labels = phrase_labels(phrase)
    if not labels or not ranked:
        return ranked, match
    ends = ends or {}
    scale = 2 if lib.size() <= SPOT_SMALL_LIBRARY else 1
    first = ranked[: SPOT_TRACKS * scale]
    frames_of = lib.heard_frames(first)
    span = len(query_text(phrase))
    checked, ratios, frames = [], [], 0
    for i in first:  # read one by one: the frame budget may stop before the end
        if i not in frames_of:  # no posteriors
            continue
        f, e = frames_of[i], ends.get(i, -1)
        if e >= 0 and len(f):
            e = min(e, len(f) - 1)
            s = max(0, e + 1 - span - int(edits.get(i, 0)))
            window = (i, int(f[s]) - SPOT_MARGIN, int(f[e]) + SPOT_MARGIN + 1)
        else:
            window = (i, 0, None)
        r = lib.posterior_windows([window])[0][0]
        if checked and frames + len(r) > SPOT_FRAMES * scale:
            break
        checked.append(i)
        ratios.append(r)
        frames += len(r)
    if not checked:
        return ranked, match
    scores = phrase_scores(labels, ratios, optional_space=SPOT_OPTIONAL_SPACE)
    scores -= SPOT_EDIT_COST * np.array([edits.get(i, len(labels)) for i in checked])
    order = np.argsort(-scores, kind="stable")
    spot = {checked[k]: round(float(np.exp(scores[k] / len(labels))), 6) for k in order}
    lowest = min(spot.values())
    rest = [i for i in ranked if i not in spot]
    out = {i: spot[i] if i in spot else min(match.get(i, 0.0), lowest) for i in (*spot, *match)}
    return [*spot, *rest], out


def _with_paths(lib: Library, scored: list[tuple[int, float]]) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(scored))
    paths = dict(lib.db.execute(f"SELECT id, path FROM tracks WHERE id IN ({marks})", [i for i, _ in scored]))
    return [{"path": paths[i], "score": round(s, 6)} for i, s in scored]


def _cmd_search(args: argparse.Namespace) -> int:
    from singalign.embed import Embedder, EmbedOptions

    streamed = [name for name in ("query", "lyrics") if getattr(args, name) == "-"]
    if len(streamed) > 1:
        raise SingalignError("only one of QUERY and --lyrics can be '-' (read from standard input)")
    lib = Library(args.db)
    needs_model = bool(args.query or args.lyrics or args.like)
    embedder = None
    if needs_model:
        bundle = _load_bundle(args.bundle, lib)
        if lib.get_meta("model") not in (None, bundle_fingerprint(bundle)):
            raise SingalignError(
                f"{args.db} was built with another model ({lib.get_meta('bundle')}); pass that --bundle"
            )
        # --like on a file outside the library: embed it as the library's files were
        separation = lib.get_meta("separation") != "0" and not args.no_separation
        embedder = Embedder(bundle, EmbedOptions(separation=separation))
    if not streamed:
        _print_results(search_library(lib, embedder, args.query, args.lyrics, args.like, args.top), args.json)
        lib.close()
        return 0
    failed = 0
    for line in sys.stdin:  # one search per line, answered before the next is read
        if not line.strip():
            continue
        criteria = {"query": args.query, "lyrics": args.lyrics, streamed[0]: line.strip()}
        try:
            results = search_library(
                lib, embedder, criteria["query"], criteria["lyrics"], args.like, args.top
            )
        except SingalignError as exc:
            print(f"error: {line.strip()!r}: {exc}", file=sys.stderr)
            failed += 1
            results = []
        _print_results(results, args.json)
        if not args.json:
            print()  # a blank line ends each answer
        sys.stdout.flush()
    lib.close()
    return 1 if failed else 0


def _print_results(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            print(f"{r['score']:.4f}  {r['path']}")


def _cmd_tag(args: argparse.Namespace) -> int:
    from singalign.bundle import sha256_file
    from singalign.embed import Embedder, EmbedOptions, parse_tag_list
    from singalign.transcribe import expand_inputs

    tags = parse_tag_list(args.tags, args.tags_file)
    lib = Library(args.db) if args.db else None
    bundle = _load_bundle(args.bundle, lib)
    embedder = Embedder(bundle, EmbedOptions(separation=not args.no_separation, device=args.device))
    tag_emb = embedder.embed_tags(tags)
    same_model = lib is not None and lib.get_meta("model") == bundle_fingerprint(bundle)
    out: dict[str, dict[str, float]] = {}
    failed = 0
    for path in expand_inputs(args.audio):
        try:
            vec = None
            if same_model:
                known = lib.lookup(str(Path(path).resolve()))
                if known and known[1] == sha256_file(path):
                    vec = lib.embedding(known[0], "tags")
            if vec is None:
                vec = embedder.embed_file(path)["tags"]
        except Exception as exc:  # one bad file must not stop the others
            failed += 1
            print(f"singalign: error: {file_error(path, exc)}", file=sys.stderr)
            continue
        out[path] = {t: round(float(s), 5) for t, s in zip(tags, tag_emb @ vec, strict=True)}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if lib is not None:
        lib.close()
    return 1 if failed else 0
