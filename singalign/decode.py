"""Decoding: CTC posteriors to text and word times, onset curves and pitch frames to notes.

Pure functions over numpy arrays (torch only for forced alignment), all driven by one frozen
:class:`DecodeOptions`.

* Lyrics: :func:`ctc_greedy` (best path) and :func:`ctc_beam` (beam search with an optional KenLM
  word n-gram; the decoder is built once per LM and cached). Two backends behind the same
  options: ``pyctcdecode`` (the default) and torchaudio's flashlight decoder (``backend=
  "flashlight"``, needs the package ``flashlight-text``). Measured on simulated posteriors of
  3-minute songs (``bench/bench_decode.py``): flashlight is about 15 times faster (0.001 against
  0.017 x real time, both far under the 0.05 budget) but its WER with the LM is equal or worse on
  whole songs at the paper's weights (0.158 against 0.111, 0.166/0.164, 0.172/0.156 on three
  seeds), and it can only output the LM's words (a lexicon built from ``unigrams.txt``), while
  pyctcdecode may also spell words outside it (with a penalty). Beam search folds the
  punctuation columns of the vocabulary away before searching (",.?!" into the blank, "-" into
  the space), so the words it scores with the LM are the same
  letters-and-apostrophes words that ``singalign lm build`` puts into the LM; scoring removes
  punctuation anyway (``singalign.metrics.normalize_for_scoring``).
* Word times: :func:`word_times` (from the frames where greedy decoding emitted each character)
  and :func:`forced_align_words` (CTC forced alignment of any transcript, torchaudio).
* Notes: :func:`pick_onsets` (threshold + local maximum, as the paper), :func:`notes_from_frames`
  and :func:`attach_lyrics`.

Time grids: CTC posteriors are at ``constants.CTC_FRAME_RATE`` (31.25 per second), pitch and onset
posteriors at ``constants.FRAME_RATE`` (62.5 per second).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from singalign.constants import (
    BLANK_INDEX,
    CHAR_TO_INDEX,
    CTC_FRAME_RATE,
    FRAME_RATE,
    NO_PITCH,
    ONSET_HALF_WINDOW_FRAMES,
    ONSET_THRESHOLD,
    SPACE_INDEX,
    VOCAB,
)
from singalign.errors import SingalignError
from singalign.result import NoteEvent, WordTiming

METHODS = ("greedy", "beam")
BACKENDS = ("auto", "flashlight", "pyctcdecode")
#: pyctcdecode's penalty (log10 units, before the LM weight) for a word outside the LM's unigrams.
UNK_SCORE_OFFSET = -10.0
#: Vocabulary columns folded into the blank / the space before beam search (see module docstring).
FOLD_TO_BLANK = tuple(CHAR_TO_INDEX[c] for c in ",.?!")
FOLD_TO_SPACE = (CHAR_TO_INDEX["-"],)
#: Melisma marker option for attach_lyrics (the default carries "").
CONTINUATION = "_"


@dataclass(frozen=True)
class DecodeOptions:
    """How posteriors become text and notes (one frozen config; stored in bundles as a dict).

    Attributes:
        method: ``"greedy"`` (best path) or ``"beam"`` (prefix beam search, with the LM if given).
        beam_width: beams kept per frame (paper: 25).
        lm_path: KenLM model (``lm.bin`` or ``.arpa``) or a folder written by ``singalign lm build``
            (then its ``lm.bin`` and ``unigrams.txt`` are used). None: beam search without an LM.
        unigrams_path: the LM's word list, one word a line (None: read from the ARPA file if the LM is
            ARPA, else from ``unigrams.txt`` beside the binary).
        alpha: LM weight (paper: 0.75). The unknown-word penalty scales with it, so alpha = beta = 0
            decodes exactly like no LM.
        beta: word insertion bonus (paper: 1.85).
        cutoff_top_n: characters considered per frame (the best n; paper: 40, more than the 34 of the
            vocabulary, so it prunes nothing by default).
        onset_threshold: minimum onset probability of a picked onset (paper: 0.4).
        onset_half_window: frames either side within which an onset must be the maximum (25 ms).
        min_note_frames: notes shorter than this many feature frames are merged or dropped (0: off).
        backend: beam-search implementation: ``"pyctcdecode"``, ``"flashlight"`` (torchaudio +
            flashlight-text; much faster, LM words only), or ``"auto"`` (pyctcdecode: the better
            WER on whole songs, see the module docstring).
    """

    method: str = "beam"
    beam_width: int = 25
    lm_path: str | None = None
    unigrams_path: str | None = None
    alpha: float = 0.75
    beta: float = 1.85
    cutoff_top_n: int = 40
    onset_threshold: float = ONSET_THRESHOLD
    onset_half_window: int = ONSET_HALF_WINDOW_FRAMES
    min_note_frames: int = 0
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SingalignError(f"decode method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.backend not in BACKENDS:
            raise SingalignError(f"decode backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.beam_width < 1 or self.cutoff_top_n < 1:
            raise SingalignError("beam_width and cutoff_top_n must be at least 1")
        if not 0.0 <= self.onset_threshold <= 1.0:
            raise SingalignError(f"onset_threshold must be within [0, 1], not {self.onset_threshold}")
        if self.onset_half_window < 0 or self.min_note_frames < 0:
            raise SingalignError("onset_half_window and min_note_frames must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecodeOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SingalignError(f"unknown decode option(s): {', '.join(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------- CTC text


def _check_log_probs(log_probs: np.ndarray) -> np.ndarray:
    log_probs = np.asarray(log_probs, dtype=np.float32)
    if log_probs.ndim != 2 or log_probs.shape[1] != len(VOCAB):
        raise SingalignError(
            f"CTC log-probabilities must have shape (T, {len(VOCAB)}), not {log_probs.shape}"
        )
    return log_probs


def ctc_greedy(log_probs: np.ndarray) -> tuple[str, list[int]]:
    """Best-path decoding: argmax per frame, repeats collapsed, blanks dropped.

    Args:
        log_probs: (T, 34) CTC log-posteriors (or any scores; only the argmax matters).

    Returns:
        The text (every vocabulary character, punctuation included) and, for each of its
        characters, the CTC frame where it was first emitted.
    """
    best = _check_log_probs(log_probs).argmax(axis=1)
    if best.size == 0:
        return "", []
    starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    frames = [int(t) for t in starts if best[t] != BLANK_INDEX]
    return "".join(VOCAB[best[t]] for t in frames), frames


def fold_punctuation(log_probs: np.ndarray) -> np.ndarray:
    """Move the probability of ",.?!" into the blank and of "-" into the space.

    Args:
        log_probs: (T, 34) CTC log-posteriors.

    Returns:
        (T, 34) log-posteriors that still sum to one per frame, with the folded columns at -inf.
    """
    lp = _check_log_probs(log_probs).astype(np.float64)
    out = lp.copy()
    out[:, BLANK_INDEX] = np.logaddexp.reduce(lp[:, [BLANK_INDEX, *FOLD_TO_BLANK]], axis=1)
    out[:, SPACE_INDEX] = np.logaddexp.reduce(lp[:, [SPACE_INDEX, *FOLD_TO_SPACE]], axis=1)
    out[:, [*FOLD_TO_BLANK, *FOLD_TO_SPACE]] = -np.inf
    return out.astype(np.float32)


def _resolve_lm(options: DecodeOptions) -> tuple[str | None, str | None]:
    """(KenLM file, unigram file or None) from ``lm_path``/``unigrams_path``; checks they exist."""
    if not options.lm_path:
        return None, None
    lm = Path(options.lm_path)
    unigrams = Path(options.unigrams_path) if options.unigrams_path else None
    if lm.is_dir():
        binary, arpa = lm / "lm.bin", lm / "lm.arpa"
        if unigrams is None and (lm / "unigrams.txt").is_file():
            unigrams = lm / "unigrams.txt"
        lm = binary if binary.exists() else arpa
    if not lm.is_file():
        raise SingalignError(
            f"{options.lm_path}: language model not found (build one with `singalign lm build`)"
        )
    if unigrams is None and lm.suffix != ".arpa" and (lm.parent / "unigrams.txt").is_file():
        unigrams = lm.parent / "unigrams.txt"
    if unigrams is not None and not unigrams.is_file():
        raise SingalignError(f"{unigrams}: unigram list not found")
    return str(lm), (str(unigrams) if unigrams else None)


@functools.lru_cache(maxsize=4)
def _pyctc_decoder(lm_file: str | None, unigrams_file: str | None, mtime: float):
    """A pyctcdecode decoder for one LM (built once: loading a KenLM binary takes a while)."""
    import logging

    from pyctcdecode import build_ctcdecoder

    # pyctcdecode warns about every label it finds unusual; our labels are deliberate.
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    labels = ["", " ", *VOCAB[2:]]  # blank is "" for pyctcdecode
    unigrams = None
    if unigrams_file:
        with open(unigrams_file, encoding="utf-8") as f:
            unigrams = [w for w in f.read().split() if w]
    try:
        return build_ctcdecoder(labels, kenlm_model_path=lm_file, unigrams=unigrams, alpha=0.5, beta=1.5)
    except (OSError, RuntimeError, ValueError) as exc:
        raise SingalignError(f"{lm_file}: cannot load the language model ({exc})") from None


def _arpa_unigrams(arpa_file: str) -> list[str]:
    """The words of an ARPA file's unigram section."""
    words, inside = [], False
    with open(arpa_file, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                inside = True
            elif inside and line.startswith("\\"):
                break
            elif inside and line:
                parts = line.split("\t")
                if len(parts) >= 2:
                    words.append(parts[1])
    return words


@functools.lru_cache(maxsize=8)
def _flashlight_decoder(
    lm_file: str | None,
    unigrams_file: str | None,
    mtime: float,
    beam: int,
    top_n: int,
    alpha: float,
    beta: float,
):
    """A torchaudio/flashlight decoder: lexicon-constrained with an LM, lexicon-free without.

    The weights are fixed when flashlight builds its decoder, so they are part of the cache key.
    KenLM scores are log10; pyctcdecode multiplies them by alpha * ln(10), so the same alpha means
    the same weight in both backends.
    """
    import tempfile

    from torchaudio.models.decoder import ctc_decoder

    # flashlight names the blank and the word separator; ours are "|" (blank) and " " (space).
    tokens = ["<blank>", "|", *VOCAB[2:]]
    common = dict(
        tokens=tokens, beam_size=beam, beam_size_token=min(top_n, len(VOCAB)), blank_token="<blank>"
    )
    common.update(sil_token="|", unk_word="<unk>")
    if lm_file is None:
        return ctc_decoder(lexicon=None, lm=None, **common)
    words = _read_unigrams(unigrams_file) if unigrams_file else _arpa_unigrams(lm_file)
    spellable = set("abcdefghijklmnopqrstuvwxyz'")
    words = [w for w in dict.fromkeys(words) if w and set(w) <= spellable]
    if not words:
        raise SingalignError(f"{unigrams_file or lm_file}: no words to decode with")
    with tempfile.NamedTemporaryFile("w", suffix=".lexicon.txt", encoding="utf-8", delete=False) as f:
        f.write("".join(f"{w}\t{' '.join(w)} |\n" for w in words))
    try:
        lm_weight = alpha * float(np.log(10.0))
        return ctc_decoder(lexicon=f.name, lm=lm_file, lm_weight=lm_weight, word_score=beta, **common)
    except (OSError, RuntimeError, ValueError) as exc:
        raise SingalignError(f"{lm_file}: cannot load the language model ({exc})") from None
    finally:
        os.unlink(f.name)


def _read_unigrams(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [w for w in f.read().split() if w]


def flashlight_available() -> bool:
    """True when torchaudio's flashlight CTC decoder can be imported (package flashlight-text)."""
    try:
        import flashlight.lib.text.decoder  # noqa: F401
    except ImportError:
        return False
    return True


def _backend_for(options: DecodeOptions, lm_file: str | None, unigrams_file: str | None) -> str:
    if options.backend == "flashlight":
        if not flashlight_available():
            raise SingalignError("decode backend flashlight needs the package flashlight-text (pip install)")
        if lm_file and not unigrams_file and not lm_file.endswith(".arpa"):
            raise SingalignError(
                f"{lm_file}: the flashlight backend needs the LM's unigrams.txt (its lexicon)"
            )
        return "flashlight"
    return "pyctcdecode"  # "auto" and "pyctcdecode"


def _pyctc_decode(
    lp: np.ndarray, options: DecodeOptions, lm_file: str | None, unigrams_file: str | None
) -> str:
    mtime = os.path.getmtime(lm_file) if lm_file else 0.0
    decoder = _pyctc_decoder(lm_file, unigrams_file, mtime)
    if lm_file:
        # The unknown-word penalty is part of the LM's contribution: it scales with alpha, so
        # that alpha = beta = 0 is exactly "no LM" (pyctcdecode would otherwise still apply it
        # to partial words).
        decoder.reset_params(
            alpha=float(options.alpha),
            beta=float(options.beta),
            unk_score_offset=UNK_SCORE_OFFSET * options.alpha,
        )
    lp = np.maximum(lp, -1e4)  # pyctcdecode clips, but -inf would warn inside numpy
    # decode_beams without prune_history: pyctcdecode's decode() merges beams that share their last
    # n words (n = LM order, 1 without an LM), which loses hypotheses and makes an LM with weight 0
    # decode differently from no LM.
    beams = decoder.decode_beams(lp, beam_width=options.beam_width, prune_history=False)
    return beams[0][0]


def _flashlight_decode(
    lp: np.ndarray, options: DecodeOptions, lm_file: str | None, unigrams_file: str | None
) -> str:
    import torch

    mtime = os.path.getmtime(lm_file) if lm_file else 0.0
    weights = (float(options.alpha), float(options.beta)) if lm_file else (0.0, 0.0)
    decoder = _flashlight_decoder(
        lm_file, unigrams_file, mtime, options.beam_width, options.cutoff_top_n, *weights
    )
    emissions = torch.from_numpy(np.ascontiguousarray(np.maximum(lp, -1e4), dtype=np.float32))[None]
    hyp = decoder(emissions)[0][0]
    if lm_file:
        return " ".join(hyp.words)
    return "".join(decoder.idxs_to_tokens(hyp.tokens)).replace("<blank>", "").replace("|", " ")


def ctc_beam(log_probs: np.ndarray, options: DecodeOptions = DecodeOptions()) -> str:
    """Beam search (flashlight or pyctcdecode), with the KenLM of ``options.lm_path`` when given.

    Args:
        log_probs: (T, 34) CTC log-posteriors.
        options: beam width, LM, alpha, beta, cutoff_top_n, backend.

    Returns:
        The best hypothesis: words of letters and apostrophes separated by single spaces.
    """
    lp = fold_punctuation(log_probs)
    if lp.shape[0] == 0:
        return ""
    if options.cutoff_top_n < lp.shape[1]:
        # Keep the best n characters per frame (DeepSpeech's cutoff_top_n).
        kth = np.partition(lp, -options.cutoff_top_n, axis=1)[:, -options.cutoff_top_n][:, None]
        lp = np.where(lp >= kth, lp, -np.inf)
    lm_file, unigrams_file = _resolve_lm(options)
    if _backend_for(options, lm_file, unigrams_file) == "flashlight":
        text = _flashlight_decode(lp, options, lm_file, unigrams_file)
    else:
        text = _pyctc_decode(lp, options, lm_file, unigrams_file)
    return " ".join(text.split())


def decode_text(log_probs: np.ndarray, options: DecodeOptions = DecodeOptions()) -> str:
    """Text by ``options.method`` (greedy keeps punctuation; beam folds it away)."""
    if options.method == "greedy":
        return ctc_greedy(log_probs)[0].strip()
    return ctc_beam(log_probs, options)


# ----------------------------------------------------------------------------- word times


def word_times(
    log_probs: np.ndarray,
    text: str,
    char_frames: list[int] | None = None,
    offset: float = 0.0,
    frame_rate: Fraction = CTC_FRAME_RATE,
) -> list[WordTiming]:
    """Start and end (seconds) of each word of ``text`` from CTC frames.

    With ``char_frames`` (as :func:`ctc_greedy` returns, one per character of ``text``), a word
    starts at the frame where its first character was emitted and ends after the last frame of
    its last character's run (the frames where that character stays the argmax). Without them
    (beam-search text), the text is force-aligned (:func:`forced_align_words`).

    Args:
        log_probs: (T, 34) CTC log-posteriors.
        text: the decoded text (vocabulary characters).
        char_frames: emitting frame of each character of ``text``, or None.
        offset: seconds added to every time (start of this window in the song).
        frame_rate: CTC frames per second.
    """
    if char_frames is None:
        return forced_align_words(log_probs, text, offset=offset, frame_rate=frame_rate)
    if len(char_frames) != len(text):
        raise ValueError(f"{len(char_frames)} frames for {len(text)} characters")
    best = _check_log_probs(log_probs).argmax(axis=1)
    rate = float(frame_rate)
    words: list[WordTiming] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        j = i
        while j < len(text) and text[j] != " ":
            j += 1
        end = char_frames[j - 1]
        while end + 1 < len(best) and best[end + 1] == best[char_frames[j - 1]]:
            end += 1
        words.append(WordTiming(text[i:j], offset + char_frames[i] / rate, offset + (end + 1) / rate))
        i = j
    return words


def _alignment_tokens(transcript: str) -> tuple[list[str], list[list[int]]]:
    """Original words of ``transcript`` and, for each, its token ids (letters and apostrophes).

    Each whitespace-separated word is normalized on its own (``to_vocab_text``: accents stripped,
    digits spelled out, case folded); punctuation that the models rarely emit is left out of
    the alignment ("-" splits, ",.?!" vanish); a word that normalizes to nothing is skipped.
    """
    from singalign.text import to_vocab_text

    words, ids = [], []
    for raw in transcript.split():
        norm = to_vocab_text(raw).replace("-", " ")
        norm = "".join(c for c in norm if CHAR_TO_INDEX.get(c, 0) not in FOLD_TO_BLANK)
        parts = [p.strip("'") for p in norm.split()]
        tokens: list[int] = []
        for p in parts:
            if p:
                tokens += ([SPACE_INDEX] if tokens else []) + [CHAR_TO_INDEX[c] for c in p]
        if tokens:
            words.append(raw)
            ids.append(tokens)
    return words, ids


def forced_align_words(
    log_probs: np.ndarray, transcript: str, offset: float = 0.0, frame_rate: Fraction = CTC_FRAME_RATE
) -> list[WordTiming]:
    """Word times of a known transcript by CTC forced alignment (``torchaudio.functional.forced_align``).

    The transcript's words are kept as written (``WordTiming.word``); each is normalized to the
    vocabulary only for the alignment (see :func:`_alignment_tokens`), and words are separated by
    the space token, which the models emit between words.

    Args:
        log_probs: (T, 34) CTC log-posteriors.
        transcript: any text; whitespace separates words.
        offset: seconds added to every time.
        frame_rate: CTC frames per second.

    Returns:
        One WordTiming per word that has letters, in order; start at the first frame of its first
        character, end after the last frame of its last character.

    Raises:
        SingalignError: the audio is too short for the transcript (CTC needs a frame per
            character, plus one between repeated characters).
    """
    import torch
    import torchaudio.functional as taf

    lp = _check_log_probs(log_probs)
    words, ids = _alignment_tokens(transcript)
    if not words:
        return []
    targets: list[int] = []
    spans_of_word: list[tuple[int, int]] = []
    for w_ids in ids:
        if targets:
            targets.append(SPACE_INDEX)
        spans_of_word.append((len(targets), len(targets) + len(w_ids)))
        targets.extend(w_ids)
    needed = len(targets) + sum(a == b for a, b in zip(targets, targets[1:], strict=False))
    if lp.shape[0] < needed:
        raise SingalignError(
            f"cannot align {len(words)} words ({needed} CTC frames needed) to {lp.shape[0]} frames of audio: "
            "the lyrics are too long for the audio"
        )
    emissions = torch.from_numpy(np.ascontiguousarray(lp))[None]
    # forced_align needs proper log-probabilities; renormalize in case scores were given.
    emissions = emissions.log_softmax(-1)
    tokens = torch.tensor([targets], dtype=torch.int32)
    aligned, scores = taf.forced_align(emissions, tokens, blank=BLANK_INDEX)
    spans = taf.merge_tokens(aligned[0], scores[0].exp(), blank=BLANK_INDEX)
    if len(spans) != len(targets):  # cannot happen with a valid alignment; guard anyway
        raise SingalignError(f"forced alignment returned {len(spans)} tokens for {len(targets)}")
    rate = float(frame_rate)
    return [
        WordTiming(w, offset + spans[a].start / rate, offset + spans[b - 1].end / rate)
        for w, (a, b) in zip(words, spans_of_word, strict=True)
    ]


# ----------------------------------------------------------------------------- notes


def pick_onsets(
    onset_probs: np.ndarray,
    threshold: float = ONSET_THRESHOLD,
    half_window_frames: int = ONSET_HALF_WINDOW_FRAMES,
) -> np.ndarray:
    """Onset frames: probability >= threshold and the maximum within ``half_window_frames`` either side.

    Ties: on a plateau of equal maxima only its first frame is an onset (a frame must be strictly
    greater than every earlier frame of its window, and at least as large as every later one).

    Args:
        onset_probs: (T,) onset probabilities.
        threshold: minimum probability.
        half_window_frames: frames either side (paper: 25 ms -> 1 frame).

    Returns:
        (n_onsets,) int64 frame indices, increasing.
    """
    p = np.asarray(onset_probs, dtype=np.float64).reshape(-1)
    w = int(half_window_frames)
    if p.size == 0:
        return np.zeros(0, dtype=np.int64)
    padded = np.pad(p, w, constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)  # (T, 2w+1), centre at w
    ok = p >= threshold
    if w:
        ok &= p > win[:, :w].max(axis=1)
        ok &= p >= win[:, w + 1 :].max(axis=1)
    return np.flatnonzero(ok).astype(np.int64)


def _mode(values: np.ndarray) -> int:
    """Most frequent value; ties go to the value seen first."""
    counts = Counter(values.tolist())
    best = max(counts.values())
    return next(int(v) for v in values.tolist() if counts[v] == best)


def notes_from_frames(
    pitch_probs: np.ndarray,
    onset_frames: np.ndarray | list[int],
    min_note_frames: int = 0,
    frame_rate: Fraction = FRAME_RATE,
    offset: float = 0.0,
) -> list[NoteEvent]:
    """Notes from framewise pitch posteriors and picked onsets.

    The pitch of a frame is its argmax. A note starts at every onset frame and at every pitch
    change, and ends at the next start or at a no-pitch frame; no-pitch segments are dropped; a
    note's pitch is the mode of its frames. With ``min_note_frames`` > 0, a note shorter than that
    is merged into the note it touches (the previous one, unless it starts at an onset, then the
    next one; the merged note's pitch is the mode again), or dropped if it touches none.

    Args:
        pitch_probs: (T, 129) pitch posteriors (or logits): MIDI 0..127 and no-pitch (128).
        onset_frames: onset frame indices (from :func:`pick_onsets`).
        min_note_frames: minimum note length in frames (0: keep every note).
        frame_rate: frames per second of ``pitch_probs``.
        offset: seconds added to every time.

    Returns:
        Notes in time order (``lyric`` empty).
    """
    pp = np.asarray(pitch_probs)
    if pp.ndim != 2 or pp.shape[1] != NO_PITCH + 1:
        raise SingalignError(f"pitch posteriors must have shape (T, {NO_PITCH + 1}), not {pp.shape}")
    pitch = pp.argmax(axis=1)
    n = len(pitch)
    if n == 0:
        return []
    onsets = np.zeros(n, dtype=bool)
    on = np.asarray(onset_frames, dtype=np.int64)
    onsets[on[(on >= 0) & (on < n)]] = True
    starts = np.flatnonzero(np.r_[True, pitch[1:] != pitch[:-1]] | onsets)
    ends = np.r_[starts[1:], n]
    # segments: [start, end, starts_at_onset]
    segs = [
        [int(s), int(e), bool(onsets[s])] for s, e in zip(starts, ends, strict=True) if pitch[s] != NO_PITCH
    ]
    if min_note_frames > 0:
        segs = _merge_short(segs, min_note_frames, pitch)
    rate = float(frame_rate)
    return [NoteEvent(offset + s / rate, offset + e / rate, _mode(pitch[s:e])) for s, e, _ in segs]


def _merge_short(segs: list[list], min_frames: int, pitch: np.ndarray) -> list[list]:
    """Merge (or drop) pitched segments shorter than ``min_frames``; see notes_from_frames.

    After merging, touching segments of the same pitch (mode) whose second does not start at an
    onset become one note again (a note starts only at an onset or a pitch change).
    """
    segs = [list(s) for s in segs]
    changed = True
    while changed:
        changed = False
        for i, (s, e, at_onset) in enumerate(segs):
            if e - s >= min_frames:
                continue
            prev_ok = i > 0 and segs[i - 1][1] == s and not at_onset
            next_ok = i + 1 < len(segs) and segs[i + 1][0] == e and not segs[i + 1][2]
            if prev_ok:
                segs[i - 1][1] = e
            elif next_ok:
                segs[i + 1][0] = s
                segs[i + 1][2] = at_onset
            del segs[i]
            changed = True
            break
    fused: list[list] = []
    for seg in segs:
        if (
            fused
            and fused[-1][1] == seg[0]
            and not seg[2]
            and _mode(pitch[fused[-1][0] : fused[-1][1]]) == _mode(pitch[seg[0] : seg[1]])
        ):
            fused[-1][1] = seg[1]
        else:
            fused.append(seg)
    return fused


def notes_from_posteriors(
    pitch_probs: np.ndarray,
    onset_probs: np.ndarray,
    options: DecodeOptions = DecodeOptions(),
    duration: float | None = None,
) -> list[NoteEvent]:
    """Notes of a song from CRNN-1's posteriors with ``options``' onset threshold, onset window and
    minimum note length (:func:`pick_onsets`, then :func:`notes_from_frames`). With ``duration``
    (seconds), notes starting after it are dropped and the rest end by it (the last frame runs past
    the end of the audio)."""
    onsets = pick_onsets(onset_probs, options.onset_threshold, options.onset_half_window)
    notes = notes_from_frames(pitch_probs, onsets, options.min_note_frames)
    if duration is not None:
        notes = [dataclasses.replace(n, offset=min(n.offset, duration)) for n in notes if n.onset < duration]
    return notes


def attach_lyrics(
    notes: list[NoteEvent], words: list[WordTiming], continuation: str = "", max_gap: float = 0.5
) -> list[NoteEvent]:
    """Copies of ``notes`` with the word (or words) sung on each in ``lyric``.

    Rules:
      1. Every note takes the word it overlaps most in time (ties: the earlier word).
      2. A word that no note took goes to the note it overlaps most, or, when it overlaps none, to
         the nearest note within ``max_gap`` seconds (otherwise it stays unattached). A note can
         so carry several words ("to the"), joined by spaces in time order.
      3. Melisma: a word spread over several notes is carried by its first note; the following
         notes that carry nothing new get ``continuation`` ("" by default; "_" is the usual
         melisma marker in karaoke formats).

    Args:
        notes: notes in time order.
        words: words in time order.
        continuation: lyric of the later notes of a melisma.
        max_gap: seconds within which a word that overlaps no note may attach to the nearest one.
    """
    if not notes:
        return []
    on = np.array([n.onset for n in notes])
    off = np.array([n.offset for n in notes])
    carried: list[list[int]] = [[] for _ in notes]  # word indices per note
    taken = set()
    if words:
        ws = np.array([w.start for w in words])
        we = np.array([w.end for w in words])
        overlap = np.minimum(off[:, None], we[None, :]) - np.maximum(
            on[:, None], ws[None, :]
        )  # (notes, words)
        for i in range(len(notes)):
            j = int(overlap[i].argmax())
            if overlap[i, j] > 0:
                carried[i].append(j)
                taken.add(j)
        for j in range(len(words)):
            if j in taken:
                continue
            i = int(overlap[:, j].argmax())
            if overlap[i, j] <= 0:
                gap = np.maximum(on - we[j], ws[j] - off)  # (notes,) distance between intervals
                i = int(gap.argmin())
                if gap[i] > max_gap:
                    continue
            carried[i].append(j)
    out: list[NoteEvent] = []
    sung: set[int] = set()
    for note, idx in zip(notes, carried, strict=True):
        new = sorted(j for j in set(idx) if j not in sung)
        sung.update(new)
        lyric = " ".join(words[j].word for j in new) if new else (continuation if idx else "")
        out.append(dataclasses.replace(note, lyric=lyric))
    return out


def simulate_posteriors(text: str, rng, noise: float = 0.7) -> np.ndarray:
    """(T, 34) simulated CTC log-posteriors of ``text``, for tests and benchmarks of decoders.

    Each character gets 2-4 frames, one of them peaked on it (the others on blank), Gaussian logit
    noise of scale ``noise`` everywhere, and in 15% of letters a wrong letter that beats the right
    one by 0.1-2 logits (an acoustic confusion a language model can undo).
    """
    rows = []
    for ch in text:
        n = int(rng.integers(2, 5))
        k = int(rng.integers(0, n))
        for t in range(n):
            logits = rng.normal(0.0, noise, len(VOCAB))
            target = CHAR_TO_INDEX[ch] if t == k else BLANK_INDEX
            logits[target] += rng.uniform(2.0, 7.0)
            if t == k and ch != " " and rng.random() < 0.15:
                logits[int(rng.integers(2, 28))] = logits[target] + rng.uniform(0.1, 2.0)
            rows.append(logits)
    x = np.array(rows)
    return (x - np.logaddexp.reduce(x, axis=1, keepdims=True)).astype(np.float32)


def tune_lm_weights(
    posteriors: list[np.ndarray],
    references: list[str],
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0),
    betas: tuple[float, ...] = (0.0, 1.0, 1.85, 3.0),
    options: DecodeOptions = DecodeOptions(),
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Corpus WER of beam search for every (alpha, beta) on validation data, best first.

    The posteriors are computed once by the caller; only the search is repeated per grid point.

    Args:
        posteriors: (T_i, 34) CTC log-posteriors of each validation utterance.
        references: their reference texts.
        alphas: LM weights to try.
        betas: word bonuses to try.
        options: everything else (LM, beam width, backend).
        progress: show a progress bar over the grid.

    Returns:
        ``[{"alpha", "beta", "wer", "cer"}]`` sorted by WER then CER (ties keep the grid order:
        smaller alpha, then smaller beta); the first is the choice.
    """
    from tqdm import tqdm

    from singalign.metrics import error_rates

    if len(posteriors) != len(references):
        raise ValueError(f"{len(posteriors)} posteriors but {len(references)} references")
    grid = [(float(a), float(b)) for a in sorted(alphas) for b in sorted(betas)]
    rows = []
    for a, b in tqdm(grid, desc="alpha/beta grid", unit="point", disable=not progress):
        opts = dataclasses.replace(options, method="beam", alpha=a, beta=b)
        r = error_rates(references, [ctc_beam(lp, opts) for lp in posteriors])
        rows.append({"alpha": a, "beta": b, "wer": r["wer"], "cer": r["cer"]})
    return sorted(rows, key=lambda r: (r["wer"], r["cer"]))
