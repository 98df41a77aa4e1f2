"""Shared test helpers: paths to the real sample data and tiny synthetic items."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_recipe(name: str):
    """A recipe script under recipes/ imported as a module, to call its ``main(argv)``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def shared(*parts: str) -> Path:
    """A path under ../shared/data; skips the test when the sample data is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"sample data not found: {p}")
    return p


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    # tiny test models run fastest on one thread (and do not fight the other core's work)
    torch.set_num_threads(1)
    yield


def make_prepared(folder: Path, items: list[dict], seed: int = 0) -> Path:
    """Write a prepared set (singalign.data.prepared) from ``items``.

    Each item: ``{"id", "text", "n_frames", "kind"}`` (+ optional ``notes``: [(start_frame, end_frame, midi)]).
    Features are random but fixed per item, so a model can memorize item -> text.
    """
    from singalign import constants as C
    from singalign.data.prepared import save_item, write_items
    from singalign.text import encode

    rng = np.random.default_rng(seed)
    entries = []
    folder.mkdir(parents=True, exist_ok=True)
    for it in items:
        t = it["n_frames"]
        feats = rng.standard_normal((2, C.N_MELS, t)).astype(np.float32)
        pitch = np.full(t, C.NO_PITCH, np.int64)
        onset = np.zeros(t, np.float32)
        for a, b, midi in it.get("notes", []):
            pitch[a:b] = midi
            onset[a] = 1
        save_item(folder / f"{it['id']}.npz", feats, pitch, onset, encode(it["text"]))
        entries.append(
            {
                "id": it["id"],
                "kind": it.get("kind", "speech"),
                "corpus": "test",
                "split": "train",
                "file": f"{it['id']}.npz",
                "n_frames": t,
                "text": it["text"],
                "has_notes": bool(it.get("notes")),
                "has_text": True,
            }
        )
    write_items(folder, entries)
    return folder


def run_process_group(args: list[str], timeout: float, **kw):
    """``subprocess.run`` for commands that start children (torchrun): on timeout the whole process
    group is killed, so no hung worker outlives the test; returns a CompletedProcess."""
    import signal
    import subprocess

    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {' '.join(args)}\n{err[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def clean_posteriors(text: str, frames: int = 3) -> np.ndarray:
    """(T, 34) CTC log-posteriors whose best path spells ``text``: each character on one frame,
    then ``frames - 1`` blanks; every other class 20 nats behind."""
    from singalign.constants import BLANK_INDEX, CHAR_TO_INDEX, VOCAB

    lp = np.full((frames * len(text), len(VOCAB)), -20.0, np.float32)
    for i, ch in enumerate(text):
        lp[frames * i, CHAR_TO_INDEX[ch]] = 0.0
        lp[frames * i + 1 : frames * (i + 1), BLANK_INDEX] = 0.0
    return lp
