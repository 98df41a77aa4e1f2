r"""Write a bundle's training report: the stages' data sizes, steps, hours and validation curves, and
the test figures, as one text file (recipes/make_bundle.py --report stores it in the bundle).

Usage:
    python recipes/report.py --run runs/pretrain runs/multitask [--eval eval/summary.json ...] \
        [--note "trained on synthetic singing"] --out REPORT.txt

Each RUN is a folder of recipes/train.py or recipes/heads_train.py (train_config.json,
history.jsonl, best/); each --eval a summary.json of recipes/evaluate.py. Hours are the wall-clock
seconds each run recorded: a resumed run's records go on from its checkpoint's time; a run from
before checkpoints kept their time restarts its clock at a resume, and counts each process's time
once (its time after the last epoch record of a process that was stopped mid-epoch is not counted).
"""

import json
import sys
from pathlib import Path

from singalign import recipe
from singalign.files import read_jsonl, write_text

# the columns of a head run's table: caption -> song recall@10 and median rank, lyric line -> song
# recall@1, and the selection metric (1 - mean of tag ROC-AUC, caption and lyrics mAP@10)
HEAD_KEYS = (
    "train_loss", "valid_tag_roc_auc", "valid_t2m_r@10", "valid_t2m_medr", "valid_lyr_r@1", "valid_retrieval_error",
)  # fmt: skip


def _decay(cfg: dict) -> str:
    """How the run's learning rate moved after the warm-up (train_config.json's lr_decay)."""
    if cfg.get("lr_decay", "constant") == "constant":
        return ""
    return f" ({cfg['lr_decay']} decay to {cfg['lr'] * cfg.get('lr_final', 0.1):.3g})"


def _hours(hist: list[dict]) -> tuple[float, str]:
    """The run's wall-clock seconds, and a caveat when older checkpoints restarted the clock."""
    # checkpoints from before the loop state kept "seconds" restart the clock at a resume:
    # add up the last record of each process (seconds drop); newer runs never drop
    seconds, last, drops = 0.0, 0.0, False
    for h in hist:
        if h["seconds"] < last:
            seconds, drops = seconds + last, True
        last = h["seconds"]
    seconds += last
    caveat = " (resumed from checkpoints without their time: stopped processes counted to their last record)"
    return seconds, caveat if drops else ""


def _table(hist: list[dict], keys: tuple[str, ...]) -> list[str]:
    """A markdown table of the history's records, one row per epoch, of the keys it has."""
    keys = [k for k in keys if hist and k in hist[-1]]
    lines = ["| epoch | step | " + " | ".join(keys) + " |", "|---:|---:|" + "---:|" * len(keys)]
    for h in hist:
        lines.append(
            f"| {h['epoch']} | {h['step']} | "
            + " | ".join(f"{h.get(k, float('nan')):.3f}" for k in keys)
            + " |"
        )
    return lines


def run_section(run: Path) -> list[str]:
    cfg = json.loads((run / "train_config.json").read_text())
    hist = read_jsonl(run / "history.jsonl") if (run / "history.jsonl").exists() else []
    bundle = json.loads((run / "best" / "bundle.json").read_text()) if (run / "best").exists() else {}
    seconds, caveat = _hours(hist)
    if "head" in cfg:  # recipes/heads_train.py
        record = bundle.get("head", {}).get("training", {}).get("record", {})
        h = cfg["head"]
        return [
            f"## {run.name}",
            f"audio-text head ({cfg.get('mode')}, {h.get('pooling')} pooling, {h.get('embed_dim')}-d, text tower "
            f"{h.get('text_tower')}) on {cfg.get('bundle')}",
            f"data: train {', '.join(cfg['train'])}; valid {', '.join(cfg.get('valid') or []) or '-'}",
            f"batches of {cfg['batch_size']}, lr {cfg['lr']}",
            f"trained: {len(hist)} epochs, {hist[-1]['step'] if hist else 0} steps, {seconds / 3600:.2f} h wall "
            f"clock{caveat}; best (exported) epoch {record.get('epoch', '-')} by {cfg.get('select', '-')}",
            "",
            *_table(hist, HEAD_KEYS),
            "",
        ]
    best = bundle.get("training", {})
    m = cfg["model"]
    lines = [
        f"## {run.name}",
        f"model: preset {m.get('preset')}, mode {m.get('mode')}; init from {cfg.get('init_from') or '-'}",
        f"data: train {', '.join(cfg['train'])} ({best.get('train_items', '?')} items, "
        f"{best.get('train_hours', '?')} h of audio); valid {', '.join(cfg.get('valid', [])) or '-'}",
        f"batches of {cfg['batch_size']} ({cfg['speech_per_batch']} speech when songs and speech mix), lr {cfg['lr']}"
        f"{_decay(cfg)}, {'bf16 autocast' if cfg.get('cpu_bf16') else 'float32'}",
        f"trained: {len(hist)} epochs, {hist[-1]['step'] if hist else 0} steps, {seconds / 3600:.2f} h wall clock{caveat}; "
        f"best (exported) epoch {best.get('epoch', '-')}",
        "",
    ]
    lines += _table(hist, ("train_loss", "train_ctc", "valid_wer", "valid_cer", "valid_pitch_frame_error"))
    return lines + [""]


def eval_section(path: Path) -> list[str]:
    s = json.loads(path.read_text())
    lines = [
        f"## test: {path}",
        f"bundle {s.get('bundle')}, {s.get('n_items')} items, {s.get('n_ref_words')} words",
    ]
    lines.append(f"WER {s['wer']:.3f}, CER {s['cer']:.3f} (the bundle's decoding)")
    for k, d in (s.get("decoders") or {}).items():
        lines.append(f"WER {d['wer']:.3f}, CER {d['cer']:.3f} ({k})")
    if "notes" in s:
        lines.append(
            "notes (mean over songs of mir_eval P/R/F): "
            + "; ".join(
                f"{m} F {v['f']:.3f} (P {v['precision']:.3f}, R {v['recall']:.3f})"
                for m, v in s["notes"].items()
            )
        )
    if "alignment" in s:
        a = s["alignment"]
        lines.append(
            f"alignment of the reference lyrics: mean abs word-onset error {a['mean_abs_error']:.3f} s, "
            f"median {a['median_abs_error']:.3f} s, within 0.3 s {a['within_0.3s']:.3f} ({a['n_ref_words']} words)"
        )
    return lines + [""]


def main(argv=None) -> int:
    ap = recipe.parser(__doc__)
    ap.add_argument(
        "--run", nargs="+", required=True, help="run folders of recipes/train.py or heads_train.py, in order"
    )
    ap.add_argument("--eval", nargs="*", default=[], help="summary.json files of recipes/evaluate.py")
    ap.add_argument("--note", default="", help="a first paragraph (what the model is, on what data)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    lines = ["# Training report", ""] + ([args.note, ""] if args.note else [])
    for r in args.run:
        lines += run_section(Path(r))
    for e in args.eval:
        lines += eval_section(Path(e))
    write_text(args.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
