"""One entry point over the corpus readers: ``read_corpus(name, root, ...)`` -> records."""

from __future__ import annotations

from pathlib import Path

from singalign.data.manifest import Record

CORPORA = ("librispeech", "dali", "jamendo", "magnatagatune", "mtg-jamendo", "gtzan")


def read_corpus(
    name: str, root: str, split: str = "", audio_dir: str | None = None, strict: bool = True
) -> list[Record]:
    """Read a corpus in its real layout.

    Args:
        name: one of ``CORPORA``.
        root: the corpus folder (for DALI: the annotations folder; for MTG-Jamendo: the tsv file).
        split: for LibriSpeech a split folder name (``train-clean-100``) or "" for all; for DALI and
            JamendoLyrics the split to label the records with.
        audio_dir: DALI audio folder (default: beside the annotations); MTG-Jamendo audio root.
        strict: raise on a malformed item (else warn and skip it).
    """
    from singalign.data import dali, jamendo, librispeech, tagging

    if name == "librispeech":
        return librispeech.read_librispeech(root, [split] if split else None, strict=strict)
    if name == "dali":
        return dali.read_dali(root, audio_dir, split=split, strict=strict)
    if name == "jamendo":
        return jamendo.read_jamendo(root, split=split or "test", strict=strict)
    if name == "magnatagatune":
        return tagging.read_magnatagatune(root)
    if name == "mtg-jamendo":
        return tagging.read_mtg_jamendo(root, audio_dir or str(Path(root).parent))
    if name == "gtzan":
        return tagging.read_gtzan(root, strict=strict)
    raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
