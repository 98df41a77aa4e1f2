"""The prepared-feature store that training reads, and how batches are drawn from it.

A prepared set is a folder with ``items.jsonl`` (one line per training item) and one ``.npz``
per item holding:

    features (2, n_mels, T) float16   log-mel of vocals and mixture
    pitch    (T,) int16               pitch class per frame (128 = no pitch)
    onset    (T,) uint8               1 at note onsets
    targets  (S,) int16               CTC target ids (singalign.text.encode)

and the ``items.jsonl`` line: ``{"id", "kind", "corpus", "split", "file", "n_frames", "text",
"has_notes", "has_text"}`` (``file`` relative to the folder).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from singalign.files import atomic_path, read_jsonl, write_jsonl

ITEMS_FILE = "items.jsonl"


def save_item(
    path: str | os.PathLike[str], features: np.ndarray, pitch: np.ndarray, onset: np.ndarray, targets
) -> None:
    """Write one item's arrays atomically (see the module docstring for shapes)."""
    buf = io.BytesIO()
    np.savez(
        buf,
        features=np.asarray(features, dtype=np.float16),
        pitch=np.asarray(pitch, dtype=np.int16),
        onset=np.asarray(onset, dtype=np.uint8),
        targets=np.asarray(targets, dtype=np.int16),
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def write_items(folder: str | os.PathLike[str], entries: list[dict[str, Any]]) -> None:
    """Write ``items.jsonl`` atomically."""
    write_jsonl(Path(folder) / ITEMS_FILE, entries)


@dataclass
class PreparedSet:
    """The items of one or more prepared folders, read lazily."""

    entries: list[dict[str, Any]]

    @classmethod
    def load(cls, folders: list[str | os.PathLike[str]] | str, max_frames: int | None = None) -> PreparedSet:
        folders = [folders] if isinstance(folders, str | os.PathLike) else folders
        entries = []
        for folder in folders:
            for e in read_jsonl(Path(folder) / ITEMS_FILE):
                if max_frames is not None and e["n_frames"] > max_frames:
                    continue
                entries.append({**e, "file": str(Path(folder) / e["file"])})
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict[str, Any]:
        e = self.entries[i]
        with np.load(e["file"]) as z:
            return {
                "id": e["id"],
                "features": z["features"].astype(np.float32),
                "pitch": z["pitch"].astype(np.int64),
                "onset": z["onset"].astype(np.float32),
                "targets": z["targets"].astype(np.int64),
                "has_notes": bool(e.get("has_notes", False)),
                "has_text": bool(e.get("has_text", True)),
                "text": e.get("text", ""),
            }


def collate(items: list[dict[str, Any]]):
    """Pad a list of items into a batch of tensors.

    Returns a dict: ``features`` (B, 2, F, T), ``lengths`` (B,), ``pitch`` (B, T), ``onset`` (B, T),
    ``targets`` (B, S), ``target_lengths`` (B,), ``has_notes`` (B,), ``has_text`` (B,), ``ids``, ``texts``.
    """
    import torch

    from singalign.constants import NO_PITCH

    b = len(items)
    t = max(it["features"].shape[-1] for it in items)
    s = max(1, max(len(it["targets"]) for it in items))
    c, f = items[0]["features"].shape[:2]
    feats = torch.zeros(b, c, f, t)
    pitch = torch.full((b, t), NO_PITCH, dtype=torch.long)
    onset = torch.zeros(b, t)
    targets = torch.zeros(b, s, dtype=torch.long)
    for i, it in enumerate(items):
        n = it["features"].shape[-1]
        feats[i, :, :, :n] = torch.from_numpy(it["features"])
        pitch[i, :n] = torch.from_numpy(it["pitch"][:n])
        onset[i, :n] = torch.from_numpy(it["onset"][:n])
        targets[i, : len(it["targets"])] = torch.from_numpy(it["targets"])
    return {
        "features": feats,
        "lengths": torch.tensor([it["features"].shape[-1] for it in items]),
        "pitch": pitch,
        "onset": onset,
        "targets": targets,
        "target_lengths": torch.tensor([len(it["targets"]) for it in items]),
        "has_notes": torch.tensor([it["has_notes"] for it in items]),
        "has_text": torch.tensor([it["has_text"] for it in items]),
        "ids": [it["id"] for it in items],
        "texts": [it["text"] for it in items],
    }


def epoch_batches(
    entries: list[dict[str, Any]], batch_size: int, speech_per_batch: int, seed: int, epoch: int
) -> list[list[int]]:
    """The batches of one epoch, a pure function of (entries, sizes, seed, epoch).

    Songs set the epoch: each batch holds ``batch_size - speech_per_batch`` song items and
    ``speech_per_batch`` speech items (the authors' 12 + 4), speech cycling through its own
    shuffled order. With only one kind present, batches hold ``batch_size`` of it, of similar lengths
    (sorted within pools of 50 batches, then the batches shuffled). Being a pure
    function of the epoch is what makes a resumed run draw exactly the same batches.
    """
    rng = np.random.default_rng([seed, epoch])
    songs = [i for i, e in enumerate(entries) if e.get("kind") == "song"]
    speech = [i for i, e in enumerate(entries) if e.get("kind") != "song"]
    songs = [songs[i] for i in rng.permutation(len(songs))]
    speech = [speech[i] for i in rng.permutation(len(speech))]
    if not songs or not speech or speech_per_batch <= 0:
        order = songs + speech if songs and speech else (songs or speech)
        order = [order[i] for i in rng.permutation(len(order))]
        # bucket by length: sort within pools of 50 batches so a batch pads little, then shuffle batches
        pool = 50 * batch_size
        batches = []
        for p in range(0, len(order), pool):
            chunk = sorted(order[p : p + pool], key=lambda i: entries[i].get("n_frames", 0))
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]
    n_song = batch_size - speech_per_batch
    if n_song <= 0:
        raise ValueError("speech_per_batch must be smaller than batch_size")
    batches, k = [], 0
    for start in range(0, len(songs), n_song):
        sp = [speech[(k + j) % len(speech)] for j in range(speech_per_batch)]
        k += speech_per_batch
        batches.append(songs[start : start + n_song] + sp)
    return batches
