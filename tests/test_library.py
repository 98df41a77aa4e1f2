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
from conftest import ROOT

from singalign.bundle import Bundle, init_bundle
from singalign.cli import main
from singalign.library import (
    Library,
    TrackAnalysis,
    TrackAnalyzer,
    fuse_rankings,
    index_paths,
    search_library,
)
from singalign.models.heads import AudioTextHead, HeadConfig, head_config_for, save_with_head

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
