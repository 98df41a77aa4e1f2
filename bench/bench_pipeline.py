"""Pipeline cost per stage for a 3-minute song: real-time factor and peak memory.

Usage: python bench/bench_pipeline.py [--audio FILE] [--seconds 180] [--presets paper,small]

Data: the first 3 minutes of the real JamendoLyrics sample mp3 (../shared/data), 44.1 kHz stereo.
Weights are random (cost does not depend on their values): the separator is the umxhq
architecture, the CRNNs are the chosen presets. Each preset runs in its own process so that
its peak resident memory (ru_maxrss) is its own. RTF = seconds of compute / seconds of audio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AUDIO = ROOT.parent / "shared" / "data" / "jamendolyrics_sample" / "mp3" / "Fantasma_-_Los_Rombos.mp3"


def child(audio: str, seconds: float, preset: str, separation: bool) -> dict:
    import time

    import torch

    from singalign.audio import load_audio, save_audio
    from singalign.bundle import Bundle
    from singalign.features import LogMelConfig
    from singalign.models import SingAlignModel
    from singalign.models import preset as make_preset
    from singalign.separation import SeparatorConfig, build_umx
    from singalign.transcribe import TranscribeOptions, Transcriber

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    clip = tmp / "clip.wav"
    save_audio(clip, load_audio(audio, 44100, mono=False, duration=seconds), 44100)
    separator = {"kind": "none"}
    extra = {}
    if separation:
        weights = tmp / "umx_random.pth"
        torch.save(
            build_umx(SeparatorConfig(), None, pretrained=False).target_models["vocals"].state_dict(), weights
        )
        separator = {**SeparatorConfig(weights="separator/vocals.pth").to_dict()}
        extra = {"separator/vocals.pth": weights}
    torch.manual_seed(0)
    model = SingAlignModel(make_preset(preset, "multitask"))
    bundle = Bundle.load(Bundle.from_model(model, LogMelConfig(), separator=separator).save(tmp / "b", extra))
    tr = Transcriber(bundle, TranscribeOptions(separation=separation, decode={"method": "greedy"}))
    t = time.perf_counter()
    result = tr(str(clip))
    total = time.perf_counter() - t
    times = tr.times
    return {
        "preset": preset,
        "separation": separation,
        "audio_seconds": result.duration,
        "decode+resample": times.load,
        "separation_s": times.separation,
        "features": times.features,
        "crnns": times.model,
        "decoding": times.decoding,
        "total": total,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio", default=str(DEFAULT_AUDIO))
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--presets", default="paper,small")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--preset", default="small", help=argparse.SUPPRESS)
    ap.add_argument("--no-separation", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.audio, args.seconds, args.preset, not args.no_separation)))
        return 0
    if not Path(args.audio).exists():
        print(f"audio not found: {args.audio}", file=sys.stderr)
        return 1
    print(f"data: {args.audio} (real song), at most {args.seconds:.0f} s; random weights; 2 CPU threads")
    rows = []
    for preset in args.presets.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--audio",
            args.audio,
            "--seconds",
            str(args.seconds),
            "--preset",
            preset,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    dur = rows[0]["audio_seconds"]
    print(f"audio: {dur:.1f} s decoded")
    header = f"{'stage (x real time)':24s}" + "".join(f"{r['preset']:>12s}" for r in rows)
    print(header)
    for key, label in [
        ("decode+resample", "decode + resample"),
        ("separation_s", "separation (umxhq)"),
        ("features", "log-mel features"),
        ("crnns", "CRNN-1 + CRNN-2"),
        ("decoding", "decoding (greedy+notes)"),
        ("total", "total"),
    ]:
        print(f"{label:24s}" + "".join(f"{r[key] / dur:12.4f}" for r in rows))
    print(f"{'peak memory (MB)':24s}" + "".join(f"{r['peak_mb']:12.0f}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
