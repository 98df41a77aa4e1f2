"""The CLI in-process: good and bad inputs, outputs written whole, exit codes, fast --help."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, shared

from singalign.bundle import init_bundle
from singalign.cli import main


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return init_bundle(tmp_path_factory.mktemp("b") / "tiny", preset="tiny", mode="multitask")


def _song(path, seconds=2.0, sr=22050, channels=2):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sr)
    return path


def test_good_and_bad_inputs(tmp_path, bundle, capsys):
    good = _song(tmp_path / "good.wav")
    mono = _song(tmp_path / "mono.flac", sr=16000, channels=1)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000), 16000)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.wav"
    out = tmp_path / "out"
    code = main(["transcribe", str(good), str(corrupt), str(silent), str(empty), str(missing), str(mono),
                 "--bundle", str(bundle), "-o", str(out), "--format", "json,txt,lrc,mid,notes.txt", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    for bad, why in [
        (corrupt, "cannot decode"),
        (silent, "the audio is silent"),
        (empty, "empty file"),
        (missing, "no such file"),
    ]:
        assert f"{bad}: {why}" in err
    assert "4 of 6 file(s) failed" in err
    for stem in ("good", "mono"):
        data = json.loads((out / f"{stem}.json").read_text())
        assert set(data) >= {"audio", "bundle", "text", "words", "notes"}
        assert data["duration"] == pytest.approx(2.0, abs=0.01)
        for n in data["notes"]:
            assert 0 <= n["onset"] < n["offset"] <= 2.01 and 0 <= n["pitch"] < 128
        assert (out / f"{stem}.txt").exists() and (out / f"{stem}.mid").exists()
    written = sorted(p.name for p in out.iterdir())
    assert not any(n.startswith(".") or "tmp" in n for n in written)  # nothing half-written
    assert not any(n.startswith(("corrupt", "silent", "empty", "missing")) for n in written)


def test_skip_existing_and_folders(tmp_path, bundle, capsys):
    folder = tmp_path / "songs"
    folder.mkdir()
    _song(folder / "a.wav")
    out = tmp_path / "out"
    assert (
        main(
            [
                "transcribe",
                str(folder),
                "--bundle",
                str(bundle),
                "-o",
                str(out),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    before = (out / "a.json").stat().st_mtime_ns
    assert (
        main(
            [
                "transcribe",
                str(folder),
                "--bundle",
                str(bundle),
                "-o",
                str(out),
                "--format",
                "json",
                "--skip-existing",
                "--quiet",
            ]
        )
        == 0
    )
    assert (out / "a.json").stat().st_mtime_ns == before


def test_missing_bundle_is_one_clear_line(tmp_path, capsys):
    code = main(["transcribe", str(_song(tmp_path / "a.wav")), "--bundle", str(tmp_path / "nope")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "not a bundle" in err[0]


def test_real_samples_transcribe(tmp_path, bundle):
    lj = shared("ljspeech", "LJ001-0001.flac")
    mp3 = shared("jamendolyrics_sample", "mp3", "Fantasma_-_Los_Rombos.mp3")
    out = tmp_path / "out"
    assert (
        main(
            [
                "transcribe",
                str(lj),
                str(mp3),
                "--bundle",
                str(bundle),
                "-o",
                str(out),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    song = json.loads((out / "Fantasma_-_Los_Rombos.json").read_text())
    assert song["duration"] == pytest.approx(166.0, abs=0.5)  # the whole song, in bounded windows
    assert json.loads((out / "LJ001-0001.json").read_text())["duration"] == pytest.approx(9.66, abs=0.05)


def test_help_lists_commands_without_importing_torch():
    # --help stays fast because no subcommand imports torch until it runs: checked in a fresh
    # process (this one has torch loaded already), not by timing it
    code = (
        "import sys\n"
        "from singalign.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('TORCH-LOADED' if 'torch' in sys.modules else 'TORCH-NOT-LOADED', code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    for cmd in ("transcribe", "synth", "score", "lm", "bundle"):
        assert cmd in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "TORCH-NOT-LOADED 0"


def test_bundle_init_help_names_every_preset(capsys):
    from singalign.models.config import PRESETS

    with pytest.raises(SystemExit):
        main(["bundle", "init", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help text
    assert all(name in text for name in PRESETS), (sorted(PRESETS), text)


def test_align_known_lyrics_keeps_lines_and_words(tmp_path, bundle, capsys):
    song = _song(tmp_path / "song.wav", seconds=6.0)
    lyrics = tmp_path / "l.txt"
    lyrics.write_text("Hello, world!\nQué tal - 12 cats\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "align",
                str(song),
                "--lyrics",
                str(lyrics),
                "--bundle",
                str(bundle),
                "-o",
                str(out),
                "--format",
                "json,lrc",
            ]
        )
        == 0
    )
    data = json.loads((out / "song.json").read_text())
    assert [w["word"] for w in data["words"]] == ["Hello,", "world!", "Qué", "tal", "12", "cats"]
    assert [ln["text"] for ln in data["lines"]] == ["Hello, world!", "Qué tal 12 cats"]
    starts = [w["start"] for w in data["words"]]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= 6.0 for w in data["words"])
    assert "[00:" in (out / "song.lrc").read_text()
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert main(["align", str(song), "--lyrics", str(empty), "--bundle", str(bundle), "-o", str(out)]) == 1
    assert "lyrics file is empty" in capsys.readouterr().err


def test_recipe_errors_are_one_line_and_exit_1(capsys):
    from singalign import recipe
    from singalign.errors import SingalignError

    def bad(args):
        raise SingalignError("x.wav: not an audio file")

    assert recipe.run("demo_recipe", bad, None) == 1
    assert capsys.readouterr().err == "demo_recipe: error: x.wav: not an audio file\n"
    assert recipe.run("demo_recipe", lambda a: 0, None) == 0
    assert recipe.parser("Title line.\n\nUsage: x").description == "Title line."


def test_recipe_help_shows_usage_lines_as_written():
    """A recipe's docstring is its --help epilog: the multi-line `Usage:` commands must print as
    written, each continued line ending in a backslash the shell accepts. In a plain (non-raw)
    docstring a trailing backslash joins the lines instead, which printed one run-on line."""
    import ast

    recipes = sorted((ROOT / "recipes").glob("*.py")) + sorted((ROOT / "bench").glob("*.py"))
    assert len(recipes) >= 15
    for path in recipes:
        source = path.read_text()
        doc = ast.get_docstring(ast.parse(source), clean=False)
        if doc is None:
            continue
        written = source.split('"""')[1]  # the text between the first triple quotes, as in the file
        assert doc == written, f"{path.name}: its --help does not print its docstring as written"


def test_vocals_cache_is_read_instead_of_separating(tmp_path, bundle):
    """TranscribeOptions.vocals_dir: a song in the cache (recipes/separate.py's layout) is read from it,
    cut or padded to the mixture's length, and the separator is not run; a song not in it is separated."""
    from dataclasses import dataclass

    from singalign.bundle import Bundle
    from singalign.prepare import vocals_path
    from singalign.transcribe import TranscribeOptions, Transcriber

    @dataclass
    class _Cfg:
        sample_rate: int = 16000

    class _Separator:  # halves the mixture, and counts its calls
        cfg = _Cfg()
        calls = 0

        def __call__(self, stereo):
            self.calls += 1
            return 0.5 * stereo

    cached_song = _song(tmp_path / "cached.wav", seconds=1.0, sr=16000)
    other_song = _song(tmp_path / "other.wav", seconds=1.0, sr=16000)
    cache = tmp_path / "vocals"
    cache.mkdir()
    sf.write(vocals_path(cache, str(cached_song)), np.full(12000, 0.25), 16000)  # 0.75 s of a constant
    bundle = Bundle.load(bundle)
    tr = Transcriber(bundle, TranscribeOptions(separation=False, vocals_dir=str(cache)))
    tr.separator = sep = _Separator()
    vocals, mix, seconds = tr.load_inputs(str(cached_song))
    assert sep.calls == 0 and seconds == 1.0 and len(vocals) == len(mix) == 16000
    assert np.allclose(vocals[:12000], 0.25, atol=1e-4) and not vocals[12000:].any()  # padded with silence
    vocals, mix, _ = tr.load_inputs(str(other_song))
    assert sep.calls == 1 and np.allclose(vocals, 0.5 * mix, atol=1e-3)
    # without the cache option the separator runs even for the cached song
    tr = Transcriber(bundle, TranscribeOptions(separation=False))
    tr.separator = sep = _Separator()
    tr.load_inputs(str(cached_song))
    assert sep.calls == 1
