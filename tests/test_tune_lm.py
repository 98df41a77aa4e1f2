"""LM weight tuning and LMs in bundles, with known answers on planted posteriors.

The posteriors are planted so that the acoustic model prefers a wrong letter in one word of each
sentence ("cet", "lag", "leght"); only the LM (which knows "cat", "log", "light") fixes them, so the
best LM weight is above 0, and alpha = beta = 0 decodes exactly like beam search without an LM.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_recipe, make_prepared

from singalign import decode
from singalign.bundle import Bundle, init_bundle, sha256_file
from singalign.constants import BLANK_INDEX, CHAR_TO_INDEX, VOCAB
from singalign.decode import DecodeOptions
from singalign.errors import BundleError, MissingWeightsError, SingalignError
from singalign.evaluate import grid_table, tune_lm
from singalign.lm import COMPACT, LMConfig, build_lm, kenlm_tool, layout_of

V = len(VOCAB)
CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog sat on the mat",
    "let there be light and there was light",
]
# (sentence, index of the letter the acoustic model gets wrong, the wrong letter it prefers)
AMBIGUOUS = [("the cat sat", 5, "e"), ("the dog sat on the log", 20, "a"), ("let there be light", 14, "e")]


def planted(text: str, wrong_at: int | None = None, wrong: str = "", frames_per_char: int = 3) -> np.ndarray:
    """(T, 34) log-posteriors: each character peaks on its first frame, blanks elsewhere; at
    ``wrong_at`` the ``wrong`` letter gets 0.55 and the right one 0.40."""
    rows = []
    for i, ch in enumerate(text):
        for t in range(frames_per_char):
            row = np.full(V, 0.03 / (V - 1))
            row[CHAR_TO_INDEX[ch] if t == 0 else BLANK_INDEX] = 0.97
            if t == 0 and i == wrong_at:
                row[:] = 0.05 / (V - 2)
                row[CHAR_TO_INDEX[wrong]], row[CHAR_TO_INDEX[ch]] = 0.55, 0.40
            rows.append(row / row.sum())
    rows.append(np.eye(V)[BLANK_INDEX] * 0.97 + 0.03 / V)
    return np.log(np.array(rows)).astype(np.float32)


def planted_items() -> list[tuple[str, str, np.ndarray]]:
    return [(f"u{i}", text, planted(text, at, wrong)) for i, (text, at, wrong) in enumerate(AMBIGUOUS)]


def _lm_folder(folder, **layout):
    try:
        kenlm_tool("lmplz")
    except SingalignError:
        pytest.skip("KenLM lmplz not built (make kenlm)")
    text = folder / "corpus.txt"
    text.write_text("\n".join(CORPUS * 3) + "\n")
    build_lm(text, folder / "lm", LMConfig(order=3, **layout), progress=False)
    return folder / "lm"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return _lm_folder(tmp_path_factory.mktemp("lm"))


def test_planted_posteriors_need_the_lm():
    for text, at, wrong in AMBIGUOUS:
        lp = planted(text, at, wrong)
        misheard = text[:at] + wrong + text[at + 1 :]
        assert decode.ctc_greedy(lp)[0] == misheard
        assert decode.ctc_beam(lp, DecodeOptions(backend="pyctcdecode")) == misheard


def test_tuning_picks_a_positive_lm_weight(tiny_lm):
    items = planted_items()
    posts, refs = [p for _, _, p in items], [r for _, r, _ in items]
    opts = DecodeOptions(backend="pyctcdecode", lm_path=str(tiny_lm))
    rows = decode.tune_lm_weights(posts, refs, (0.0, 0.5, 1.0), (0.0, 1.0), opts)
    assert len(rows) == 6 and rows[0]["alpha"] > 0 and rows[0]["wer"] == 0.0
    # 3 of the 13 words are misheard without the LM; alpha = 0 does not fix any, whatever beta
    assert all(r["wer"] == pytest.approx(3 / 13) for r in rows if r["alpha"] == 0.0)


def test_lm_weight_and_bonus_zero_is_no_lm(tiny_lm):
    rng = np.random.default_rng(7)
    plain = DecodeOptions(backend="pyctcdecode")
    zero = DecodeOptions(backend="pyctcdecode", lm_path=str(tiny_lm), alpha=0.0, beta=0.0)
    for _, _, lp in planted_items():
        assert decode.ctc_beam(lp, zero) == decode.ctc_beam(lp, plain)
    for text in [*CORPUS, "zebras quietly jump"]:  # noisy posteriors, with words the LM does not know
        x = rng.normal(0, 1.5, (3 * len(text), V))
        x[np.arange(0, 3 * len(text), 3), [CHAR_TO_INDEX[c] for c in text]] += 4.0
        lp = (x - np.logaddexp.reduce(x, axis=1, keepdims=True)).astype(np.float32)
        assert decode.ctc_beam(lp, zero) == decode.ctc_beam(lp, plain)


def test_tune_lm_reports_baselines_and_tuned_options(tiny_lm):
    opts = DecodeOptions(backend="pyctcdecode", lm_path=str(tiny_lm))
    res = tune_lm(planted_items(), opts, (0.0, 0.5), (0.0, 1.0), {"method": "beam", "beam_width": 25}, False)
    assert res["n_items"] == 3 and res["n_ref_words"] == 13 and res["ids"] == ["u0", "u1", "u2"]
    assert res["greedy"]["wer"] == res["beam_no_lm"]["wer"] == pytest.approx(3 / 13)
    zero = next(r for r in res["grid"] if (r["alpha"], r["beta"]) == (0.0, 0.0))
    assert zero["wer"] == res["beam_no_lm"]["wer"]
    assert res["best"] == res["grid"][0] and res["best"]["alpha"] == 0.5
    assert res["decode_options"] == {
        "method": "beam",
        "beam_width": 25,
        "alpha": 0.5,
        "beta": res["best"]["beta"],
    }
    table = grid_table(res["grid"])
    assert "23.08" in table and "0.00*" in table
    with pytest.raises(SingalignError, match="no language model"):
        tune_lm(planted_items(), DecodeOptions(), (0.0,), (0.0,))
    with pytest.raises(SingalignError, match="no validation items"):
        tune_lm([], opts, (0.0,), (0.0,))


def test_make_bundle_ships_a_compact_lm_with_checksums(tmp_path, tiny_lm, capsys):
    src = init_bundle(tmp_path / "b", preset="tiny")
    make_bundle = load_recipe("make_bundle")
    assert make_bundle.main(["--from", str(src), "--out", str(tmp_path / "rel"), "--lm", str(tiny_lm)]) == 0
    rel = Bundle.load(tmp_path / "rel")
    shipped = sorted(p.relative_to(rel.path).as_posix() for p in rel.path.rglob("*") if p.is_file())
    assert shipped == ["bundle.json", "lm/lm.bin", "lm/unigrams.txt", "model.safetensors"]  # no ARPA
    assert set(rel.config["files"]) == {"model.safetensors", "lm/lm.bin", "lm/unigrams.txt"}
    lm_cfg = rel.config["lm"]
    assert layout_of(lm_cfg) == COMPACT and lm_cfg["binary"] == "lm/lm.bin" and "files" not in lm_cfg
    assert len(lm_cfg["arpa_sha256"]) == 64
    assert (rel.path / "lm/lm.bin").read_bytes() != (tiny_lm / "lm.bin").read_bytes()  # rebuilt compact
    # the decoder reads the bundle's compact LM (pyctcdecode over kenlm's trie) and it does its job
    from singalign.transcribe import TranscribeOptions, Transcriber

    opts = Transcriber(rel, TranscribeOptions(separation=False)).decode_options
    assert opts.lm_path == str(rel.path / "lm/lm.bin") and opts.unigrams_path == str(
        rel.path / "lm/unigrams.txt"
    )
    lp = planted(*AMBIGUOUS[0])
    assert decode.ctc_beam(lp, opts) == "the cat sat"
    # verification covers the LM files
    good = (rel.path / "lm/lm.bin").read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    (rel.path / "lm/lm.bin").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="lm/lm.bin: SHA-256"):
        Bundle.load(rel.path)
    (rel.path / "lm/lm.bin").write_bytes(good)
    (rel.path / "lm/unigrams.txt").unlink()
    with pytest.raises(MissingWeightsError, match="unigrams.txt"):
        Bundle.load(rel.path)
    # a bundle over its size cap is not written
    big = ["--from", str(src), "--out", str(tmp_path / "big"), "--lm", str(tiny_lm), "--max-mb", "0.01"]
    capsys.readouterr()
    assert make_bundle.main(big) == 1
    assert "over its cap of 0.0 MB" in capsys.readouterr().err
    assert not (tmp_path / "big").exists()
    # --lm-binary as-built copies the folder's binary as it is
    assert (
        make_bundle.main(
            [
                "--from",
                str(src),
                "--out",
                str(tmp_path / "asis"),
                "--lm",
                str(tiny_lm),
                "--lm-binary",
                "as-built",
            ]
        )
        == 0
    )
    assert (tmp_path / "asis/lm/lm.bin").read_bytes() == (tiny_lm / "lm.bin").read_bytes()
    assert Bundle.load(tmp_path / "asis").config["lm"]["binary_type"] == "probing"


def test_make_bundle_carries_separator_lm_and_decoding_from_an_older_bundle(tmp_path, tiny_lm, capsys):
    make_bundle = load_recipe("make_bundle")
    old_src = init_bundle(tmp_path / "old_src", preset="tiny", seed=0)
    assert (
        make_bundle.main(["--from", str(old_src), "--out", str(tmp_path / "old"), "--lm", str(tiny_lm)]) == 0
    )
    old = Bundle.load(tmp_path / "old")
    sep = tmp_path / "old/separator/vocals.pth"  # a separator file, as a released bundle carries one
    sep.parent.mkdir()
    sep.write_bytes(b"separator weights")
    old.config["separator"] = {"kind": "umx", "weights": "separator/vocals.pth", "hidden_size": 4}
    old.config["files"]["separator/vocals.pth"] = sha256_file(sep)
    old.config["decode"] = {"method": "beam", "alpha": 0.6, "beta": 2.5, "onset_threshold": 0.9}
    old.config["lm_tuning"] = {"best": {"alpha": 0.6, "beta": 2.5}}
    (tmp_path / "old/bundle.json").write_text(json.dumps(old.config))
    new_src = init_bundle(tmp_path / "new_src", preset="tiny", seed=1)  # weights trained further
    assert (
        make_bundle.main(
            ["--from", str(new_src), "--carry", str(tmp_path / "old"), "--out", str(tmp_path / "new")]
        )
        == 0
    )
    new, old = Bundle.load(tmp_path / "new"), Bundle.load(tmp_path / "old")
    assert (
        new.config["files"]["model.safetensors"] == Bundle.load(new_src).config["files"]["model.safetensors"]
    )
    assert new.config["files"]["model.safetensors"] != old.config["files"]["model.safetensors"]
    for key in ("separator", "lm", "decode", "lm_tuning"):
        assert new.config[key] == old.config[key], key
    for name in ("separator/vocals.pth", "lm/lm.bin", "lm/unigrams.txt"):
        assert (new.path / name).read_bytes() == (old.path / name).read_bytes(), name
    carried = new.config["carried_from"]
    assert carried["model_sha256"] == old.config["files"]["model.safetensors"]
    assert carried["keys"] == ["separator", "lm", "decode", "lm_tuning"] and "notes_tuning" not in new.config
    assert "retuned" not in carried
    # re-tuning the carried bundle's decoding records which settings are now its own
    new.save_tuned(
        tmp_path / "tuned", {**new.config["decode"], "beta": 3.0}, "lm_tuning", {"best": {"beta": 3.0}}
    )
    new.save_tuned(tmp_path / "tuned", new.config["decode"], "notes_tuning", {"best": {}})
    tuned = Bundle.load(tmp_path / "tuned")
    assert tuned.config["carried_from"]["retuned"] == ["lm_tuning", "notes_tuning"]
    assert tuned.config["decode"]["beta"] == 3.0 and tuned.config["carried_from"]["keys"] == carried["keys"]
    assert "retuned" not in old.config.get("carried_from", {})
    # weights whose features differ from the old bundle's cannot take its settings
    other = json.loads((new_src / "bundle.json").read_text())
    other["features"]["top_db"] = 60.0
    (new_src / "bundle.json").write_text(json.dumps(other))
    capsys.readouterr()
    assert (
        make_bundle.main(
            ["--from", str(new_src), "--carry", str(tmp_path / "old"), "--out", str(tmp_path / "x")]
        )
        == 1
    )
    assert "features differ" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_tune_lmload_recipe(tmp_path, tiny_lm, monkeypatch, capsys):
    src = init_bundle(tmp_path / "b", preset="tiny")
    assert (
        load_recipe("make_bundle").main(
            ["--from", str(src), "--out", str(tmp_path / "rel"), "--lm", str(tiny_lm)]
        )
        == 0
    )
    prep = make_prepared(
        tmp_path / "prep", [{"id": f"p{i}", "text": t, "n_frames": 120} for i, t in enumerate(CORPUS[:2])]
    )
    tune = load_recipe("tune_lm")
    # 1. real posteriors of an untrained tiny model over prepared features: the whole path runs
    out = tmp_path / "tune.json"
    args = [
        "--bundle",
        str(tmp_path / "rel"),
        "--prepared",
        str(prep),
        "--out",
        str(out),
        "--alphas",
        "0",
        "0.5",
        "--betas",
        "0",
        "1",
        "--quiet",
    ]
    assert tune.main(args) == 0
    res = json.loads(out.read_text())
    assert res["n_items"] == 2 and len(res["grid"]) == 4 and res["data"]["prepared"] == [str(prep)]
    assert res["lm"].endswith("lm/lm.bin") and "alpha / beta" in capsys.readouterr().out
    # 2. planted posteriors: the tuned bundle carries a positive LM weight
    monkeypatch.setattr(tune, "prepared_posteriors", lambda *a, **k: planted_items())
    assert tune.main([*args, "--save-bundle", str(tmp_path / "tuned")]) == 0
    res = json.loads(out.read_text())
    assert res["best"]["alpha"] == 0.5 and res["best"]["wer"] == 0.0
    tuned = Bundle.load(tmp_path / "tuned")  # verified: the LM files came along with their checksums
    assert (
        tuned.config["decode"]
        == res["decode_options"]
        == {"method": "beam", "alpha": 0.5, "beta": res["best"]["beta"]}
    )
    assert tuned.config["lm_tuning"]["best"] == res["best"] and (tmp_path / "tuned/lm/lm.bin").exists()
    assert Bundle.load(tmp_path / "rel").config["decode"] == {"method": "beam"}  # the source is untouched
    # errors: a bundle without an LM, or --lm with --save-bundle
    assert tune.main(["--bundle", str(src), "--prepared", str(prep), "--out", str(out), "--quiet"]) == 1
    with pytest.raises(SystemExit):
        tune.main([*args, "--lm", str(tiny_lm), "--save-bundle", str(tmp_path / "x")])


def test_manifest_posteriors_cut_segments(tmp_path):
    import soundfile as sf

    from singalign.data.manifest import Record
    from singalign.evaluate import evaluate_records, manifest_posteriors
    from singalign.transcribe import TranscribeOptions, Transcriber

    sr = 44100
    t = np.arange(3 * sr) / sr
    sf.write(
        tmp_path / "song.wav",
        0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size),
        sr,
    )
    common = {"corpus": "test", "kind": "song", "split": "valid", "audio": str(tmp_path / "song.wav")}
    records = [
        Record(id="whole", text="la la", **common),
        Record(id="seg", text="la", offset=0.5, duration=1.5, **common),
        Record(id="notext", text="", **common),
    ]
    bundle = Bundle.load(init_bundle(tmp_path / "b", preset="tiny"))
    tr = Transcriber(bundle, TranscribeOptions(separation=False, keep_frames=False))
    items = manifest_posteriors(tr, records, progress=False)
    assert [(i, r) for i, r, _ in items] == [("whole", "la la"), ("seg", "la")]  # no text: skipped
    frames = {i: lp.shape for i, _, lp in items}
    fps = float(tr.features.sample_rate) / tr.features.hop_length  # feature frames per second
    assert frames["whole"][1] == V and abs(frames["whole"][0] - 3 * fps / 2) <= 2
    assert abs(frames["seg"][0] - 1.5 * fps / 2) <= 2  # only the segment went through the model
    summary = evaluate_records(
        bundle,
        records[:2],
        tmp_path / "eval",
        TranscribeOptions(separation=False, keep_frames=False),
        progress=False,
    )
    assert summary["n_items"] == 2 and (tmp_path / "eval" / "hypotheses.jsonl").exists()


def test_record_audio_keeps_whole_songs_as_their_file(tmp_path):
    """A whole-song record (duration = the file's, as the readers write) is the file itself, so the
    separated-vocals cache (keyed by the song's path) serves it; a segment is cut into a clip."""
    import soundfile as sf

    from singalign.data.manifest import Record
    from singalign.evaluate import record_audio

    sr = 44100
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((3 * sr, 2)) + 0.1, sr)
    common = {"corpus": "dali", "kind": "song", "split": "test", "audio": str(song), "text": "la"}
    cases = [
        ({}, str(song), 0.0),
        ({"duration": 3.0}, str(song), 0.0),
        ({"offset": 0.0, "duration": 2.5}, None, 0.0),
        ({"offset": 0.5, "duration": 2.5}, None, 0.5),
    ]
    for extra, path, shift in cases:
        with record_audio(Record(id="x", **common, **extra)) as (audio, start):
            assert start == shift
            if path is not None:
                assert audio == path, extra
            else:
                assert audio != str(song) and sf.info(audio).frames == int(2.5 * sr), extra
