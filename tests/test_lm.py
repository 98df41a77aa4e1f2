"""Building an n-gram LM: normalization, vocabulary limit, files written atomically, errors."""

from __future__ import annotations

import json
import random

import pytest

from singalign import lm
from singalign.cli import main
from singalign.errors import SingalignError


@pytest.fixture(autouse=True)
def _need_kenlm():
    try:
        lm.kenlm_tool("lmplz")
    except SingalignError:
        pytest.skip("KenLM lmplz not built (make kenlm)")


def _arpa_unigrams(path):
    words, inside = [], False
    for line in path.read_text().splitlines():
        if line == "\\1-grams:":
            inside = True
        elif inside and line.startswith("\\"):
            break
        elif inside and line.strip():
            words.append(line.split("\t")[1])
    return words


def test_build_normalizes_and_limits_vocabulary(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("The CAT sat, on the mat!\n12 cats sat.\nthe dog sat on the log\n\nCafé's dog\n")
    meta = lm.build_lm(text, tmp_path / "out", lm.LMConfig(order=3, vocab_size=4), progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(lm.LM_FILES)
    # counts: the 4, sat 3, on 2, dog 2, ... -> top 4 by count then alphabetically
    assert (out / "unigrams.txt").read_text().split() == ["the", "sat", "dog", "on"]
    assert set(_arpa_unigrams(out / "lm.arpa")) == {"<unk>", "<s>", "</s>", "the", "sat", "dog", "on"}
    saved = json.loads((out / "lm.json").read_text())
    assert saved == meta
    assert meta["order"] == 3 and meta["vocab_size"] == 4 and meta["n_sentences"] == 4
    assert meta["n_words"] == 6 + 3 + 6 + 2  # "twelve cats sat" and "cafe's dog" included
    assert len(meta["source_sha256"]) == 64
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_kenlm_scores_the_built_lm(tmp_path):
    import kenlm

    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat\n" * 5 + "a dog ran\n")
    lm.build_lm(text, tmp_path / "lm", lm.LMConfig(order=3), progress=False)
    model = kenlm.Model(str(tmp_path / "lm" / "lm.bin"))
    assert model.order == 3
    assert model.score("the cat sat on the mat") > model.score("mat the on sat cat the")


def test_rebuild_replaces_folder_and_errors(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("one two three\n")
    lm.build_lm(text, tmp_path / "lm", lm.LMConfig(order=2), progress=False)
    text.write_text("four five six\n")
    lm.build_lm(text, tmp_path / "lm", lm.LMConfig(order=2), progress=False)
    assert (tmp_path / "lm" / "unigrams.txt").read_text().split() == ["five", "four", "six"]
    with pytest.raises(SingalignError, match="not found"):
        lm.build_lm(tmp_path / "nope.txt", tmp_path / "x", progress=False)
    (tmp_path / "empty.txt").write_text("... !!!\n")
    with pytest.raises(SingalignError, match="no words"):
        lm.build_lm(tmp_path / "empty.txt", tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_missing_lmplz_names_make_kenlm(monkeypatch, tmp_path):
    monkeypatch.setattr(lm.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SingalignError, match="make kenlm"):
        lm.kenlm_tool("lmplz")


def test_cli_build(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("la la la song\n")
    assert (
        main(["lm", "build", "--text", str(text), "--order", "2", "--out", str(tmp_path / "lm"), "--quiet"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["vocab_size"] == 2
    assert main(["lm", "build", "--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x")]) == 1


def test_compact_layout_is_smaller_and_scores_alike(tmp_path):
    import kenlm

    text = tmp_path / "t.txt"
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    text.write_text("".join(" ".join(rng.choices(words, k=12)) + "\n" for _ in range(2000)))
    probing = lm.build_lm(text, tmp_path / "probing", lm.LMConfig(order=3), progress=False)
    compact = lm.build_lm(text, tmp_path / "compact", lm.LMConfig(order=3, **lm.COMPACT), progress=False)
    assert lm.layout_of(probing) == {
        "binary_type": "probing",
        "quantize_bits": 0,
        "backoff_bits": 0,
        "pointer_bits": 0,
    }
    assert lm.layout_of(compact) == lm.COMPACT
    size = {d: (tmp_path / d / "lm.bin").stat().st_size for d in ("probing", "compact")}
    assert size["compact"] < size["probing"] / 2
    p, c = (kenlm.Model(str(tmp_path / d / "lm.bin")) for d in ("probing", "compact"))
    for _ in range(20):
        s = " ".join(rng.choices(words, k=8))
        assert abs(p.score(s) - c.score(s)) < 0.05 * abs(p.score(s))  # 8-bit quantization: close, not equal


def test_layout_arguments_and_errors(tmp_path):
    assert lm.binary_args(lm.LMConfig()) == ["probing"]
    assert lm.binary_args(lm.LMConfig(**lm.COMPACT)) == ["-q", "8", "-b", "8", "-a", "22", "trie"]
    assert lm.binary_args(lm.LMConfig(binary_type="trie", quantize_bits=6)) == ["-q", "6", "-b", "6", "trie"]
    for bad in (
        {"binary_type": "probing", "quantize_bits": 8},
        {"binary_type": "trie", "backoff_bits": 8},
        {"binary_type": "trie", "quantize_bits": 26},
        {"binary_type": "trie", "pointer_bits": 256},
        {"binary_type": "hash"},
    ):
        with pytest.raises(SingalignError):
            lm.binary_args(lm.LMConfig(**bad))
    with pytest.raises(SingalignError, match="ARPA file not found"):
        lm.write_binary(tmp_path / "missing.arpa", tmp_path / "x.bin")


def test_write_binary_rebuilds_an_lm_folder_in_another_layout(tmp_path):
    import kenlm

    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat\n" * 5 + "a dog ran\n")
    lm.build_lm(text, tmp_path / "lm", lm.LMConfig(order=3), progress=False)
    out = lm.write_binary(tmp_path / "lm" / "lm.arpa", tmp_path / "c" / "lm.bin")
    assert kenlm.Model(str(out)).order == 3
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["lm.bin"]  # no temporary left


def test_cli_layout_flags(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("la la la song\nsing a song\n")
    base = ["lm", "build", "--text", str(text), "--order", "2", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "p")]) == 0
    assert json.loads(capsys.readouterr().out)["binary"] == "probing"
    assert main([*base, "--compact", "--out", str(tmp_path / "c")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["binary"] == "-q 8 -b 8 -a 22 trie" and set(out["bytes"]) == {"lm.arpa", "lm.bin"}
    assert lm.layout_of(json.loads((tmp_path / "c" / "lm.json").read_text())) == lm.COMPACT
    assert main([*base, "--quantize", "6", "--out", str(tmp_path / "q")]) == 0  # quantizing implies trie
    assert json.loads(capsys.readouterr().out)["binary"] == "-q 6 -b 6 trie"
    assert main([*base, "--compact", "--binary-type", "trie", "--out", str(tmp_path / "x")]) == 1
    assert main([*base, "--binary-type", "probing", "--quantize", "8", "--out", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


def test_default_lm_ships_the_compact_layout():
    assert lm.DEFAULT_LM_CONFIG.order == 5
    assert lm.layout_of(lm.DEFAULT_LM_CONFIG.to_dict()) == lm.COMPACT


def test_default_lyrics_text_is_the_train_lyric_lines(tmp_path, capsys):
    from singalign.synth import text as synth_text

    lines, source = lm.default_lm_text("lyrics")
    vocab = synth_text.vocabulary(synth_text.DEFAULT_LYRICS_VOCAB)
    assert "lyric lines" in source and len(lines) > 10_000
    assert all(w in vocab for line in lines[:2000] for w in line.split())
    # each is one sentence's lyric lines, joined: every line of the pool is in one of them, in order
    pool = synth_text.lyric_lines("train", synth_text.DEFAULT_LYRICS_VOCAB)
    assert sum(len(x.split()) for x in lines) == sum(len(p.words) for p in pool)
    assert lines[0].startswith(" ".join(pool[0].words))
    assert lm.default_lm_text("sentences")[0] == synth_text.sentences(portion="train")
    with pytest.raises(SingalignError, match="one of sentences, lyrics"):
        lm.default_lm_text("psalms")
    assert main(["lm", "build", "--text", "x.txt", "--lyrics", "--out", str(tmp_path / "x")]) == 1
    assert "--lyrics goes with --default" in capsys.readouterr().err
