"""The music library: incremental indexing by content hash, corrupt files, a killed indexer,
vector / lyrics / music-to-music search, zero-shot tags, and the commands."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, clean_posteriors

from singalign.bundle import Bundle, init_bundle
from singalign.cli import main
from singalign.library import Library, TrackAnalysis, TrackAnalyzer, index_paths
from singalign.models.heads import AudioTextHead, HeadConfig, head_config_for, save_with_head
from singalign.ranking import approximate_match_costs, fuse_rankings, match_ends, match_text
from singalign.search import search_library
from singalign.spotting import (
    CHUNK_FRAMES,
    chunk_packed,
    heard_frames,
    pack_posteriors,
    phrase_labels,
    unpack_posteriors,
)

SR = 16000


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: see tests/test_heads.py
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lib_bundle")
    torch.manual_seed(0)
    alt = Bundle.load(init_bundle(root / "alt", "tiny", "multitask"))
    cfg = HeadConfig(text_tower="bow", bow_buckets=256, bow_dim=16, embed_dim=16, proj_hidden=0)
    return save_with_head(
        alt, AudioTextHead(head_config_for(alt, cfg)), root / "head", tag_vocab=["rock", "jazz"]
    )


def _tone(path, freq, seconds=2.0, seed=0, noise=0.02):
    t = np.arange(int(SR * seconds)) / SR
    x = 0.3 * np.sin(2 * np.pi * freq * t) + noise * np.random.default_rng(seed).standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.astype(np.float32), SR)
    return path


def _music(folder, n=4):
    files = [
        _tone(folder / ("sub" if i % 2 else "") / f"clip{i}.wav", 150 + 170 * i, seed=i) for i in range(n)
    ]
    (folder / "broken.mp3").write_bytes(np.random.default_rng(9).bytes(4000))  # not audio
    return files


def _analyzer(bundle_dir):
    return TrackAnalyzer(Bundle.load(bundle_dir), separation=False, transcribe=False)


def _fp(bundle_dir):
    from singalign.library import bundle_fingerprint

    return bundle_fingerprint(Bundle.load(bundle_dir))


def test_index_is_incremental_and_survives_a_corrupt_file(tmp_path, bundle_dir, capsys):
    files = _music(tmp_path / "music")
    lib = Library(tmp_path / "lib.db", create=True)
    an = _analyzer(bundle_dir)
    r = index_paths(lib, [str(tmp_path / "music")], an, _fp(bundle_dir), progress=False)
    assert (r.added, r.failed, lib.count()) == (4, 1, 4)
    assert "broken.mp3" in capsys.readouterr().err
    t = lib.track(lib.lookup(str(files[0].resolve()))[0])
    assert set(t["tags"]) == {"rock", "jazz"} and t["duration"] == pytest.approx(2.0, abs=0.02)
    before = lib.embedding(lib.lookup(str(files[1].resolve()))[0], "tags")

    r = index_paths(lib, [str(tmp_path / "music")], an, _fp(bundle_dir), progress=False)
    assert (r.added, r.updated, r.unchanged, r.skipped_failed) == (0, 0, 4, 1)  # nothing re-analysed

    _tone(files[1], 900, seed=5)  # changed content: re-embedded
    shutil.copy(files[2], tmp_path / "music" / "copy.wav")  # same content elsewhere: copied
    r = index_paths(lib, [str(tmp_path / "music")], an, _fp(bundle_dir), progress=False)
    assert (r.updated, r.copied, r.unchanged, lib.count()) == (1, 1, 3, 5)
    after = lib.embedding(lib.lookup(str(files[1].resolve()))[0], "tags")
    assert not np.allclose(before, after)
    db = sqlite3.connect(tmp_path / "lib.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 2 * 5  # two spaces per track
    assert db.execute("SELECT COUNT(*) FROM lyrics_fts").fetchone()[0] == 5


def test_vector_search_returns_the_planted_nearest_track(tmp_path):
    lib = Library(tmp_path / "lib.db", create=True)
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((50, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for i, v in enumerate(vecs):
        lib.add_track(f"/m/{i}.wav", f"sha{i}", 1, 0.0, TrackAnalysis({"tags": v, "lyrics": v}))
    query = vecs[17] + 0.05 * rng.standard_normal(16).astype(np.float32)
    hits = lib.search_vector(query / np.linalg.norm(query), "tags", top=5)
    assert hits[0][1] == "/m/17.wav" and hits[0][2] > 0.95
    assert [h[2] for h in hits] == sorted((h[2] for h in hits), reverse=True)
    hits = lib.search_vector(vecs[17], "tags", top=3, exclude={lib.lookup("/m/17.wav")[0]})
    assert "/m/17.wav" not in [h[1] for h in hits]


def test_lyrics_search_fuses_full_text_ranks(tmp_path):
    lib = Library(tmp_path / "lib.db", create=True)
    texts = [
        "the river runs to the sea\nand the night is long",
        "light of the morning sun over the hills",
        "fire in the night and the river of light",
        "the stone road home under a grey sky",
    ]
    v = np.eye(16, dtype=np.float32)
    for i, text in enumerate(texts):
        lib.add_track(
            f"/m/{i}.wav", f"s{i}", 1, 0.0, TrackAnalysis({"tags": v[i], "lyrics": v[i]}, transcript=text)
        )
    # five consecutive words of song 0: its exact phrase ranks it first, though song 2 shares words
    res = search_library(lib, None, lyrics="runs to the sea and", top=4)
    assert res[0]["path"] == "/m/0.wav"
    res = search_library(lib, None, lyrics="river of light", top=4)
    assert res[0]["path"] == "/m/2.wav"
    assert lib.search_fts("stone road") == [4]  # track ids start at 1
    assert fuse_rankings([[1, 2, 3], [2, 1]])[:2] == [(1, 1 / 61 + 1 / 62), (2, 1 / 62 + 1 / 61)]


def test_search_like_and_tag_commands(tmp_path, bundle_dir, capsys):
    music = tmp_path / "music"
    _tone(music / "a.wav", 440, seed=1)
    _tone(music / "a_again.wav", 440, seed=2)  # the same tone, other noise: the nearest neighbour
    _tone(music / "b.wav", 1500, seed=3, noise=0.2)
    _tone(music / "c.wav", 90, seed=4)
    db = str(tmp_path / "lib.db")
    assert main(["index", "add", str(music), "--db", db, "--bundle", str(bundle_dir), "--no-transcribe",
                 "--no-separation", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["search", "--like", str(music / "a.wav"), "--db", db, "--json", "--no-separation"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res[0]["path"].endswith("a_again.wav") and len(res) == 3  # itself excluded
    assert main(["search", "rock music", "--db", db, "--json", "--top", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 2 and set(res[0]) == {"path", "score"} and res[0]["score"] >= res[1]["score"]
    (tmp_path / "bad.mp3").write_bytes(b"\x00" * 300)
    code = main(["tag", str(music / "a.wav"), str(tmp_path / "bad.mp3"), "--tags", "rock, jazz", "--bundle",
                 str(bundle_dir), "--no-separation"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert (
        code == 1
        and list(out) == [str(music / "a.wav")]
        and set(out[str(music / "a.wav")]) == {"rock", "jazz"}
    )
    assert main(["search", "--db", db]) == 1  # no criterion: a one-line error


def test_index_with_transcription(tmp_path, bundle_dir):
    _tone(tmp_path / "m" / "x.wav", 300)
    lib = Library(tmp_path / "lib.db", create=True)
    an = TrackAnalyzer(Bundle.load(bundle_dir), separation=False, transcribe=True, greedy=True)
    r = index_paths(lib, [str(tmp_path / "m")], an, "fp", progress=False)
    assert r.added == 1
    t = lib.track(1)
    assert isinstance(t["transcript"], str) and "n_notes" in t["notes"] and isinstance(t["words"], list)
    assert t["heard"] == t["transcript"]  # greedy decoding uses no LM: what was heard is the transcript
    # the CTC posteriors are kept for lyrics search: 2 s of audio at 31.25 frames a second
    ratio = unpack_posteriors(lib.posteriors([1])[1])
    assert abs(len(ratio) - 62) <= 2 and np.all(ratio.max(axis=1) == 0.0)
    assert lib.analysis_of(1).posteriors == lib.posteriors([1])[1]  # copied with the track


_KILL_SCRIPT = """
import sys
from singalign.cli import main
sys.exit(main(["index", "add", sys.argv[1], "--db", sys.argv[2], "--bundle", sys.argv[3],
               "--no-transcribe", "--no-separation", "--quiet"]))
"""


def test_a_killed_indexer_leaves_a_consistent_index(tmp_path, bundle_dir):
    music = tmp_path / "music"
    n = 60
    for i in range(n):
        _tone(music / f"t{i:02d}.wav", 100 + 15 * i, seconds=6.0, seed=i)
    db = tmp_path / "lib.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(music), str(db), str(bundle_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    seen = c.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
            except sqlite3.OperationalError:
                seen = 0
            if seen >= 3:
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= seen < n, "the indexer finished before it could be killed"
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = c.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
    assert done < n
    # every stored track is complete: two embeddings and its full-text row
    assert c.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 2 * done
    assert c.execute("SELECT COUNT(*) FROM lyrics_fts").fetchone()[0] == done
    c.close()
    lib = Library(db)
    r = index_paths(lib, [str(music)], _analyzer(bundle_dir), _fp(bundle_dir), progress=False)
    assert (r.unchanged, r.added, lib.count()) == (done, n - done, n)


def _word(i: int) -> str:
    """A distinct made-up word of letters (transcripts have no digits): 0 -> "wordaa", 27 -> "wordbb"."""
    return "word" + chr(97 + i // 26) + chr(97 + i % 26)


def _song_library(tmp_path, n=300, seed=0):
    """``n`` songs of 136 words: 60 from three words every song has, 64 from 20 words that each
    song draws 8 of (each in about 40% of songs), 12 from 400 rarer ones (each in about 9 songs)."""
    rng = np.random.default_rng(seed)
    everywhere = ["i", "you", "the"]
    common = "love my baby night heart and to fire rain dance light home road sky blue gold wild cold run free".split()
    rare = [_word(i) for i in range(400)]
    lib = Library(tmp_path / "songs.db", create=True)
    songs = []
    for i in range(n):
        mine = list(rng.choice(common, 8, replace=False))
        words = list(rng.choice(everywhere, 60)) + list(rng.choice(mine, 64)) + list(rng.choice(rare, 12))
        songs.append([str(w) for w in rng.permutation(words)])
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, TrackAnalysis({}, transcript=" ".join(songs[-1])))
    return lib, songs, everywhere + common


@pytest.fixture
def small_budgets(monkeypatch):
    """Budgets small enough that a few hundred songs take the bounded paths of a 100k-track library."""
    import singalign.library as L

    monkeypatch.setattr(L, "FTS_SCORED", 40)
    monkeypatch.setattr(L, "FTS_FILL", 60)
    monkeypatch.setattr(L, "FTS_PHRASE_HITS", 30)


def test_a_sung_phrase_finds_its_song_first_among_songs_sharing_its_words(tmp_path, small_budgets):
    import singalign.library as L

    lib, songs, common = _song_library(tmp_path)
    song = songs[137]
    start = next(s for s in range(len(song) - 5) if sum(w in common for w in song[s : s + 5]) == 4)
    phrase = " ".join(song[start : start + 5])  # four common words and one rarer one
    assert lib.search_fts(phrase)[0] == 138  # track ids start at 1
    assert search_library(lib, None, lyrics=phrase, top=3)[0]["path"] == "/m/137.wav"
    # only common words: every song has them all, the exact phrase still decides
    start = next(s for s in range(len(song) - 5) if all(w in common for w in song[s : s + 5]))
    assert lib.search_fts(" ".join(song[start : start + 5]))[0] == 138
    # the phrase stage finds the tracks that sing the words as spelled (the word search stems them:
    # "wordhy" and "wordhi" are one word to it), ordered as FTS5's bm25() of the phrase orders them
    # (computed without it) where stemming conflates nothing
    checked = 0
    for a, b in zip(song, song[1:], strict=False):
        singing = {
            k + 1 for k, s in enumerate(songs) if any(s[j : j + 2] == [a, b] for j in range(len(s) - 1))
        }
        got = lib._phrase_hits([a, b])
        assert sorted(got) == sorted(singing)[: L.FTS_PHRASE_HITS]  # the first ones by id
        ref = lib.db.execute(
            "SELECT rowid, bm25(lyrics_fts) FROM lyrics_fts WHERE lyrics_fts MATCH ? ORDER BY 2",
            (f'"{a} {b}"',),
        ).fetchall()
        if 3 <= len(ref) <= 30 and {i for i, _ in ref} == singing:
            scores = dict(ref)
            assert [scores[i] for i in got] == pytest.approx([sc for _, sc in ref], abs=1e-9)
            checked += 1
    assert checked >= 5


def test_a_phrase_with_a_misheard_word_is_found_by_its_other_word_pairs(tmp_path, monkeypatch):
    import singalign.library as L

    lib, songs, _ = _song_library(tmp_path)
    by_pairs = by_words = tried = 0
    for k in range(0, 300, 7):
        for s in range(0, 130, 17):
            words = songs[k][s : s + 5]
            words[2] = "zzzq"  # in no song: no exact phrase, two of the four pairs left
            tried += 1
            by_pairs += lib.search_fts(" ".join(words))[0] == k + 1
            by_words += lib._rank_words(words, 10)[0] == k + 1
    assert tried == 344 and by_pairs == 136 and by_words == 60
    # only the rarest pairs are scored, together in at most FTS_SCORED tracks, each track exactly
    monkeypatch.setattr(L, "FTS_SCORED", 40)
    words = songs[137][20:25]
    words[2] = "zzzq"
    pairs = L.word_pairs(" ".join(words)).split()
    counts = {p: lib._fts_count(f'"{p}"', 1000, table="lyrics_pairs") for p in pairs}
    assert sorted(counts.values()) == [0, 0, 24, 285]
    kept = [p for p in pairs if counts[p] == 24]
    ref = lib.db.execute(
        "SELECT rowid FROM lyrics_pairs WHERE lyrics_pairs MATCH ? ORDER BY bm25(lyrics_pairs), rowid",
        (f'"{kept[0]}"',),
    ).fetchall()
    assert lib._pair_hits(words, 10) == [r[0] for r in ref][:10]


def test_lyrics_ranking_is_bm25_of_all_words(tmp_path, small_budgets):
    """The bounded OR stage ranks by FTS5's bm25() of the OR query; with a selective word its top
    is the top of ranking every match (most tracks match: the bounds are what the test exercises)."""
    lib, songs, common = _song_library(tmp_path)
    rng = np.random.default_rng(1)
    for trial in range(12):
        words = [str(w) for w in rng.choice(common, 4)] + [_word(int(rng.integers(400)))] * (trial % 2)
        ref = dict(
            lib.db.execute(
                "SELECT rowid, bm25(lyrics_fts) FROM lyrics_fts WHERE lyrics_fts MATCH ?",
                (" OR ".join(f'"{w}"' for w in words),),
            )
        )
        got = lib._rank_words(words, 50)
        assert len(got) == 50 and all(i in ref for i in got)
        assert all(ref[a] <= ref[b] + 1e-4 for a, b in zip(got, got[1:], strict=False))  # by score
        if trial % 2:
            best = sorted(ref.values())[:5]
            assert [ref[i] for i in lib._rank_words(words, 5)] == pytest.approx(best, abs=1e-4)


def test_fused_top_equals_fusing_whole_rankings():
    from singalign.ranking import VectorRanking, fuse_top, fused_scores

    rng = np.random.default_rng(0)
    for _ in range(200):
        ids = np.sort(rng.choice(5000, int(rng.integers(1, 3000)), replace=False))
        scores = rng.standard_normal(len(ids)).astype(np.float32)
        scores = np.round(scores, 1) if rng.random() < 0.5 else scores  # many equal scores
        scores[rng.integers(0, len(ids), 3)] = -np.inf  # excluded tracks
        fts = [int(i) for i in rng.permutation(ids)[:50]]
        vec = VectorRanking(ids, scores)
        whole = [int(ids[i]) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]
        top = int(rng.integers(1, 40))
        assert fuse_top([fts, vec], top) == fuse_rankings([fts, whole])[:top]
        assert fuse_top([vec, fts, vec], top) == fuse_rankings([whole, fts, whole])[:top]
        # the fused score of any given tracks, some in no ranking (ids up to 5000 never drawn)
        some = np.unique(np.concatenate([rng.choice(ids, 20), rng.integers(5000, 5100, 3)]))
        want = dict(fuse_rankings([fts, whole]))
        assert np.allclose(fused_scores([fts, vec], some), [want.get(int(i), 0.0) for i in some], atol=0)


def test_lyrics_search_without_a_model_loads_no_matrix_and_sees_new_tracks(tmp_path):
    lib = Library(tmp_path / "lib.db", create=True)
    v = np.eye(16, dtype=np.float32)
    lib.add_track("/m/0.wav", "s0", 1, 0.0, TrackAnalysis({"lyrics": v[0]}, transcript="blue moon rising"))
    assert search_library(lib, None, lyrics="moon", top=5)[0]["path"] == "/m/0.wav"
    assert lib._matrices == {}  # the first query paid for a matrix it did not use (0.2 s at 100k)
    lib.add_track("/m/1.wav", "s1", 1, 0.0, TrackAnalysis({"lyrics": v[1]}, transcript="red sun setting"))
    assert lib.search_fts("sun") == [2]  # word counts cached by the first query are renewed
    other = Library(tmp_path / "lib.db")  # a write by another connection renews them too
    other.add_track("/m/2.wav", "s2", 1, 0.0, TrackAnalysis({"lyrics": v[2]}, transcript="sun sun sun"))
    assert lib.search_fts("sun") == [3, 2]


def _edit_to_substring(query: str, text: str) -> int:
    """The textbook O(len(query) * len(text)) dynamic programme (Sellers 1980), for reference: the
    fewest edits to any stretch of ``text``, the empty one (deleting the whole query) included."""
    return min([len(query), *_ending_at(query, text)])


def test_approximate_match_costs_equal_the_textbook_edit_distance():
    # "x" shares no letter: 8 edits (7 deletions and a substitution, or 8 deletions)
    assert list(approximate_match_costs("the land", ["into the lend of", "x", "", "THE  land!"])) == [
        1,
        8,
        8,
        0,
    ]
    assert list(approximate_match_costs("", ["abc", ""])) == [0, 0]
    # a typed query is spelled as transcripts are: numbers in words, accents stripped
    sung = ["ninety nine red balloons go by", "a cafe in the rain", "nine red"]
    assert list(approximate_match_costs("99 red Balloons", sung)) == [0, 16, 16]
    assert list(approximate_match_costs("Café in the rain!", sung)) == [10, 0, 11]
    rng = np.random.default_rng(0)
    for _ in range(100):
        q = " ".join("".join(rng.choice(list("abc"), rng.integers(1, 5))) for _ in range(rng.integers(1, 4)))
        texts = [
            " ".join("".join(rng.choice(list("abcd"), rng.integers(1, 6))) for _ in range(rng.integers(0, 7)))
            for _ in range(7)
        ]
        want = [_edit_to_substring(q, t) if t else len(q) for t in texts]
        assert list(approximate_match_costs(q, texts)) == want
    # long texts and queries (the bit-vector search takes up to 64 characters, the DP more)
    words = ["the", "and", "river", "light", "sea", "land", "of", "to", "will", "kingdom"]
    texts = [" ".join(rng.choice(words, int(n))) for n in rng.integers(20, 120, 8)]
    for q in ["river of the lnd", "kingdom will bring the light of the sea to the land and the river", "q"]:
        want = [_edit_to_substring(q, t) for t in texts]
        assert list(approximate_match_costs(q, texts)) == want  # the second: over 64 characters
        assert list(approximate_match_costs(q, texts, chunk=3)) == want


def test_match_ends_are_where_the_first_best_stretch_ends():
    assert match_ends(b"the land", [b"into the lend of", b"x", b"", b"the land the land"])[1].tolist() == [
        12,  # "the lend": one substitution, ends at the "d"
        -1,  # nothing better than deleting the whole query
        -1,
        7,  # the first of two exact matches
    ]
    rng = np.random.default_rng(4)
    for _ in range(60):  # against the textbook DP's last row: the best stretch ending at each character
        q = "".join(rng.choice(list("ab "), int(rng.integers(1, 6))))
        if rng.random() > 0.7:  # the bit-vector search's widest query (64), and the DP beyond it
            q = "".join(rng.choice(list("ab "), int(rng.choice([64, 70]))))
        texts = ["".join(rng.choice(list("ab c"), int(rng.integers(0, 150)))) for _ in range(4)]
        costs, ends = match_ends(q.encode(), [t.encode() for t in texts])
        for t, c, e in zip(texts, costs, ends, strict=True):
            by_end = _ending_at(q, t)
            assert c == min([len(q), *by_end])
            assert e == (by_end.index(c) if c < len(q) else -1)


def _ending_at(query: str, text: str) -> list[int]:
    """The fewest edits from ``query`` to a stretch of ``text`` ending at each of its characters
    (the last row of Sellers' dynamic programme)."""
    prev = [0] * (len(text) + 1)
    for i, c in enumerate(query, 1):
        cur = [i] + [0] * len(text)
        for j in range(1, len(text) + 1):
            cur[j] = min(prev[j - 1] + (text[j - 1] != c), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return prev[1:]


def test_the_approximate_match_takes_the_better_of_the_texts_with_and_without_the_lm(tmp_path):
    """Without the LM the words were misheard; with it, one track's were right."""
    lib = Library(tmp_path / "lib.db", create=True)
    heard = ["tha rivr rans ta tho see", "the river runs to the sea", "a river runs to the sky"]
    with_lm = ["the river runs to the sea", "the liver runs to the tree", "a river runs to the sky"]
    for i, (h, t) in enumerate(zip(heard, with_lm, strict=True)):
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, TrackAnalysis({}, transcript=t, heard=h))
    q = "river runs to the sea"
    ids, costs, ends = lib.fuzzy_matches(q, with_lm=[1, 2, 3])
    assert ids.tolist() == [1, 2, 3] and costs.tolist() == [0, 0, 2]  # 1: the LM's text; 2: what was heard
    assert lib.fuzzy_matches(q, with_lm=[2, 3])[1].tolist() == [5, 0, 2]  # 1's transcript not read
    assert lib.fuzzy_matches(q)[1].tolist() == [5, 0, 2]
    # search passes the word search's candidates: track 1's transcript has every word
    assert search_library(lib, None, lyrics=q, top=1)[0] == {"path": "/m/0.wav", "score": 1.0}
    # where the match ends is always in what was heard (its characters carry frames)
    for k, h in enumerate(heard):
        want = _ending_at(q, h)
        assert ends[k] == want.index(min(want))


def test_search_reads_one_query_per_line_from_stdin(tmp_path, bundle_dir, monkeypatch, capsys):
    """``--lyrics -``: one answer per line of standard input, in order, the model loaded once."""
    import io

    db = tmp_path / "lib.db"
    lib = Library(db, create=True)
    for i, text in enumerate(["the river runs to the sea", "light of the morning sun", "a grey sky"]):
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, TrackAnalysis({"tags": np.eye(16, dtype=np.float32)[i]},
                                                                     transcript=text))  # fmt: skip
    lib.close()
    loads = []
    monkeypatch.setattr(
        "singalign.search._load_bundle", lambda *a: loads.append(a) or Bundle.load(bundle_dir)
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("grey sky\n\nmorning sun\nriver runs to the sea\n"))
    assert main(["search", "--db", str(db), "--lyrics", "-", "--top", "1", "--json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a[0]["path"] for a in answers] == ["/m/2.wav", "/m/1.wav", "/m/0.wav"] and len(loads) == 1
    assert all(a[0]["score"] == 1.0 for a in answers)  # each phrase as it was heard
    # text queries too; plain output ends each answer with a blank line
    monkeypatch.setattr("sys.stdin", io.StringIO("rock\njazz\n"))
    assert main(["search", "-", "--db", str(db), "--top", "2"]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    assert len(blocks) == 3 and blocks[2] == "" and all(len(b.splitlines()) == 2 for b in blocks[:2])
    assert (
        main(["search", "-", "--db", str(db), "--lyrics", "-"]) == 1 and len(loads) == 2
    )  # refused unloaded


def test_lyrics_search_finds_a_line_whose_every_word_was_misheard(tmp_path, monkeypatch):
    lib = Library(tmp_path / "lib.db", create=True)
    texts = [
        "the rivr runz two the se and the nite is long",  # "the river runs to the sea", misheard
        "light of the morning sun over the hills",
        "the sea is wide and the river runs deep",  # the query's words, in another order
        "the stone road home under a grey sky",
    ]
    for i, text in enumerate(texts):
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, TrackAnalysis({"tags": np.eye(4, dtype=np.float32)[i]},
                                                                     transcript=text))  # fmt: skip
    assert lib.search_fts("river runs to the sea")[0] == 3  # words alone: the wrong song
    ids, costs, _ = lib.fuzzy_matches("river runs to the sea")
    assert list(ids) == [1, 2, 3, 4] and costs[0] == 4 and costs.argsort()[0] == 0
    res = search_library(lib, None, lyrics="river runs to the sea", top=4)
    assert res[0] == {"path": "/m/0.wav", "score": round(1 - 4 / 21, 6)}  # 4 edits in 21 characters
    assert search_library(lib, None, lyrics="grey sky", top=1) == [{"path": "/m/3.wav", "score": 1.0}]
    assert lib.search_fts("Grèy  SKY!")[0] == 4  # the words are normalized as transcripts are
    assert search_library(lib, None, lyrics="Grèy SKY!", top=1) == [{"path": "/m/3.wav", "score": 1.0}]
    # equal costs are ordered by the words: "the" (cost 0) is in every song; BM25 decides
    by_words = [f"/m/{i - 1}.wav" for i in lib.search_fts("the")]
    assert [r["path"] for r in search_library(lib, None, lyrics="the", top=4)] == by_words
    # what was heard (decoded without the LM) is matched when the track has it
    v = np.eye(8, dtype=np.float32)[5]
    lib.add_track(
        "/m/5.wav",
        "s5",
        1,
        0.0,
        TrackAnalysis({"tags": v}, transcript="the liver", heard="golden rivr flows"),
    )
    assert search_library(lib, None, lyrics="golden river flows", top=1)[0]["path"] == "/m/5.wav"
    assert lib.search_fts("golden river flows") != [6]  # its transcript (with the LM) lost the words
    # above FUZZY_ALL_TRACKS tracks only the candidates are matched; at it, every track
    monkeypatch.setattr("singalign.library.FUZZY_ALL_TRACKS", lib.count())
    assert list(lib.fuzzy_matches("river runs to the sea", candidates=[2])[0]) == [1, 2, 3, 4, 5]
    monkeypatch.setattr("singalign.library.FUZZY_ALL_TRACKS", lib.count() - 1)
    assert list(lib.fuzzy_matches("river runs to the sea", candidates=[2])[0]) == [2]
    monkeypatch.setattr("singalign.library.FUZZY_ALL_TRACKS", 2)
    assert list(lib.fuzzy_matches("river runs to the sea", candidates=[2, 4])[0]) == [2, 4]
    assert len(lib.fuzzy_matches("river runs to the sea")[0]) == 0
    # ... so a track whose words all differ is out of reach there (its heard text was found above)
    assert search_library(lib, None, lyrics="golden river flows", top=1)[0]["path"] == "/m/2.wav"


_V5_TRIGGER = """CREATE TRIGGER IF NOT EXISTS tracks_delete AFTER DELETE ON tracks BEGIN
    DELETE FROM lyrics_fts WHERE rowid = old.id;
END;"""


def _v5_schema() -> str:
    """The schema script of v5 (and of v3 up to the table ``posteriors``): no word pairs."""
    from singalign import library

    pairs = next(line for line in library._SCHEMA.splitlines() if "lyrics_pairs USING" in line)
    schema = library._SCHEMA.replace(pairs + "\n", "").replace(library._DELETE_TRIGGER, _V5_TRIGGER)
    return schema.replace(",\n    transcript_match BLOB NOT NULL DEFAULT x''", "")


def test_a_v5_library_gets_its_word_pairs_indexed_when_opened(tmp_path, monkeypatch):
    from singalign import library

    lib, songs, _ = _song_library(tmp_path, n=40)
    lib.db.executescript(
        f"DROP TABLE lyrics_pairs; DROP TRIGGER tracks_delete; {_V5_TRIGGER} "
        "ALTER TABLE tracks DROP COLUMN transcript_match; UPDATE meta SET value = '5' WHERE key = 'schema_version';"
    )
    lib.close()
    calls = []
    real = library.word_pairs

    def failing(text):
        calls.append(1)
        if len(calls) == 30:
            raise RuntimeError("killed")
        return real(text)

    monkeypatch.setattr(library, "word_pairs", failing)
    with pytest.raises(RuntimeError):
        Library(tmp_path / "songs.db")  # the upgrade fails part way: one transaction, nothing kept
    monkeypatch.setattr(library, "word_pairs", real)
    db = sqlite3.connect(tmp_path / "songs.db")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "5"
    assert "transcript_match" not in [r[1] for r in db.execute("PRAGMA table_info(tracks)")]
    db.close()
    lib = Library(tmp_path / "songs.db")  # upgraded
    assert lib.get_meta("schema_version") == "6"
    assert (
        "DELETE FROM lyrics_pairs"
        in lib.db.execute("SELECT sql FROM sqlite_master WHERE name = 'tracks_delete'").fetchone()[0]
    )
    song = songs[7]
    phrase = song[10:15]
    singing = [k + 1 for k, s in enumerate(songs) if any(s[j : j + 5] == phrase for j in range(len(s) - 4))]
    assert sorted(lib._phrase_hits(phrase)) == singing and 8 in singing
    lib.db.execute("DELETE FROM tracks WHERE id = 8")  # the trigger keeps the pairs in step
    assert 8 not in lib._phrase_hits(phrase)
    assert lib.db.execute("SELECT count(*) FROM lyrics_pairs").fetchone()[0] == 39
    spelled = lib.db.execute("SELECT transcript_match FROM tracks WHERE id = 3").fetchone()[0]
    assert spelled == " ".join(songs[2]).encode()  # the transcript as the approximate match reads it


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_library_is_upgraded_in_place_and_keeps_its_tracks(tmp_path, version):

    path = tmp_path / f"v{version}.db"
    db = sqlite3.connect(path)
    schema = _v5_schema()[: _v5_schema().index("CREATE TABLE IF NOT EXISTS posteriors")]  # v3
    if version <= 2:
        schema = schema.replace(",\n    heard_match BLOB NOT NULL DEFAULT x''", "")
    if version == 1:
        schema = schema.replace(",\n    heard TEXT NOT NULL DEFAULT ''", "")
    db.executescript(schema)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    db.execute(
        "INSERT INTO tracks(id, path, sha256, transcript) VALUES (1, '/m/a.wav', 'x', 'Blue moon rising')"
    )
    if version == 3:  # v3 stored what the approximate match reads
        db.execute("UPDATE tracks SET heard_match = ? WHERE id = 1", (b"blue moon rising",))
    db.execute("INSERT INTO lyrics_fts(rowid, transcript) VALUES (1, 'Blue moon rising')")
    if version == 2:  # heard, when there is one, is what the approximate match reads
        db.execute(
            "INSERT INTO tracks(id, path, sha256, transcript, heard) VALUES (2, '/m/b.wav', 'y', 'a b', 'GREY SKY!')"
        )
        db.execute("INSERT INTO lyrics_fts(rowid, transcript) VALUES (2, 'a b')")
    db.commit()
    columns = [r[1] for r in db.execute("PRAGMA table_info(tracks)")]
    assert ("heard_match" in columns) == (version == 3) and ("heard" in columns) == (version >= 2)
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'posteriors'").fetchone() is None
    db.close()
    lib = Library(path)
    assert lib.get_meta("schema_version") == "6" and lib.track(1)["heard"] == ""
    assert lib.posteriors([1, 2]) == {}  # older tracks have no posteriors: matched by their text
    stored = dict(lib.db.execute("SELECT id, heard_match FROM tracks"))
    assert stored[1] == b"blue moon rising" and stored.get(2, b"grey sky") == b"grey sky"
    assert search_library(lib, None, lyrics="blu moon", top=1) == [{"path": "/m/a.wav", "score": 0.875}]
    if version == 2:
        assert search_library(lib, None, lyrics="grey ski", top=1)[0]["path"] == "/m/b.wav"
    lib._upgrade(version)  # a second process that read the old version before this one upgraded
    assert lib.get_meta("schema_version") == "6"
    lib.close()
    Library(path).close()  # opening it again changes nothing


def _posteriors(text: str, near: dict[int, str] | None = None, behind: float = 1.0) -> bytes:
    """Packed ``clean_posteriors`` of ``text`` (each letter on one frame, then two blanks), where
    the letter at position i of ``near`` was only ``behind`` nats behind the best."""
    from singalign.constants import CHAR_TO_INDEX

    lp = clean_posteriors(text)
    for i, ch in (near or {}).items():
        lp[3 * i, CHAR_TO_INDEX[ch]] = -behind
    return pack_posteriors(lp)


def test_lyrics_search_checks_the_phrase_in_the_stored_posteriors(tmp_path, monkeypatch, capsys):
    """What was heard alone decides only among tracks without posteriors: a song heard as "wxyz
    the dog", whose "a", "l", "k" were each 1 nat behind, holds "walk the dog" (spotting score -3,
    3 edits: -3 - 3 * SPOT_EDIT_COST in 12 letters) better than "talk the fog" does (2 edits, but
    two letters 10 nats behind: -20 - 2 * SPOT_EDIT_COST)."""
    from singalign.search import SPOT_EDIT_COST as E

    lib = Library(tmp_path / "lib.db", create=True)
    heard = {1: "wxyz the dog", 2: "talk the fog", 3: "the skyis grey"}
    near = {1: {1: "a", 2: "l", 3: "k"}, 2: {}, 3: {}}
    for i, text in heard.items():
        a = TrackAnalysis({"tags": np.eye(4, dtype=np.float32)[i]}, transcript=text, heard=text)
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, a)
    # without posteriors (an index made before v4): the approximate match of what was heard
    res = search_library(lib, None, lyrics="walk the dog", top=3)
    assert [r["path"] for r in res] == ["/m/2.wav", "/m/1.wav", "/m/3.wav"]
    assert [r["score"] for r in res[:2]] == [round(1 - 2 / 12, 6), round(1 - 3 / 12, 6)]
    lib.clear()
    for i, text in heard.items():
        a = TrackAnalysis(
            {"tags": np.eye(4, dtype=np.float32)[i]},
            transcript=text,
            heard=text,
            posteriors=_posteriors(text, near[i]),
        )
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, a)
    res = search_library(lib, None, lyrics="walk the dog", top=3)
    assert [r["path"] for r in res] == ["/m/1.wav", "/m/2.wav", "/m/3.wav"]
    assert res[0]["score"] == round(float(np.exp((-3 - 3 * E) / 12)), 6)
    assert res[1]["score"] == round(float(np.exp((-20 - 2 * E) / 12)), 6)
    assert res[2]["score"] <= res[1]["score"]  # scores fall as ranks do
    # only the first SPOT_TRACKS tracks by the approximate match are checked (twice as many in a
    # library of at most SPOT_SMALL_LIBRARY tracks)
    monkeypatch.setattr("singalign.search.SPOT_TRACKS", 1)
    walk = ["/m/2.wav", "/m/1.wav"]  # by the approximate match alone, the first checked
    assert [r["path"] for r in search_library(lib, None, lyrics="walk the dog", top=2)] == walk[::-1]
    monkeypatch.setattr("singalign.search.SPOT_SMALL_LIBRARY", 2)
    assert [r["path"] for r in search_library(lib, None, lyrics="walk the dog", top=2)] == walk
    # a word boundary the model did not hear costs nothing more
    monkeypatch.setattr("singalign.search.SPOT_TRACKS", 50)
    res = search_library(lib, None, lyrics="sky is grey", top=1)  # 1 edit, spotting score 0
    assert res == [{"path": "/m/3.wav", "score": round(float(np.exp(-E / 11)), 6)}]
    assert lib.count() == 3 and len(lib.posteriors([1, 2, 3])) == 3
    assert main(["index", "info", "--db", str(tmp_path / "lib.db")]) == 0
    size = sum(len(b) for b in lib.posteriors([1, 2, 3]).values())
    assert f"posteriors for lyrics search: 3 tracks, {size / 1e6:.1f} MB" in capsys.readouterr().out
    lib.clear()  # removing a track removes its posteriors
    assert lib.db.execute("SELECT COUNT(*) FROM posteriors").fetchone()[0] == 0


def _filler(n: int, seed: int) -> str:
    """``n`` characters of made-up lyrics (words none of the test phrases hold)."""
    words = ["oh", "yeah", "baby", "night", "light", "river", "cold", "fire", "hold", "me", "now"]
    rng = np.random.default_rng(seed)
    out = ""
    while len(out) < n:
        out += str(rng.choice(words)) + " "
    return out[:n]


def test_lyrics_search_checks_a_window_of_a_long_song_at_its_start_end_and_across_chunks(
    tmp_path, monkeypatch
):
    """Songs of about 1,200 frames (19 chunks) hold a phrase at their very start, across a chunk
    boundary and at their very end, each heard with one wrong letter that was 1 nat behind: each
    is found first with the whole song's spotting score (-1, 1 edit), from a window of frames
    around the match, not the whole song."""
    from singalign import spotting
    from singalign.search import SPOT_EDIT_COST as E
    from singalign.search import SPOT_MARGIN

    p = 210  # "blue moon rising" at characters 210-225: frames 630-675 hold frame 640 = 10 chunks
    assert 3 * p < 10 * CHUNK_FRAMES < 3 * (p + len("blue moon rising"))
    songs = {
        1: ("wxlk the dog " + _filler(390, 1), {1: "a"}, "walk the dog"),
        2: (_filler(p - 1, 2) + " blxe moon rising " + _filler(180, 3), {p + 2: "u"}, "blue moon rising"),
        3: (_filler(390, 4) + " sky is grxy", {390 + 10: "e"}, "sky is grey"),
    }
    lib = Library(tmp_path / "lib.db", create=True)
    for i, (text, near, _) in songs.items():
        a = TrackAnalysis(
            {"tags": np.eye(4, dtype=np.float32)[i]},
            transcript=text,
            heard=text,
            posteriors=_posteriors(text, near),
        )
        lib.add_track(f"/m/{i}.wav", f"s{i}", 1, 0.0, a)
    seen: list[int] = []
    scores = spotting.phrase_scores

    def recording(labels, ratios, **kw):
        seen.extend(len(r) for r in ratios)
        return scores(labels, ratios, **kw)

    monkeypatch.setattr(spotting, "phrase_scores", recording)
    for i, (text, _, phrase) in songs.items():
        whole = unpack_posteriors(lib.posteriors([i])[i])
        assert len(whole) == 3 * len(text) > 1150
        full = scores(phrase_labels(phrase), [whole], optional_space=True)[0]
        assert full == -1.0  # the letter 1 nat behind
        seen.clear()
        res = search_library(lib, None, lyrics=phrase, top=3)
        assert res[0] == {"path": f"/m/{i}.wav", "score": round(float(np.exp((full - E) / len(phrase))), 6)}
        # three windows: the frames of the matched stretch (the phrase plus its edits) and the
        # margins, clipped at the song's ends; the planted track's (1 edit) first
        assert len(seen) == 3 and seen[0] <= 3 * (len(phrase) + 1) + 2 * SPOT_MARGIN + 1
        assert max(seen) <= 3 * 2 * len(phrase) + 2 * SPOT_MARGIN + 1 < len(whole) / 4
    # the planted ends of a song: its first and last frames are in the windows
    assert lib.posterior_windows([(1, -SPOT_MARGIN, 40)])[0][1] == 0
    r, start = lib.posterior_windows([(3, 3 * len(songs[3][0]) - 30, None)])[0]
    assert start == 3 * len(songs[3][0]) - 30 and np.array_equal(
        r, unpack_posteriors(lib.posteriors([3])[3])[-30:]
    )


def _whole_stream(lp: np.ndarray) -> bytes:
    """A packed blob as schema v4 stored it: format 1, one zlib stream of every frame."""
    import zlib

    q = np.round(-unpack_posteriors(pack_posteriors(lp))).astype(np.uint8)
    return bytes([1]) + zlib.compress(np.ascontiguousarray(q.T).tobytes(), 9)


def test_a_v4_library_is_upgraded_to_chunks_in_batches_and_resumes(tmp_path, monkeypatch, capsys):
    from singalign import library

    path = tmp_path / "v4.db"
    db = sqlite3.connect(path)
    v4 = _v5_schema()[: _v5_schema().index("CREATE TABLE IF NOT EXISTS heard_frames")]
    db.executescript(v4)
    db.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    rng = np.random.default_rng(5)
    texts = {
        1: "walk the dog " + _filler(300, 6),
        2: _filler(200, 7) + " blue moon rising",
        3: "no posteriors",
    }
    old = {}
    for i, text in texts.items():
        db.execute(
            "INSERT INTO tracks(id, path, sha256, transcript, heard, heard_match) VALUES (?, ?, ?, ?, ?, ?)",
            (i, f"/m/{i}.wav", f"s{i}", text, text, match_text(text)),
        )
        db.execute("INSERT INTO lyrics_fts(rowid, transcript) VALUES (?, ?)", (i, text))
        if i < 3:
            from singalign.decode import simulate_posteriors

            old[i] = _whole_stream(simulate_posteriors(text, rng))
            db.execute("INSERT INTO posteriors(track_id, packed) VALUES (?, ?)", (i, old[i]))
    db.commit()
    db.close()

    # a failure half-way (batches of one track here) keeps the batches done and the version
    # change; the batch that failed is rolled back, whole
    monkeypatch.setattr(library, "UPGRADE_BATCH", 1)
    calls = []
    real = library._posterior_row

    def failing(packed, heard):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(packed, heard)

    monkeypatch.setattr(library, "_posterior_row", failing)
    with pytest.raises(RuntimeError):
        Library(path)
    assert "v4.db: upgrading to schema v6" in capsys.readouterr().err  # two batches: a progress bar
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta == {"schema_version": "6", "upgrade": "chunks"}
    packed = dict(db.execute("SELECT track_id, packed FROM posteriors"))
    assert packed[1][0] == 2 and packed[2] == old[2]  # track 1 converted, track 2 as it was
    assert [r[0] for r in db.execute("SELECT track_id FROM heard_frames")] == [1]
    done = packed[1]
    db.close()
    monkeypatch.setattr(library, "_posterior_row", real)

    # opening it again resumes: only track 2 is converted, then the mark goes
    converted = []
    monkeypatch.setattr(library, "_posterior_row", lambda p, h: converted.append(1) or real(p, h))
    lib = Library(path)
    assert lib.get_meta("schema_version") == "6" and lib.get_meta("upgrade") is None
    assert len(converted) == 1
    new = lib.posteriors([1, 2, 3])
    assert set(new) == {1, 2} and new[1] == done
    for i, blob in new.items():
        assert blob[0] == 2 and old[i][0] == 1  # chunks now
        a, b = unpack_posteriors(old[i]), unpack_posteriors(blob)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()  # bit-identical
        assert np.array_equal(lib.heard_frames([i])[i], heard_frames(match_text(texts[i]), a))
    assert len(lib.heard_frames([1])[1]) == len(match_text(texts[1]))
    assert chunk_packed(new[1]) == new[1]  # already in chunks: kept
    res = search_library(lib, None, lyrics="blue moon rising", top=3)
    assert res[0]["path"] == "/m/2.wav"
    lib.close()
    Library(path).close()  # opening it again changes nothing
    assert Library(path).posteriors([1, 2]) == new
