"""The recipe chain on tiny synthetic corpora, through the real readers and the recipe scripts."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, run_process_group

from singalign.bundle import Bundle
from singalign.library import Library


def _run(*args, timeout=600):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_chain_on_tiny_synthetic_corpora(tmp_path):
    w = tmp_path
    cli = ["-m", "singalign.cli"]
    _run(
        *cli,
        "synth",
        "songs",
        "--out",
        str(w / "songs"),
        "--n",
        "2",
        "--seed",
        "5",
        "--split",
        "train",
        "--seconds",
        "12",
        "16",
        "--workers",
        "2",
    )
    _run(*cli, "synth", "speech", "--out", str(w / "speech"), "--n", "4", "--seed", "5", "--split", "train-clean", "--utterances-per-chapter", "4", "--workers", "1")  # fmt: skip
    _run(
        "recipes/manifest.py",
        "--corpus",
        "dali",
        "--root",
        str(w / "songs/dali"),
        "--split",
        "train",
        "--out",
        str(w / "m/songs.jsonl"),
    )
    _run(
        "recipes/manifest.py",
        "--corpus",
        "librispeech",
        "--root",
        str(w / "speech"),
        "--out",
        str(w / "m/speech.jsonl"),
    )
    _run(
        "recipes/manifest.py",
        "--corpus",
        "jamendo",
        "--root",
        str(w / "songs/jamendo"),
        "--out",
        str(w / "m/jamendo.jsonl"),
    )
    songs = [json.loads(x) for x in (w / "m/songs.jsonl").read_text().splitlines()]
    jam = [json.loads(x) for x in (w / "m/jamendo.jsonl").read_text().splitlines()]
    assert len(songs) == 2 and len(jam) == 2 and all(s["notes"] and s["words"] for s in songs)
    assert [len(s["words"]) for s in songs] == [len(j["words"]) for j in jam]  # the two layouts agree
    out = _run(
        "recipes/features.py",
        "--manifest",
        str(w / "m/songs.jsonl"),
        str(w / "m/speech.jsonl"),
        "--out",
        str(w / "prep"),
    )
    items = [json.loads(x) for x in (w / "prep/items.jsonl").read_text().splitlines()]
    assert {i["kind"] for i in items} == {"song", "speech"} and all(i["n_frames"] <= 1000 for i in items)
    # resumable: a second run writes nothing new
    assert "0 new items" in _run(
        "recipes/features.py",
        "--manifest",
        str(w / "m/songs.jsonl"),
        "--out",
        str(w / "prep"),
        "--threads",
        "1",
    )
    assert "new items" in out
    _run("recipes/train.py", "--train", str(w / "prep"), "--valid", str(w / "prep"), "--out", str(w / "run"), "--preset", "tiny",
         "--mode", "multitask", "--epochs", "2", "--batch-size", "4", "--speech-per-batch", "1",
         "--lr-decay", "cosine", "--lr-final", "0.5")  # fmt: skip
    hist = [json.loads(x) for x in (w / "run/history.jsonl").read_text().splitlines()]
    assert len(hist) == 2 and "valid_wer" in hist[-1] and "valid_pitch_frame_error" in hist[-1]
    _run("recipes/evaluate.py", "--manifest", str(w / "m/songs.jsonl"), "--bundle", str(w / "run/best"), "--greedy", "--no-separation", "--out", str(w / "eval"),
         "--also", "beam", "--align")  # fmt: skip
    summary = json.loads((w / "eval/summary.json").read_text())
    assert (
        summary["n_items"] == 2
        and 0 <= summary["cer"]
        and set(summary["notes"]) == {"COn", "COnP", "COnPOff"}
    )
    assert "Table 1" in (w / "eval/tables.txt").read_text()
    assert set(summary["decoders"]) == {"beam"} and 0 <= summary["decoders"]["beam"]["cer"]
    # Table 1 on prepared items (how oracle models are scored): the same model, segments, true notes
    out = _run("recipes/evaluate.py", "--prepared", str(w / "prep"), "--bundle", str(w / "run/best"), str(w / "run/best"),
               "--label", "a", "b", "--greedy", "--also", "beam", "--out", str(w / "eval_prep"))  # fmt: skip
    prep_a = json.loads((w / "eval_prep/a/summary.json").read_text())
    assert prep_a["n_items"] >= 2 and prep_a["decoding"] == "greedy" and "pitch_frame_error" in prep_a
    assert prep_a["wer"] == json.loads((w / "eval_prep/b/summary.json").read_text())["wer"]
    assert "Table 1" in (w / "eval_prep/tables.txt").read_text()
    # the same model twice: every paired difference is exactly 0, and "b" is never better
    paired = json.loads((w / "eval_prep/paired.json").read_text())["b"]
    assert paired["versus"] == "a" and paired["n_items"] == prep_a["n_items"]
    assert paired["wer"] == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_b_not_better": 1.0}
    assert "Table 1b. Differences to a" in (w / "eval_prep/tables.txt").read_text()
    # --limit with --prepared: the first item only (e.g. a sample of the training items)
    _run("recipes/evaluate.py", "--prepared", str(w / "prep"), "--bundle", str(w / "run/best"), "--greedy",
         "--limit", "1", "--out", str(w / "eval_one"))  # fmt: skip
    one = [json.loads(x) for x in (w / "eval_one/hypotheses.jsonl").read_text().splitlines()]
    first = json.loads((w / "eval_prep/a/hypotheses.jsonl").read_text().splitlines()[0])
    assert [r["id"] for r in one] == [first["id"]] and one[0]["hypothesis"] == first["hypothesis"]
    # the notes-input ablation runs through the recipe, and only on prepared items
    _run("recipes/evaluate.py", "--prepared", str(w / "prep"), "--bundle", str(w / "run/best"), "--greedy",
         "--withhold-notes", "--out", str(w / "eval_withheld"))  # fmt: skip
    assert json.loads((w / "eval_withheld/summary.json").read_text())["notes_input"] == "withheld (zeros)"
    _run("recipes/evaluate.py", "--prepared", str(w / "prep"), "--bundle", str(w / "run/best"), "--greedy",
         "--true-notes", "--out", str(w / "eval_true"))  # fmt: skip
    assert json.loads((w / "eval_true/summary.json").read_text())["notes_input"] == "true notes"
    bad = subprocess.run([sys.executable, "recipes/evaluate.py", "--manifest", str(w / "m/songs.jsonl"), "--bundle",
                          str(w / "run/best"), "--withhold-notes", "--out", str(w / "x")],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "--withhold-notes needs --prepared" in bad.stderr
    bad = subprocess.run([sys.executable, "recipes/evaluate.py", "--prepared", str(w / "prep"), "--bundle",
                          str(w / "run/best"), "--limit", "0", "--out", str(w / "x")],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "--limit must be at least 1, not 0" in bad.stderr
    # the note decoding tuned on the songs, saved into a copy of the bundle that transcribes with it
    out = _run("recipes/tune_notes.py", "--bundle", str(w / "run/best"), "--manifest", str(w / "m/songs.jsonl"),
               "--no-separation", "--thresholds", "0.3", "0.6", "--min-frames", "0", "4", "--out", str(w / "notes.json"),
               "--save-bundle", str(w / "tuned"), "--quiet")  # fmt: skip
    tuned = json.loads((w / "notes.json").read_text())
    assert tuned["n_items"] == 2 and len(tuned["grid"]) == 4 and "COnP F (%)" in out
    saved = Bundle.load(w / "tuned")
    assert saved.config["decode"]["onset_threshold"] == tuned["best"]["onset_threshold"]
    assert saved.config["decode"]["min_note_frames"] == tuned["best"]["min_note_frames"]
    report = _run("recipes/report.py", "--run", str(w / "run"), "--eval", str(w / "eval/summary.json"),
                  "--note", "tiny test", "--out", str(w / "REPORT.txt"))  # fmt: skip
    assert (
        "trained: 2 epochs" in report and "| 2 |" in report and "(beam)" in report and "alignment" in report
    )
    assert "lr 0.0005 (cosine decay to 0.00025)" in report
    assert (w / "REPORT.txt").read_text().strip() == report.strip()
    n_words = sum(len(s["words"]) for s in songs)
    assert summary["alignment"]["n_ref_words"] == n_words and summary["alignment"]["mean_abs_error"] >= 0
    # the audio-text heads on the trained (tiny) model: train, evaluate, index and search
    meta = str(w / "songs/metadata.jsonl")
    _run("recipes/heads_train.py", "--bundle", str(w / "run/best"), "--train", str(w / "prep"), "--valid", str(w / "prep"),
         "--metadata", meta, "--out", str(w / "heads"), "--text-tower", "bow", "--epochs", "1", "--batch-size", "4",
         "--grad-clip", "0", "--select", "loss")  # fmt: skip
    cfg = json.loads((w / "heads/train_config.json").read_text())
    assert cfg["grad_clip"] is None and cfg["select"] == "loss" and cfg["head"]["evidence"] is True
    # the head's run in the training report (a head run has no lyrics model of its own)
    report = _run("recipes/report.py", "--run", str(w / "heads"), "--out", str(w / "REPORT_heads.txt"))
    assert "## heads\naudio-text head (frozen, " in report and "trained: 1 epochs, " in report
    assert "best (exported) epoch 1 by loss" in report and "| valid_tag_roc_auc |" in report
    assert sum(line.startswith("| 1 | ") for line in report.splitlines()) == 1
    _run("recipes/heads_eval.py", "--bundle", str(w / "heads/best"), "--prepared", str(w / "prep"), "--metadata", meta,
         "--out", str(w / "heads_eval"))  # fmt: skip
    summary = json.loads((w / "heads_eval/summary.json").read_text())
    assert summary["n_songs"] == 2 and 0 <= summary["tag_roc_auc"] <= 1 and summary["t2m_medr"] in (1, 1.5, 2)
    out = _run("recipes/heads_library_eval.py", "--bundle", str(w / "heads/best"), "--audio", str(w / "songs/dali"),
               "--metadata", meta, "--db", str(w / "lib.db"), "--out", str(w / "lib_eval"), "--no-separation", "--greedy")  # fmt: skip
    summary = json.loads((w / "lib_eval/summary.json").read_text())
    assert summary["songs"] == 2 and summary["library"] == 2 and 1 <= summary["lyrics_medr"] <= 2
    rows = [json.loads(x) for x in (w / "lib_eval/queries.jsonl").read_text().splitlines()]
    lyr = [r for r in rows if r["task"] == "lyrics"]
    assert len(lyr) == 2 and all(1 <= r["rank_any"] <= r["rank"] and r["sung_in"] >= 1 for r in lyr)
    assert summary["lyrics_any_r@1"] >= summary["lyrics_r@1"]
    assert summary["lyrics_unique_queries"] == sum(r["sung_in"] == 1 for r in lyr)
    lib = Library(w / "lib.db")  # made as `index add` makes one: search --like embeds new files the same way
    assert lib.get_meta("separation") == "0" and json.loads(lib.get_meta("spaces")) == ["tags", "lyrics"]
    lib.close()
    # data selection with the trained (tiny) pitch model, with planted faults reported
    out = _run("recipes/select_songs.py", "--manifest", str(w / "m/songs.jsonl"), "--bundle", str(w / "run/best"),
               "--out", str(w / "m/selected.jsonl"), "--no-separation", "--plant", "0.5", "--threshold", "1.0")  # fmt: skip
    report = [json.loads(x) for x in (w / "m/selected.report.jsonl").read_text().splitlines()]
    assert len(report) == 2 and all(len(r["errors"]) == 25 for r in report)
    assert "2/2 songs kept" in out and "planted faults handled correctly" in out  # threshold 1 keeps all
    # a pitch model that keeps no song stops the chain (exit 1) instead of letting it train on speech alone
    bad = subprocess.run([sys.executable, "recipes/select_songs.py", "--manifest", str(w / "m/songs.jsonl"), "--bundle",
                          str(w / "run/best"), "--out", str(w / "m/none.jsonl"), "--no-separation", "--threshold", "0"],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 1 and "no song kept" in bad.stderr and "0/2 songs kept" in bad.stdout
    # the same training recipe under torchrun, two processes (gloo), from the first run's config
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = run_process_group(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29519",
         "recipes/train.py", "--config", str(w / "run/train_config.json"), "--out", str(w / "run_ddp"),
         "--epochs", "1"],
        timeout=600, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    hist = [json.loads(x) for x in (w / "run_ddp/history.jsonl").read_text().splitlines()]
    assert len(hist) == 1 and (w / "run_ddp/best/bundle.json").exists()


@pytest.mark.slow
def test_make_recipe_synthetic_runs_the_whole_chain(tmp_path):
    """recipes/run_synthetic.sh (`make recipe-synthetic`) end to end at tiny sizes, with a separator:
    every stage runs, is timed, each song is separated once, and the evaluation tables come out."""
    env = {
        **os.environ,
        "PY": sys.executable,
        "WORK": str(tmp_path),
        "N_SPEECH": "8",
        "N_SPEECH_DEV": "4",
        "N_SONGS": "3",
        "N_DEV": "2",
        "N_TEST": "2",
        "SONG_SECONDS": "10 12",
        "PRESET": "tiny",
        "SEPARATOR": "train",  # an Open-Unmix model trained 2 steps: the vocals cache's path through every stage
        "SEP_STEPS": "2",
        "PRETRAIN_EPOCHS": "1",
        "EPOCHS": "1",
        "SELECT_THRESHOLD": "1.0",  # an untrained tiny pitch model is wrong everywhere: keep every song
        "TRAIN_FLAGS": "",
        "OMP_NUM_THREADS": "1",
        "HEADS_EPOCHS": "1",
        "HEADS_FLAGS": "--text-tower bow --batch-size 4",
    }
    proc = subprocess.run(["bash", "recipes/run_synthetic.sh"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    times = [
        x.split("\t")
        for x in (tmp_path / "stage_times.tsv").read_text().splitlines()
        if not x.startswith("#")
    ]
    assert [t[0] for t in times] == ["corpora", "manifests", "separation", "features", "pretrain",
                                     "pitch_and_select", "finetune", "evaluate", "bundle"]  # fmt: skip
    assert all(int(t[1]) >= 0 for t in times)
    vocals = list((tmp_path / "vocals").glob("*.flac"))
    assert len(vocals) == 3 + 2 + 2  # every song separated once (2 shards), the cache every stage reads
    kept = (tmp_path / "manifests/songs_train_selected.jsonl").read_text().splitlines()
    assert len(kept) == 3  # threshold 1 keeps all three songs
    for mode in ("pretrain", "pitch_onset_only", "baseline", "oracle", "multitask"):
        assert (tmp_path / "runs" / mode / "best/bundle.json").exists(), mode
    tables = (tmp_path / "eval/tables.txt").read_text()
    assert all(m in tables for m in ("baseline", "multitask", "pitch_onset_only"))
    table1 = (tmp_path / "eval/table1/tables.txt").read_text()
    assert "oracle" in table1 and "Table 1b" in table1
    # the chain's result as a release bundle: LM, tuned decoding, the head, the report; it transcribes
    bundle = Bundle.load(tmp_path / "bundle")
    assert bundle.config["lm_tuning"]["n_items"] == 2 and bundle.config["notes_tuning"]["n_items"] == 2
    assert bundle.config["decode"]["alpha"] == bundle.config["lm_tuning"]["best"]["alpha"]
    assert bundle.config["head"] and (tmp_path / "bundle/lm/lm.bin").exists()
    assert "trained on synthetic singing" in bundle.config["label"]
    report = (tmp_path / "bundle/REPORT.txt").read_text()
    assert "pretrain" in report and "multitask" in report and "(beam)" in report
    summary = json.loads((tmp_path / "eval/bundle/summary.json").read_text())
    assert summary["n_items"] == 2 and "alignment" in summary


def test_threads_option_sets_torch_threads_and_refuses_zero():
    import argparse

    import torch

    from singalign import recipe

    ap = argparse.ArgumentParser()
    recipe.add_shard_args(ap)
    before = torch.get_num_threads()
    try:
        args = ap.parse_args(["--shard", "1/2", "--threads", "1"])
        recipe.apply_threads(args)
        assert (args.shard, torch.get_num_threads()) == ("1/2", 1)
        recipe.apply_threads(ap.parse_args([]))  # not given: left as it is
        assert torch.get_num_threads() == 1
        with pytest.raises(SystemExit, match="at least 1"):
            recipe.apply_threads(ap.parse_args(["--threads", "0"]))
    finally:
        torch.set_num_threads(before)
