"""``singalign synth speech`` and ``singalign synth songs``: synthetic corpora with exact labels.

Imports stay light here; the synthesis modules load inside the command functions.
"""

from __future__ import annotations

import argparse
import sys

_DEFAULT_SPLIT_NOTE = (
    "Splits whose name starts with 'train' take the train text portion and train voices by default; "
    "any other split (dev, test, ...) takes held-out text and held-out voices, never seen in training."
)


def _csv(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _vocab(value: str) -> int | None:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("vocabulary size must be >= 0 (0: no restriction)")
    return n or None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="output folder (created; finished items are skipped)")
    p.add_argument("--n", type=int, metavar="N", help="how many to generate")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed: the same seed gives the same files (default 0)",
    )
    p.add_argument("--split", default="train", metavar="NAME", help="split name (default train)")
    p.add_argument(
        "--text-portion", choices=("train", "heldout"), help="text portion (default: from the split name)"
    )
    p.add_argument(
        "--voice-pool", choices=("train", "heldout", "all"), help="voice pool (default: from the split name)"
    )
    p.add_argument(
        "--voices",
        type=_csv,
        metavar="PATTERNS",
        help="comma-separated voice name patterns, e.g. 'en-us+f*,en+m3'",
    )
    p.add_argument(
        "--vocab-size",
        type=_vocab,
        default=2000,
        metavar="K",
        help="use only sentences made of the K most frequent words of the train text (default 2000; 0: all)",
    )
    p.add_argument(
        "--workers", type=int, default=None, metavar="W", help="parallel processes (default: all cores)"
    )


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``synth`` with its ``speech`` and ``songs`` subcommands."""
    synth = subparsers.add_parser(
        "synth",
        help="generate synthetic corpora (speech, songs) with exact labels in the real corpora's layouts",
        description="Generate synthetic corpora with exact ground truth. " + _DEFAULT_SPLIT_NOTE,
    )
    sub = synth.add_subparsers(dest="synth_command", metavar="KIND")
    synth.set_defaults(func=lambda args: (synth.print_help(), 2)[1])

    sp = sub.add_parser(
        "speech",
        help="read speech in the LibriSpeech layout (eSpeak NG and Festival voices)",
        description=(
            "Write DIR/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac (16 kHz) with "
            "<speaker>-<chapter>.trans.txt and DIR/SPEAKERS.TXT. Sentences: World English Bible "
            "(public domain). " + _DEFAULT_SPLIT_NOTE
        ),
    )
    _common(sp)
    sp.add_argument(
        "--engines",
        type=_csv,
        default=("espeak", "festival"),
        metavar="LIST",
        help="espeak,festival (default both)",
    )
    sp.add_argument("--utterances-per-chapter", type=int, default=10, metavar="U", help="default 10")
    sp.add_argument("--chapters-per-speaker", type=int, default=2, metavar="C", help="default 2")
    sp.set_defaults(func=run_speech)

    so = sub.add_parser(
        "songs",
        help="sung songs with accompaniment in the DALI and JamendoLyrics layouts, with notes and stems",
        description=(
            "Write DIR/dali/, DIR/jamendo/, DIR/notes/<id>.txt (onset offset Hz), "
            "DIR/stems/<id>/{vocals,accompaniment,mixture}.flac (mixture = vocals + accompaniment exactly), "
            "DIR/songs/<id>.json (all labels) and DIR/metadata.jsonl. " + _DEFAULT_SPLIT_NOTE
        ),
    )
    _common(so)
    so.add_argument("--styles", type=_csv, metavar="LIST", help="styles to use (default all; see --list)")
    so.add_argument(
        "--voice-types", type=_csv, metavar="LIST", help="baritone,tenor,alto,soprano (default all)"
    )
    so.add_argument(
        "--seconds",
        type=float,
        nargs=2,
        default=(20.0, 40.0),
        metavar=("MIN", "MAX"),
        help="song length (default 20 40)",
    )
    so.add_argument(
        "--vocal-level",
        type=float,
        nargs=2,
        default=(0.0, 6.0),
        metavar=("MIN", "MAX"),
        help="vocal-to-accompaniment ratio in dB where the voice sings (default 0 6)",
    )
    so.add_argument(
        "--reverb-probability",
        type=float,
        default=0.5,
        metavar="P",
        help="chance of vocal reverb (default 0.5)",
    )
    so.add_argument(
        "--melisma-rate",
        type=float,
        default=0.12,
        metavar="P",
        help="chance a syllable spans 2-3 notes (default 0.12)",
    )
    so.add_argument("--list", action="store_true", help="list the styles and voice types, then exit")
    so.set_defaults(func=run_songs)


def _need_out_and_n(args: argparse.Namespace) -> None:
    from singalign.errors import SingalignError

    if args.out is None or args.n is None:
        raise SingalignError(f"synth {args.synth_command} needs --out DIR and --n N")
    if args.workers is not None and args.workers < 1:
        raise SingalignError(f"--workers must be >= 1, not {args.workers}")


def _report(summary: dict, what: str) -> int:
    for msg in summary.get("failures", []):
        print(f"singalign: error: {msg}", file=sys.stderr)
    print(", ".join(f"{k}: {v}" for k, v in summary.items() if k != "failures") + f" ({what})")
    return 1 if summary.get("failed") else 0


def run_speech(args: argparse.Namespace) -> int:
    from singalign.synth.speech import SpeechConfig, generate_speech

    _need_out_and_n(args)
    cfg = SpeechConfig(
        split=args.split,
        text_portion=args.text_portion,
        voice_pool=args.voice_pool,
        voices=args.voices,
        engines=args.engines,
        utterances_per_chapter=args.utterances_per_chapter,
        chapters_per_speaker=args.chapters_per_speaker,
        vocab_size=args.vocab_size,
    )
    return _report(generate_speech(args.out, args.n, args.seed, cfg, args.workers), f"speech in {args.out}")


def run_songs(args: argparse.Namespace) -> int:
    from singalign.synth.songs import VOICE_TYPES, SongConfig, generate_songs
    from singalign.synth.styles import STYLES

    if args.list:
        for s in STYLES.values():
            print(
                f"style {s.name}: {s.bpm[0]}-{s.bpm[1]} BPM, {' or '.join(f'{m}/4' for m in s.meters)}, {s.comp} chords, {s.bass} bass"
            )
        for name, (gender, lo, hi) in VOICE_TYPES.items():
            print(f"voice type {name}: {gender}, MIDI {lo}-{hi}")
        return 0
    _need_out_and_n(args)
    cfg = SongConfig(
        split=args.split,
        text_portion=args.text_portion,
        voice_pool=args.voice_pool,
        voices=args.voices,
        voice_types=args.voice_types,
        styles=args.styles,
        seconds=tuple(args.seconds),
        vocal_level_db=tuple(args.vocal_level),
        reverb_probability=args.reverb_probability,
        vocab_size=args.vocab_size,
        melisma_rate=args.melisma_rate,
    )
    return _report(generate_songs(args.out, args.n, args.seed, cfg, args.workers), f"songs in {args.out}")
