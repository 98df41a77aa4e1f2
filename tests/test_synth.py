"""Tests of the synthetic corpora (singalign.synth): labels true to the audio, real readers load them."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

needs_tools = pytest.mark.skipif(
    shutil.which("fluidsynth") is None
    or not Path("/usr/share/sword/modules/texts/ztext/engWEB2015eb").is_dir()
    or not any(
        Path(p).exists()
        for p in ("/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1", "/usr/lib/libespeak-ng.so.1")
    ),
    reason="needs espeak-ng, fluidsynth and sword-text-web (make system-deps)",
)

SEED = 11


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory) -> Path:
    from singalign.synth.songs import SongConfig, generate_songs

    out = tmp_path_factory.mktemp("songs")
    cfg = SongConfig(seconds=(10.0, 14.0), reverb_probability=0.0, styles=("pop", "jazz"))
    summary = generate_songs(out, 2, SEED, cfg, workers=1)
    assert summary["made"] == 2 and summary["failed"] == 0
    return out


def _song(song_dir: Path, index: int = 0) -> dict:
    return json.loads((song_dir / "songs" / f"train-{SEED}-{index:05d}.json").read_text())


# ---------------------------------------------------------------------------------------------- text


@needs_tools
def test_text_portions_are_disjoint_deterministic_and_respect_the_vocabulary():
    from singalign.synth import text

    train = text.sentences("train")
    held = text.sentences("heldout")
    assert len(train) > 20_000 and len(held) > 2_000
    assert not set(train) & set(held)
    assert abs(len(held) / (len(train) + len(held)) - text.HELDOUT_PERCENT / 100) < 0.02
    assert text.sentences("heldout") == held  # same call, same list
    vocab = text.vocabulary(500)
    small = text.select_sentences("train", 500)
    assert small and all(w in vocab for s in small for w in s.words)
    assert "israel" not in text.vocabulary(2000)  # proper names are left out
    lines = text.lyric_lines("heldout", 2000)
    assert all(text.LINE_MIN_WORDS <= len(x.words) <= text.LINE_MAX_WORDS for x in lines)
    assert all(x.portion == "heldout" for x in lines)


def test_bad_portion_is_a_clear_error():
    from singalign.errors import SingalignError
    from singalign.synth import text

    with pytest.raises(SingalignError, match="portion"):
        text.sentences("dev")


# ---------------------------------------------------------------------------------------------- voice


def test_syllabify_known_answer():
    from singalign.synth.sing import syllabify
    from singalign.synth.voice import Phoneme

    # eSpeak's phonemes for "remember": r I# m E m b 3 -> re | mem | ber
    ph = [Phoneme(s, 10 * i, 10 * i + 10) for i, s in enumerate(["r", "I#", "m", "E", "m", "b", "3"])]
    syl = syllabify(ph)
    assert [(s.start, s.end) for s in syl] == [(0, 2), (2, 5), (5, 7)]
    assert [s.vowel for s in syl] == [1, 3, 6]
    # Sonorant onsets belong to the sung part, obstruents come before it.
    assert syl[1].son_start == 2 and syl[2].son_start == 6


def _f0_check(_: int) -> tuple[float, float, list[str]]:
    import librosa

    from singalign.synth.voice import ESPEAK_RATE, espeak, espeak_f0

    audio, phonemes = espeak().synth("ah", "en-us+f3", pitch=60, rate=80, monotone=True)
    f0, voiced, _ = librosa.pyin(audio.astype(np.float64), fmin=80, fmax=600, sr=ESPEAK_RATE)
    return float(np.nanmedian(f0[voiced])), espeak_f0("en-us+f3", 60), [p.symbol for p in phonemes]


@needs_tools
def test_monotone_espeak_f0_agrees_with_a_pitch_tracker():
    pytest.importorskip("librosa")
    import multiprocessing as mp

    # In a child process: eSpeak keeps state between calls, and this test process later forks
    # the generators, whose output must not depend on what ran here.
    with mp.get_context("fork").Pool(1) as pool:
        tracked, estimated, symbols = pool.map(_f0_check, [0])[0]
    assert abs(1200 * np.log2(tracked / estimated)) < 15
    assert symbols and symbols[0].startswith("A")


# ---------------------------------------------------------------------------------------------- songs


@needs_tools
def test_sung_pitch_and_onsets_match_the_note_labels(song_dir):
    librosa = pytest.importorskip("librosa")
    import soundfile as sf

    for index in (0, 1):
        song = _song(song_dir, index)
        vocals, sr = sf.read(song_dir / "stems" / song["id"] / "vocals.flac", dtype="float32")
        y = librosa.resample(vocals.mean(axis=1), orig_sr=sr, target_sr=22050)
        hop = 256
        f0, voiced, _ = librosa.pyin(
            y.astype(np.float64), fmin=70, fmax=1000, sr=22050, frame_length=1024, hop_length=hop
        )
        times = librosa.times_like(f0, sr=22050, hop_length=hop)
        midi = librosa.hz_to_midi(np.where(voiced, f0, np.nan))
        errors, onset_errors = [], []
        notes = song["notes"]
        for k, n in enumerate(notes):
            sel = (times >= n["onset"]) & (times < n["offset"]) & voiced
            if sel.sum() >= 2:
                errors.append(100 * (np.nanmedian(midi[sel]) - n["pitch"]))
            if k and notes[k - 1]["pitch"] == n["pitch"] and n["onset"] - notes[k - 1]["offset"] < 0.1:
                continue  # a repeated pitch has no pitch onset to find
            close = np.abs(midi - n["pitch"]) < 0.6
            for i in np.flatnonzero((times >= n["onset"] - 0.1) & (times <= n["onset"] + 0.1)):
                if close[i : i + 3].all() and not close[i - 1]:
                    onset_errors.append(times[i] - n["onset"])
                    break
        errors = np.abs(np.asarray(errors))
        assert len(errors) >= 0.9 * len(notes)
        assert np.median(errors) < 20 and np.percentile(errors, 95) < 50, errors
        onset_errors = np.abs(np.asarray(onset_errors))
        assert len(onset_errors) >= 0.5 * len(notes)
        assert np.mean(onset_errors < 0.05) >= 0.9, onset_errors


@needs_tools
def test_word_times_cover_the_sung_audio_and_the_mix_is_exact(song_dir):
    import soundfile as sf

    song = _song(song_dir)
    stems = song_dir / "stems" / song["id"]
    vocals, sr = sf.read(stems / "vocals.flac", dtype="int16")
    acc, _ = sf.read(stems / "accompaniment.flac", dtype="int16")
    mix, _ = sf.read(stems / "mixture.flac", dtype="int16")
    assert sr == 44100 and vocals.shape == acc.shape == mix.shape and vocals.shape[1] == 2
    assert np.array_equal(mix.astype(np.int32), vocals.astype(np.int32) + acc.astype(np.int32))
    energy = vocals[:, 0].astype(np.float64) ** 2
    inside = np.zeros(len(energy), bool)
    for w in song["words"]:
        seg = energy[int(w["start"] * sr) : int(w["end"] * sr)]
        assert seg.mean() > 1e-3 * energy.max(), f"word {w['word']} is silent"
        inside[int(w["start"] * sr) : int(w["end"] * sr) + int(0.03 * sr)] = True
    assert energy[inside].sum() / energy.sum() > 0.99
    # Notes nest in words, words in lines.
    for n in song["notes"]:
        w = song["words"][n["word"]]
        assert w["start"] - 1e-6 <= n["onset"] < n["offset"] <= w["end"] + 1e-6


@needs_tools
def test_real_readers_load_what_was_generated(song_dir):
    from singalign.data.dali import read_dali
    from singalign.data.jamendo import read_jamendo

    songs = {s["id"]: s for s in (_song(song_dir, i) for i in (0, 1))}
    for rec in read_dali(song_dir / "dali"):
        s = songs[rec.id]
        assert Path(rec.audio).exists() and rec.kind == "song"
        assert [w.word for w in rec.words] == [w["word"] for w in s["words"]]
        assert [round(n.pitch) for n in rec.notes] == [n["pitch"] for n in s["notes"]]
        assert [ln.text for ln in rec.lines] == [ln["text"] for ln in s["lines"]]
    recs = read_jamendo(song_dir / "jamendo")
    assert sorted(r.id for r in recs) == sorted(songs)
    for rec in recs:
        s = songs[rec.id]
        assert [(w.word, round(w.start, 6)) for w in rec.words] == [
            (w["word"], w["start"]) for w in s["words"]
        ]
        assert [ln.text for ln in rec.lines] == [ln["text"] for ln in s["lines"]]
    notes = np.loadtxt(song_dir / "notes" / f"train-{SEED}-00000.txt", ndmin=2)
    first = songs[f"train-{SEED}-00000"]["notes"][0]
    assert notes[0, 0] == pytest.approx(first["onset"]) and notes[0, 2] == pytest.approx(
        440 * 2 ** ((first["pitch"] - 69) / 12)
    )
    meta = [json.loads(x) for x in (song_dir / "metadata.jsonl").read_text().splitlines()]
    assert {"id", "split", "tags", "caption", "lyrics", "bpm", "key", "voice", "seed"} <= set(meta[0])
    tags = meta[0]["tags"]
    assert meta[0]["style"] in tags and ("major key" in tags or "minor key" in tags)


@needs_tools
def test_same_seed_same_files_and_resume(song_dir, tmp_path):
    from singalign.synth.songs import SongConfig, generate_songs

    cfg = SongConfig(seconds=(10.0, 14.0), reverb_probability=0.0, styles=("pop", "jazz"))
    assert generate_songs(tmp_path, 1, SEED, cfg, workers=1)["made"] == 1
    mine = _tree_hashes(tmp_path)
    theirs = _tree_hashes(song_dir)
    for name, digest in mine.items():
        if f"-{SEED}-00000" in name:
            assert theirs[name] == digest, name
    again = generate_songs(tmp_path, 1, SEED, cfg, workers=1)
    assert again["skipped"] == 1 and again["made"] == 0


def test_bad_arguments_exit_non_zero_with_one_line(tmp_path, capsys):
    from singalign.cli import main

    out = tmp_path / "never"
    assert main(["synth", "songs", "--out", str(out), "--n", "1", "--styles", "polka"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("singalign: error:") and "polka" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["synth", "songs", "--out", str(out), "--n", "1", "--seconds", "50", "10"]) == 1
    assert main(["synth", "speech", "--out", str(out), "--n", "1", "--engines", "mbrola"]) == 1
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- speech


@needs_tools
def test_speech_in_librispeech_layout_loads_and_reproduces(tmp_path):
    from singalign.data.librispeech import read_librispeech
    from singalign.synth.speech import SpeechConfig, generate_speech

    cfg = SpeechConfig(
        split="dev-clean", engines=("espeak",), utterances_per_chapter=2, chapters_per_speaker=1
    )
    assert generate_speech(tmp_path / "a", 4, 5, cfg, workers=1)["failed"] == 0
    generate_speech(tmp_path / "b", 4, 5, cfg, workers=1)
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")
    recs = read_librispeech(tmp_path / "a")
    assert len(recs) == 4 and all(r.split == "dev-clean" and r.text == r.text.upper() for r in recs)
    assert all(r.duration and r.duration > 0.5 for r in recs)
    # Held-out split: held-out voices and held-out text.
    from singalign.synth import text
    from singalign.synth.voice import Voice

    held = set(text.sentences("heldout"))
    assert all(r.text.lower() in held for r in recs)
    speakers = {int(r.speaker) for r in recs}
    from singalign.synth.speech import all_speakers

    voices: dict[int, Voice] = dict(all_speakers())
    assert all(voices[s].pool == "heldout" for s in speakers)


@needs_tools
def test_festival_voice_speaks(tmp_path):
    import soundfile as sf

    from singalign.synth.speech import SpeechConfig, generate_speech

    if shutil.which("text2wave") is None:
        pytest.skip("festival not installed")
    cfg = SpeechConfig(
        split="train",
        engines=("festival",),
        voices=("kal_diphone",),
        utterances_per_chapter=1,
        voice_pool="all",
    )
    generate_speech(tmp_path, 1, 1, cfg, workers=1)
    flac = next(tmp_path.rglob("*.flac"))
    audio, sr = sf.read(flac)
    assert sr == 16000 and np.abs(audio).max() > 0.1 and len(audio) > sr
