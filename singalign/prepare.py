"""Data preparation stages: vocal separation (cached) and features + frame targets.

Both stages are per file, resumable (finished work is skipped; every file is written to a
temporary name and renamed) and shardable (``shard="i/n"`` takes every file whose stable key
falls in shard i of n), so a cluster can split them and ``finalize`` gathers the results.

Layout of a prepared folder (read by ``singalign.data.prepared.PreparedSet``)::

    OUT/items/<key>.npz         features (2, 80, T), pitch (T,), onset (T,), targets (S,)
    OUT/items/<key>.json        the items.jsonl entry of that npz
    OUT/items/<record>.done     written after all of a record's items: the record is done
    OUT/items.jsonl             all entries, written by ``finalize``
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from singalign import constants as C
from singalign.data.manifest import Record
from singalign.features import LogMelConfig

log = logging.getLogger(__name__)


def file_key(record_or_path: Record | str) -> str:
    """A file-system-safe key for an id or path (readable prefix + short hash against collisions)."""
    s = record_or_path.id if isinstance(record_or_path, Record) else str(record_or_path)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", s)[-80:]
    return f"{safe}-{hashlib.sha1(s.encode()).hexdigest()[:8]}"


def vocals_path(sep_dir: str | os.PathLike[str], audio: str) -> Path:
    """Where ``separate_files`` caches the vocals of ``audio`` (16 kHz mono FLAC)."""
    return Path(sep_dir) / f"{file_key(str(Path(audio).resolve()))}.flac"


def separate_files(
    audio_files: list[str],
    sep_dir: str | os.PathLike[str],
    separator,
    shard: str | None = None,
    sample_rate: int = C.SAMPLE_RATE,
    progress: bool = True,
) -> dict[str, str]:
    """Separate the vocals of each file once (cached in ``sep_dir``); returns {audio: vocals file}.

    Args:
        audio_files: mixtures to separate (duplicates are separated once).
        sep_dir: cache folder.
        separator: a ``singalign.separation.VocalSeparator``.
        shard: ``"i/n"`` to process one shard of the files.
        sample_rate: rate of the cached vocals (the feature rate).
    """
    import soxr
    from tqdm import tqdm

    from singalign.audio import load_audio, save_audio
    from singalign.data.shards import shard_items

    files = shard_items(sorted(set(audio_files)), shard, key=lambda p: str(Path(p).resolve()))
    done: dict[str, str] = {}
    sr = separator.cfg.sample_rate
    for audio in tqdm(files, desc="separate", unit="song", disable=not progress):
        out = vocals_path(sep_dir, audio)
        if not out.exists():
            vocals = separator(load_audio(audio, sr, mono=False)).mean(axis=0)
            save_audio(out, np.clip(soxr.resample(vocals, sr, sample_rate), -1, 1), sample_rate)
        done[audio] = str(out)
    return done


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of the features stage."""

    features: LogMelConfig = field(default_factory=LogMelConfig)
    segment_seconds: float = float(C.SEGMENT_FRAMES / C.FRAME_RATE)
    min_note_coverage: float = 0.1
    max_speech_seconds: float = 35.0  # LibriSpeech's longest utterances; longer ones are skipped

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        return d


def prepare_records(
    records: list[Record],
    out_dir: str | os.PathLike[str],
    cfg: PrepareConfig = PrepareConfig(),
    sep_dir: str | os.PathLike[str] | None = None,
    shard: str | None = None,
    progress: bool = True,
) -> int:
    """Compute features and frame targets of every record (songs cut into segments between words).

    Songs get their vocals from ``sep_dir`` (see ``separate_files``) when given, else the mixture
    is used in both channels; speech always uses itself twice. Features are computed over the
    whole file, then cut, so a segment's features do not depend on where it was cut.

    Returns:
        The number of items written by this call (items already done are skipped).
    """
    from tqdm import tqdm

    from singalign.audio import load_audio
    from singalign.data.prepared import save_item
    from singalign.data.segments import segment_record
    from singalign.data.shards import shard_items
    from singalign.data.targets import frame_targets, transcript_ids
    from singalign.features import stack_features
    from singalign.files import write_json

    items_dir = Path(out_dir) / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    by_file: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_file[r.audio].append(r)
    files = shard_items(sorted(by_file), shard, key=lambda p: str(Path(p).resolve()))
    rate = float(cfg.features.sample_rate / cfg.features.hop_length)
    written = 0
    for audio in tqdm(files, desc="features", unit="file", disable=not progress):
        recs = by_file[audio]
        if all(_done_marker(items_dir, r).exists() for r in recs):
            continue
        try:
            mix = load_audio(audio, cfg.features.sample_rate)
        except Exception as exc:  # one bad file must not stop the stage
            log.error("skipping %s: %s", audio, exc)
            continue
        vocals = mix
        if sep_dir is not None and any(r.kind == "song" for r in recs):
            vp = vocals_path(sep_dir, audio)
            if not vp.exists():
                raise FileNotFoundError(
                    f"{vp}: no separated vocals for {audio}; run the separate stage first"
                )
            vocals = load_audio(vp, cfg.features.sample_rate)
        feats = None
        for r in recs:
            if _done_marker(items_dir, r).exists():
                continue
            if (
                r.kind == "speech"
                and (r.duration or len(mix) / cfg.features.sample_rate) > cfg.max_speech_seconds
            ):
                continue
            segments = (
                segment_record(r, cfg.segment_seconds, cfg.min_note_coverage) if r.kind == "song" else [r]
            )
            if feats is None:
                feats = stack_features(vocals if r.kind == "song" else mix, mix, cfg.features)
            entries = []
            for seg in segments:
                a = int(np.floor(seg.offset * rate + 1e-6))
                stop = (
                    feats.shape[-1] if seg.duration is None else a + int(np.floor(seg.duration * rate + 1e-6))
                )
                stop = min(stop, feats.shape[-1])
                n = stop - a
                if n <= 0:
                    continue
                pitch, onset = frame_targets(seg.notes, a / rate, n, seg.pitch_shift)
                ids = transcript_ids(seg.text)
                key = file_key(seg)
                save_item(items_dir / f"{key}.npz", feats[:, :, a:stop], pitch, onset, ids)
                entries.append(
                    {
                        "id": seg.id,
                        "kind": seg.kind,
                        "corpus": seg.corpus,
                        "split": seg.split,
                        "file": f"items/{key}.npz",
                        "n_frames": n,
                        "text": seg.text,
                        "has_notes": bool(seg.notes),
                        "has_text": True,
                        "audio": seg.audio,
                        "offset": a / rate,
                        "tags": list(seg.tags),
                        "caption": seg.caption,
                        "speaker": seg.speaker,
                    }
                )
            for e in entries:
                write_json(items_dir / f"{Path(e['file']).stem}.json", e, indent=None)
            # written last: the record (all its segments, or none kept) is done; a resumed run skips it
            write_json(
                _done_marker(items_dir, r), {"id": r.id, "items": [e["id"] for e in entries]}, indent=None
            )
            written += len(entries)
    return written


def _done_marker(items_dir: Path, record: Record) -> Path:
    return items_dir / f"{file_key(record)}.done"


def finalize(out_dir: str | os.PathLike[str]) -> int:
    """Gather every finished item of every shard into ``OUT/items.jsonl``; returns the count."""
    from singalign.data.prepared import write_items

    entries = []
    for f in sorted((Path(out_dir) / "items").glob("*.json")):
        entries.append(json.loads(f.read_text(encoding="utf-8")))
    entries.sort(key=lambda e: e["id"])
    write_items(out_dir, entries)
    return len(entries)
