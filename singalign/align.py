"""``singalign align``: place known lyrics in time (CTC forced alignment) and on the sung notes.

The same pipeline as ``transcribe`` (separation, features, both CRNNs), but the lyrics are given:
their words are force-aligned over the lyrics CRNN's posteriors (``torchaudio``'s
``forced_align``), lines keep the lyric file's lines, and each transcribed note carries the word
sung on it. Characters outside the model's vocabulary are normalized (accents stripped, numbers
spelled out), never dropped silently; the output keeps the words as written.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from singalign.errors import SingalignError


def register_cli(sub: argparse._SubParsersAction) -> None:
    from singalign.outputs import FORMATS

    p = sub.add_parser(
        "align",
        help="align known lyrics to a song (word times, lines, lyrics on notes)",
        description=(
            "Align the lyrics in TXT (one lyric line per line) to AUDIO by CTC forced alignment. Writes "
            "OUTDIR/<stem>.json in the same layout as transcribe (text, lines, words with start/end, notes "
            "with the lyric each carries) and the other --format files (lrc gives line and word timing)."
        ),
    )
    p.add_argument("audio", help="audio file")
    p.add_argument("--lyrics", required=True, help="lyrics text file, one line per lyric line")
    p.add_argument("--bundle", help="model bundle folder (default: the bundled default model)")
    p.add_argument("-o", "--outdir", default="alignments", help="output folder (default: %(default)s)")
    p.add_argument("--format", default="all", help=f"comma-separated among {', '.join(FORMATS)}, or 'all'")
    p.add_argument("--no-separation", action="store_true", help="skip vocal separation")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_align)


def _cmd_align(args: argparse.Namespace) -> int:
    from singalign.bundle import Bundle, default_bundle_path
    from singalign.outputs import parse_formats, write_outputs
    from singalign.transcribe import TranscribeOptions, Transcriber

    try:
        lyrics = Path(args.lyrics).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SingalignError(f"{args.lyrics}: cannot read lyrics ({exc})") from None
    if not lyrics.strip():
        raise SingalignError(f"{args.lyrics}: the lyrics file is empty")
    bundle = Bundle.load(args.bundle or default_bundle_path())
    if not bundle.trained:
        print(
            f"singalign: warning: {bundle.config.get('label') or 'this bundle is untrained'}", file=sys.stderr
        )
    options = replace(TranscribeOptions(), separation=not args.no_separation, device=args.device)
    result = Transcriber(bundle, options)(args.audio, lyrics=lyrics)
    written = write_outputs(result, Path(args.outdir), Path(args.audio).stem, parse_formats(args.format))
    print(
        f"{args.audio}: {len(result.words)} words in {len(result.lines)} lines -> {', '.join(map(str, written))}"
    )
    return 0
