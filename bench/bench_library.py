"""Music library costs: embedding throughput, index build time, search latency.

Usage: python bench/bench_library.py [--n 200] [--clip-seconds 10] [--presets tiny,small]
           [--sizes 10000,100000] [--queries 200] [--transcribe] [--search-only] [--db-dir DIR]

Data: synthetic. Clips are tones with noise written as 16 kHz wav (content does not change the
cost); weights are random (an untrained ALT preset + an untrained head with the MiniLM text
tower: cost does not depend on weight values); no vocal separation (Open-Unmix would dominate
and is measured by bench_pipeline.py).

Search latency is measured through ``search_library`` (what ``singalign search`` runs once its model
is loaded) on a real library file of N tracks: random unit embeddings (E = 128) and Zipfian lyrics
(a 30,000-word vocabulary with exponent 1.05, about 165 words a song, a chorus sung three times:
the commonest words are in every song, as "I", "you" and "the" are). Text and lyric-text queries
use random unit vectors for the embedded query ("text query embedding" gives MiniLM's own cost,
which a text or lyrics query adds). "vector kernel" is the numpy cosine top-10 alone. Lyrics
queries are five consecutive words of a random track's stored lyrics; R@1 counts that track first.
The word search alone is also timed on the same phrases misheard, one word replaced by a word drawn
as the lyrics' words are: no exact phrase matches then, and its R@1 is that of BM25 over the words.
Every track also stores packed CTC posteriors of a 3.5-minute song (6,560 frames in 64-frame
chunks; one of 64 simulated blobs, ``decode.simulate_posteriors`` sharpened to about 300 bytes a
second, where the real model's take about 200: 100k tracks make a 7 GB file) and the frames of what
was heard, its lyrics spread evenly over the 6,560 frames: lyrics search is timed as a pre-v4
library runs it (no posteriors checked; its R@1) and as v5 and later run it, checking the phrase in
a window of the posteriors of each of the best candidates (``search.spot_rerank``: 100 in a library
of at most ``search.SPOT_SMALL_LIBRARY`` tracks, 50 in a larger one; the blobs are not the tracks'
lyrics, so no R@1 there, but the windows are as long as a real song's would be).
``--db-dir`` keeps the built libraries there and reuses them (building 100k tracks takes a few
minutes); a library with posteriors is named by its schema version (``search_zipf_posteriors_v6_N.db``),
so a directory of older libraries is not upgraded by opening them (re-chunking 100k tracks takes long).
Threads: torch uses 2 (both cores).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_bundle(tmp: Path, preset: str) -> Path:
    import torch

    from singalign.bundle import Bundle, init_bundle
    from singalign.models.heads import AudioTextHead, HeadConfig, head_config_for, save_with_head

    torch.manual_seed(0)
    alt = Bundle.load(init_bundle(tmp / f"alt_{preset}", preset, "multitask"))
    head = AudioTextHead(head_config_for(alt, HeadConfig()))
    return save_with_head(
        alt, head, tmp / f"head_{preset}", tag_vocab=["rock", "jazz", "pop", "piano", "sad"]
    )


def _clips(folder: Path, n: int, seconds: float) -> list[Path]:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    out = []
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (110 + 7 * i) * t) + 0.05 * rng.standard_normal(len(t))
        p = folder / f"clip{i:05d}.wav"
        sf.write(str(p), x.astype(np.float32), 16000)
        out.append(p)
    return out


def bench_embedding(tmp: Path, presets: list[str], seconds: float, n: int = 12) -> list[tuple[str, str]]:
    from singalign.bundle import Bundle
    from singalign.embed import Embedder, EmbedOptions

    clips = _clips(tmp / "emb_clips", n, 30.0)
    rows = []
    for p in presets:
        emb = Embedder(Bundle.load(_make_bundle(tmp, p)), EmbedOptions(separation=False))
        emb.embed_file(clips[0])  # warm-up
        t = time.perf_counter()
        for c in clips:
            emb.embed_file(c)
        dt = (time.perf_counter() - t) / len(clips)
        rows.append(
            (
                f"embedding throughput, preset {p}, 30 s clips",
                f"{60 / dt:.0f} tracks/min ({dt * 1000:.0f} ms/track)",
            )
        )
    return rows


def bench_index(tmp: Path, preset: str, n: int, seconds: float, transcribe: bool) -> list[tuple[str, str]]:
    from singalign.bundle import Bundle
    from singalign.library import Library, TrackAnalyzer, bundle_fingerprint, index_paths

    bundle = Bundle.load(_make_bundle(tmp, preset))
    _clips(tmp / "index_clips", n, seconds)
    analyzer = TrackAnalyzer(bundle, separation=False, transcribe=transcribe, greedy=True)
    lib = Library(tmp / "index.db", create=True)
    t = time.perf_counter()
    index_paths(lib, [str(tmp / "index_clips")], analyzer, bundle_fingerprint(bundle), progress=False)
    build = time.perf_counter() - t
    t = time.perf_counter()
    r = index_paths(lib, [str(tmp / "index_clips")], analyzer, bundle_fingerprint(bundle), progress=False)
    rerun = time.perf_counter() - t
    assert r.unchanged == n
    what = f"{n} clips of {seconds:g} s, preset {preset}, {'greedy transcription + ' if transcribe else ''}embedding + tags"
    return [
        (f"index build, {what}", f"{build:.1f} s ({build / n * 1000:.0f} ms/clip)"),
        (f"index re-run, {n} unchanged clips (hashing only)", f"{rerun:.2f} s"),
    ]


_VOCAB = 30000


def _word(k: int) -> str:
    """The k-th made-up word, in letters as transcripts are (a query's digits would be spelled out)."""
    out = ""
    for _ in range(4):
        k, r = divmod(k, 26)
        out += chr(97 + r)
    return "w" + out


def _zipf_cdf() -> np.ndarray:
    """The cumulative distribution of the lyrics' words: Zipf with exponent 1.05 over ``_VOCAB``."""
    cdf = np.cumsum(1.0 / np.arange(1, _VOCAB + 1) ** 1.05)
    return cdf / cdf[-1]


def _fill(db_path: Path, n: int, dim: int, seed: int = 0, posteriors: bool = True) -> None:
    """A library of ``n`` tracks with random unit embeddings and Zipfian lyrics (see the docstring)."""
    from singalign.library import Library, word_pairs
    from singalign.ranking import match_text

    Library(db_path, create=True).close()
    rng = np.random.default_rng(seed)
    cdf = _zipf_cdf()

    def line() -> str:
        return " ".join(_word(w) for w in np.searchsorted(cdf, rng.random(int(rng.integers(5, 9)))))

    def lyrics() -> str:
        verses, chorus = [line() for _ in range(int(rng.integers(12, 20)))], [line() for _ in range(4)]
        return "\n".join(verses[:6] + chorus + verses[6:12] + chorus + verses[12:] + chorus)

    pool = _posterior_pool(rng) if posteriors else []
    db = sqlite3.connect(db_path)
    with db:
        for start in range(0, n, 10000):
            m = min(10000, n - start)
            vec = rng.standard_normal((m, dim)).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            texts = [lyrics() for _ in range(m)]
            spelled = [match_text(t) for t in texts]  # heard and transcript are the same text here
            db.executemany(
                "INSERT INTO tracks(id, path, sha256, transcript, heard_match, transcript_match) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        start + i + 1,
                        f"/music/{start + i}.mp3",
                        f"{start + i:064x}",
                        t,
                        spelled[i],
                        spelled[i],
                    )
                    for i, t in enumerate(texts)
                ),
            )
            db.executemany(
                "INSERT INTO lyrics_pairs(rowid, pairs) VALUES (?, ?)",
                ((start + i + 1, word_pairs(t)) for i, t in enumerate(texts)),
            )
            db.executemany(
                "INSERT INTO embeddings(track_id, space, vector) VALUES (?, ?, ?)",
                ((start + i + 1, s, vec[i].tobytes()) for i in range(m) for s in ("tags", "lyrics")),
            )
            if pool:  # what was heard spread evenly over the song's frames (the blobs are not its lyrics)
                db.executemany(
                    "INSERT INTO posteriors(track_id, packed) VALUES (?, ?)",
                    ((start + i + 1, pool[(start + i) % len(pool)]) for i in range(m)),
                )
                db.executemany(
                    "INSERT INTO heard_frames(track_id, frames) VALUES (?, ?)",
                    ((start + i + 1, _spread(len(spelled[i]))) for i in range(m)),
                )
        db.execute("INSERT INTO lyrics_fts(rowid, transcript) SELECT id, transcript FROM tracks")
    db.close()


def _spread(chars: int, frames: int = 6560) -> bytes:
    """Stored frames (``spotting.pack_frames``) of ``chars`` characters heard evenly over a song."""
    from singalign.spotting import pack_frames

    return pack_frames(np.arange(chars) * frames // max(chars, 1))


def _posterior_pool(rng, size: int = 64, frames: int = 6560) -> list[bytes]:
    """Packed posteriors of 3.5-minute songs of made-up words (see the docstring)."""
    from singalign.decode import simulate_posteriors
    from singalign.spotting import pack_posteriors

    pool = []
    for _ in range(size):
        text = " ".join(_word(int(k)) for k in rng.integers(0, _VOCAB, 600))
        lp = 2.5 * simulate_posteriors(text, rng)[:frames]
        pool.append(pack_posteriors(lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)))
    return pool


class _QueryVectors:
    """Stands in for the embedder: random unit query vectors (MiniLM's cost is measured apart)."""

    spaces = ("tags", "lyrics")

    def __init__(self, dim: int, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.dim = dim

    def embed_texts(self, texts: list[str], space: str) -> np.ndarray:
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _latency(fn, args: list) -> np.ndarray:
    out = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        out.append(time.perf_counter() - t)
    return np.array(out) * 1000


def bench_search(
    tmp: Path, sizes: list[int], queries: int, dim: int = 128, posteriors: bool = True
) -> list[tuple[str, str]]:
    from singalign.library import SCHEMA_VERSION, Library

    rows = []
    for n in sizes:
        # words of letters (older files had digits), with or without posteriors (named by the schema
        # from v5 on: opening an older file would upgrade it, which takes long at 100k tracks)
        kind = f"posteriors_v{SCHEMA_VERSION}" if posteriors and SCHEMA_VERSION >= 5 else "posteriors"
        path = tmp / f"search_zipf_{kind if posteriors else 'letters'}_{n}.db"
        fill = "reused"
        if not path.exists():
            t = time.perf_counter()
            _fill(path.with_suffix(".part"), n, dim, posteriors=posteriors)
            path.with_suffix(".part").rename(path)
            fill = f"{time.perf_counter() - t:.1f} s"
        lib = Library(path)
        rows += _measure_search(lib, n, queries, dim, fill, posteriors)
        lib.close()
    return rows


def _measure_search(
    lib, n: int, queries: int, dim: int, fill: str, posteriors: bool
) -> list[tuple[str, str]]:
    from singalign import search
    from singalign.search import search_library

    rows = []
    t = time.perf_counter()
    lib.matrix("tags")
    lib.matrix("lyrics")
    load = time.perf_counter() - t
    rng = np.random.default_rng(2)
    emb = _QueryVectors(dim)
    vecs = [v for v in emb.embed_texts(["q"] * queries, "tags")]
    picks = [int(i) for i in rng.integers(1, n + 1, queries)]
    phrases = []
    for i in picks:
        words = lib.db.execute("SELECT transcript FROM tracks WHERE id = ?", (i,)).fetchone()[0].split()
        s = int(rng.integers(0, len(words) - 5))
        phrases.append(" ".join(words[s : s + 5]))
    # the same phrases misheard: one word replaced by a word drawn as the lyrics' words are
    other, cdf = np.random.default_rng(3), _zipf_cdf()
    misheard = []
    for p in phrases:
        words = p.split()
        words[int(other.integers(0, 5))] = _word(int(np.searchsorted(cdf, other.random())))
        misheard.append(" ".join(words))
    first, first_misheard = [], []
    search_library(lib, emb, lyrics=phrases[0], top=10)  # untimed: loads the compiled match kernel
    spot_tracks = search.SPOT_TRACKS
    search.SPOT_TRACKS = 0  # as a library without posteriors (before v4) searches
    try:
        lat = {
            "vector kernel (numpy cosine top 10)": _latency(
                lambda v: lib.search_vector(v, "tags", top=10), vecs
            ),
            "text search (query vector given)": _latency(
                lambda _: search_library(lib, emb, query="slow piano", top=10), vecs
            ),
            "like search (an indexed track)": _latency(
                lambda i: search_library(lib, None, like=f"/music/{i - 1}.mp3", top=10), picks
            ),
            "lyrics search (full text only)": _latency(
                lambda p: first.append(search_library(lib, None, lyrics=p, top=10)[0]["path"]), phrases
            ),
            "lyrics search (full text only, one word replaced)": _latency(
                lambda p: first_misheard.append(search_library(lib, None, lyrics=p, top=10)[0]["path"]),
                misheard,
            ),
            "lyrics search (full text + lyric embedding)": _latency(
                lambda p: search_library(lib, emb, lyrics=p, top=10), phrases
            ),
        }
    finally:
        search.SPOT_TRACKS = spot_tracks
    if posteriors:
        lat["lyrics search (+ lyric embedding + posteriors checked)"] = _latency(
            lambda p: search_library(lib, emb, lyrics=p, top=10), phrases
        )
    r1 = {
        name: np.mean([f == f"/music/{i - 1}.mp3" for f, i in zip(got, picks, strict=True)])
        for name, got in (
            ("lyrics search (full text only)", first),
            ("lyrics search (full text only, one word replaced)", first_misheard),
        )
    }
    rows.append(
        (f"library of {n:,} tracks: fill (bulk SQL) / load both matrices once", f"{fill} / {load:.2f} s")
    )
    for name, ms in lat.items():
        extra = f" (R@1 {r1[name]:.2f})" if name in r1 else ""
        rows.append(
            (f"{name} at {n:,}: median / p99", f"{np.median(ms):.1f} / {np.percentile(ms, 99):.1f} ms{extra}")
        )
    return rows


def bench_text_query(tmp: Path, queries: int = 50) -> list[tuple[str, str]]:
    from singalign.bundle import Bundle
    from singalign.embed import Embedder, EmbedOptions

    emb = Embedder(Bundle.load(_make_bundle(tmp, "tiny")), EmbedOptions(separation=False))
    emb.embed_texts(["warm up"], "tags")
    rng = np.random.default_rng(1)
    words = "slow fast piano guitar ballad female male voice sad happy rock jazz song with a".split()
    lat = []
    for _ in range(queries):
        text = " ".join(rng.choice(words, 6))  # new strings: the frozen-tower cache does not help
        t = time.perf_counter()
        emb.embed_texts([text + f" {rng.integers(1e9)}"], "tags")
        lat.append(time.perf_counter() - t)
    lat = np.array(lat) * 1000
    return [
        (
            "text query embedding (MiniLM + projection): median / p99",
            f"{np.median(lat):.1f} / {np.percentile(lat, 99):.1f} ms",
        )
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="clips for the index build (the issue's figure: 1000)")
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--presets", default="tiny,small", help="presets for embedding throughput")
    ap.add_argument("--index-preset", default="small")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--transcribe", action="store_true", help="index with greedy transcription too")
    ap.add_argument("--search-only", action="store_true", help="only the search latency rows")
    ap.add_argument(
        "--no-posteriors",
        action="store_true",
        help="search libraries without stored posteriors (as before v4)",
    )
    ap.add_argument(
        "--db-dir", help="keep the search libraries here and reuse them (default: a temporary folder)"
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_library.") as d:
        tmp = Path(d)
        db_dir = Path(args.db_dir) if args.db_dir else tmp
        db_dir.mkdir(parents=True, exist_ok=True)
        sizes = [int(s) for s in args.sizes.split(",")]
        rows += bench_search(db_dir, sizes, args.queries, posteriors=not args.no_posteriors)
        if not args.search_only:
            rows += bench_text_query(tmp)
            rows += bench_embedding(tmp, args.presets.split(","), args.clip_seconds)
            rows += bench_index(tmp, args.index_preset, args.n, args.clip_seconds, args.transcribe)
    print("data: synthetic (tones + noise, random weights, random embeddings); 2 CPU threads; no separation")
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
