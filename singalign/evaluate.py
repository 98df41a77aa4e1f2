"""Evaluation of bundles on whole songs or utterances: lyrics (WER/CER) and notes (COn/COnP/COnPOff).

Each record of a manifest is run through the full ``Transcriber`` pipeline (separation, features,
both CRNNs, decoding), so the figures are those a user gets. Evidence is written to files:

    OUT/hypotheses.jsonl   one line per record: id, reference, hypothesis, word/char errors, note scores
    OUT/summary.json       corpus-level WER/CER (errors summed over records) and note scores
                           (mean over songs of mir_eval's per-song precision/recall/F)

:func:`evaluate_prepared` scores prepared items instead (features already computed, ground-truth
notes at hand), which is the only way to score an oracle-mode model.

``tables`` formats several summaries (one per mode) in the layout of the paper's Tables 1 and 2,
and, given ``paired_comparisons`` of their per-item errors, how sure each difference to the first
is (paired bootstrap confidence intervals).

For tuning the decoder (``recipes/tune_lm.py``), :func:`manifest_posteriors` and
:func:`prepared_posteriors` compute the lyrics CRNN's CTC posteriors of validation data once,
:func:`tune_lm` runs ``decode.tune_lm_weights``'s grid over them (with greedy and no-LM baselines),
and :func:`grid_table` prints the WER of every grid point. For the notes, :func:`manifest_note_posteriors`
keeps CRNN-1's posteriors and :func:`tune_notes` searches the onset threshold and minimum note length
for COnP F (:func:`notes_grid_table`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from singalign.data.manifest import Record
from singalign.errors import SingalignError

log = logging.getLogger(__name__)

#: What each line of ``hypotheses.jsonl`` keeps of ``metrics.utterance_errors`` (the counts let two
#: evaluations of the same items be compared item by item: ``paired_comparisons``).
_ERROR_KEYS = ("wer", "cer", "word_errors", "n_ref_words", "char_errors", "n_ref_chars")


def reference_notes(record: Record, shift_t: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(intervals (n, 2) in s from ``shift_t``, pitches in Hz with the record's ``pitch_shift``)."""
    from singalign.metrics import midi_to_hz

    iv = np.array([[n.onset - shift_t, n.offset - shift_t] for n in record.notes], dtype=float).reshape(-1, 2)
    return iv, midi_to_hz(np.array([n.pitch + record.pitch_shift for n in record.notes], dtype=float))


@contextlib.contextmanager
def record_audio(record: Record) -> Iterator[tuple[str, float]]:
    """(audio file, start in the song in s) of a record; a segment is cut into a temporary file.

    A record that spans its whole file (offset 0 and a duration reaching the file's end, as the
    corpus readers write for whole songs) is the file itself, so caches keyed by the song's path
    (``--vocals``: separated vocals) serve it.
    """
    from singalign.audio import load_audio, probe, save_audio

    whole = not record.offset and (
        record.duration is None or record.duration >= probe(record.audio).duration - 1e-3
    )
    if whole:
        yield record.audio, 0.0
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        audio = load_audio(record.audio, 44100, mono=False, offset=record.offset, duration=record.duration)
        save_audio(clip, audio, 44100)
        yield str(clip), record.offset


def evaluate_records(
    bundle,
    records: list[Record],
    out_dir: str | os.PathLike[str],
    options=None,
    progress: bool = True,
    decoders: dict[str, dict[str, Any]] | None = None,
    align: bool = False,
) -> dict[str, Any]:
    """Transcribe every record and score it; returns (and writes) the summary.

    Each record goes through the model once; every decoding and the alignment share that pass.

    Args:
        bundle: a loaded ``Bundle``.
        records: whole songs (or utterances) with reference text and, for songs, notes.
        out_dir: where ``hypotheses.jsonl`` and ``summary.json`` go.
        options: ``TranscribeOptions`` (default: separation on, the bundle's decoding).
        decoders: more decodings to score, ``{label: DecodeOptions fields}`` (e.g.
            ``{"greedy": {"method": "greedy"}}``); each gets ``hypothesis_<label>`` per record and
            ``summary["decoders"][label] = {"wer", "cer"}`` (corpus level).
        align: also force-align each record's reference lyrics and score the word onsets against
            its reference word times (``summary["alignment"]``: mean/median absolute error in s and
            the share within 0.3 s, over all words of all records pooled).
    """
    from tqdm import tqdm

    from singalign import decode
    from singalign.files import write_json, write_jsonl
    from singalign.metrics import ALIGNMENT_TOLERANCE, error_rates, event_note_scores, word_onset_errors
    from singalign.transcribe import TranscribeOptions, Transcriber

    tr = Transcriber(bundle, options or TranscribeOptions(keep_frames=False))
    extra = {
        k: decode.DecodeOptions.from_dict({**tr.decode_options.to_dict(), **v})
        for k, v in (decoders or {}).items()
    }
    extra_hyps: dict[str, list[str]] = {k: [] for k in extra}
    onset_errors, n_align_ref = [], 0
    rows, refs, hyps, ids, notes_rows = [], [], [], [], []
    for r in tqdm(records, desc="evaluate", unit="item", disable=not progress):
        with record_audio(r) as (audio, shift_t):  # a segment is cut out first
            feats, post, duration = tr.posteriors(audio)
        res = tr.result_from(audio, feats, post, duration)
        hyp = " ".join(w.word for w in res.words) if res.words else res.text.replace("\n", " ")
        row: dict[str, Any] = {"id": r.id, "reference": r.text, "hypothesis": hyp}
        for k, opts in extra.items():
            text = decode.decode_text(post["char_log_probs"], opts) if "char_log_probs" in post else ""
            row[f"hypothesis_{k}"] = " ".join(text.split())
            extra_hyps[k].append(row[f"hypothesis_{k}"])
        if align and r.words and r.text.strip() and "char_log_probs" in post:
            aligned = tr.result_from(audio, feats, post, duration, lyrics=r.text)
            err = word_onset_errors(
                [w.start - shift_t for w in r.words],
                [w.start for w in aligned.words],
                [w.word for w in r.words],
                [w.word for w in aligned.words],
            )
            row["alignment"] = {
                "mean_abs_error": float(err.mean()) if err.size else None,
                "n_ref_words": len(r.words),
                "n_paired": int(err.size),
            }
            onset_errors.append(err)
            n_align_ref += len(r.words)
        if r.notes and res.notes is not None and bundle.model_config.has_pitch_onset:
            row["notes"] = event_note_scores(*reference_notes(r, shift_t), res.notes)
            notes_rows.append(row["notes"])
        refs.append(r.text)
        hyps.append(hyp)
        ids.append(r.id)
        rows.append(row)
    rates = error_rates(refs, hyps, ids) if refs else {"per_utterance": []}
    for row, per in zip(rows, rates["per_utterance"], strict=False):
        row.update({k: per[k] for k in _ERROR_KEYS if k in per})
    summary: dict[str, Any] = {
        "bundle": str(bundle.path),
        "mode": bundle.model_config.mode,
        "n_items": len(records),
        "wer": rates.get("wer"),
        "cer": rates.get("cer"),
        "substitutions": rates.get("substitutions"),
        "deletions": rates.get("deletions"),
        "insertions": rates.get("insertions"),
        "n_ref_words": rates.get("n_ref_words"),
    }
    if extra:
        summary["decoders"] = {}
        for k, h in extra_hyps.items():
            er = error_rates(refs, h)
            summary["decoders"][k] = {"wer": er.get("wer"), "cer": er.get("cer")}
    if onset_errors:
        err = np.concatenate(onset_errors)
        summary["alignment"] = {
            "mean_abs_error": float(err.mean()) if err.size else None,
            "median_abs_error": float(np.median(err)) if err.size else None,
            f"within_{ALIGNMENT_TOLERANCE:g}s": float((err <= ALIGNMENT_TOLERANCE).sum() / n_align_ref),
            "n_ref_words": n_align_ref,
            "n_paired": int(err.size),
        }
    if notes_rows:
        summary["notes"] = {
            m: {k: float(np.mean([nr[m][k] for nr in notes_rows])) for k in ("precision", "recall", "f")}
            for m in ("COn", "COnP", "COnPOff")
        }
    out = Path(out_dir)
    write_jsonl(out / "hypotheses.jsonl", rows)
    write_json(out / "summary.json", summary)
    return summary


def evaluate_prepared(
    bundle,
    folders: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    decode: dict[str, Any] | None = None,
    decoders: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    withhold_notes: bool = False,
    true_notes: bool = False,
    limit: int | None = None,
) -> dict[str, Any]:
    """Score a lyrics bundle on prepared items (``recipes/features.py``): any mode, oracle included.

    The stored features go into the model with the items' ground-truth pitch and onset targets, as
    in training's validation, so an oracle-mode model gets the true notes (it cannot transcribe
    audio) and the other modes ignore them. This is how the paper's Table 1 compares oracle,
    multitask and baseline on the same test items. Items are segments (at most the prepared length,
    cut between words), not whole songs; songs and utterances without text are skipped.

    Args:
        bundle: a loaded ``Bundle`` with a lyrics model.
        folders: prepared folders, prepared with the bundle's feature settings.
        out_dir: where ``hypotheses.jsonl`` and ``summary.json`` go (as ``evaluate_records``).
        decode: ``DecodeOptions`` fields over the bundle's decoding (``transcribe.decode_options_for``).
        decoders: more decodings of the same pass, ``{label: DecodeOptions fields}``.
        withhold_notes: an ablation: the lyrics CRNN gets zeros in place of its pitch/onset input
            (the true notes for oracle models, CRNN-1's estimates for multitask ones), as speech does
            in training. The difference to the normal score is how much the model uses that input.
        true_notes: for a multitask model, the other ablation: its lyrics CRNN gets the items' true
            notes (one-hot pitch and onsets, as oracle mode feeds them) in place of CRNN-1's
            estimates. The difference shows what better notes would be worth to its lyrics.
        limit: score only the first ``limit`` items with text, in the folders' order (e.g. a sample
            of a large training set, to compare how well the model fits what it trained on with what
            it has not heard).

    Returns:
        The summary: ``wer``, ``cer`` and the edit counts over all items, ``decoders``, and
        ``pitch_frame_error`` (framewise pitch-class error on items with notes) for models with CRNN-1.
    """
    import torch
    from tqdm import tqdm

    from singalign import decode as dec
    from singalign.data.prepared import PreparedSet, collate
    from singalign.files import write_json, write_jsonl
    from singalign.metrics import error_rates
    from singalign.train import forward_batch, pitch_frame_errors
    from singalign.transcribe import decode_options_for

    if not bundle.model_config.has_lyrics:
        raise SingalignError(f"{bundle.path}: this bundle has no lyrics model")
    if withhold_notes and true_notes:
        raise SingalignError("withhold the notes or give the true ones, not both")
    if true_notes and bundle.model_config.mode != "multitask":
        raise SingalignError(
            f"{bundle.path}: true notes replace a multitask model's estimates; this one is {bundle.model_config.mode}"
        )
    main_opts = decode_options_for(bundle, decode)
    extra = {
        k: dec.DecodeOptions.from_dict({**main_opts.to_dict(), **v}) for k, v in (decoders or {}).items()
    }
    data = PreparedSet.load(list(folders))
    keep = [i for i, e in enumerate(data.entries) if e.get("has_text", True) and e.get("text", "").strip()]
    if limit is not None:
        if limit < 1:
            raise SingalignError(f"limit must be at least 1, not {limit}")
        keep = keep[:limit]
    model = bundle.build_model().eval()
    if true_notes:  # the lyrics CRNN's input as oracle mode builds it (CRNN-1 still runs, for its error)
        model.cfg = dataclasses.replace(model.cfg, mode="oracle")
    rows: list[dict[str, Any]] = []
    frames = pitch_errors = 0
    bar = tqdm(total=len(keep), desc="evaluate", unit="item", disable=not progress)
    with torch.no_grad():
        for start in range(0, len(keep), batch_size):
            items = [data[i] for i in keep[start : start + batch_size]]
            n_mels = bundle.feature_config.n_mels
            if items[0]["features"].shape[1] != n_mels:
                raise SingalignError(
                    f"{folders[0]}: {items[0]['features'].shape[1]} mel bands, the bundle's features have {n_mels}"
                )
            batch = collate(items)
            fed = {**batch, "has_notes": torch.zeros_like(batch["has_notes"])} if withhold_notes else batch
            out = forward_batch(model, fed, torch.device("cpu"))
            logp = out["char_logits"].float().log_softmax(-1).numpy()
            for i, n in enumerate(out["ctc_lengths"].tolist()):
                row = {"id": batch["ids"][i], "reference": batch["texts"][i]}
                row["hypothesis"] = " ".join(dec.decode_text(logp[i, :n], main_opts).split())
                for k, opts in extra.items():
                    row[f"hypothesis_{k}"] = " ".join(dec.decode_text(logp[i, :n], opts).split())
                rows.append(row)
            if "pitch_logits" in out:
                f, e = pitch_frame_errors(out, batch)
                frames, pitch_errors = frames + f, pitch_errors + e
            bar.update(len(items))
    bar.close()
    refs = [r["reference"] for r in rows]
    rates = error_rates(refs, [r["hypothesis"] for r in rows], [r["id"] for r in rows])
    for row, per in zip(rows, rates["per_utterance"], strict=True):
        row.update({k: per[k] for k in _ERROR_KEYS if k in per})
    summary: dict[str, Any] = {
        "bundle": str(bundle.path),
        "mode": bundle.model_config.mode,
        "data": [str(f) for f in folders],
        "items": "prepared segments, ground-truth notes given to the model (oracle mode uses them)",
        "notes_input": "withheld (zeros)" if withhold_notes else "true notes" if true_notes else "given",
        "n_items": len(rows),
        "decoding": main_opts.method + (" + LM" if main_opts.method == "beam" and main_opts.lm_path else ""),
        **{
            k: rates.get(k) for k in ("wer", "cer", "substitutions", "deletions", "insertions", "n_ref_words")
        },
    }
    if extra:
        summary["decoders"] = {}
        for k in extra:
            er = error_rates(refs, [r[f"hypothesis_{k}"] for r in rows])
            summary["decoders"][k] = {"wer": er.get("wer"), "cer": er.get("cer")}
    if frames:
        summary["pitch_frame_error"] = pitch_errors / frames
    write_jsonl(Path(out_dir) / "hypotheses.jsonl", rows)
    write_json(Path(out_dir) / "summary.json", summary)
    return summary


def manifest_posteriors(
    transcriber, records: list[Record], progress: bool = True
) -> list[tuple[str, str, np.ndarray]]:
    """CTC posteriors of every record that has text, through the whole pipeline (as a user gets them).

    Args:
        transcriber: a ``singalign.transcribe.Transcriber`` (bundle, separation on or off).
        records: validation songs or utterances (segments are cut out first).

    Returns:
        ``[(id, reference text, (T, 34) CTC log-posteriors)]``.
    """
    from tqdm import tqdm

    out = []
    for r in tqdm(records, desc="posteriors", unit="item", disable=not progress):
        if not r.text.strip():
            continue
        with record_audio(r) as (audio, _):
            _, post, _ = transcriber.posteriors(audio)
        out.append((r.id, r.text, _char_log_probs(post, transcriber)))
    return out


def prepared_posteriors(
    transcriber, folders: list[str | os.PathLike[str]], limit: int | None = None, progress: bool = True
) -> list[tuple[str, str, np.ndarray]]:
    """CTC posteriors of the items of prepared folders (``recipes/features.py``) that have text.

    The stored features go straight into the model (no audio, no separation): this is what
    training's validation sees. They must have been prepared with the bundle's feature settings.

    Args:
        transcriber: a ``singalign.transcribe.Transcriber``.
        folders: prepared folders (each with ``items.jsonl``).
        limit: at most this many items (None: all).

    Returns:
        ``[(id, reference text, (T, 34) CTC log-posteriors)]``.
    """
    from tqdm import tqdm

    from singalign.data.prepared import PreparedSet

    data = PreparedSet.load(list(folders))
    keep = [i for i, e in enumerate(data.entries) if e.get("has_text", True) and e.get("text", "").strip()]
    keep = keep[:limit] if limit else keep
    out = []
    for i in tqdm(keep, desc="posteriors", unit="item", disable=not progress):
        item = data[i]
        n_mels = transcriber.features.n_mels
        if item["features"].shape[1] != n_mels:
            raise SingalignError(
                f"{data.entries[i]['file']}: {item['features'].shape[1]} mel bands, the bundle's features "
                f"have {n_mels} (prepared with other settings)"
            )
        post = transcriber.run_model(item["features"])
        out.append((item["id"], item["text"], _char_log_probs(post, transcriber)))
    return out


def _char_log_probs(post: dict[str, np.ndarray], transcriber) -> np.ndarray:
    if "char_log_probs" not in post:
        raise SingalignError(f"{transcriber.bundle.path}: this bundle has no lyrics model")
    return post["char_log_probs"]


def tune_lm(
    items: list[tuple[str, str, np.ndarray]],
    options,
    alphas: tuple[float, ...],
    betas: tuple[float, ...],
    decode_config: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Grid search of the LM weight and word bonus on precomputed posteriors, with baselines.

    Args:
        items: ``[(id, reference, (T, 34) CTC log-posteriors)]`` (from :func:`manifest_posteriors`
            or :func:`prepared_posteriors`).
        options: the ``DecodeOptions`` to tune (LM, beam width, backend; alpha/beta are the grid's).
        alphas: LM weights to try.
        betas: word bonuses to try.
        decode_config: the bundle's ``decode`` dict; returned with the best alpha and beta.

    Returns:
        ``{"n_items", "n_ref_words", "ids", "lm", "beam_width", "backend", "greedy", "beam_no_lm",
        "start" (options' alpha/beta), "best", "grid" (every point, best first), "decode_options"}``.
    """
    from singalign import decode
    from singalign.metrics import error_rates

    if not items:
        raise SingalignError("no validation items with reference text")
    if not options.lm_path:
        raise SingalignError("no language model to tune (DecodeOptions.lm_path is empty)")
    ids = [i for i, _, _ in items]
    refs = [r for _, r, _ in items]
    posts = [p for _, _, p in items]
    greedy = error_rates(refs, [decode.ctc_greedy(lp)[0] for lp in posts])
    if greedy["wer"] is None:
        raise SingalignError("the references have no words")
    no_lm_opts = dataclasses.replace(options, method="beam", lm_path=None, unigrams_path=None)
    no_lm = error_rates(refs, [decode.ctc_beam(lp, no_lm_opts) for lp in posts])
    rows = decode.tune_lm_weights(posts, refs, tuple(alphas), tuple(betas), options, progress)
    best = rows[0]
    return {
        "n_items": len(items),
        "n_ref_words": greedy["n_ref_words"],
        "ids": ids,
        "lm": options.lm_path,
        "beam_width": options.beam_width,
        "backend": options.backend,
        "greedy": {"wer": greedy["wer"], "cer": greedy["cer"]},
        "beam_no_lm": {"wer": no_lm["wer"], "cer": no_lm["cer"]},
        "start": {"alpha": options.alpha, "beta": options.beta},
        "best": best,
        "grid": rows,
        "decode_options": {
            **(decode_config or {}),
            "method": "beam",
            "alpha": best["alpha"],
            "beta": best["beta"],
        },
    }


def manifest_note_posteriors(
    transcriber, records: list[Record], progress: bool = True
) -> list[dict[str, Any]]:
    """CRNN-1's posteriors of every record with notes, through the whole pipeline, with its
    reference notes (in the record's time, pitch shift applied): the input of :func:`tune_notes`.

    Returns:
        ``[{"id", "pitch_probs" (T, 129), "onset_probs" (T,), "duration", "ref_intervals" (n, 2),
        "ref_hz" (n,)}]``.
    """
    from tqdm import tqdm

    out = []
    for r in tqdm(records, desc="posteriors", unit="item", disable=not progress):
        if not r.notes:
            continue
        with record_audio(r) as (audio, shift_t):
            _, post, duration = transcriber.posteriors(audio)
        if "pitch_probs" not in post:
            raise SingalignError(f"{transcriber.bundle.path}: this bundle has no pitch/onset model")
        out.append(
            {
                "id": r.id,
                "pitch_probs": post["pitch_probs"],
                "onset_probs": post["onset_probs"],
                "duration": duration,
                **dict(zip(("ref_intervals", "ref_hz"), reference_notes(r, shift_t), strict=True)),
            }
        )
    return out


def item_note_scores(item: dict[str, Any], options) -> dict[str, dict[str, float]]:
    """COn/COnP/COnPOff of one item of :func:`manifest_note_posteriors` decoded with ``options``
    (``decode.notes_from_posteriors``, as ``Transcriber`` decodes notes)."""
    from singalign.decode import notes_from_posteriors
    from singalign.metrics import event_note_scores

    notes = notes_from_posteriors(item["pitch_probs"], item["onset_probs"], options, item["duration"])
    return event_note_scores(item["ref_intervals"], item["ref_hz"], notes)


def tune_notes(
    items: list[dict[str, Any]],
    options,
    thresholds: list[float],
    min_frames: list[int],
    progress: bool = True,
) -> dict[str, Any]:
    """Grid search of the note decoding (onset threshold x minimum note length) for COnP F.

    Every grid point decodes every item and scores it as ``evaluate_records`` does (mean over songs
    of mir_eval's per-song precision, recall and F). The best point has the highest mean COnP F
    (ties: the lower threshold, then the shorter minimum). ``options`` (a ``DecodeOptions``) gives
    the onset window and everything else; its own point is scored as ``current``.

    Returns:
        ``{"n_items", "grid": [{"onset_threshold", "min_note_frames", "COn", "COnP", "COnPOff"}],
        "best", "current", "decode_options"}``: ``decode_options`` is ``options`` with the best values.
    """
    from dataclasses import replace

    from tqdm import tqdm

    def score(opts) -> dict[str, Any]:
        per = [item_note_scores(it, opts) for it in items]
        point: dict[str, Any] = {
            "onset_threshold": opts.onset_threshold,
            "min_note_frames": opts.min_note_frames,
        }
        for m in ("COn", "COnP", "COnPOff"):
            point[m] = {k: float(np.mean([p[m][k] for p in per])) for k in ("precision", "recall", "f")}
        return point

    if not items:
        raise SingalignError("no items with notes to tune the note decoding on")
    points = [(float(t), int(m)) for t in sorted(set(thresholds)) for m in sorted(set(min_frames))]
    grid = []
    for t, m in tqdm(points, desc="note grid", disable=not progress):
        grid.append(score(replace(options, onset_threshold=t, min_note_frames=m)))
    best = _best_notes_point(grid)
    tuned = replace(options, onset_threshold=best["onset_threshold"], min_note_frames=best["min_note_frames"])
    return {
        "n_items": len(items),
        "grid": grid,
        "best": best,
        "current": score(options),
        "decode_options": tuned.to_dict(),
    }


def _best_notes_point(grid: list[dict[str, Any]]) -> dict[str, Any]:
    return min(grid, key=lambda g: (-g["COnP"]["f"], g["onset_threshold"], g["min_note_frames"]))


def notes_grid_table(grid: list[dict[str, Any]]) -> str:
    """Mean COnP F (%) of every grid point of :func:`tune_notes`: thresholds down, minimum note
    lengths (frames) across; the best cell is marked with ``*``."""
    cell = {(g["onset_threshold"], g["min_note_frames"]): g["COnP"]["f"] for g in grid}
    top = _best_notes_point(grid) if grid else None
    return _percent_grid(
        "COnP F (%) by onset threshold (rows) and minimum note length in frames (columns)",
        "thr / min",
        cell,
        (top["onset_threshold"], top["min_note_frames"]) if top else None,
    )


def _percent_grid(title: str, corner: str, cell: dict[tuple[float, float], float], best) -> str:
    """A table of ``cell[(row, column)]`` in percent, rows and columns sorted, ``best`` marked ``*``."""
    rows = sorted({r for r, _ in cell})
    cols = sorted({c for _, c in cell})
    lines = [title, f"{corner:>12s}" + "".join(f"{c:>9g}" for c in cols)]
    for r in rows:
        vals = []
        for c in cols:
            v = cell.get((r, c))
            text = "-" if v is None else f"{100 * v:.2f}" + ("*" if (r, c) == best else " ")
            vals.append(f"{text:>9s}")
        lines.append(f"{r:>12g}" + "".join(vals))
    return "\n".join(lines) + "\n"


def grid_table(rows: list[dict[str, Any]]) -> str:
    """WER (%) of every (alpha, beta) of ``decode.tune_lm_weights``: alphas down, betas across.

    The best cell (the first row) is marked with ``*``.
    """
    cell = {(r["alpha"], r["beta"]): r["wer"] for r in rows}
    best = (rows[0]["alpha"], rows[0]["beta"]) if rows else None
    return _percent_grid(
        "WER (%) by LM weight alpha (rows) and word bonus beta (columns)", "alpha / beta", cell, best
    )


def paired_comparisons(
    out_dirs: dict[str, str | os.PathLike[str]], resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """WER and CER differences of each evaluation to the first one, on the items both scored, with
    paired bootstrap 95% confidence intervals (``metrics.paired_bootstrap``).

    Args:
        out_dirs: label -> an evaluation's folder (its ``hypotheses.jsonl``); the first label is the
            reference every other is compared with.

    Returns:
        label (all but the first) -> ``{"versus", "n_items", "wer": {...}, "cer": {...}}``, each
        ``{"diff", "low", "high", "p_b_not_better"}`` in rate units (0.01 = one point).
    """
    from singalign.files import read_jsonl
    from singalign.metrics import paired_bootstrap

    def counts(folder) -> dict[str, dict[str, Any]]:
        rows = read_jsonl(Path(folder) / "hypotheses.jsonl")
        return {r["id"]: r for r in rows if "word_errors" in r and "char_errors" in r}

    labels = list(out_dirs)
    if len(labels) < 2:
        return {}
    first = counts(out_dirs[labels[0]])
    out: dict[str, dict[str, Any]] = {}
    for label in labels[1:]:
        other = counts(out_dirs[label])
        ids = [i for i in first if i in other]
        if not ids:
            continue
        entry: dict[str, Any] = {"versus": labels[0], "n_items": len(ids)}
        for name, err, ref in (("wer", "word_errors", "n_ref_words"), ("cer", "char_errors", "n_ref_chars")):
            entry[name] = paired_bootstrap(
                [first[i][err] for i in ids],
                [other[i][err] for i in ids],
                [first[i][ref] for i in ids],
                resamples=resamples,
                seed=seed,
            )
        out[label] = entry
    return out


def _attribute(record: dict[str, Any], path: str) -> list[Any]:
    """The values at a dotted ``path`` of a metadata record (a list value gives each of its items)."""
    v: Any = record
    for part in path.split("."):
        if not isinstance(v, dict) or part not in v:
            return []
        v = v[part]
    return list(v) if isinstance(v, list) else [v]


def _group_label(value: Any, width: float | None) -> Any:
    if width is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    low = math.floor(value / width) * width
    return (low, low + width)


def _group_order(group: Any) -> tuple[int, Any]:
    if isinstance(group, tuple):
        return (0, group)
    return (1, group) if isinstance(group, (int, float)) else (2, str(group))


def breakdown(
    evaluations: dict[str, list[dict[str, Any]]],
    metadata: dict[str, dict[str, Any]],
    key: str,
    width: float | None = None,
) -> list[dict[str, Any]]:
    """WER and CER of evaluations grouped by an attribute of the scored songs.

    Which songs are hard: e.g. by voice type, style or vocal-to-accompaniment level of synthetic
    songs (``singalign synth``'s metadata.jsonl), or any JSONL of songs with an ``id``.

    Args:
        evaluations: label -> the rows of an evaluation's ``hypotheses.jsonl`` (whole songs, whose id
            is the song's, or prepared segments ``<song id>/segNNN``). Rows without error counts
            (no reference text) are left out.
        metadata: song id -> its record.
        key: a dotted path into the records, e.g. ``voice.type`` or ``mix.vocal_to_accompaniment_db``.
            A song whose value is a list (e.g. ``tags``) counts in the group of each item; songs
            without the attribute are left out.
        width: numbers fall into bins ``[k * width, (k + 1) * width)``; None groups equal values.

    Returns:
        one row per group, sorted by group: ``{"group", "n_songs", "n_items", "n_ref_words", and per
        label "<label>": {"wer", "cer"}}``; rates are pooled over the group's items (errors / reference
        length, as the totals are). The counts are those of the first label's rows.
    """
    groups: dict[Any, dict[str, Any]] = {}
    for n, (label, rows) in enumerate(evaluations.items()):
        for r in rows:
            if "word_errors" not in r or "char_errors" not in r:
                continue
            song = str(r["id"]).split("/")[0]
            for value in _attribute(metadata.get(song, {}), key):
                g = groups.setdefault(_group_label(value, width), {"songs": set(), "counts": {}})
                c = g["counts"].setdefault(label, [0, 0, 0, 0, 0])
                c[0] += r["word_errors"]
                c[1] += r["n_ref_words"]
                c[2] += r["char_errors"]
                c[3] += r["n_ref_chars"]
                c[4] += 1
                if n == 0:
                    g["songs"].add(song)
    first = next(iter(evaluations), None)
    out = []
    for group in sorted(groups, key=_group_order):
        g = groups[group]
        c0 = g["counts"].get(first, [0, 0, 0, 0, 0])
        row: dict[str, Any] = {
            "group": group,
            "n_songs": len(g["songs"]),
            "n_items": c0[4],
            "n_ref_words": c0[1],
        }
        for label, c in g["counts"].items():
            row[label] = {"wer": c[0] / c[1] if c[1] else None, "cer": c[2] / c[3] if c[3] else None}
        out.append(row)
    return out


def breakdown_table(key: str, rows: list[dict[str, Any]], labels: list[str]) -> str:
    """``breakdown``'s rows as a text table: WER and CER (%) per label."""

    def name(group: Any) -> str:
        return f"[{group[0]:g}, {group[1]:g})" if isinstance(group, tuple) else str(group)

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    head = f"{key:<24} {'songs':>5} {'items':>5} {'words':>6}" + "".join(
        f" {label[:14] + ' WER':>19} {'CER':>6}" for label in labels
    )
    lines = [head]
    for r in rows:
        line = f"{name(r['group']):<24} {r['n_songs']:>5} {r['n_items']:>5} {r['n_ref_words']:>6}"
        for label in labels:
            m = r.get(label, {"wer": None, "cer": None})
            line += f" {pct(m['wer']):>19} {pct(m['cer']):>6}"
        lines.append(line)
    return "\n".join(lines)


def tables(summaries: dict[str, dict[str, Any]], paired: dict[str, dict[str, Any]] | None = None) -> str:
    """Tables 1 (WER %) and 2 (COn / COnP precision, recall, F %) of the paper, for our summaries,
    and with ``paired`` (``paired_comparisons``) Table 1b: each difference to the first, with its
    95% paired bootstrap interval.

    Args:
        summaries: label (e.g. "baseline", "multitask") -> summary from ``evaluate_records``.
    """

    def pct(x):
        return "/" if x is None else f"{100 * x:.2f}"

    lines = ["Table 1. WER (%) and CER (%)", f"{'method':24s}{'WER':>10s}{'CER':>10s}"]
    for label, s in summaries.items():
        lines.append(f"{label:24s}{pct(s.get('wer')):>10s}{pct(s.get('cer')):>10s}")
    if paired:
        versus = next(iter(paired.values()))["versus"]
        lines += [
            "",
            f"Table 1b. Differences to {versus} (points; 95% paired bootstrap interval over items;",
            "p: share of resamples where the method is not better)",
            f"{'method':24s}{'WER':>10s}{'interval':>18s}{'p':>7s}{'CER':>10s}{'interval':>18s}{'p':>7s}",
        ]
        for label, c in paired.items():
            cells = ""
            for name in ("wer", "cer"):
                d = c[name]
                iv = f"[{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"
                cells += f"{100 * d['diff']:>+10.2f}{iv:>18s}{d['p_b_not_better']:>7.3f}"
            lines.append(f"{label:24s}{cells}")
    lines += [
        "",
        "Table 2. Note transcription (%)",
        f"{'method':24s}"
        + "".join(f"{h:>10s}" for h in ("COn P", "COn R", "COn F", "COnP P", "COnP R", "COnP F")),
    ]
    for label, s in summaries.items():
        n = s.get("notes")
        if not n:
            continue
        vals = [n[m][k] for m in ("COn", "COnP") for k in ("precision", "recall", "f")]
        lines.append(f"{label:24s}" + "".join(f"{pct(v):>10s}" for v in vals))
    return "\n".join(lines) + "\n"
