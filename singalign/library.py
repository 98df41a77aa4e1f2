"""A searchable music library: one SQLite file holding embeddings, transcriptions and tags.

Commands: ``singalign index add PATH... --db LIB``, ``singalign index info --db LIB``; searching
and tagging (``singalign search``, ``singalign tag``) are in ``singalign.search``, rank fusion in
``singalign.ranking``.

Schema (``SCHEMA_VERSION`` 6; an older file is upgraded in place when opened, in one transaction:
v2 added ``heard``, v3 ``heard_match``, v4 the table ``posteriors``; v5 cut its blobs into chunks
and added the table ``heard_frames``, about 40 ms a 3.5-minute song, more than an hour for 100k
tracks: that part runs in batches of ``UPGRADE_BATCH`` tracks, one transaction each, with a
progress bar, and a killed upgrade resumes where it stopped the next time the file is opened; v6
added ``lyrics_pairs`` and ``transcript_match``, under a minute for 100k tracks)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        schema_version, model (fingerprint: SHA-256 of the bundle's weights and head), bundle (its
        path when the index was made), spaces (JSON list), embed_dim, tag_vocab (JSON list),
        separation ("1" or "0": whether vocals were separated; ``search --like`` does the same),
        upgrade ("chunks" while v4 posteriors remain to convert: opening the file finishes that)
    tracks(id INTEGER PRIMARY KEY, path TEXT UNIQUE (absolute), sha256 TEXT (content hash),
        size INTEGER, mtime REAL, duration REAL (s), added REAL (unix time),
        transcript TEXT (lyrics, one line per line), words TEXT (JSON [{"word","start","end"}]),
        heard TEXT (the transcript decoded without the language model: what was heard letter by
        letter, which lyrics search matches approximately; '' in tracks indexed by v1),
        heard_match BLOB (what the approximate match reads: ``heard``, or the transcript where it is
        '', as ``ranking.match_text`` spells it, stored so that a query does not re-spell hundreds
        of candidate texts), transcript_match BLOB (the transcript as ``match_text`` spells it, v6),
        notes TEXT (JSON summary {"n_notes","pitch_min","pitch_max","pitch_median","notes_per_minute"}))
    embeddings(track_id -> tracks.id ON DELETE CASCADE, space TEXT ("tags" | "lyrics"),
        vector BLOB (float32 little-endian, embed_dim values, unit norm), PRIMARY KEY(track_id, space))
    tags(track_id -> tracks.id ON DELETE CASCADE, tag TEXT, score REAL (zero-shot cosine),
        PRIMARY KEY(track_id, tag))
    lyrics_fts: FTS5(transcript), rowid = tracks.id, tokenizer "porter unicode61"
        (kept in step with tracks by the trigger tracks_delete)
    lyrics_pairs: FTS5(pairs), rowid = tracks.id, tokenizer "unicode61 tokenchars '_'": each two
        consecutive words of the transcript as one token, "a_b b_c ..." (``word_pairs``), where
        lyrics search looks up an exact phrase (kept in step by tracks_delete too)
    posteriors(track_id -> tracks.id ON DELETE CASCADE PRIMARY KEY, packed BLOB (the lyrics
        model's CTC posteriors, ``spotting.pack_posteriors``: a header, a table of chunk offsets,
        then chunks of ``spotting.CHUNK_FRAMES`` frames (about 2 s) each zlib-compressed on its
        own, about 200 bytes per second of audio, 42 kB for a 3.5-minute song; v4 had one zlib
        stream), which lyrics search checks a phrase against, in a window of frames read by SQLite's
        incremental blob I/O (``Library.posterior_windows``); tracks indexed before v4 or without
        transcription have none)
    heard_frames(track_id -> tracks.id ON DELETE CASCADE PRIMARY KEY, frames BLOB (the frame at
        which each character of ``heard_match`` was heard, uint32 little-endian,
        ``spotting.heard_frames``: the best path of the posteriors aligned to it; where the window
        is); a row for each row of ``posteriors``)
    failures(path TEXT PRIMARY KEY, sha256 TEXT, error TEXT, time REAL)
        files that could not be analysed; skipped while unchanged (``--retry-failed`` retries)

Consistency: every file is written in one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) in WAL
mode, after its analysis is done, so a crash, a kill or a corrupt file at any moment leaves the
index as it was after the last complete file; re-running ``index add`` continues from there
(unchanged files are skipped by content hash, a changed file is re-analysed and replaced, a file
whose content is already indexed under another path is copied without re-analysis).

Search is exact cosine similarity in numpy: each space's (N, E) float32 matrix is loaded once per
process (about 50 MB and a fraction of a second for 100k tracks at E = 128) and one query is a
matrix-vector product (a few ms at 100k; linear in N, so about 50 ms at a million). Beyond that,
use FAISS (``pip install faiss-cpu``, not a dependency): build ``faiss.IndexFlatIP(E)`` (exact) or
``faiss.IndexHNSWFlat(E, 32, faiss.METRIC_INNER_PRODUCT)`` (approximate) from ``Library.matrix(space)``,
``faiss.write_index`` it beside the database keyed by the ``model`` fingerprint and the track count,
and map its row numbers back through the ids ``matrix`` returns; the rest of this module is unchanged.

Lyrics search ranks by the approximate character match of the phrase in what was heard
(``Library.fuzzy_matches``: every track up to ``FUZZY_ALL_TRACKS``, else the candidates of the other
two rankings; the word search's candidates also by their transcript with the LM), ties broken by
FTS5 (exact phrase matches, then BM25 of the words; a bounded number of tracks scored per query,
``Library.search_fts``) fused with the lyric-text embedding; then the
first 50 candidates are checked in their stored posteriors (``search.spot_rerank``), each in a
window around the frames where the approximate match found the phrase (about 250 frames for a
5-word phrase, whatever the song's length; at most 15,000 frames in all). Fusing rankings reads only the ranks the
fused top needs (``ranking.fuse_top``, equal to fusing the whole lists).

Latency at 100k tracks of 3.5-minute songs (``bench/bench_library.py --search-only``, synthetic Zipf
lyrics and simulated posteriors, the query vector given; 2026-12-03 on an AMD EPYC machine with
two idle cores, schema v4): a text or ``--like`` search takes about 2 ms (p99 3 ms) once the
matrices are loaded; a lyrics search 22 ms median and 45 ms p99 without the posteriors check, 34 ms
and 58 ms with it, when it read whole songs (four of 3.5 minutes: about 8 ms of dynamic programme,
4 ms of unpacking, 1 ms of reading). Schema v5, 50 windows, the same machine idle (warm page
cache, two runs of 200 queries): 22-25 ms median and 42-52 ms p99 without the check, 33-35 ms and
54-64 ms with it. A/B on the same two cores under a training job's load (10k tracks, ``spot_rerank`` alone,
200 queries, three alternating runs), it took 11.8-13.8 ms median (p99 17.6-21.5) where v4's
whole-song check took 11.8-13.8 ms (p99 18.3-21.9); with ``search.SPOT_TRACKS`` = 5 or 20, 1.3
or 4.0 ms. Embedding a typed query (MiniLM) adds about 6.5 ms. The posteriors make the file about
80 kB a track larger (7.8 GB at 100k tracks of simulated posteriors; the real model's take about
42 kB a 3.5-minute song, and the frames of what was heard 4 bytes a character heard).
2026-12-07, another AMD EPYC machine, idle, warm page cache, two runs of 200 queries at 100k tracks:
the same code (``475065e``) took 50.6 ms median and 85.0 ms p99 with the check; with the approximate
match compiled (``kernels.myers_texts``; 20 ms -> 4 ms a query) and the LM transcripts of the word
search's candidates matched too (+4 ms), 37.4-37.9 ms and 67.9-68.1 ms. What is left of the p99 is
mostly the word search of phrases of the commonest words (up to 40-55 ms alone).
Schema v6 (same day, same machine): the exact phrase is looked up as word pairs
(``lyrics_pairs``; a phrase of the commonest words took 13-35 ms as words, 0.4-1.3 ms as pairs),
tracks with only near-zero-idf words are not scored, the check's Viterbi pass is compiled:
26-33 ms median and 41-56 ms p99 over eleven runs; in six pairs of runs alternating with v5's
code on a copy of the library, v6's p99 was lower or equal in each (by 0-8 ms, 28 once) and the
median within 2 ms (the machine's p99 moves by 10 ms between runs of the same code). The tail
left is BM25 scoring of the tracks that have the phrase's rarer words (``FTS_SCORED``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from singalign.errors import SingalignError, file_error
from singalign.metrics import normalize_for_scoring
from singalign.ranking import VectorRanking, match_ends, match_text, query_text
from singalign.spotting import (
    chunk_packed,
    heard_frames,
    pack_frames,
    pack_posteriors,
    unpack_frames,
    unpack_posteriors,
    unpack_window,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6
#: FTS candidates considered by a lyrics search.
FTS_CANDIDATES = 200
#: Most tracks one stage of a lyrics query scores with BM25 (FTS5 spends about 2 us per scored
#: track, so this bounds the latency: see ``Library.search_fts``).
FTS_SCORED = 5000
#: Most tracks with only common words a lyrics query scores when they might still rank (see ``_rank_words``).
FTS_FILL = 1000
#: Most exact-phrase matches a lyrics query ranks (a phrase sung in more tracks: its first ones by id).
FTS_PHRASE_HITS = 1000
#: Libraries with at most this many tracks get the approximate lyrics match over every transcript;
#: larger ones over the candidates of the other lyrics rankings (``Library.fuzzy_matches``).
FUZZY_ALL_TRACKS = 1000
#: Tracks whose v4 posteriors one transaction of the v4 -> v5 upgrade converts (``_chunk_posteriors``).
UPGRADE_BATCH = 500
#: FTS5's bm25() constants: a word adds at most idf * (k1 + 1) to a track's score.
_BM25_K1, _BM25_B = 1.2, 0.75


#: Keeps the full-text tables in step with ``tracks`` (v6 added ``lyrics_pairs``: the upgrade replaces it).
_DELETE_TRIGGER = """CREATE TRIGGER IF NOT EXISTS tracks_delete AFTER DELETE ON tracks BEGIN
    DELETE FROM lyrics_fts WHERE rowid = old.id;
    DELETE FROM lyrics_pairs WHERE rowid = old.id;
END;"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tracks(
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    duration REAL,
    added REAL,
    transcript TEXT NOT NULL DEFAULT '',
    words TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '{}',
    heard TEXT NOT NULL DEFAULT '',
    heard_match BLOB NOT NULL DEFAULT x'',
    transcript_match BLOB NOT NULL DEFAULT x''
);
CREATE INDEX IF NOT EXISTS tracks_sha ON tracks(sha256);
CREATE TABLE IF NOT EXISTS embeddings(
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY(track_id, space)
);
CREATE TABLE IF NOT EXISTS tags(
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY(track_id, tag)
);
CREATE VIRTUAL TABLE IF NOT EXISTS lyrics_fts USING fts5(transcript, tokenize='porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS lyrics_pairs USING fts5(pairs, tokenize="unicode61 tokenchars '_'");
{trigger}
CREATE TABLE IF NOT EXISTS failures(path TEXT PRIMARY KEY, sha256 TEXT, error TEXT, time REAL);
CREATE TABLE IF NOT EXISTS posteriors(
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    packed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS heard_frames(
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    frames BLOB NOT NULL
);
""".replace("{trigger}", _DELETE_TRIGGER)


@dataclass
class TrackAnalysis:
    """What the index stores for one audio file."""

    embeddings: dict[str, np.ndarray]  # space -> (E,) float32, unit norm
    duration: float = 0.0
    transcript: str = ""
    words: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, float] = field(default_factory=dict)
    heard: str = ""  # the transcript without the language model (see the schema)
    posteriors: bytes = b""  # the packed CTC posteriors (``spotting.pack_posteriors``), if transcribed


def notes_summary(notes) -> dict[str, Any]:
    """A short summary of sung notes (``NoteEvent``s or dicts with onset/offset/pitch)."""
    if not notes:
        return {"n_notes": 0}
    get = (lambda n, k: n[k]) if isinstance(notes[0], dict) else getattr
    pitches = np.array([get(n, "pitch") for n in notes], float)
    span = max(get(n, "offset") for n in notes) - min(get(n, "onset") for n in notes)
    return {
        "n_notes": len(notes),
        "pitch_min": int(pitches.min()),
        "pitch_max": int(pitches.max()),
        "pitch_median": float(np.median(pitches)),
        "notes_per_minute": round(60.0 * len(notes) / span, 2) if span > 0 else 0.0,
    }


def bundle_fingerprint(bundle) -> str:
    """Identifies the weights an index was built with (embeddings of different models do not compare)."""
    files = bundle.config.get("files", {})
    from singalign.models.heads import HEAD_FILE

    return f"{files.get('model.safetensors', '?')[:16]}+{files.get(HEAD_FILE, '?')[:16]}"


class Library:
    """One index file. Reads are cached per space; every write is one transaction."""

    def __init__(self, path: str | os.PathLike[str], create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise SingalignError(
                f"{self.path}: no such library (create it with `singalign index add PATH --db {self.path}`)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._matrices: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}
        # word document frequencies for lyrics search, valid while (data_version, _writes) holds
        self._writes = 0
        self._fts_stats_key: tuple[int, int] | None = None
        self._fts_stats: tuple[int, float, dict[str, int]] = (0, 1.0, {})
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (one transaction per file)
            self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SingalignError(f"{self.path}: not a singalign library ({exc})") from None
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta({"schema_version": str(SCHEMA_VERSION)})
        elif int(version) in (1, 2, 3, 4, 5):
            self._upgrade(int(version))
        elif int(version) != SCHEMA_VERSION:
            raise SingalignError(f"{self.path}: library schema v{version}, this code reads v{SCHEMA_VERSION}")
        if self.get_meta("upgrade") == "chunks":  # left by the upgrade from v4, or by one killed
            self._chunk_posteriors()

    def _upgrade(self, version: int) -> None:
        """Bring a v1 to v5 file to ``SCHEMA_VERSION`` in one transaction (v1 tracks keep
        heard = '' and are matched by their transcript; tracks before v4 have no posteriors, whose
        table the schema script has already created; before v6, the word pairs of every transcript
        are indexed and it is spelled for the approximate match: under a minute per 100k tracks).
        A v4 file's posteriors are then converted by ``_chunk_posteriors``, which the meta row
        ``upgrade`` = "chunks" asks for."""
        with self._transaction():
            if self.get_meta("schema_version") != str(version):  # another process upgraded it meanwhile
                return
            if version == 4:
                self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('upgrade', 'chunks')")
            if version == 1:
                self.db.execute("ALTER TABLE tracks ADD COLUMN heard TEXT NOT NULL DEFAULT ''")
            if version <= 2:
                self.db.execute("ALTER TABLE tracks ADD COLUMN heard_match BLOB NOT NULL DEFAULT x''")
                rows = self.db.execute("SELECT id, heard, transcript FROM tracks").fetchall()
                self.db.executemany(
                    "UPDATE tracks SET heard_match = ? WHERE id = ?",
                    ((match_text(heard or transcript), tid) for tid, heard, transcript in rows),
                )
            if version <= 5:
                rows = self.db.execute("SELECT id, transcript FROM tracks").fetchall()
                self.db.execute("ALTER TABLE tracks ADD COLUMN transcript_match BLOB NOT NULL DEFAULT x''")
                self.db.executemany(
                    "UPDATE tracks SET transcript_match = ? WHERE id = ?",
                    ((match_text(t), i) for i, t in rows),
                )
                self.db.execute("DROP TRIGGER IF EXISTS tracks_delete")
                self.db.execute(_DELETE_TRIGGER)
                self.db.execute("DELETE FROM lyrics_pairs")
                self.db.executemany(
                    "INSERT INTO lyrics_pairs(rowid, pairs) VALUES (?, ?)",
                    ((i, word_pairs(t)) for i, t in rows),
                )
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _chunk_posteriors(self) -> None:
        """The v4 -> v5 conversion: cut each track's posteriors into chunks and store the frames of
        what was heard (``_posterior_row``: about 40 ms a 3.5-minute song), ``UPGRADE_BATCH`` tracks
        per transaction, with a progress bar on stderr when there is more than one batch. A track
        with a ``heard_frames`` row is done, so a killed run (or another process converting the
        same file: it opens the file, so it joins in) leaves finished batches as they are and the
        next run skips them. Last, the meta row ``upgrade`` goes."""
        from tqdm import tqdm

        todo = [
            r[0]
            for r in self.db.execute(
                "SELECT track_id FROM posteriors WHERE track_id NOT IN (SELECT track_id FROM heard_frames) "
                "ORDER BY track_id"
            )
        ]
        bar = tqdm(
            total=len(todo),
            desc=f"{self.path.name}: upgrading to schema v{SCHEMA_VERSION}",
            unit="track",
            disable=len(todo) <= UPGRADE_BATCH,
            file=sys.stderr,
        )
        for lo in range(0, len(todo), UPGRADE_BATCH):
            batch = todo[lo : lo + UPGRADE_BATCH]
            marks = ",".join("?" * len(batch))
            with self._transaction():
                rows = self.db.execute(
                    f"SELECT p.track_id, p.packed, t.heard_match FROM posteriors p JOIN tracks t "
                    f"ON t.id = p.track_id WHERE p.track_id IN ({marks}) "
                    f"AND p.track_id NOT IN (SELECT track_id FROM heard_frames)",
                    batch,
                ).fetchall()
                new = [(tid, *_posterior_row(packed, bytes(heard))) for tid, packed, heard in rows]
                self.db.executemany(
                    "UPDATE posteriors SET packed = ? WHERE track_id = ?", [(p, t) for t, p, _ in new]
                )
                self.db.executemany(
                    "INSERT INTO heard_frames(track_id, frames) VALUES (?, ?)", [(t, f) for t, _, f in new]
                )
            bar.update(len(batch))
        bar.close()
        with self._transaction():
            self.db.execute("DELETE FROM meta WHERE key = 'upgrade'")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- meta ----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, values: dict[str, str]) -> None:
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items()))

    def _transaction(self):
        lib = self

        class _Tx:
            def __enter__(self):
                lib.db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                lib.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                lib._writes += 1
                return False

        return _Tx()

    # -- reading -------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])

    def size(self) -> int:
        """The number of tracks, as ``count``, but kept in memory until the database changes
        (``count`` reads the whole table: 3 ms at 100k tracks)."""
        return self._fts_stats_now()[0]

    def lookup(self, path: str) -> tuple[int, str] | None:
        """(track id, sha256) of an indexed path, or None."""
        row = self.db.execute("SELECT id, sha256 FROM tracks WHERE path = ?", (path,)).fetchone()
        return (int(row[0]), row[1]) if row else None

    def find_sha(self, sha: str) -> int | None:
        row = self.db.execute("SELECT id FROM tracks WHERE sha256 = ? LIMIT 1", (sha,)).fetchone()
        return int(row[0]) if row else None

    def failed(self, path: str, sha: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM failures WHERE path = ? AND sha256 = ?", (path, sha)).fetchone()
            is not None
        )

    def embedding(self, track_id: int, space: str) -> np.ndarray | None:
        row = self.db.execute(
            "SELECT vector FROM embeddings WHERE track_id = ? AND space = ?", (track_id, space)
        ).fetchone()
        return np.frombuffer(row[0], dtype="<f4").copy() if row else None

    def track(self, track_id: int) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT path, sha256, duration, transcript, words, notes, heard FROM tracks WHERE id = ?",
            (track_id,),
        ).fetchone()
        tags = dict(
            self.db.execute("SELECT tag, score FROM tags WHERE track_id = ? ORDER BY score DESC", (track_id,))
        )
        return {
            "path": row[0],
            "sha256": row[1],
            "duration": row[2],
            "transcript": row[3],
            "words": json.loads(row[4]),
            "notes": json.loads(row[5]),
            "heard": row[6],
            "tags": tags,
        }

    def matrix(self, space: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(ids (N,), paths, vectors (N, E) float32) of one space, loaded once and cached."""
        if space not in self._matrices:
            rows = self.db.execute(
                "SELECT e.track_id, t.path, e.vector FROM embeddings e JOIN tracks t ON t.id = e.track_id "
                "WHERE e.space = ? ORDER BY e.track_id",
                (space,),
            ).fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            paths = [r[1] for r in rows]
            if rows:
                mat = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
            else:
                mat = np.zeros((0, int(self.get_meta("embed_dim") or 0)), np.float32)
            self._matrices[space] = (ids, paths, np.ascontiguousarray(mat, dtype=np.float32))
        return self._matrices[space]

    # -- writing -------------------------------------------------------------------------------
    def add_track(self, path: str, sha: str, size: int, mtime: float, a: TrackAnalysis) -> int:
        """Insert (or replace) one track with everything about it, in one transaction."""
        with self._transaction():
            self.db.execute("DELETE FROM tracks WHERE path = ?", (path,))
            cur = self.db.execute(
                "INSERT INTO tracks(path, sha256, size, mtime, duration, added, transcript, words, notes, heard, "
                "heard_match, transcript_match) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    path,
                    sha,
                    size,
                    mtime,
                    a.duration,
                    time.time(),
                    a.transcript,
                    json.dumps(a.words),
                    json.dumps(a.notes),
                    a.heard,
                    match_text(a.heard or a.transcript),
                    match_text(a.transcript),
                ),
            )
            tid = int(cur.lastrowid)
            self.db.executemany(
                "INSERT INTO embeddings(track_id, space, vector) VALUES (?, ?, ?)",
                [(tid, s, np.asarray(v, dtype="<f4").tobytes()) for s, v in a.embeddings.items()],
            )
            self.db.executemany(
                "INSERT INTO tags(track_id, tag, score) VALUES (?, ?, ?)",
                [(tid, t, float(s)) for t, s in a.tags.items()],
            )
            self.db.execute("INSERT INTO lyrics_fts(rowid, transcript) VALUES (?, ?)", (tid, a.transcript))
            self.db.execute(
                "INSERT INTO lyrics_pairs(rowid, pairs) VALUES (?, ?)", (tid, word_pairs(a.transcript))
            )
            if a.posteriors:
                packed, frames = _posterior_row(a.posteriors, match_text(a.heard or a.transcript))
                self.db.execute("INSERT INTO posteriors(track_id, packed) VALUES (?, ?)", (tid, packed))
                self.db.execute("INSERT INTO heard_frames(track_id, frames) VALUES (?, ?)", (tid, frames))
            self.db.execute("DELETE FROM failures WHERE path = ?", (path,))
        self._matrices.clear()
        return tid

    def analysis_of(self, track_id: int) -> TrackAnalysis:
        """The stored analysis of a track (to copy it to another path with the same content)."""
        t = self.track(track_id)
        embs = {
            s: np.frombuffer(v, dtype="<f4").copy()
            for s, v in self.db.execute(
                "SELECT space, vector FROM embeddings WHERE track_id = ?", (track_id,)
            )
        }
        post = self.posteriors([track_id]).get(track_id, b"")
        return TrackAnalysis(
            embs, t["duration"] or 0.0, t["transcript"], t["words"], t["notes"], t["tags"], t["heard"], post
        )

    def posteriors(self, track_ids: list[int]) -> dict[int, bytes]:
        """The packed CTC posteriors of those of ``track_ids`` that have them."""
        return dict(self._per_track("posteriors", "packed", track_ids))

    def heard_frames(self, track_ids: list[int]) -> dict[int, np.ndarray]:
        """The frame of each character of ``heard_match`` (``spotting.heard_frames``) of those of
        ``track_ids`` that have posteriors (a table of its own: a column after ``packed`` would be
        read through the blob's overflow pages)."""
        return {int(i): unpack_frames(b) for i, b in self._per_track("heard_frames", "frames", track_ids)}

    def _per_track(
        self, table: str, column: str, track_ids: list[int], key: str = "track_id"
    ) -> list[tuple[int, Any]]:
        """(track id, column) of the rows of ``table`` (keyed by ``key``) for ``track_ids``."""
        if not track_ids:
            return []
        marks = ",".join("?" * len(track_ids))
        sql = f"SELECT {key}, {column} FROM {table} WHERE {key} IN ({marks})"
        return self.db.execute(sql, [int(i) for i in track_ids]).fetchall()

    def posterior_windows(self, windows: list[tuple[int, int, int | None]]) -> list[tuple[np.ndarray, int]]:
        """For each (track id, first frame, last frame (excluded; None: the end)), its stored
        posteriors' ratios there and the frame they start at (``spotting.unpack_window``): only the
        blob's header and the chunks holding those frames are read (SQLite incremental blob I/O)
        and decompressed. Every track must have posteriors."""
        out = []
        for tid, first, last in windows:
            with self.db.blobopen("posteriors", "packed", int(tid), readonly=True) as blob:

                def read(offset: int, size: int, blob=blob) -> bytes:
                    blob.seek(offset)
                    return blob.read(size)

                out.append(unpack_window(read, first, last))
        return out

    def record_failure(self, path: str, sha: str, error: str) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO failures(path, sha256, error, time) VALUES (?, ?, ?, ?)",
                (path, sha, error, time.time()),
            )

    def clear(self) -> None:
        """Remove every track (for a rebuild with another model)."""
        with self._transaction():
            self.db.execute("DELETE FROM tracks")
            self.db.execute("DELETE FROM failures")
        self._matrices.clear()

    # -- search --------------------------------------------------------------------------------
    def search_vector(
        self, query: np.ndarray, space: str, top: int = 10, exclude: set[int] | None = None
    ) -> list[tuple[int, str, float]]:
        """Exact cosine search: the ``top`` (track id, path, score) best first."""
        ids, paths, mat = self.matrix(space)
        if len(ids) == 0:
            return []
        scores = mat @ np.asarray(query, np.float32).reshape(-1)
        if exclude:
            scores = scores.copy()
            scores[np.isin(ids, list(exclude))] = -np.inf
        k = min(top, len(ids))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((best, -scores[best]))]  # ties: in id order
        return [(int(ids[i]), paths[i], float(scores[i])) for i in best if np.isfinite(scores[i])]

    def vector_ranking(self, query: np.ndarray, space: str, exclude: set[int] | None = None) -> VectorRanking:
        """Every track of ``space`` ranked by cosine with ``query`` (``exclude``: left out), kept as
        scores: fusing it reads the ranks it needs instead of listing all N tracks in Python."""
        ids, _, mat = self.matrix(space)
        scores = mat @ np.asarray(query, np.float32).reshape(-1)
        if exclude:
            scores[np.isin(ids, list(exclude))] = -np.inf
        return VectorRanking(ids, scores)

    def rank_vector(self, query: np.ndarray, space: str) -> dict[int, int]:
        """Every track's rank (0 = best) by cosine with ``query``."""
        ids, _, mat = self.matrix(space)
        order = np.argsort(-(mat @ np.asarray(query, np.float32).reshape(-1)), kind="stable")
        return {int(ids[i]): r for r, i in enumerate(order)}

    def fuzzy_matches(
        self, phrase: str, candidates: list[int] | None = None, with_lm: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(track ids, costs, ends): the approximate match of ``phrase`` in what was heard in each track
        (the fewest character edits to some stretch of it, ``ranking.match_ends``), for every track
        when the library has at most ``FUZZY_ALL_TRACKS``, else for the ``candidates``. What was
        heard is the text decoded without the language model (``heard_match``); for the tracks of
        ``with_lm`` also the transcript decoded with it, and the fewer edits count. ``ends`` is
        where the best stretch of ``heard_match`` ends (its characters carry frames:
        ``heard_frames``). A 5-word phrase costs about 2 ms per 400k characters on one core
        (compiled; the numpy version took 20 ms).

        Word search misses a remembered line whose words were each transcribed with a wrong letter,
        and the language model's transcript can replace misheard words with other real words; the
        text decoded without it, matched letter by letter, keeps the trace (see ``search_library``).
        The transcript still helps where the language model got the words right, and those tracks
        are among the word search's candidates (``search_fts`` indexes the transcript): on 500
        held-out synthetic songs, a song singing a 5-word phrase came first for 89.6% of the
        phrases with the transcripts of the word search's 200 candidates, 89.4% with every
        transcript, 88.6% with none.
        """
        # "at most FUZZY_ALL_TRACKS tracks" without counting all of them (COUNT(*) took 3 ms at 100k)
        small = (
            self.db.execute("SELECT 1 FROM tracks LIMIT 1 OFFSET ?", (FUZZY_ALL_TRACKS,)).fetchone() is None
        )
        if small:
            rows = self.db.execute("SELECT id, heard_match FROM tracks ORDER BY id").fetchall()
        elif candidates:
            marks = ",".join("?" * len(candidates))
            rows = self.db.execute(
                f"SELECT id, heard_match FROM tracks WHERE id IN ({marks}) ORDER BY id", list(candidates)
            ).fetchall()
        else:
            rows = []
        ids = np.array([r[0] for r in rows], np.int64)
        q = query_text(phrase)
        costs, ends = match_ends(q, [r[1] for r in rows])
        lm = self._per_track(
            "tracks", "transcript_match", np.intersect1d(ids, with_lm or []).tolist(), key="id"
        )
        if lm:
            at = np.searchsorted(ids, [i for i, _ in lm])
            costs[at] = np.minimum(costs[at], match_ends(q, [bytes(t) for _, t in lm])[0])
        return ids, costs, ends

    def search_fts(self, phrase: str, limit: int = FTS_CANDIDATES) -> list[int]:
        """Track ids whose transcript matches ``phrase``, best first: exact phrase matches first (by
        BM25 of the phrase), then tracks with some of its pairs of consecutive words (``_pair_hits``:
        a phrase with a misheard word keeps the others' pairs), then tracks with any of its words,
        by FTS5's BM25 of the OR of its words. The phrase is first spelled as transcripts are
        (``metrics.normalize_for_scoring``: accents stripped, numbers spelled out).

        Each stage scores a bounded number of tracks, because FTS5 computes ``bm25()`` for every
        track that matches (about 2 us each, after one more scan of each phrase for its IDF): an OR
        of common words matches most of the library, so ranking it whole took 100-200 ms at 100k
        tracks. Instead (``_rank_words``): words in half the tracks or more are left out of the OR
        (FTS5 clamps their IDF to 1e-6: they add at most a few 1e-6 to a score); every track with one
        of the rarest words (together in at most ``FTS_SCORED`` tracks) gets its exact score over
        all the words; a track with only common words scores at most a bound (idf * (k1 + 1) summed
        over them), so when ``limit`` tracks score above it the list is that of ranking every match.
        Otherwise up to ``FTS_FILL`` tracks with only common words are scored, those with all of
        them first, in id order: a query of common words alone ranks a subset of its matches (in a
        large library, those with words in half the tracks or more only are not scored, see
        ``_rank_words``). The phrase stage ranks its first ``FTS_PHRASE_HITS`` matches, found as
        pairs of consecutive words (``_phrase_hits``).
        """
        words = [w for w in re.findall(r"[a-z0-9']+", normalize_for_scoring(phrase)) if w.strip("'")]
        if not words:
            return []
        out: list[int] = []
        if len(words) > 1:  # one word: the phrase is the word, ranked below
            out = self._phrase_hits(words)[:limit]
        for stage in (self._pair_hits, self._rank_words):
            if len(out) >= limit:
                break
            seen = set(out)
            out += [i for i in stage(words, limit) if i not in seen]
        return out[:limit]

    def _pair_hits(self, words: list[str], limit: int) -> list[int]:
        """Tracks with some of the phrase's pairs of consecutive words (``word_pairs``; a phrase of
        three words or more), by FTS5's BM25 of the OR of those pairs: the rarest pairs, together in
        at most ``FTS_SCORED`` tracks, so every track scored has its exact score and the best
        ``limit`` come first. A phrase whose one word was misheard (or misremembered) keeps the
        pairs of the others, which few songs share: at 100k simulated tracks (``bench_library``, 1,000
        phrases with one word replaced), the word search found their track first for 88% with this
        stage, 79% without (and in less time: the word stage, which scores more tracks, is often
        not needed)."""
        pairs = list(dict.fromkeys(word_pairs(" ".join(words)).split()))
        if len(pairs) < 2:  # one pair is the exact phrase
            return []
        _, _, cache = self._fts_stats_now()  # pairs have a "_", words none: one cache serves both
        for p in pairs:
            if p not in cache:
                cache[p] = self._fts_count(_fts_phrase([p]), FTS_SCORED + 1, table="lyrics_pairs")
        kept = _rarest({p: cache[p] for p in pairs})
        if not kept:
            return []
        rows = self.db.execute(
            "SELECT rowid FROM (SELECT rowid, bm25(lyrics_pairs) AS s FROM lyrics_pairs "
            "WHERE lyrics_pairs MATCH ?) ORDER BY s, rowid LIMIT ?",
            (_fts_or([p for p in pairs if p in kept]), limit),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def _phrase_hits(self, words: list[str]) -> list[int]:
        """Tracks containing the exact phrase, in the order of FTS5's BM25 of the phrase, among its
        first ``FTS_PHRASE_HITS`` tracks. The phrase's IDF is the same for every track, so the order
        is that of its term-frequency part, computed here from the phrase's count in the track and
        the track's length (``bm25()`` would first scan every match of the phrase once more for the
        IDF).

        The phrase is looked up in ``lyrics_pairs`` as consecutive pairs of its words (``word_pairs``;
        words as spelled, not stemmed): a pair of common words is in far fewer tracks than either
        word, so a phrase of the commonest words no longer reads most of the index (at 100k
        simulated tracks, such a phrase took 13-35 ms as words, 0.4-1.3 ms as pairs)."""
        pairs = word_pairs(" ".join(words))
        if not pairs:
            return []
        rows = self.db.execute(
            "SELECT rowid, highlight(lyrics_pairs, 0, char(1), ''), "
            "(SELECT sz FROM lyrics_fts_docsize WHERE id = lyrics_pairs.rowid) "  # its length in words: a varint
            "FROM lyrics_pairs WHERE lyrics_pairs MATCH ? LIMIT ?",
            (_fts_phrase(pairs.split()), FTS_PHRASE_HITS),
        ).fetchall()
        if len(rows) <= 1:
            return [int(r[0]) for r in rows]
        avgdl = self._fts_stats_now()[1]

        def key(row: tuple[int, str, bytes]) -> tuple[float, int]:
            f = row[1].count("\x01")  # one mark per phrase instance
            d = (_varints(bytes(row[2] or b"")) or [avgdl])[0]
            return -f * (_BM25_K1 + 1) / (f + _BM25_K1 * (1 - _BM25_B + _BM25_B * d / avgdl)), int(row[0])

        return [int(r[0]) for r in sorted(rows, key=key)]

    def _fts_scores(self, expr: str, cap: int, limit: int | None = None) -> list[tuple[int, float]]:
        """(track id, bm25) of at most ``cap`` tracks matching ``expr`` (in rowid order), best
        first, at most ``limit`` of them. bm25 is FTS5's: negative, lower is better."""
        rows = self.db.execute(
            "SELECT rowid, s FROM (SELECT rowid, bm25(lyrics_fts) AS s FROM lyrics_fts "
            "WHERE lyrics_fts MATCH ? LIMIT ?) ORDER BY s, rowid LIMIT ?",
            (expr, cap, -1 if limit is None else limit),
        ).fetchall()
        return [(int(i), float(sc)) for i, sc in rows]

    def _fts_ids(self, expr: str, cap: int) -> list[int]:
        """The first ``cap`` track ids matching ``expr``, in id order (nothing scored)."""
        rows = self.db.execute("SELECT rowid FROM lyrics_fts WHERE lyrics_fts MATCH ? LIMIT ?", (expr, cap))
        return [int(r[0]) for r in rows]

    def _fts_count(self, expr: str, cap: int, table: str = "lyrics_fts") -> int:
        """min(number of tracks matching ``expr`` in ``table``, ``cap``), at the cost of reading
        ``cap`` of them."""
        return int(
            self.db.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT ?)", (expr, cap)
            ).fetchone()[0]
        )

    def _fts_stats_now(self) -> tuple[int, float, dict[str, int]]:
        """(FTS5's N, its mean track length in tokens, the word-count cache) for the index as it is now."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]  # changes on others' commits
        if self._fts_stats_key != (version, self._writes):
            self._fts_stats_key = (version, self._writes)
            n = int(self.db.execute("SELECT count(*) FROM lyrics_fts_docsize").fetchone()[0])
            # FTS5's "averages" record (id 1): varints N, then the total tokens of each column
            row = self.db.execute("SELECT block FROM lyrics_fts_data WHERE id = 1").fetchone()
            values = _varints(bytes(row[0])) if row and row[0] else []
            avgdl = values[1] / values[0] if len(values) >= 2 and values[0] > 0 and values[1] > 0 else 1.0
            self._fts_stats = (n, avgdl, {})
        return self._fts_stats

    def _word_counts(self, words: list[str]) -> tuple[int, dict[str, int]]:
        """FTS5's N (tracks) and each word's document frequency, exact up to ``FTS_SCORED`` and
        up to half the tracks (enough to know the IDF of every word that can score). Counts are
        kept in memory until the database changes (common words recur in every query)."""
        n, _, cache = self._fts_stats_now()
        for w in dict.fromkeys(words):
            if w not in cache:
                c = self._fts_count(_fts_phrase([w]), FTS_SCORED + 1)
                cache[w] = c if c <= FTS_SCORED else self._fts_count(_fts_phrase([w]), (n + 1) // 2)
        return n, {w: cache[w] for w in words}

    def _rank_words(self, words: list[str], limit: int) -> list[int]:
        """Tracks containing any of ``words`` by FTS5's BM25 of ``"w1" OR "w2" OR ...``, scoring at
        most about ``FTS_SCORED`` tracks per stage (see ``search_fts``)."""
        n, df = self._word_counts(words)
        zero = {w for w in df if 2 * df[w] >= n}  # idf = log((n - df + .5) / (df + .5)) <= 0: 1e-6
        rare = _rarest({w: c for w, c in df.items() if w not in zero})
        common = set(df) - zero - rare
        # expressions keep the query's order and repeats, as the plain OR query did
        rare_q = [w for w in words if w in rare]
        common_q = [w for w in words if w in common]
        zero_q = [w for w in words if w in zero]
        scores: dict[int, float] = {}
        if rare_q and common_q:  # every track with a rare word: without common words, then with some
            scores.update(self._fts_scores(f"({_fts_or(rare_q)}) NOT ({_fts_or(common_q)})", FTS_SCORED + 1))
            scores.update(self._fts_scores(f"({_fts_or(common_q)}) AND ({_fts_or(rare_q)})", FTS_SCORED + 1))
        elif rare_q:  # nothing to add to their scores: the best ``limit`` suffice
            scores.update(self._fts_scores(_fts_or(rare_q), FTS_SCORED + 1, limit))
        ranked = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]))
        # a track with none of the rare words scores at most this (idf <= the rarest common word's)
        bound = sum((_BM25_K1 + 1) * _fts_idf(n, df[w]) for w in common_q + zero_q)
        if len(ranked) >= limit and -ranked[limit - 1][1] > bound:
            return [i for i, _ in ranked[:limit]]
        # not decided: add tracks with only common words (then only near-zero-idf words) from a
        # bounded scan, those with all of them first; every track keeps its true score, except in a
        # library of more than FTS_SCORED tracks those with near-zero-idf words only: bm25() would
        # first scan each word's entries, most of the index (20 ms at 100k tracks), so they follow
        # the rest unscored in id order, those with all the words first (their scores would differ
        # by a few 1e-6)
        budget = FTS_FILL
        for group, excluded in ((common_q, rare_q), (zero_q, rare_q + common_q)):
            if group is zero_q and len(scores) >= limit:
                break  # near-zero-idf words only rank tracks below every other match
            for every, expr in (
                (True, " AND ".join(_fts_phrase([w]) for w in group)),
                (False, _fts_or(group)),
            ):
                if not group or budget <= 0:
                    break
                expr = f"({expr}) NOT ({_fts_or(excluded)})" if excluded else expr
                if group is zero_q and n > FTS_SCORED:
                    rows = [(i, -1e-9 if every else 0.0) for i in self._fts_ids(expr, budget)]
                else:
                    rows = self._fts_scores(expr, budget)
                budget -= len(rows)
                for i, sc in rows:
                    scores.setdefault(i, sc)
        ranked = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]))
        return [i for i, _ in ranked[:limit]]


def _posterior_row(packed: bytes, heard_match: bytes) -> tuple[bytes, bytes]:
    """(packed posteriors in chunks, the frames of what was heard) as table ``posteriors`` stores them."""
    packed = chunk_packed(packed)
    return packed, pack_frames(heard_frames(heard_match, unpack_posteriors(packed)))


def word_pairs(text: str) -> str:
    """What ``lyrics_pairs`` indexes of a transcript: each two consecutive words as one token,
    ``"a_b b_c ..."``, its words spelled as ``metrics.normalize_for_scoring`` spells them and cut
    where FTS5's tokenizer cuts (an apostrophe too: "don't stop" -> "don_t t_stop"). A phrase
    query is spelled the same way, so the phrase "a b c" is the pair phrase "a_b b_c"."""
    w = re.findall(r"[a-z0-9]+", normalize_for_scoring(text))
    return " ".join(f"{a}_{b}" for a, b in zip(w, w[1:], strict=False))


def _rarest(counts: dict[str, int]) -> set[str]:
    """The rarest of the terms counted (``counts``: term -> tracks holding it), together in at most
    ``FTS_SCORED`` tracks: those a stage of lyrics search scores every track of."""
    kept: set[str] = set()
    total = 0
    for t in sorted(counts, key=lambda t: (counts[t], t)):
        if total + counts[t] > FTS_SCORED:
            break
        kept.add(t)
        total += counts[t]
    return kept


def _fts_phrase(words: list[str]) -> str:
    return '"' + " ".join(words) + '"'


def _fts_or(words: list[str]) -> str:
    return " OR ".join(_fts_phrase([w]) for w in words)


def _varints(data: bytes) -> list[int]:
    """SQLite's variable-length integers (as FTS5 writes them) in ``data``."""
    out, i = [], 0
    while i < len(data):
        v = 0
        for j in range(9):
            if i >= len(data):
                return out
            c = data[i]
            i += 1
            if j == 8:
                v = (v << 8) | c
                break
            v = (v << 7) | (c & 0x7F)
            if c < 0x80:
                break
        out.append(v)
    return out


def _fts_idf(n: int, df: int) -> float:
    """FTS5's bm25() IDF of a word in ``df`` of ``n`` tracks."""
    idf = float(np.log((n - df + 0.5) / (df + 0.5)))
    return idf if idf > 0 else 1e-6


# ----------------------------------------------------------------------------- analysis


class TrackAnalyzer:
    """Embeds (and transcribes, and tags) one audio file with a bundle that has a head."""

    def __init__(
        self,
        bundle,
        separation: bool = True,
        transcribe: bool = True,
        tag_vocab: list[str] | None = None,
        greedy: bool = False,
        device: str = "cpu",
    ) -> None:
        from singalign.embed import Embedder, EmbedOptions

        self.transcriber = None
        if transcribe:
            try:
                import singalign.decode  # noqa: F401 - transcription needs the decoding stage
                from singalign.transcribe import TranscribeOptions, Transcriber
            except ModuleNotFoundError as exc:
                raise SingalignError(f"transcription is unavailable ({exc}); use --no-transcribe") from None
            dec = {"method": "greedy"} if greedy else {}
            self.transcriber = Transcriber(
                bundle, TranscribeOptions(separation=separation, decode=dec, device=device)
            )
        # when transcribing, the transcriber's features (vocals separated once) feed the embedder
        self.embedder = Embedder(
            bundle, EmbedOptions(separation=separation and not transcribe, device=device)
        )
        vocab = self.embedder.tag_vocab if tag_vocab is None else tag_vocab
        self.tag_vocab = list(vocab)
        self._tag_emb = self.embedder.embed_tags(self.tag_vocab) if self.tag_vocab else None

    def __call__(self, path: str) -> TrackAnalysis:
        from singalign.constants import FRAME_RATE

        if self.transcriber is not None:
            tr = self.transcriber
            feats, post, duration = tr.posteriors(path)
            result = tr.result_from(path, feats, post, duration)
            heard = result.text
            if tr.decode_options.lm_path and "char_log_probs" in post:  # and once more without the LM
                from dataclasses import replace

                from singalign.decode import decode_text

                no_lm = replace(tr.decode_options, lm_path=None, unigrams_path=None)
                heard = decode_text(post["char_log_probs"], no_lm)
            a = TrackAnalysis(
                {},
                result.duration,
                result.text,
                [{"word": w.word, "start": w.start, "end": w.end} for w in result.words],
                notes_summary(result.notes),
                heard=heard,
                posteriors=pack_posteriors(post["char_log_probs"]) if "char_log_probs" in post else b"",
            )
        else:
            feats = self.embedder.load_features(path)
            a = TrackAnalysis({}, float(feats.shape[-1] / FRAME_RATE))
        a.embeddings = self.embedder.embed_features(feats)
        if self._tag_emb is not None and "tags" in a.embeddings:
            scores = self._tag_emb @ a.embeddings["tags"]
            a.tags = {t: round(float(s), 5) for t, s in zip(self.tag_vocab, scores, strict=True)}
        return a


def index_meta(bundle, analyzer: TrackAnalyzer, separation: bool) -> dict[str, str]:
    """What a library records of how it was made (the ``meta`` rows of the schema), for ``index
    add`` and the recipes that index: ``search --like`` embeds a new file as these say."""
    return {
        "model": bundle_fingerprint(bundle),
        "bundle": str(Path(bundle.path).resolve()),
        "spaces": json.dumps(list(analyzer.embedder.spaces)),
        "embed_dim": str(analyzer.embedder.head.cfg.embed_dim),
        "tag_vocab": json.dumps(analyzer.tag_vocab),
        "separation": "1" if separation else "0",
    }


@dataclass
class AddReport:
    added: int = 0
    updated: int = 0
    copied: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped_failed: int = 0
    failures: list[str] = field(default_factory=list)


def index_paths(
    lib: Library,
    paths: list[str],
    analyzer,
    fingerprint: str,
    retry_failed: bool = False,
    progress: bool = True,
) -> AddReport:
    """Add new and changed audio files under ``paths`` to ``lib`` (see the module docstring).

    ``analyzer(path) -> TrackAnalysis`` does the work; a file it fails on is reported on stderr,
    recorded in ``failures`` and skipped. Returns the counts.
    """
    from tqdm import tqdm

    from singalign.bundle import sha256_file
    from singalign.transcribe import expand_inputs

    files = expand_inputs(paths)
    report = AddReport()
    bar = tqdm(files, desc="indexing", unit="file", disable=not progress, file=sys.stderr)
    for f in bar:
        path = str(Path(f).resolve())
        try:
            st = os.stat(path)
            sha = sha256_file(path)
        except OSError as exc:
            report.failed += 1
            report.failures.append(path)
            print(f"singalign: error: {path}: {exc.strerror or exc}", file=sys.stderr)
            continue
        known = lib.lookup(path)
        if known and known[1] == sha:
            report.unchanged += 1
            continue
        if not retry_failed and lib.failed(path, sha):
            report.skipped_failed += 1
            continue
        same = lib.find_sha(sha)
        try:
            analysis = lib.analysis_of(same) if same is not None else analyzer(path)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a bad file must not stop the run (nor touch the index)
            msg = file_error(path, exc)
            log.debug("failure on %s", path, exc_info=True)
            print(f"singalign: error: {msg}", file=sys.stderr)
            lib.record_failure(path, sha, msg)
            report.failed += 1
            report.failures.append(path)
            continue
        lib.add_track(path, sha, st.st_size, st.st_mtime, analysis)
        if same is not None:
            report.copied += 1
        elif known:
            report.updated += 1
        else:
            report.added += 1
        bar.set_postfix(new=report.added + report.copied, upd=report.updated, fail=report.failed)
    bar.close()
    return report


# ----------------------------------------------------------------------------- CLI


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index",
        help="build a searchable library of audio files (SQLite)",
        description="Build and inspect a searchable music library: one SQLite file with each song's "
        "embedding, transcribed lyrics (full-text indexed), notes summary and zero-shot tags.",
    )
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    add = isub.add_parser(
        "add",
        help="add new or changed audio files (folders are searched recursively)",
        description="Analyse each new or changed audio file (by content hash) and store it in the library. "
        "Unchanged files are skipped, so re-running continues an interrupted run. A file that fails is "
        "reported, recorded and skipped; the exit code is 1 if any failed.",
    )
    add.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add.add_argument("--db", required=True, help="library file (created if missing)")
    add.add_argument(
        "--bundle", help="bundle with an audio-text head (default: the library's, else the bundled default)"
    )
    add.add_argument(
        "--no-separation", action="store_true", help="skip vocal separation (mixture in both channels)"
    )
    add.add_argument(
        "--no-transcribe", action="store_true", help="store embeddings and tags only (much faster)"
    )
    add.add_argument("--greedy", action="store_true", help="greedy CTC decoding instead of beam search")
    add.add_argument(
        "--tags",
        help='tags to score every file against (default: the bundle\'s tag vocabulary), "rock,jazz,..."',
    )
    add.add_argument("--tags-file", help="file of tags (one per line or comma-separated)")
    add.add_argument(
        "--retry-failed", action="store_true", help="retry files that failed before although unchanged"
    )
    add.add_argument(
        "--rebuild", action="store_true", help="drop every track first (needed to switch bundles)"
    )
    add.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    add.add_argument("--quiet", action="store_true", help="no progress bar")
    add.set_defaults(func=_cmd_index_add)
    info = isub.add_parser("info", help="what a library holds")
    info.add_argument("--db", required=True, help="library file")
    info.set_defaults(func=_cmd_index_info)


def _load_bundle(arg: str | None, lib: Library | None = None):
    from singalign.bundle import Bundle, default_bundle_path

    path = arg or (lib.get_meta("bundle") if lib is not None else None) or default_bundle_path()
    return Bundle.load(path)


def _cmd_index_add(args: argparse.Namespace) -> int:
    from singalign.embed import parse_tag_list
    from singalign.models.heads import load_head

    lib = Library(args.db, create=True)
    bundle = _load_bundle(args.bundle, lib if not args.bundle else None)
    load_head(bundle)  # fail early, naming the bundle, if it has no head
    fp = bundle_fingerprint(bundle)
    if args.rebuild:
        lib.clear()
    elif lib.count() and lib.get_meta("model") not in (None, fp):
        raise SingalignError(
            f"{args.db} was built with another model ({lib.get_meta('bundle')}); embeddings of two models "
            "do not compare: use another --db, or --rebuild to re-analyse every file"
        )
    tags = parse_tag_list(args.tags, args.tags_file) if (args.tags or args.tags_file) else None
    analyzer = TrackAnalyzer(
        bundle, not args.no_separation, not args.no_transcribe, tags, args.greedy, args.device
    )
    lib.set_meta(index_meta(bundle, analyzer, not args.no_separation))
    r = index_paths(lib, args.paths, analyzer, fp, args.retry_failed, progress=not args.quiet)
    print(
        f"{args.db}: {r.added} added, {r.updated} updated, {r.copied} copied (same content), "
        f"{r.unchanged} unchanged, {r.failed} failed, {r.skipped_failed} skipped (failed before); "
        f"{lib.count()} tracks"
    )
    lib.close()
    return 1 if r.failed else 0


def _cmd_index_info(args: argparse.Namespace) -> int:
    lib = Library(args.db)
    n_fail = lib.db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    n_lyr = lib.db.execute("SELECT COUNT(*) FROM tracks WHERE transcript != ''").fetchone()[0]
    n_post, size = lib.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(packed)), 0) FROM posteriors"
    ).fetchone()
    print(f"library: {lib.path}\ntracks: {lib.count()} ({n_lyr} with lyrics)\nfailed files: {n_fail}")
    print(f"posteriors for lyrics search: {n_post} tracks, {size / 1e6:.1f} MB")
    print(f"model: {lib.get_meta('model')} ({lib.get_meta('bundle')})\nspaces: {lib.get_meta('spaces')}")
    lib.close()
    return 0
