"""``transcribe(bundle, audio, options)``: the whole pipeline for one song.

decode + resample -> (separate vocals) -> 2-channel log-mel -> both CRNNs over the song in
overlapping 1000-frame windows (bounded memory for any length) -> CTC decoding of the lyrics,
word times by CTC alignment of the decoded text, onset peak picking and notes from frames, and
each note's lyric. Every setting comes from the bundle; only run-time choices are options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from singalign import constants as C
from singalign.errors import SingalignError, file_error

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".au")


@dataclass(frozen=True)
class TranscribeOptions:
    """Run-time choices (the model's settings come from the bundle).

    Attributes:
        separation: run the bundle's separator; False duplicates the mixture into the vocals channel.
        window_frames: frames per model window (the paper's 1000).
        overlap_frames: frames shared by consecutive windows; each keeps the centre half of the overlap.
        batch_windows: windows per forward pass (memory grows with it, not with song length).
        line_gap: a pause longer than this (s) between words starts a new lyric line.
        decode: ``singalign.decode.DecodeOptions`` as a dict (empty: the bundle's, else greedy).
        device: "cpu" or "cuda".
        keep_frames: keep the framewise evidence in the result (for plots).
        vocals_dir: a cache of separated vocals (``singalign.prepare.separate_files``, as
            ``recipes/separate.py`` writes it) made with this bundle's separator: a song found there
            is read from it instead of separated again (the features stage reads the same files).
            Only with ``separation``; songs not in it are separated as usual.
    """

    separation: bool = True
    window_frames: int = C.SEGMENT_FRAMES
    overlap_frames: int = 200
    batch_windows: int = 4
    line_gap: float = 1.0
    decode: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    keep_frames: bool = True
    vocals_dir: str | None = None

    def __post_init__(self) -> None:
        if self.overlap_frames % (2 * C.CTC_DOWNSAMPLE) or self.window_frames % C.CTC_DOWNSAMPLE:
            raise ValueError("window and overlap must keep the CTC frame grid (overlap a multiple of 4)")
        if not 0 <= self.overlap_frames < self.window_frames:
            raise ValueError("overlap_frames must be in [0, window_frames)")


@dataclass
class StageTimes:
    """Seconds spent per stage (for benchmarks)."""

    load: float = 0.0
    separation: float = 0.0
    features: float = 0.0
    model: float = 0.0
    decoding: float = 0.0


def load_vocals_and_mix(
    path: str | os.PathLike[str],
    features,
    separator=None,
    times: StageTimes | None = None,
    vocals_file: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The input stage of the models: an audio file -> (vocals, mixture) and its duration in s.

    Args:
        path: the audio file; AudioError naming it if it cannot be decoded or is silent.
        features: the bundle's ``LogMelConfig``; both signals come out mono at its sample rate.
        separator: the bundle's vocal separator (``separation.separator_from_bundle``), or None:
            the mixture then stands in for the vocals.
        times: if given, the seconds spent decoding and separating are added to its ``load`` and
            ``separation``.
        vocals_file: the song's vocals, already separated (a ``separate_files`` cache entry): read
            instead of running ``separator``; cut or padded with silence to the mixture's length.
    """
    from singalign.audio import check_not_silent, load_audio

    times = times if times is not None else StageTimes()
    t = time.perf_counter()
    sr = features.sample_rate
    if separator is None or vocals_file is not None:
        mix = load_audio(path, sr)
        check_not_silent(mix, path)
        vocals = mix
        if vocals_file is not None:
            vocals = load_audio(vocals_file, sr)[: len(mix)]
            vocals = np.pad(vocals, (0, len(mix) - len(vocals)))
        times.load += time.perf_counter() - t
        return vocals, mix, len(mix) / sr
    import soxr

    sep_sr = separator.cfg.sample_rate
    stereo = load_audio(path, sep_sr, mono=False)
    check_not_silent(stereo, path)
    mix = soxr.resample(stereo.mean(axis=0), sep_sr, sr).astype(np.float32)
    times.load += time.perf_counter() - t
    t = time.perf_counter()
    vocals = separator(stereo).mean(axis=0)
    vocals = soxr.resample(vocals, sep_sr, sr).astype(np.float32)[: len(mix)]
    times.separation += time.perf_counter() - t
    return vocals, mix, len(mix) / sr


def decode_options_for(bundle, overrides: dict[str, Any] | None = None):
    """The ``DecodeOptions`` a bundle decodes with: its ``decode`` entry, then ``overrides``; beam
    search uses the bundle's LM (binary + word list) unless ``overrides`` names an ``lm_path``."""
    from singalign.decode import DecodeOptions

    dec = {**(bundle.config.get("decode") or {}), **(overrides or {})}
    lm = bundle.config.get("lm")
    if lm and "lm_path" not in dec and dec.get("method", "beam") == "beam":
        dec = {**dec, "method": "beam", "lm_path": str(bundle.resolve(lm.get("binary") or lm.get("arpa")))}
        if lm.get("unigrams"):
            dec["unigrams_path"] = str(bundle.resolve(lm["unigrams"]))
    return DecodeOptions.from_dict(dec) if dec else DecodeOptions()


class Transcriber:
    """Holds a loaded bundle (model, separator, decoder) and transcribes files with it."""

    def __init__(self, bundle, options: TranscribeOptions = TranscribeOptions()) -> None:
        self.bundle = bundle
        self.options = options
        if bundle.model_config.mode == "oracle":
            raise SingalignError(
                f"{bundle.path}: an oracle-mode bundle needs ground-truth notes; it cannot transcribe"
            )
        self.model = bundle.build_model().to(options.device)
        self.features = bundle.feature_config
        self.separator = None
        if options.separation:
            from singalign.separation import separator_from_bundle

            self.separator = separator_from_bundle(bundle, options.device)
        self.decode_options = decode_options_for(bundle, options.decode)
        self.times = StageTimes()

    # -- stages --------------------------------------------------------------------------------
    def load_inputs(self, path: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(vocals, mixture) at the feature rate, mono, and the duration in seconds."""
        cached = None
        if self.separator is not None and self.options.vocals_dir:
            from singalign.prepare import vocals_path

            cached = vocals_path(self.options.vocals_dir, str(path))
            cached = cached if cached.exists() else None
        return load_vocals_and_mix(path, self.features, self.separator, self.times, cached)

    def run_model(
        self, feats: np.ndarray, progress: Callable[[int], None] | None = None
    ) -> dict[str, np.ndarray]:
        """Both CRNNs over the whole song.

        Args:
            feats: (2, n_mels, T) features.

        Returns:
            ``pitch_probs`` (T, 129) and ``onset_probs`` (T,) when the model has CRNN-1;
            ``char_log_probs`` (ceil(T/2), 34) when it has CRNN-2.
        """
        import torch

        from singalign.audio import window_batches

        o = self.options
        total = feats.shape[-1]
        cfg = self.model.cfg
        out: dict[str, np.ndarray] = {}
        if cfg.has_pitch_onset:
            out["pitch_probs"] = np.zeros((total, cfg.n_pitch), np.float32)
            out["onset_probs"] = np.zeros(total, np.float32)
        if cfg.has_lyrics:
            out["char_log_probs"] = np.zeros(((total + 1) // 2, cfg.n_vocab), np.float32)
        d = C.CTC_DOWNSAMPLE
        for group in window_batches(total, o.window_frames, o.overlap_frames, o.batch_windows):
            x = np.stack([feats[..., w.start : w.stop] for w in group]).astype(np.float32, copy=False)
            lengths = torch.full((len(group),), x.shape[-1])
            with torch.no_grad():
                res = self.model(torch.from_numpy(x).to(o.device), lengths.to(o.device))
            for i, w in enumerate(group):
                a, lo, hi = w.start, w.keep_lo, w.keep_hi
                if "pitch_logits" in res:
                    out["pitch_probs"][lo:hi] = (
                        res["pitch_logits"][i, lo - a : hi - a].softmax(-1).cpu().numpy()
                    )
                    out["onset_probs"][lo:hi] = (
                        torch.sigmoid(res["onset_logits"][i, lo - a : hi - a]).cpu().numpy()
                    )
                if "char_logits" in res:
                    lo2, a2, hi2 = lo // d, a // d, (hi + 1) // d
                    out["char_log_probs"][lo2:hi2] = (
                        res["char_logits"][i, lo2 - a2 : hi2 - a2].log_softmax(-1).cpu().numpy()
                    )
            if progress:
                progress(len(group))
        return out

    def posteriors(
        self, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
        """(features (2, n_mels, T), ``run_model``'s posteriors, duration in s) of one file."""
        from singalign.features import stack_features

        vocals, mix, duration = self.load_inputs(str(path))
        t = time.perf_counter()
        feats = stack_features(vocals, mix, self.features)
        self.times.features += time.perf_counter() - t
        t = time.perf_counter()
        post = self.run_model(feats, progress)
        self.times.model += time.perf_counter() - t
        return feats, post, duration

    def __call__(
        self,
        path: str | os.PathLike[str],
        progress: Callable[[int], None] | None = None,
        lyrics: str | None = None,
    ):
        """Transcribe one file, or align known ``lyrics`` to it; returns a ``TranscriptionResult``.

        With ``lyrics`` (one lyric line per line), the words are placed by CTC forced alignment over
        the lyrics CRNN's posteriors instead of being decoded, and the result's lines are the given
        lines, timed by their words.
        """
        path = str(path)
        feats, post, duration = self.posteriors(path, progress)
        return self.result_from(path, feats, post, duration, lyrics)

    def result_from(
        self,
        path: str,
        feats: np.ndarray,
        post: dict[str, np.ndarray],
        duration: float,
        lyrics: str | None = None,
        decode_options=None,
    ):
        """The ``TranscriptionResult`` of ``posteriors``' output: decoding (with ``decode_options``,
        default the bundle's) or alignment of ``lyrics``, notes, lyrics on notes, lines. Several
        decodings of one song can share one model pass this way."""
        from singalign import decode
        from singalign.result import Frames, LineTiming, TranscriptionResult

        dec = decode_options or self.decode_options
        t = time.perf_counter()
        text, words, notes = "", [], []
        if "char_log_probs" in post:
            logp = post["char_log_probs"]
            text = lyrics if lyrics is not None else decode.decode_text(logp, dec)
            words = decode.forced_align_words(logp, text) if text.strip() else []
        elif lyrics is not None:
            raise SingalignError(
                f"{self.bundle.path}: this bundle has no lyrics model; it cannot align lyrics"
            )
        if "pitch_probs" in post:
            notes = decode.notes_from_posteriors(post["pitch_probs"], post["onset_probs"], dec, duration)
            if words:
                notes = decode.attach_lyrics(notes, words)
        # the last frame runs past the end of the audio: nothing may end after the song does
        words = [replace(w, end=min(w.end, duration)) for w in words]
        groups = (
            _given_lines(words, lyrics) if lyrics is not None else list(_lines(words, self.options.line_gap))
        )
        lines = [LineTiming(" ".join(w.word for w in g), g[0].start, g[-1].end) for g in groups if g]
        self.times.decoding += time.perf_counter() - t
        frames = None
        if self.options.keep_frames:
            t_len = feats.shape[-1]
            frames = Frames(
                log_mel=feats,
                pitch_probs=post.get("pitch_probs", np.zeros((t_len, C.N_PITCH_CLASSES), np.float32)),
                onset_probs=post.get("onset_probs", np.zeros(t_len, np.float32)),
                char_log_probs=post.get(
                    "char_log_probs", np.zeros(((t_len + 1) // 2, len(C.VOCAB)), np.float32)
                ),
            )
        return TranscriptionResult(
            audio=path,
            bundle=str(self.bundle.path),
            duration=duration,
            text="\n".join(ln.text for ln in lines) if lines else text.strip(),
            words=words,
            lines=lines,
            notes=notes,
            frames=frames,
        )

    def n_windows(self, n_frames: int) -> int:
        from singalign.audio import frame_windows

        return len(frame_windows(n_frames, self.options.window_frames, self.options.overlap_frames))


def _lines(words, gap: float):
    group = []
    for w in words:
        if group and w.start - group[-1].end > gap:
            yield group
            group = []
        group.append(w)
    if group:
        yield group


def _given_lines(words, lyrics: str):
    """Group aligned words by the lines of the given lyrics (forced alignment keeps every word
    that has letters, in order; a word without letters, e.g. "-", is not timed)."""
    from singalign.decode import _alignment_tokens  # the same rule that decides which words get times

    groups, k = [], 0
    for line in lyrics.splitlines():
        n = len(_alignment_tokens(line)[0])
        if n:
            groups.append(words[k : k + n])
            k += n
    return groups


def transcribe(bundle, audio: str | os.PathLike[str], options: TranscribeOptions = TranscribeOptions()):
    """Transcribe one audio file with a loaded ``Bundle``; returns a ``TranscriptionResult``."""
    return Transcriber(bundle, options)(audio)


# ----------------------------------------------------------------------------- CLI


def expand_inputs(paths: list[str]) -> list[str]:
    """Files as given; folders expanded to the audio files inside them (sorted, recursive)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            out.extend(sorted(str(f) for f in Path(p).rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES))
        else:
            out.append(p)
    return out


def register_cli(sub: argparse._SubParsersAction) -> None:
    from singalign.outputs import FORMATS

    p = sub.add_parser(
        "transcribe",
        help="transcribe lyrics and sung notes of songs",
        description=(
            "Transcribe the lyrics and the sung notes of each AUDIO file (wav, flac, mp3, ogg; any rate and "
            "channel count; folders are searched for audio). Writes OUTDIR/<stem>.json (text, words with "
            "times, notes with onset/offset/MIDI pitch), <stem>.txt and the other --format files. A file "
            "that fails is reported and skipped; the exit code is 1 if any failed."
        ),
    )
    p.add_argument("audio", nargs="+", help="audio files or folders")
    p.add_argument("--bundle", help="model bundle folder (default: the bundled default model)")
    p.add_argument("-o", "--outdir", default="transcriptions", help="output folder (default: %(default)s)")
    p.add_argument(
        "--format",
        default="all",
        help=f"comma-separated output formats among {', '.join(FORMATS)}, or 'all' (default)",
    )
    p.add_argument(
        "--no-separation", action="store_true", help="skip vocal separation (mixture in both channels)"
    )
    p.add_argument("--greedy", action="store_true", help="greedy CTC decoding instead of beam search")
    p.add_argument("--lm", help="KenLM binary/ARPA for beam search (default: the bundle's LM, if any)")
    p.add_argument("--skip-existing", action="store_true", help="skip files whose <stem>.json already exists")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_transcribe)


def _window_bar(transcriber: Transcriber, path: str, disable: bool):
    """A progress bar over the model windows of one song (its length read from the file header)."""
    from tqdm import tqdm

    from singalign.audio import probe

    try:
        seconds = probe(path).duration
    except SingalignError:
        seconds = 0.0  # the transcriber reports the problem itself
    total = transcriber.n_windows(
        transcriber.features.n_frames(int(seconds * transcriber.features.sample_rate))
    )
    return tqdm(
        total=total, desc=Path(path).name[:30], unit="window", leave=False, disable=disable or total < 2
    )


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from singalign.bundle import Bundle, default_bundle_path
    from singalign.outputs import parse_formats, write_outputs

    formats = parse_formats(args.format)
    bundle = Bundle.load(args.bundle or default_bundle_path())
    if not bundle.trained:
        print(
            f"singalign: warning: {bundle.config.get('label') or 'this bundle is untrained'}", file=sys.stderr
        )
    decode_opts: dict[str, Any] = {}
    if args.greedy:
        decode_opts["method"] = "greedy"
    if args.lm:
        decode_opts.update(method="beam", lm_path=args.lm)
    options = replace(
        TranscribeOptions(), separation=not args.no_separation, decode=decode_opts, device=args.device
    )
    transcriber = Transcriber(bundle, options)
    files = expand_inputs(args.audio)
    if not files:
        raise SingalignError("no audio files found in the given paths")
    failed = 0
    outdir = Path(args.outdir)
    for path in tqdm(files, desc="songs", unit="song", disable=args.quiet or len(files) < 2):
        stem = Path(path).stem
        if args.skip_existing and (outdir / f"{stem}.json").exists():
            continue
        try:
            with _window_bar(transcriber, path, disable=args.quiet) as bar:
                result = transcriber(path, progress=bar.update)
            written = write_outputs(result, outdir, stem, formats)
        except Exception as exc:  # one bad file must not stop the others
            failed += 1
            log.debug("failure on %s", path, exc_info=True)
            print(f"singalign: error: {file_error(path, exc)}", file=sys.stderr)
            continue
        print(
            f"{path}: {len(result.words)} words, {len(result.notes)} notes -> {', '.join(str(w) for w in written)}"
        )
    if failed:
        print(f"singalign: {failed} of {len(files)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0
