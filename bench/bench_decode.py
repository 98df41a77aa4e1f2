"""Decoding costs: greedy, beam search (with and without the default LM, both backends), forced alignment.

Usage: python bench/bench_decode.py [--seconds 180] [--noise 0.7] [--seed 0] [--repeats 3] [--lm DIR]
    [--layouts compact probing]

Data: synthetic. CTC posteriors are *simulated* for the held-out lyric lines of the synthetic
corpora (``singalign.synth.text``, portion "heldout", never seen by the LM): every character
peaks on one of 2-4 CTC frames (``constants.CTC_FRAME_RATE``), blanks elsewhere, with Gaussian
logit noise and 15% of characters confused with a random letter, so greedy decoding makes
errors that an LM can fix. One "song" of ``--seconds`` of frames is timed (x real time = compute
seconds / audio seconds, best of ``--repeats``); the WER columns are over that song. The LM is the
default English LM (World English Bible, train portion), built into a temporary folder unless
``--lm`` is given; when the LM folder has its ``lm.arpa``, beam search with the LM is run once per
KenLM binary layout of ``--layouts`` (``compact``: the trie, 8-bit quantized, with compressed
pointers that bundles ship; ``probing``: the hash table, fastest and largest; ``trie``: unquantized),
each written from the same ARPA, and the binary's size is printed. Runs on the 2 cores (torch
threads 2; the decoders are single-threaded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from singalign.constants import CTC_FRAME_RATE
from singalign.decode import simulate_posteriors


def song_text(seconds: float) -> str:
    """Held-out lyric lines joined until they fill about ``seconds`` of CTC frames."""
    try:
        from singalign.synth.text import lyric_lines

        lines = [ln.text for ln in lyric_lines("heldout")]
    except Exception:  # the source text is not installed: a fixed public-domain verse
        lines = [
            "in the beginning god created the heavens and the earth",
            "the earth was formless and empty",
        ] * 500
    out, frames = [], 0.0
    for ln in lines:
        out.append(ln)
        frames += 3.0 * (len(ln) + 1)  # 3 frames per character on average
        if frames >= seconds * float(CTC_FRAME_RATE):
            break
    return " ".join(out)


def layout_binaries(lm_dir: Path, layouts: list[str], work: Path) -> dict[str, tuple[Path, int]]:
    """Layout name -> (folder holding lm.bin in that layout + the unigrams, size of lm.bin).

    Without the folder's ``lm.arpa`` only its own ``lm.bin`` is benchmarked (as "as-built").
    """
    import json
    import shutil

    from singalign.lm import COMPACT, LMConfig, layout_of, write_binary

    arpa = lm_dir / "lm.arpa"
    if not arpa.is_file():
        return {"as-built": (lm_dir, (lm_dir / "lm.bin").stat().st_size)}
    meta_file = lm_dir / "lm.json"
    have = layout_of(json.loads(meta_file.read_text()) if meta_file.is_file() else {})
    wanted = {"compact": COMPACT, "probing": {"binary_type": "probing"}, "trie": {"binary_type": "trie"}}
    out = {}
    for name in layouts:
        layout = layout_of(wanted[name])
        folder = lm_dir
        if layout != have:
            folder = work / f"lm_{name}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lm_dir / "unigrams.txt", folder / "unigrams.txt")
            write_binary(arpa, folder / "lm.bin", LMConfig(**layout))
        out[name] = (folder, (folder / "lm.bin").stat().st_size)
    return out


def timed(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="song length (default: %(default)s)")
    ap.add_argument(
        "--noise", type=float, default=0.7, help="logit noise of the simulation (default: %(default)s)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulation (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lm", help="LM folder (default: build the default LM into a temporary folder)")
    ap.add_argument(
        "--layouts",
        nargs="+",
        default=["compact", "probing"],
        choices=("compact", "probing", "trie"),
        help="KenLM binary layouts to compare (default: %(default)s)",
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from singalign import decode
    from singalign.decode import DecodeOptions
    from singalign.errors import SingalignError
    from singalign.metrics import error_rates

    rng = np.random.default_rng(args.seed)
    text = song_text(args.seconds)
    lp = simulate_posteriors(text, rng, args.noise)
    audio_s = lp.shape[0] / float(CTC_FRAME_RATE)
    print(f"data: SYNTHETIC (simulated CTC posteriors of held-out lyric lines), {audio_s:.0f} s song, "
          f"{lp.shape[0]} CTC frames, {len(text.split())} words, noise {args.noise}")  # fmt: skip

    tmp = tempfile.TemporaryDirectory(prefix="bench_decode_")
    lm_dir = Path(args.lm) if args.lm else None
    if lm_dir is None:
        try:
            from singalign.lm import build_default_lm

            t = time.perf_counter()
            meta = build_default_lm(Path(tmp.name) / "lm", progress=False)
            print(
                f"default LM built in {time.perf_counter() - t:.1f} s: order {meta['order']}, "
                f"{meta['vocab_size']} words, {meta['n_sentences']} sentences"
            )
            lm_dir = Path(tmp.name) / "lm"
        except SingalignError as exc:
            print(f"no LM ({exc}): beam+LM rows skipped")

    lm_files = layout_binaries(lm_dir, args.layouts, Path(tmp.name)) if lm_dir is not None else {}
    for name, (path, size) in lm_files.items():
        print(f"LM binary {name}: {size / 1e6:.1f} MB ({path})")

    backends = ["pyctcdecode"] + (["flashlight"] if decode.flashlight_available() else [])
    rows = [("greedy", lambda: decode.ctc_greedy(lp)[0])]
    for b in backends:
        rows.append((f"beam 25, no LM ({b})", lambda b=b: decode.ctc_beam(lp, DecodeOptions(backend=b))))
    for layout, (path, _) in lm_files.items():
        for b in backends:
            opts = DecodeOptions(backend=b, lm_path=str(path))
            decode.ctc_beam(lp[:50], opts)  # load the LM outside the timing (cached per process)
            rows.append((f"beam 25 + LM {layout} a=0.75 b=1.85 ({b})", lambda o=opts: decode.ctc_beam(lp, o)))
    width = max(48, *(len(name) for name, _ in rows))
    print(f"\n{'decoder':{width}s} {'x real time':>12s} {'s/min audio':>12s} {'WER':>7s} {'CER':>7s}")
    for name, fn in rows:
        secs, hyp = timed(fn, args.repeats)
        r = error_rates([text], [hyp])
        print(
            f"{name:{width}s} {secs / audio_s:12.4f} {secs / audio_s * 60:12.2f} {r['wer']:7.3f} {r['cer']:7.3f}"
        )

    secs, words = timed(lambda: decode.forced_align_words(lp, text), args.repeats)
    print(
        f"{'forced alignment (torchaudio, reference text)':{width}s} {secs / audio_s:12.4f} "
        f"{secs / audio_s * 60:12.2f}"
    )
    print(f"\ntarget: beam with LM <= 0.05 x real time; aligned {len(words)} words")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
