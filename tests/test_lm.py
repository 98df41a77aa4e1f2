"""Building an n-gram LM: normalization, vocabulary limit, files written atomically, errors."""

from __future__ import annotations

import json

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
