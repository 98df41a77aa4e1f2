"""``singalign score``: JSON on stdout with known answers; bad files give one-line errors and exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from singalign.cli import main

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MIR_EVAL = DATA / "mir_eval_transcription"
JAMENDO = DATA / "jamendolyrics_sample"
SONG = "Fantasma_-_Los_Rombos"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.mark.skipif(not MIR_EVAL.is_dir(), reason="shared mir_eval vectors absent")
def test_score_notes_matches_mir_eval_file(capsys):
    code, out, _ = run(capsys, "score", "notes", str(MIR_EVAL / "ref03.txt"), str(MIR_EVAL / "est03.txt"))
    expected = json.loads((MIR_EVAL / "output03.json").read_text())
    assert code == 0
    assert out["COn"]["f"] == pytest.approx(expected["Onset_F-measure"], abs=1e-9)
    assert out["COnP"]["f"] == pytest.approx(expected["F-measure_no_offset"], abs=1e-9)
    assert out["COnPOff"]["recall"] == pytest.approx(expected["Recall"], abs=1e-9)


def test_score_notes_folders_and_result_json(tmp_path, capsys):
    ref, est = tmp_path / "ref", tmp_path / "est"
    ref.mkdir()
    est.mkdir()
    (ref / "a.txt").write_text("0.0 1.0 261.6256\n1.0 2.0 293.6648\n")
    (est / "a.json").write_text(
        json.dumps({"notes": [{"onset": 0.01, "offset": 1.0, "pitch": 60, "lyric": ""}]})
    )
    (ref / "b.txt").write_text("0.0 1.0 440\n")
    (est / "b.notes.txt").write_text("0.0, 1.0, 440  # comma-separated with a comment\n")
    code, out, _ = run(capsys, "score", "notes", str(ref), str(est))
    assert code == 0 and out["n_songs"] == 2
    per = {p["id"]: p for p in out["per_song"]}
    assert per["a"]["COnPOff"] == {"precision": 1.0, "recall": 0.5, "f": pytest.approx(2 / 3)}
    assert per["b"]["COnPOff"]["f"] == 1.0
    assert out["COnPOff"]["f"] == pytest.approx((2 / 3 + 1) / 2)
    # a broken estimate: reported by name, the other song still scored, exit 1
    (est / "b.notes.txt").write_text("0.0 1.0\n")
    code, out, err = run(capsys, "score", "notes", str(ref), str(est))
    assert code == 1 and "b.notes.txt:1" in err and out["n_songs"] == 1


def test_score_lyrics_files_folders_and_evidence(tmp_path, capsys):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir()
    hyp.mkdir()
    (ref / "s1.txt").write_text("The cat sat\non the mat\n")
    (hyp / "s1.json").write_text(json.dumps({"text": "the cat sit on the mat"}))
    (ref / "s2.txt").write_text("Hello, 2 worlds!")
    (hyp / "s2.txt").write_text("hello two worlds")
    (ref / "s3.txt").write_text("never sung")  # no hypothesis: all deletions
    (ref / "s1.words.txt").write_text("the\ncat\n")  # JamendoLyrics word lists are skipped
    code, out, err = run(capsys, "score", "lyrics", str(ref), str(hyp), "--out", str(tmp_path / "ev"))
    assert code == 0 and "s3" in err
    assert out["wer"] == pytest.approx((1 + 0 + 2) / (6 + 3 + 2))
    assert out["missing"] == ["s3"]
    assert [p["id"] for p in out["per_song"]] == ["s1", "s2", "s3"]
    lines = (tmp_path / "ev" / "per_utterance.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["alignment"] == "the cat sat->sit on the mat"
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["word_errors"] == 3
    code, out, _ = run(capsys, "score", "lyrics", str(ref / "s2.txt"), str(hyp / "s2.txt"))
    assert code == 0 and out["wer"] == 0.0


def test_score_lyrics_bad_inputs(tmp_path, capsys):
    (tmp_path / "r.txt").write_bytes(b"\xff\xfe bad")
    (tmp_path / "h.txt").write_text("x")
    code, _, err = run(capsys, "score", "lyrics", str(tmp_path / "r.txt"), str(tmp_path / "h.txt"))
    assert code == 1 and "r.txt: not UTF-8" in err
    code, _, err = run(capsys, "score", "lyrics", str(tmp_path / "missing.txt"), str(tmp_path / "h.txt"))
    assert code == 1 and "missing.txt" in err and err.count("\n") == 1


@pytest.mark.skipif(not JAMENDO.is_dir(), reason="shared JamendoLyrics sample absent")
def test_score_alignment_on_jamendo_layout(tmp_path, capsys):
    import csv

    words = (JAMENDO / "lyrics" / f"{SONG}.words.txt").read_text().split()
    rows = list(csv.DictReader((JAMENDO / "annotations" / "words" / f"{SONG}.csv").open()))
    hyp = [
        {"word": w, "start": float(r["word_start"]) + 0.2, "end": float(r["word_end"])}
        for w, r in zip(words, rows, strict=True)
    ]
    hyp[3]["start"] += 1.0  # one word 1.2 s late
    del hyp[10]  # one word missing
    (tmp_path / "h.json").write_text(json.dumps({"words": hyp}))
    csv_path = JAMENDO / "annotations" / "words" / f"{SONG}.csv"
    code, out, _ = run(capsys, "score", "alignment", str(csv_path), str(tmp_path / "h.json"))
    assert code == 0
    assert out["n_ref_words"] == 88 and out["n_paired"] == 87
    assert out["median_abs_error"] == pytest.approx(0.2)
    assert out["mean_abs_error"] == pytest.approx((86 * 0.2 + 1.2) / 87)
    assert out["within_0.3s"] == pytest.approx(86 / 88)


def test_score_alignment_without_words_needs_equal_counts(tmp_path, capsys):
    ann = tmp_path / "annotations" / "words"
    ann.mkdir(parents=True)
    (ann / "x.csv").write_text("word_start,word_end,line_end\n1.0,1.5,nan\n2.0,2.5,2.5\n")
    (tmp_path / "x.json").write_text(json.dumps({"words": [{"word": "a", "start": 1.1, "end": 1.4}]}))
    code, _, err = run(capsys, "score", "alignment", str(ann / "x.csv"), str(tmp_path / "x.json"))
    assert code == 1 and "cannot pair" in err
    shutil.copy(tmp_path / "x.json", tmp_path / "y.json")
    (tmp_path / "x.json").write_text(
        json.dumps(
            {"words": [{"word": "a", "start": 1.1, "end": 1.4}, {"word": "b", "start": 2.5, "end": 3}]}
        )
    )
    code, out, _ = run(capsys, "score", "alignment", str(ann / "x.csv"), str(tmp_path / "x.json"))
    assert code == 0 and out["mean_abs_error"] == pytest.approx(0.3) and out["within_0.3s"] == 0.5
