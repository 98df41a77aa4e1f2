"""``singalign score``: notes (COn/COnP/COnPOff), lyrics (WER/CER) and word alignment, as JSON.

Every command takes two files, or two folders whose files are paired by name (stem). Output is
one JSON object on stdout. A file that cannot be read is reported on stderr (one line naming it),
the others are still scored, and the exit code is 1.

Inputs:

* notes: mir_eval note files (``onset offset frequency_hz`` per line, whitespace or commas;
  ``#`` comments), or for the estimate a JSON written by ``transcribe``/``align`` (its notes).
* lyrics: text files (the whole file is one text) or ``transcribe`` JSON (its ``text``). In a
  reference folder, JamendoLyrics' ``*.words.txt`` files are skipped. A reference without a
  hypothesis is scored as an empty hypothesis (all deletions) and listed under ``missing``.
* alignment: the reference is a JamendoLyrics word annotation (``annotations/words/<id>.csv``,
  columns ``word_start,word_end,line_end``); its words are read from ``lyrics/<id>.words.txt``
  of the same corpus (or a ``word`` column), so that words can be paired by text when the
  counts differ. The hypothesis is the JSON of ``align``/``transcribe`` (``words``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from singalign.errors import SingalignError

# ----------------------------------------------------------------------------- readers


def read_note_file(path: str | Path) -> tuple[list[list[float]], list[float]]:
    """(intervals, frequencies in Hz) of a mir_eval note file or of a result JSON's notes."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        d = _read_json(path)
        try:
            notes = d["notes"]
            return (
                [[float(n["onset"]), float(n["offset"])] for n in notes],
                [440.0 * 2.0 ** ((float(n["pitch"]) - 69.0) / 12.0) for n in notes],
            )
        except (KeyError, TypeError, ValueError):
            raise SingalignError(
                f"{path}: not a singalign result JSON with notes (onset, offset, pitch)"
            ) from None
    intervals, freqs = [], []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        parts = line.split()
        try:
            onset, offset, freq = (float(x) for x in parts[:3])
            if len(parts) != 3:
                raise ValueError
        except ValueError:
            raise SingalignError(
                f"{path}:{lineno}: expected 'onset offset frequency_hz', got {line!r}"
            ) from None
        if not (math.isfinite(onset) and math.isfinite(offset) and offset >= onset >= 0 and freq > 0):
            raise SingalignError(
                f"{path}:{lineno}: need 0 <= onset <= offset and frequency > 0, got {line!r}"
            )
        intervals.append([onset, offset])
        freqs.append(freq)
    return intervals, freqs


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SingalignError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise SingalignError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise SingalignError(f"{path}: cannot read ({exc.strerror})") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise SingalignError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(d, dict):
        raise SingalignError(f"{path}: expected a JSON object")
    return d


def read_lyrics(path: str | Path) -> str:
    """A text file's content, or a result JSON's ``text``."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        d = _read_json(path)
        if not isinstance(d.get("text"), str):
            raise SingalignError(f"{path}: JSON without a 'text' field")
        return d["text"]
    return _read_text(path)


def read_reference_words(csv_path: str | Path) -> tuple[list[float], list[str] | None]:
    """Word onsets of a JamendoLyrics word annotation, and the words if they can be found."""
    csv_path = Path(csv_path)
    text = _read_text(csv_path)
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "word_start" not in rows[0]:
        raise SingalignError(
            f"{csv_path}: expected a CSV with a word_start column (JamendoLyrics annotations/words)"
        )
    try:
        onsets = [float(r["word_start"]) for r in rows]
    except (TypeError, ValueError):
        raise SingalignError(f"{csv_path}: word_start values must be numbers") from None
    if "word" in rows[0]:
        return onsets, [r["word"] or "" for r in rows]
    # JamendoLyrics layout: <root>/annotations/words/<id>.csv and <root>/lyrics/<id>.words.txt
    words_txt = csv_path.parent.parent.parent / "lyrics" / f"{csv_path.stem}.words.txt"
    if words_txt.is_file():
        words = [w.strip() for w in _read_text(words_txt).splitlines() if w.strip()]
        if len(words) != len(onsets):
            raise SingalignError(f"{words_txt}: {len(words)} words but {len(onsets)} rows in {csv_path}")
        return onsets, words
    return onsets, None


def read_hypothesis_words(json_path: str | Path) -> tuple[list[float], list[str]]:
    """Word onsets and words of a result JSON."""
    json_path = Path(json_path)
    d = _read_json(json_path)
    try:
        words = d["words"]
        return [float(w["start"]) for w in words], [str(w["word"]) for w in words]
    except (KeyError, TypeError, ValueError):
        raise SingalignError(
            f"{json_path}: not a singalign result JSON with words (word, start, end)"
        ) from None


# ----------------------------------------------------------------------------- pairing


def pair_inputs(
    ref: str, hyp: str, ref_suffixes: tuple[str, ...], hyp_suffixes: tuple[str, ...]
) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    """[(id, ref file, hyp file or None)] and the hypothesis stems that have no reference.

    Two files pair with each other; two folders pair by stem (the first hypothesis suffix that
    exists wins). A file and a folder is an error.
    """
    rp, hp = Path(ref), Path(hyp)
    for p in (rp, hp):
        if not p.exists():
            raise SingalignError(f"{p}: no such file or folder")
    if rp.is_file() and hp.is_file():
        return [(rp.stem, rp, hp)], []
    if rp.is_dir() != hp.is_dir():
        raise SingalignError(f"{ref} and {hyp}: give two files or two folders")

    def stem(p: Path, suffixes: tuple[str, ...]) -> str | None:
        name = p.name
        for s in suffixes:
            if name.lower().endswith(s):
                return name[: -len(s)]
        return None

    refs: dict[str, Path] = {}
    for p in sorted(rp.iterdir()):
        s = stem(p, ref_suffixes)
        if p.is_file() and s is not None and not p.name.endswith(".words.txt"):
            refs[s] = p
    hyps: dict[str, Path] = {}
    for suffix in hyp_suffixes:  # earlier suffixes win
        for p in sorted(hp.iterdir()):
            s = stem(p, (suffix,))
            if p.is_file() and s is not None and s not in hyps and not p.name.endswith(".words.txt"):
                hyps[s] = p
    if not refs:
        raise SingalignError(f"{ref}: no reference files ({', '.join(ref_suffixes)})")
    pairs = [(s, refs[s], hyps.get(s)) for s in refs]
    return pairs, sorted(set(hyps) - set(refs))


def _each(pairs, fn: Callable[[str, Path, Path | None], dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Run ``fn`` on every pair; report failures on stderr and keep going."""
    out, failed = [], 0
    for song_id, r, h in pairs:
        try:
            out.append(fn(song_id, r, h))
        except SingalignError as exc:
            failed += 1
            print(f"singalign: error: {exc}", file=sys.stderr)
    return out, failed


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


# ----------------------------------------------------------------------------- commands


def score_notes(ref: str, est: str) -> tuple[dict[str, Any], int]:
    """Note scores of two files (or folders: per song, and the mean over songs)."""
    from singalign.metrics import note_scores

    pairs, _ = pair_inputs(ref, est, (".txt", ".notes.txt"), (".notes.txt", ".txt", ".json"))

    def one(song_id: str, r: Path, h: Path | None) -> dict[str, Any]:
        if h is None:
            raise SingalignError(f"{r}: no estimate file named {song_id}.* in {est}")
        ri, rf = read_note_file(r)
        ei, ef = read_note_file(h)
        try:
            s = note_scores(ri, rf, ei, ef)
        except ValueError as exc:
            raise SingalignError(f"{r} / {h}: {exc}") from None
        return {"id": song_id, **s, "n_ref_notes": len(ri), "n_est_notes": len(ei)}

    per, failed = _each(pairs, one)
    if not per:
        return {}, failed
    if len(pairs) == 1 and Path(ref).is_file():
        out = {k: per[0][k] for k in ("COn", "COnP", "COnPOff", "n_ref_notes", "n_est_notes")}
        return out, failed
    mean = {
        m: {k: sum(p[m][k] for p in per) / len(per) for k in ("precision", "recall", "f")}
        for m in ("COn", "COnP", "COnPOff")
    }
    return {**mean, "n_songs": len(per), "averaging": "mean over songs", "per_song": per}, failed


def score_lyrics(ref: str, hyp: str, out_dir: str | None = None) -> tuple[dict[str, Any], int]:
    """Corpus WER/CER of two files or folders; with ``out_dir`` writes the evidence files."""
    from singalign.files import write_json, write_jsonl
    from singalign.metrics import error_rates

    pairs, extra = pair_inputs(ref, hyp, (".txt",), (".txt", ".json"))
    missing = [s for s, _, h in pairs if h is None]
    for s in missing:
        print(f"singalign: warning: no hypothesis for {s}: scored as empty", file=sys.stderr)

    def one(song_id: str, r: Path, h: Path | None) -> dict[str, Any]:
        return {"id": song_id, "ref": read_lyrics(r), "hyp": read_lyrics(h) if h else ""}

    texts, failed = _each(pairs, one)
    rates = error_rates([t["ref"] for t in texts], [t["hyp"] for t in texts], [t["id"] for t in texts])
    per = rates.pop("per_utterance")
    keys = ("id", "wer", "cer", "n_ref_words", "substitutions", "deletions", "insertions", "word_errors")
    summary = {**rates, "missing": missing, "unmatched_hypotheses": extra}
    summary["normalization"] = "singalign.metrics.normalize_for_scoring"
    if out_dir:
        write_jsonl(Path(out_dir) / "per_utterance.jsonl", per)
        write_json(Path(out_dir) / "summary.json", summary)
    return {**summary, "per_song": [{k: u[k] for k in keys} for u in per]}, failed


def score_alignment(ref: str, hyp: str, tolerance: float = 0.3) -> tuple[dict[str, Any], int]:
    """Word-onset errors of a JamendoLyrics word CSV against a result JSON (or folders of them)."""
    import numpy as np

    from singalign.metrics import alignment_errors, word_onset_errors

    pairs, _ = pair_inputs(ref, hyp, (".csv",), (".json",))
    abs_errors: list[float] = []

    def one(song_id: str, r: Path, h: Path | None) -> dict[str, Any]:
        if h is None:
            raise SingalignError(f"{r}: no hypothesis {song_id}.json in {hyp}")
        ref_on, ref_words = read_reference_words(r)
        hyp_on, hyp_words = read_hypothesis_words(h)
        if ref_words is None and len(ref_on) != len(hyp_on):
            raise SingalignError(
                f"{r}: {len(ref_on)} reference words without text (no lyrics/{r.stem}.words.txt) but "
                f"{len(hyp_on)} hypothesis words: cannot pair them"
            )
        words = (ref_words, hyp_words) if ref_words is not None else (None, None)
        res = alignment_errors(ref_on, hyp_on, *words, tolerance)
        res["_errors"] = word_onset_errors(ref_on, hyp_on, *words).tolist()
        return {"id": song_id, **res}

    per, failed = _each(pairs, one)
    for p in per:
        abs_errors += p.pop("_errors")
    if not per:
        return {}, failed
    if len(per) == 1 and Path(ref).is_file():
        return {k: v for k, v in per[0].items() if k != "id"}, failed
    err = np.array(abs_errors)
    n_ref = sum(p["n_ref_words"] for p in per)
    key = f"within_{tolerance:g}s"
    return {
        "mean_abs_error": float(err.mean()) if err.size else None,
        "median_abs_error": float(np.median(err)) if err.size else None,
        key: float((err <= tolerance).sum() / n_ref) if n_ref else None,
        "n_ref_words": n_ref,
        "n_paired": int(err.size),
        "pooling": "over all words of all songs",
        "per_song": per,
    }, failed


# ----------------------------------------------------------------------------- CLI


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score notes, lyrics or word alignment against references (JSON on stdout)",
        description="Score results against references; prints one JSON object. Two files, or two folders "
        "paired by file name. A bad file is reported and skipped (exit code 1).",
    )
    ssub = p.add_subparsers(dest="score_command", metavar="WHAT")
    n = ssub.add_parser(
        "notes",
        help="COn / COnP / COnPOff of sung notes",
        description="Note transcription scores with mir_eval: COn (onsets within 50 ms), COnP (and pitch within "
        "50 cents), COnPOff (and offsets within 20%% of the note or 50 ms). Files: 'onset offset frequency_hz' "
        "per line (mir_eval format, notes.txt); the estimate may also be a transcribe/align JSON.",
    )
    n.add_argument("ref", help="reference note file or folder")
    n.add_argument("est", help="estimated note file (or result JSON) or folder")
    n.set_defaults(func=_cmd_notes)
    ly = ssub.add_parser(
        "lyrics",
        help="WER / CER of transcribed lyrics",
        description="Word and character error rates after normalization (lower case, accents stripped, numbers "
        "spelled out, punctuation removed except apostrophes inside words), applied to both sides. Corpus WER sums "
        "the errors of all songs over all reference words. REF/HYP: text files (or transcribe JSON for HYP), or "
        "folders with matching names.",
    )
    ly.add_argument("ref", help="reference lyrics file or folder")
    ly.add_argument("hyp", help="hypothesis lyrics file (.txt or result .json) or folder")
    ly.add_argument(
        "--out", help="folder for per_utterance.jsonl (texts, errors, alignment) and summary.json"
    )
    ly.set_defaults(func=_cmd_lyrics)
    al = ssub.add_parser(
        "alignment",
        help="word-onset errors of aligned lyrics (MIREX measures)",
        description="Mean and median absolute word-onset error (seconds) and the share of reference words whose "
        "onset is within the tolerance. REF: JamendoLyrics annotations/words/<id>.csv (words from "
        "lyrics/<id>.words.txt beside it); HYP: the JSON written by align or transcribe. Words are paired by "
        "their normalized text when the counts differ.",
    )
    al.add_argument("ref", help="reference word CSV or folder of them")
    al.add_argument("hyp", help="result JSON or folder of them")
    al.add_argument("--tolerance", type=float, default=0.3, help="seconds (default: %(default)s)")
    al.set_defaults(func=_cmd_alignment)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _finish(result: dict[str, Any], failed: int) -> int:
    if result:
        _print(result)
    elif not failed:
        raise SingalignError("nothing to score")
    return 1 if failed else 0


def _cmd_notes(args: argparse.Namespace) -> int:
    return _finish(*score_notes(args.ref, args.est))


def _cmd_lyrics(args: argparse.Namespace) -> int:
    return _finish(*score_lyrics(args.ref, args.hyp, args.out))


def _cmd_alignment(args: argparse.Namespace) -> int:
    return _finish(*score_alignment(args.ref, args.hyp, args.tolerance))
