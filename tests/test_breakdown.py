"""Error rates broken down by song attribute (singalign.evaluate.breakdown, recipes/breakdown.py)."""

import json

import pytest
from conftest import load_recipe

from singalign.evaluate import breakdown

META = {
    "s1": {"id": "s1", "voice": {"type": "alto"}, "mix": {"vad": 0.5}, "tags": ["rock", "fast"]},
    "s2": {"id": "s2", "voice": {"type": "bass"}, "mix": {"vad": 4.0}, "tags": ["rock"]},
    "s3": {"id": "s3", "voice": {"type": "alto"}, "mix": {"vad": 2.9}},
}


def _row(id_, we, nw, ce, nc):
    return {"id": id_, "word_errors": we, "n_ref_words": nw, "char_errors": ce, "n_ref_chars": nc}


A = [
    _row("s1/seg000", 1, 4, 2, 20),
    _row("s1/seg001", 3, 6, 6, 30),
    _row("s2/seg000", 0, 5, 1, 25),
    _row("s3", 2, 10, 5, 50),
    {"id": "s3/seg009", "hypothesis": "no reference"},  # not scored: left out
    _row("s4", 9, 9, 9, 9),  # no metadata: left out
]
B = [_row("s1/seg000", 0, 4, 0, 20), _row("s2/seg000", 5, 5, 25, 25)]


def test_groups_pool_errors_over_their_items_per_evaluation():
    rows = breakdown({"a": A, "b": B}, META, "voice.type")
    alto, bass = rows
    assert alto["group"] == "alto" and alto["n_songs"] == 2 and alto["n_items"] == 3
    assert alto["n_ref_words"] == 20 and alto["a"] == {"wer": 6 / 20, "cer": 13 / 100}
    assert alto["b"] == {"wer": 0.0, "cer": 0.0}  # b scored only s1/seg000 of the altos
    assert bass["a"]["wer"] == 0.0 and bass["b"] == {"wer": 1.0, "cer": 1.0}


def test_numbers_fall_into_bins_and_lists_count_in_each_group():
    bins = breakdown({"a": A}, META, "mix.vad", width=3.0)
    assert [(r["group"], r["n_songs"], r["a"]["wer"]) for r in bins] == [
        ((0.0, 3.0), 2, 6 / 20),
        ((3.0, 6.0), 1, 0.0),
    ]
    tags = breakdown({"a": A}, META, "tags")
    assert [(r["group"], r["n_items"]) for r in tags] == [("fast", 2), ("rock", 3)]  # s3 has no tags
    assert breakdown({"a": A}, META, "voice.age") == []


def test_recipe_writes_tables_and_refuses_bad_input(tmp_path, capsys):
    for name, rows in (("a", A), ("b", B)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hypotheses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in META.values()))
    recipe = load_recipe("breakdown")
    args = ["--eval", str(tmp_path / "a"), str(tmp_path / "b"), "--metadata", str(tmp_path / "meta.jsonl")]
    assert recipe.main([*args, "--by", "voice.type", "mix.vad=3", "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["alto", "2", "3", "20", "30.0", "13.0", "0.0", "0.0"]
    assert lines[5].split() == ["[0,", "3)", "2", "3", "20", "30.0", "13.0", "0.0", "0.0"]
    saved = json.loads((tmp_path / "out" / "breakdown.json").read_text())
    assert saved["mix.vad"][1]["group"] == [3.0, 6.0] and saved["voice.type"][1]["b"]["wer"] == 1.0
    assert (tmp_path / "out" / "breakdown.txt").read_text().splitlines()[1] == lines[1]
    assert recipe.main([*args, "--by", "mix.vad=0"]) == 2
    assert "bin width" in capsys.readouterr().err
    assert (
        recipe.main(
            ["--eval", str(tmp_path / "none"), "--metadata", str(tmp_path / "meta.jsonl"), "--by", "x"]
        )
        == 2
    )
    assert "hypotheses.jsonl: not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # two --eval, one --label
        recipe.main([*args, "--by", "x", "--label", "only"])
