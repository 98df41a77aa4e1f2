"""Evaluation of bundles on whole songs or utterances: lyrics (WER/CER) and notes (COn/COnP/COnPOff).

Each record of a manifest is run through the full ``Transcriber`` pipeline (separation, features,
both CRNNs, decoding), so the figures are those a user gets. Evidence is written to files:

    OUT/hypotheses.jsonl   one line per record: id, reference, hypothesis, word/char errors, note scores
    OUT/summary.json       corpus-level WER/CER (errors summed over records) and note scores
                           (mean over songs of mir_eval's per-song precision/recall/F)

``tables`` formats several summaries (one per mode) in the layout of the paper's Tables 1 and 2.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from singalign.data.manifest import Record

log = logging.getLogger(__name__)


def evaluate_records(
    bundle,
    records: list[Record],
    out_dir: str | os.PathLike[str],
    options=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Transcribe every record and score it; returns (and writes) the summary.

    Args:
        bundle: a loaded ``Bundle``.
        records: whole songs (or utterances) with reference text and, for songs, notes.
        out_dir: where ``hypotheses.jsonl`` and ``summary.json`` go.
        options: ``TranscribeOptions`` (default: separation on, the bundle's decoding).
    """
    from tqdm import tqdm

    from singalign.audio import load_audio
    from singalign.files import write_json, write_jsonl
    from singalign.metrics import error_rates, midi_to_hz, note_scores
    from singalign.transcribe import TranscribeOptions, Transcriber

    tr = Transcriber(bundle, options or TranscribeOptions(keep_frames=False))
    rows, refs, hyps, ids, notes_rows = [], [], [], [], []
    for r in tqdm(records, desc="evaluate", unit="item", disable=not progress):
        if r.offset or r.duration is not None:  # a segment: cut it out first
            import tempfile

            from singalign.audio import save_audio

            with tempfile.TemporaryDirectory() as tmp:
                clip = Path(tmp) / "clip.wav"
                save_audio(
                    clip, load_audio(r.audio, 44100, mono=False, offset=r.offset, duration=r.duration), 44100
                )
                res = tr(str(clip))
            shift_t = r.offset
        else:
            res = tr(r.audio)
            shift_t = 0.0
        hyp = " ".join(w.word for w in res.words) if res.words else res.text.replace("\n", " ")
        row: dict[str, Any] = {"id": r.id, "reference": r.text, "hypothesis": hyp}
        if r.notes and res.notes is not None and bundle.model_config.has_pitch_onset:
            ref_iv = np.array([[n.onset - shift_t, n.offset - shift_t] for n in r.notes])
            ref_hz = midi_to_hz(np.array([n.pitch + r.pitch_shift for n in r.notes]))
            est_iv = np.array([[n.onset, n.offset] for n in res.notes]).reshape(-1, 2)
            est_hz = midi_to_hz(np.array([n.pitch for n in res.notes], dtype=float))
            row["notes"] = note_scores(ref_iv, ref_hz, est_iv, est_hz)
            notes_rows.append(row["notes"])
        refs.append(r.text)
        hyps.append(hyp)
        ids.append(r.id)
        rows.append(row)
    rates = error_rates(refs, hyps, ids) if refs else {"per_utterance": []}
    for row, per in zip(rows, rates["per_utterance"], strict=False):
        row.update({k: per[k] for k in ("wer", "cer", "word_errors", "n_ref_words") if k in per})
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
    if notes_rows:
        summary["notes"] = {
            m: {k: float(np.mean([nr[m][k] for nr in notes_rows])) for k in ("precision", "recall", "f")}
            for m in ("COn", "COnP", "COnPOff")
        }
    out = Path(out_dir)
    write_jsonl(out / "hypotheses.jsonl", rows)
    write_json(out / "summary.json", summary)
    return summary


def tables(summaries: dict[str, dict[str, Any]]) -> str:
    """Tables 1 (WER %) and 2 (COn / COnP precision, recall, F %) of the paper, for our summaries.

    Args:
        summaries: label (e.g. "baseline", "multitask") -> summary from ``evaluate_records``.
    """

    def pct(x):
        return "/" if x is None else f"{100 * x:.2f}"

    lines = ["Table 1. WER (%) and CER (%)", f"{'method':24s}{'WER':>10s}{'CER':>10s}"]
    for label, s in summaries.items():
        lines.append(f"{label:24s}{pct(s.get('wer')):>10s}{pct(s.get('cer')):>10s}")
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
