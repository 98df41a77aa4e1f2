"""Music library costs: embedding throughput, index build time, search latency.

Usage: python bench/bench_library.py [--n 200] [--clip-seconds 10] [--presets tiny,small]
           [--sizes 10000,100000] [--queries 200] [--transcribe]

Data: synthetic. Clips are tones with noise written as 16 kHz wav (content does not change the
cost); weights are random (an untrained ALT preset + an untrained head with the MiniLM text
tower: cost does not depend on weight values); no vocal separation (Open-Unmix would dominate
and is measured by bench_pipeline.py). Search latency uses random unit vectors (E = 128) and random
transcripts stored in a real library file; "query" is the exact numpy cosine search alone, "text
query" adds embedding the query text with MiniLM + projection. Threads: torch uses 2 (both cores).
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


def _fill(db_path: Path, n: int, dim: int, rng) -> None:
    from singalign.library import Library

    Library(db_path, create=True).close()
    vocab = [f"w{i}" for i in range(2000)]
    db = sqlite3.connect(db_path)
    vec = rng.standard_normal((n, dim)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    with db:
        db.executemany(
            "INSERT INTO tracks(id, path, sha256, transcript) VALUES (?, ?, ?, ?)",
            ((i + 1, f"/music/{i}.mp3", f"{i:064x}", " ".join(rng.choice(vocab, 60))) for i in range(n)),
        )
        db.executemany(
            "INSERT INTO embeddings(track_id, space, vector) VALUES (?, ?, ?)",
            ((i + 1, s, vec[i].tobytes()) for i in range(n) for s in ("tags", "lyrics")),
        )
        db.execute("INSERT INTO lyrics_fts(rowid, transcript) SELECT id, transcript FROM tracks")
    db.close()


def bench_search(tmp: Path, sizes: list[int], queries: int, dim: int = 128) -> list[tuple[str, str]]:
    from singalign.library import Library, search_library

    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        path = tmp / f"search_{n}.db"
        t = time.perf_counter()
        _fill(path, n, dim, rng)
        fill = time.perf_counter() - t
        lib = Library(path)
        t = time.perf_counter()
        lib.matrix("tags")
        load = time.perf_counter() - t
        lat = []
        for _ in range(queries):
            q = rng.standard_normal(dim).astype(np.float32)
            t = time.perf_counter()
            lib.search_vector(q / np.linalg.norm(q), "tags", top=10)
            lat.append(time.perf_counter() - t)
        lat = np.array(lat) * 1000
        lyr = []
        for _ in range(max(20, queries // 10)):
            phrase = " ".join(f"w{i}" for i in rng.integers(0, 2000, 5))
            t = time.perf_counter()
            search_library(lib, None, lyrics=phrase, top=10)
            lyr.append(time.perf_counter() - t)
        lyr = np.array(lyr) * 1000
        rows += [
            (f"library of {n:,} tracks: fill (bulk SQL) / load matrix once", f"{fill:.1f} s / {load:.2f} s"),
            (
                f"vector query at {n:,}: median / p99",
                f"{np.median(lat):.2f} / {np.percentile(lat, 99):.2f} ms",
            ),
            (
                f"lyrics query (FTS5) at {n:,}: median / p99",
                f"{np.median(lyr):.1f} / {np.percentile(lyr, 99):.1f} ms",
            ),
        ]
        lib.close()
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
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_library.") as d:
        tmp = Path(d)
        rows += bench_search(tmp, [int(s) for s in args.sizes.split(",")], args.queries)
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
